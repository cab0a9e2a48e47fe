/**
 * connector.js — the browser client of wsconnector.
 *
 * One dependency-free ES module. It speaks the protocol of docs/protocol.md
 * and offers the connector.js API of the reference (§3.2) unchanged, so
 * integrator code such as
 *
 *     var IDealConnector = new Connector();
 *     IDealConnector.start("wss", 8443);
 *     IDealConnector.createEnvironment("VOICE", "crm");
 *     IDealConnector.VOICE.oncontextchanged = handler;
 *
 * keeps working. Every method also returns a Promise. Underneath it keeps the
 * connection alive: reconnect with back-off, one `resume` request that
 * restores registrations and subscriptions and replays what was missed, state
 * that survives a page reload (sessionStorage), per-request timeouts, a
 * heartbeat, and a connection state that says why it cannot connect.
 *
 * `build.mjs` generates the classic-script build `connector.js` from this file.
 *
 * @module connector
 */

/** The daemon's default port (reference §3.2.1). */
const DEFAULT_PORT = 8443;
/** The daemon listens on loopback only. */
const DEFAULT_HOST = '127.0.0.1';
/** How long a request may wait for its reply (or, queued, for a connection). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Send a cheap request after this much silence on our side: the daemon closes
 *  a socket that sends nothing within 60 s of the hello (HelloTimeout), and the
 *  reply proves the connection is alive after sleep or a network change. */
const HEARTBEAT_INTERVAL_MS = 30_000;
/** How long each `/health` probe may take when a connection attempt failed. */
const PROBE_TIMEOUT_MS = 3_000;
/** Reconnect back-off: `min(max, base * factor^(attempt-1))`, minus up to
 *  `jitter` of it, so many tabs do not retry in lockstep. */
const BACKOFF = Object.freeze({ base: 500, factor: 2, max: 10_000, jitter: 0.5 });
/** sessionStorage key prefix; the full key adds `host:port`. */
const STORAGE_PREFIX = 'wsconnector:';
/** Close codes this client sends (4000-4999 is the application range). */
const CLOSE_NORMAL = 1000;
const CLOSE_NO_ANSWER = 4000;
/** Actions that change what the connection is registered or subscribed to.
 *  A queued one that times out is still sent once connected (see README). */
const REGISTRATION_ACTIONS = new Set([
  'createEnvironment',
  'removeEnvironment',
  'setNotificationsOn',
  'setNotificationsOff',
]);

/**
 * The connection states reported through `onstatechange(state, detail)`.
 * @enum {string}
 */
export const States = Object.freeze({
  /** Not started, or stopped with `stop()`. */
  DISCONNECTED: 'disconnected',
  /** The first connection attempt after `start()`. */
  CONNECTING: 'connecting',
  /** Open, hello received, registrations restored: requests flow. */
  CONNECTED: 'connected',
  /** The connection was lost (or refused for an unknown reason); retrying. */
  RECONNECTING: 'reconnecting',
  /** Nothing answers on the port; retrying. */
  DAEMON_NOT_RUNNING: 'daemon-not-running',
  /** The daemon answers but refuses this page's origin; retrying. */
  ORIGIN_REFUSED: 'origin-refused',
  /** The browser's local-network permission blocks the page; retrying. */
  BLOCKED_BY_BROWSER: 'blocked-by-browser',
  /** WSS: the daemon answers plain HTTP but the browser rejects its certificate; retrying. */
  CERTIFICATE_UNTRUSTED: 'certificate-untrusted',
});

/**
 * Back-off before reconnect attempt `attempt` (1, 2, ...), in milliseconds.
 * A pure function of the attempt count: `ceiling = min(max, base *
 * factor^(attempt-1))`, result in `[ceiling * (1 - jitter), ceiling]`.
 * @param {number} attempt 1 for the first retry
 * @param {{base?: number, factor?: number, max?: number, jitter?: number}} [params]
 * @param {() => number} [random] uniform in [0, 1)
 * @returns {number}
 */
export function backoffDelay(attempt, params = {}, random = Math.random) {
  const { base, factor, max, jitter } = { ...BACKOFF, ...params };
  const ceiling = Math.min(max, base * Math.pow(factor, Math.max(0, attempt - 1)));
  return Math.round(ceiling * (1 - jitter * random()));
}

/**
 * Why a connection attempt failed, from what the `/health` probes saw.
 * Pure; README "Connection states" explains each rule.
 * @param {{protocol: string, http: ProbeResult, https?: ProbeResult, cors?: ProbeResult,
 *          permission?: ?string}} facts
 * @returns {string} one of {@link States}
 */
export function diagnose({ protocol, http, https, cors, permission }) {
  if (http === 'unavailable') return States.RECONNECTING;
  if (http !== 'ok') {
    // Chrome reads `denied` once its local-network check refused a request
    // (it says `prompt` before the first one); a fetch that hangs is waiting
    // on the permission prompt. A refused TCP connection fails at once.
    if (permission === 'denied' || http === 'timeout') return States.BLOCKED_BY_BROWSER;
    return States.DAEMON_NOT_RUNNING;
  }
  if (protocol === 'wss' && https !== 'ok') return States.CERTIFICATE_UNTRUSTED;
  if (cors !== 'ok') return States.ORIGIN_REFUSED;
  return States.RECONNECTING;
}

/** @typedef {'ok' | 'failed' | 'timeout' | 'unavailable'} ProbeResult */

/**
 * An Error with the protocol's `errorCode` (or `timeout`, `disconnected`,
 * `not_connected`) in `code`.
 * @param {string} code
 * @param {string} message
 * @param {string} [action]
 */
function failure(code, message, action) {
  const error = new Error(message);
  error.name = 'ConnectorError';
  error.code = code;
  if (action) error.action = action;
  return error;
}

/** Hands an exception from application code to the browser's error reporting
 *  without stopping the connector. */
function report(error) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
  else if (typeof console !== 'undefined') console.error(error);
}

/** `[{a: 1}, {b: 2}]` as the protocol wants it; a plain object is split into pairs. */
function toPairs(data) {
  if (Array.isArray(data) || data === null || typeof data !== 'object') return data;
  return Object.keys(data).map((k) => ({ [k]: data[k] }));
}

/**
 * The v1 typed accessors (reference §2.3.2.2) and the values they take:
 * Integer and Long are the COM 16- and 32-bit integers of the ActiveX.
 */
const TYPED_KINDS = Object.freeze({
  Integer: { what: 'an integer from -32768 to 32767', min: -32768, max: 32767 },
  Long: { what: 'an integer from -2147483648 to 2147483647', min: -2147483648, max: 2147483647 },
  Double: { what: 'a finite number' },
  Boolean: { what: 'a boolean' },
  String: { what: 'a string' },
});
const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Converts a stored JSON value (or a value to store) for the typed accessor
 * `Context${kind}`; throws a ConnectorError `type_mismatch` or `out_of_range`.
 * Rules (README "Typed accessors"): numbers and numeric strings for the
 * numeric kinds; booleans, 0/1 and "true"/"false"/"1"/"0" for Boolean;
 * strings, numbers and booleans (as text) and null (as "") for String.
 */
export function convertTyped(kind, value, name = 'value') {
  const spec = TYPED_KINDS[kind];
  if (!spec) throw new TypeError(`unknown typed accessor kind ${JSON.stringify(kind)}`);
  const accessor = `Context${kind}`;
  const shown = value === undefined ? 'undefined' : JSON.stringify(value);
  const mismatch = () => failure('type_mismatch', `${accessor}: ${name} is ${shown}, not ${spec.what}`, accessor);
  const text = typeof value === 'string' ? value.trim() : null;
  switch (kind) {
    case 'Integer':
    case 'Long': {
      let n = value;
      if (text !== null) {
        if (!INTEGER_TEXT.test(text)) throw mismatch();
        n = Number(text);
      }
      if (typeof n !== 'number' || !Number.isInteger(n)) throw mismatch();
      if (n < spec.min || n > spec.max) {
        throw failure('out_of_range', `${accessor}: ${name} is ${shown}, outside ${spec.what}`, accessor);
      }
      return n;
    }
    case 'Double': {
      let n = value;
      if (text !== null) {
        if (!NUMBER_TEXT.test(text)) throw mismatch();
        n = Number(text);
      }
      if (typeof n !== 'number' || !Number.isFinite(n)) throw mismatch();
      return n;
    }
    case 'Boolean': {
      if (typeof value === 'boolean') return value;
      if (value === 0 || value === 1) return value === 1;
      const lower = text?.toLowerCase();
      if (lower === 'true' || lower === '1') return true;
      if (lower === 'false' || lower === '0') return false;
      throw mismatch();
    }
    default: {
      if (typeof value === 'string') return value;
      if (value === null) return '';
      if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return String(value);
      throw mismatch();
    }
  }
}

/** Legacy pages pass sizes as strings ("300"): send numbers when they are numbers. */
function num(value) {
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) {
    return Number(value);
  }
  return value;
}

/**
 * @typedef {object} ConnectorOptions
 * @property {string} [host] daemon host, default `127.0.0.1`
 * @property {?Function} [WebSocket] WebSocket implementation, default the global one
 * @property {?Function} [fetch] fetch for the `/health` probes, default the global one; `null` disables them
 * @property {?Storage} [storage] where the session survives a reload, default `sessionStorage`; `null` disables it
 * @property {number} [requestTimeout] ms a request waits for its reply (or a connection)
 * @property {number} [heartbeatInterval] ms of silence before a `getVersion` heartbeat
 * @property {number} [probeTimeout] ms per `/health` probe
 * @property {number} [backoffBase] ms before the first retry (upper bound)
 * @property {number} [backoffFactor] growth per attempt
 * @property {number} [backoffMax] ms, the longest wait
 * @property {number} [backoffJitter] fraction of the wait taken off at random (0..1)
 * @property {Function} [setTimeout] timer functions (tests inject a fake clock)
 * @property {Function} [clearTimeout]
 * @property {() => number} [random]
 * @property {?EventTarget} [window] receives `online`, default the global window
 * @property {?Document} [document] receives `visibilitychange`, default the global document
 * @property {?Navigator} [navigator] for `permissions.query`, default the global navigator
 */

/**
 * The connection to wsconnector. See README.md for the whole API.
 */
export class Connector {
  /** Called with the raw text and the MessageEvent of every message received. */
  onwebsocketmessage = null;
  /** Called with the hello each time the connection is (re)established and restored. */
  onready = null;
  /** Called with `{code, reason, wasClean}` when the connection is lost (once per outage). */
  ondisconnect = null;
  /** Called with `(env, values)` when the daemon answered a resume with a snapshot. */
  onresync = null;
  /** Called with `(state, detail)` when the connection state changes. */
  onstatechange = null;
  /** Called with `(status, event)` on a ServerStatus event (`stopping-service`). */
  onserverstatus = null;
  /** Called with `(key, result, event)` when a pickup dialog ended (`pickedUp`, `dismissed`, `timedOut`, `failed`). */
  onpickupresult = null;

  /** @type {Required<ConnectorOptions>} */
  #opt;
  #url = null;
  #protocol = null;
  #hostPort = null;
  #storageKey = null;
  /** Bumped by start() and stop(): callbacks of an older run are ignored. */
  #run = 0;
  #started = false;
  #socket = null;
  #ready = false;
  #hello = null;
  /** The resumeToken of the latest hello. */
  #token = null;
  #state = States.DISCONNECTED;
  /** Failed attempts since the last good connection (drives the back-off). */
  #attempt = 0;
  /** Set when ondisconnect was called for the current outage. */
  #outageReported = false;
  #retryTimer = null;
  #heartbeatTimer = null;
  #heartbeatInFlight = false;
  #helloTimer = null;
  #ref = 0;
  /** Requests sent on the current socket, by requestId. */
  #pending = new Map();
  /** Requests waiting for the connection, in call order. */
  #queue = [];
  /** Environment records by name (null prototype: names are data). */
  #envs = Object.create(null);
  #startPromise = null;
  #removeListeners = null;

  /** @param {ConnectorOptions} [options] */
  constructor(options = {}) {
    const g = globalThis;
    const pick = (name, fallback) => (name in options ? options[name] : fallback);
    let storage = null;
    try {
      storage = g.sessionStorage ?? null; // throws in sandboxed frames
    } catch {
      storage = null;
    }
    this.#opt = {
      host: options.host ?? DEFAULT_HOST,
      WebSocket: pick('WebSocket', g.WebSocket ?? null),
      fetch: pick('fetch', typeof g.fetch === 'function' ? g.fetch.bind(g) : null),
      storage: pick('storage', storage),
      requestTimeout: options.requestTimeout ?? REQUEST_TIMEOUT_MS,
      heartbeatInterval: options.heartbeatInterval ?? HEARTBEAT_INTERVAL_MS,
      probeTimeout: options.probeTimeout ?? PROBE_TIMEOUT_MS,
      backoff: {
        base: options.backoffBase ?? BACKOFF.base,
        factor: options.backoffFactor ?? BACKOFF.factor,
        max: options.backoffMax ?? BACKOFF.max,
        jitter: options.backoffJitter ?? BACKOFF.jitter,
      },
      setTimeout: options.setTimeout ?? g.setTimeout.bind(g),
      clearTimeout: options.clearTimeout ?? g.clearTimeout.bind(g),
      random: options.random ?? Math.random,
      window: pick('window', typeof g.addEventListener === 'function' ? g : null),
      document: pick('document', g.document ?? null),
      navigator: pick('navigator', g.navigator ?? null),
    };
  }

  /** The current connection state (one of {@link States}). */
  get state() {
    return this.#state;
  }

  /** The hello of the current connection (capabilities, user, version), or null. */
  get hello() {
    return this.#hello;
  }

  /**
   * Connects to the daemon and keeps reconnecting until `stop()`. Again with
   * the same protocol and port: the same promise; with others: reconnects
   * there, keeping queued calls.
   * @param {string} [protocol] `"ws"` or `"wss"`, any case
   * @param {number|string} [port] default 8443
   * @returns {Promise<object>} the hello, once the first connection is ready
   */
  start(protocol = 'ws', port = DEFAULT_PORT) {
    const scheme = String(protocol).toLowerCase();
    if (scheme !== 'ws' && scheme !== 'wss') {
      throw new TypeError(`start: protocol must be "ws" or "wss", not ${JSON.stringify(protocol)}`);
    }
    if (typeof this.#opt.WebSocket !== 'function') {
      throw new TypeError('start: no WebSocket implementation (pass options.WebSocket)');
    }
    const host = this.#opt.host;
    const hostPort = `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${Number(port) || DEFAULT_PORT}`;
    const url = `${scheme}://${hostPort}/`;
    if (this.#started && url === this.#url) return this.#startPromise.promise;
    if (this.#started) this.#shutdown('restarted', true);
    this.#protocol = scheme;
    this.#hostPort = hostPort;
    this.#url = url;
    const key = STORAGE_PREFIX + this.#hostPort;
    if (this.#storageKey !== key) {
      this.#storageKey = key;
      this.#load();
    }
    this.#run += 1;
    this.#started = true;
    this.#attempt = 0;
    this.#outageReported = false;
    this.#listen();
    this.#startPromise = this.#deferred();
    this.#startPromise.promise.catch(() => {}); // legacy pages ignore start()'s result
    this.#connect();
    return this.#startPromise.promise;
  }

  /**
   * Closes the connection and stops reconnecting. Pending requests reject
   * (`disconnected`, or `not_connected` when not sent yet); registrations are
   * kept, so a later `start()` restores them.
   * @returns {Promise<void>}
   */
  stop() {
    this.#shutdown('stopped', false);
    this.#setState(States.DISCONNECTED, { reason: 'stopped' });
    return Promise.resolve();
  }

  /**
   * The environment object for `env`, or undefined before `createEnvironment`.
   * Works for every name, also one that collides with a Connector member.
   * @param {string} env
   */
  environment(env) {
    return this.#envs[env]?.api;
  }

  /**
   * Registers in `env` (creating it when absent) and exposes `connector[env]`.
   * @param {string} env
   * @param {string} clientName
   */
  createEnvironment(env, clientName) {
    this.#record(env);
    return this.#request('createEnvironment', { environment: env, clientName });
  }

  /**
   * Unregisters from `env`; with `cleanup` also clears (or, for the last
   * registration, removes) its data. `connector[env]` stays, unregistered.
   * @param {string} env
   * @param {boolean} [cleanup]
   */
  removeEnvironment(env, cleanup = false) {
    this.#record(env);
    return this.#request('removeEnvironment', {
      environment: env,
      cleanup: cleanup === true || cleanup === 'true',
    });
  }

  /**
   * Sets variables of several environments atomically.
   * @param {Array<{environment: string, data: object}>} array
   * @param {boolean} [clearData] clear each named environment first (v3 CLEAR_DATA)
   */
  setAllJSON(array, clearData = false) {
    return this.#request('setAllJSON', clearData === true ? { data: array, clearData } : { data: array });
  }

  /** Every environment: `{env: {name: value}}`. @param {Function} [callback] */
  getData(callback) {
    return this.#request('getData', {}, { callback });
  }

  /** The daemon's version. @param {Function} [callback] */
  getVersion(callback) {
    return this.#request('getVersion', {}, { callback });
  }

  /** The machine name. @param {Function} [callback] */
  getHost(callback) {
    return this.#request('getHost', {}, { callback });
  }

  /** The OS user name. @param {Function} [callback] */
  getUser(callback) {
    return this.#request('getUser', {}, { callback });
  }

  /**
   * Finds a window by title, optionally resizes it and brings it to the front.
   * @param {number} x legacy first argument (left edge when resizing)
   * @param {number} width 0 with height 0 keeps the size
   * @param {number} height
   * @param {string} windowName title to look for
   * @param {boolean} focus bring it to the front
   */
  setSizeWindow(x, width, height, windowName, focus) {
    return this.#request('setSizeWindow', {
      x: num(x),
      width: num(width),
      height: num(height),
      windowName,
      focus: focus === true || focus === 'true',
    });
  }

  /**
   * Shows a toast.
   * @param {string} title
   * @param {string} message
   * @param {number} duration ms
   * @param {string} [color] e.g. `Red`, `#ff0000`
   * @param {number} [width]
   * @param {number} [height]
   */
  showNotification(title, message, duration, color, width, height) {
    return this.#request('showNotification', {
      title,
      message,
      duration: num(duration),
      color,
      width: num(width),
      height: num(height),
    });
  }

  /**
   * Launches a program declared in config.xml.
   * @param {string} name the declared program
   * @param {string} [parameter] e.g. a URL for a browser
   */
  launchProcess(name, parameter) {
    return this.#request('launchProcess', { name, parameter });
  }

  /**
   * Shows the incoming-call dialog (one per interaction id). Resolves once it
   * shows; how it ended arrives through `onpickupresult`.
   * @param {string} title
   * @param {string} buttonText
   * @param {string} [interactionId] one dialog per id
   */
  showPickupDialog(title, buttonText, interactionId) {
    return this.#request('showPickupDialog', { title, buttonText, interactionId });
  }

  /** Opens an http(s) URL allowed by config.xml in the default browser. @param {string} url */
  openUrl(url) {
    return this.#request('openUrl', { url });
  }

  /**
   * v1 `LoadXML`: sets the variables of an XML document (docs/protocol.md
   * "XML shape", with `<environment name="...">` elements) in one atomic
   * write. Needs a registration in every environment it names.
   * @param {string} xml
   * @param {string} [root] element whose content is loaded, default `context`
   * @param {string} [prefix] put before every variable name
   */
  LoadXML(xml, root = '', prefix = '') {
    return this.#request('loadXML', { xml, root, prefix });
  }

  /** v1 `RetrieveXML`: every environment as an XML document. @param {Function} [callback] */
  RetrieveXML(callback) {
    return this.#request('retrieveXML', {}, { callback });
  }

  // ---- environments -------------------------------------------------------

  /** The record of `env`, created with its API object on first use. */
  #record(env) {
    const name = String(env);
    let rec = this.#envs[name];
    if (rec) return rec;
    rec = {
      name,
      clientName: undefined,
      registered: false,
      /** @type {Map<string, boolean>} subscription name -> wants Values */
      subs: new Map(),
      epoch: undefined,
      seq: undefined,
      api: null,
    };
    rec.api = this.#environmentApi(name);
    this.#envs[name] = rec;
    if (name === 'environment') {
      // The reference examples name their environment "environment": that
      // object is also callable as environment(name), so both uses work.
      const lookup = (env) => this.#envs[env]?.api;
      rec.api = Object.defineProperties(lookup, Object.getOwnPropertyDescriptors(rec.api));
      Object.defineProperty(this, name, { value: rec.api, configurable: true });
    } else if (!(name in this)) {
      // `name in this` covers our members and Object.prototype (`toString`,
      // `__proto__`): such names stay reachable through environment(name) only.
      Object.defineProperty(this, name, { value: rec.api, enumerable: true, configurable: true });
    }
    return rec;
  }

  /** The object integrators see as `connector[env]`. */
  #environmentApi(env) {
    const request = (action, fields, callback) =>
      this.#request(action, { environment: env, ...fields }, { callback });
    return {
      name: env,
      /** `(name, value, event)` on ContextChanged. */
      oncontextchanged: null,
      /** `(name, event)` on VarRemoved; unset: oncontextchanged(name, undefined, event). */
      onremoved: null,
      /** `(event)` on EnvironmentCleaned/Removed; unset: oncontextchanged('*', undefined, event). */
      oncleaned: null,
      setContextVariable: (name, value) => request('setContextVariable', { name, value }),
      setContextJSON: (array, clearData = false) =>
        request('setContextJSON', clearData === true ? { data: toPairs(array), clearData } : { data: toPairs(array) }),
      getEnvironment: (callback) => request('getEnvironment', {}, callback),
      removeItemFromEnvironment: (name) => request('removeItemFromEnvironment', { name }),
      cleanEnvironment: () => request('cleanEnvironment', {}),
      setNotificationsOn: (name, values = false) =>
        request('setNotificationsOn', { name, values: values === true }),
      setNotificationsOff: (name) => request('setNotificationsOff', { name }),
      // v1 XML (reference §2.3.2.3): variables outside <environment> go to this one.
      LoadXML: (xml, root = '', prefix = '') => request('loadXML', { xml, root, prefix }),
      RetrieveEnvironmentXML: (callback) => request('retrieveEnvironmentXML', {}, callback),
      RetrieveXML: (callback) => this.RetrieveXML(callback),
      // v1 typed accessors (reference §2.3.2.2): (name) reads, (name, value) writes.
      ContextInteger: (name, ...value) => this.#typed(env, 'Integer', name, value),
      ContextLong: (name, ...value) => this.#typed(env, 'Long', name, value),
      ContextDouble: (name, ...value) => this.#typed(env, 'Double', name, value),
      ContextBoolean: (name, ...value) => this.#typed(env, 'Boolean', name, value),
      ContextString: (name, ...value) => this.#typed(env, 'String', name, value),
    };
  }

  /**
   * A typed accessor: with a value, converts and writes it; without, reads
   * the variable and converts it (`not_found` when it is not set).
   */
  #typed(env, kind, name, value) {
    const accessor = `Context${kind}`;
    if (value.length > 0) {
      let converted;
      try {
        converted = convertTyped(kind, value[0], String(name));
      } catch (error) {
        return Promise.reject(error);
      }
      return this.#request('setContextVariable', { environment: env, name, value: converted });
    }
    return this.#request('getEnvironment', { environment: env }).then((data) => {
      if (data === null || typeof data !== 'object' || !Object.hasOwn(data, name)) {
        throw failure('not_found', `${accessor}: ${env}.${name} is not set`, accessor);
      }
      return convertTyped(kind, data[name], `${env}.${name}`);
    });
  }

  /** Records what a registration request intends, so a reconnect restores it;
   *  returns the undo used when the daemon answers FAILURE. */
  #intend(msg) {
    if (!REGISTRATION_ACTIONS.has(msg.action)) return null;
    const rec = this.#record(msg.environment);
    const before = { registered: rec.registered, clientName: rec.clientName, subs: new Map(rec.subs) };
    switch (msg.action) {
      case 'createEnvironment':
        rec.registered = true;
        rec.clientName = msg.clientName;
        break;
      case 'removeEnvironment':
        rec.registered = false;
        rec.subs.clear();
        break;
      case 'setNotificationsOn':
        rec.subs.set(msg.name, msg.values);
        break;
      case 'setNotificationsOff':
        if (msg.name === '*') rec.subs.clear();
        else rec.subs.delete(msg.name);
        break;
    }
    this.#persist();
    return () => {
      Object.assign(rec, before);
      this.#persist();
    };
  }

  /** Moves `rec` to `(epoch, seq)` if that is newer; false for a stale position. */
  #advance(rec, epoch, seq) {
    if (typeof epoch !== 'number' || typeof seq !== 'number') return true;
    if (rec.epoch === epoch && seq <= rec.seq) return false;
    rec.epoch = epoch;
    rec.seq = seq;
    this.#persist();
    return true;
  }

  // ---- requests -----------------------------------------------------------

  /**
   * Sends (or queues) one request; one timer per request.
   * @param {string} action
   * @param {object} fields
   * @param {{callback?: Function, direct?: boolean, onReply?: Function, onTimeout?: Function}} [how]
   *   `direct`: send now even before ready (resume, heartbeat); `onReply`:
   *   handle the raw reply synchronously; `onTimeout`: also called on timeout.
   */
  #request(action, fields, how = {}) {
    const d = this.#deferred();
    const entry = {
      msg: { action, requestId: String(++this.#ref), ...fields },
      ...how,
      ...d,
      done: false,
      undo: null,
      timer: null,
    };
    entry.undo = this.#intend(entry.msg);
    entry.timer = this.#opt.setTimeout(() => this.#expire(entry), this.#opt.requestTimeout);
    if (how.onReply) d.promise.catch(() => {}); // internal: its outcome goes to onReply
    if (this.#ready || (how.direct && this.#socket)) this.#send(entry);
    else this.#queue.push(entry);
    return d.promise;
  }

  #send(entry) {
    this.#pending.set(entry.msg.requestId, entry);
    this.#socket.send(JSON.stringify(entry.msg));
    this.#scheduleHeartbeat();
  }

  #expire(entry) {
    const queued = this.#queue.indexOf(entry);
    if (queued >= 0) {
      // A write the page was told failed must never happen later; a
      // registration is still wanted once the connection comes.
      if (!REGISTRATION_ACTIONS.has(entry.msg.action)) this.#queue.splice(queued, 1);
      this.#reject(entry, 'not_connected', `${entry.msg.action}: not connected to wsconnector at ${this.#url ?? '(not started)'}`);
    } else {
      // Stays in #pending: its late reply still updates positions and intents.
      this.#reject(entry, 'timeout', `${entry.msg.action}: no reply within ${this.#opt.requestTimeout} ms`);
    }
    entry.onTimeout?.();
  }

  #reject(entry, code, message) {
    if (entry.done) return;
    entry.done = true;
    this.#opt.clearTimeout(entry.timer);
    entry.reject(failure(code, message, entry.msg.action));
  }

  #onReply(reply) {
    const entry = this.#pending.get(String(reply.requestId));
    if (!entry) return;
    this.#pending.delete(entry.msg.requestId);
    this.#opt.clearTimeout(entry.timer);
    const ok = reply.result === 'SUCCESS';
    if (ok) this.#track(entry.msg, reply);
    else entry.undo?.();
    if (entry.onReply) {
      entry.done = true;
      entry.onReply(reply);
      return;
    }
    if (entry.done) return;
    entry.done = true;
    if (ok) {
      this.#call(entry.callback, this, reply.data);
      entry.resolve(reply.data);
    } else {
      const message = reply.errorMessage ?? `${entry.msg.action} failed`;
      entry.reject(failure(reply.errorCode ?? 'failure', message, entry.msg.action));
    }
  }

  /** Positions from a successful reply: replies and events share one order. */
  #track(msg, reply) {
    const rec = msg.environment !== undefined ? this.#envs[msg.environment] : undefined;
    if (rec) {
      if (msg.action === 'removeEnvironment' && reply.data?.removed) {
        rec.epoch = rec.seq = undefined; // the environment and its history are gone
        this.#persist();
      } else {
        this.#advance(rec, reply.epoch, reply.seq);
      }
    }
    const multi = msg.action === 'setAllJSON' || msg.action === 'loadXML';
    for (const e of (multi && reply.data?.environments) || []) {
      const r = this.#envs[e.environment];
      if (r) this.#advance(r, e.epoch, e.seq);
    }
  }

  // ---- connection ---------------------------------------------------------

  #connect() {
    this.#retryTimer = null;
    if (this.#state === States.DISCONNECTED || this.#state === States.CONNECTED) {
      this.#setState(States.CONNECTING, { url: this.#url });
    }
    let ws;
    try {
      ws = new this.#opt.WebSocket(this.#url);
    } catch (error) {
      // e.g. SecurityError for mixed content: retry like any failed attempt.
      this.#failed({ code: 1006, reason: String(error?.message ?? error), wasClean: false }, false);
      return;
    }
    this.#socket = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.#helloTimer = this.#opt.setTimeout(() => this.#drop('no hello'), this.#opt.requestTimeout);
    };
    ws.onmessage = (event) => this.#onMessage(event);
    ws.onclose = (event) => {
      if (ws !== this.#socket) return;
      this.#closed();
      this.#failed({ code: event.code, reason: event.reason, wasClean: event.wasClean }, opened);
    };
    // Browsers follow an error with close 1006; some implementations (Node
    // 20's) never do. Either way the socket is finished: handle it now.
    ws.onerror = () => ws.onclose?.({ code: 1006, reason: '', wasClean: false });
  }

  /** Forgets the current socket: timers off, requests on it rejected. */
  #closed() {
    const ws = this.#socket;
    this.#socket = null;
    if (ws) ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    this.#ready = false;
    this.#hello = null;
    this.#heartbeatInFlight = false;
    this.#opt.clearTimeout(this.#helloTimer);
    this.#opt.clearTimeout(this.#heartbeatTimer);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const e of pending) this.#reject(e, 'disconnected', `${e.msg.action}: connection lost before the reply`);
    return ws;
  }

  /** Closes a socket that stopped answering and handles it as lost now,
   *  without waiting for a closing handshake that may never come. */
  #drop(reason) {
    const ws = this.#closed();
    try {
      ws?.close(CLOSE_NO_ANSWER, reason);
    } catch {
      // already closing
    }
    this.#failed({ code: CLOSE_NO_ANSWER, reason, wasClean: false }, true);
  }

  /** A socket ended (or never opened): report it, then retry after back-off. */
  #failed(close, opened) {
    const run = this.#run;
    this.#attempt += 1;
    if (!this.#outageReported) {
      this.#outageReported = true;
      this.#call(this.ondisconnect, this, close);
    }
    if (opened) {
      // The handshake passed, so the daemon is there and accepts us.
      this.#setState(States.RECONNECTING, { ...close, attempt: this.#attempt });
      this.#scheduleRetry();
      return;
    }
    this.#probe().then((facts) => {
      if (run !== this.#run) return;
      const state = diagnose(facts);
      this.#setState(state, { ...close, ...facts, attempt: this.#attempt });
      this.#scheduleRetry();
    });
  }

  #scheduleRetry() {
    const delay = backoffDelay(this.#attempt, this.#opt.backoff, this.#opt.random);
    this.#retryTimer = this.#opt.setTimeout(() => this.#connect(), delay);
  }

  /** `online`, or the tab became visible: retry now, or check a live socket. */
  #wake() {
    if (!this.#started) return;
    if (this.#retryTimer !== null) {
      this.#opt.clearTimeout(this.#retryTimer);
      this.#connect();
    } else if (this.#ready) {
      this.#heartbeat();
    }
  }

  #listen() {
    this.#removeListeners?.();
    const { window: win, document: doc } = this.#opt;
    const online = () => this.#wake();
    const visible = () => {
      if (doc.visibilityState === 'visible') this.#wake();
    };
    win?.addEventListener?.('online', online);
    doc?.addEventListener?.('visibilitychange', visible);
    this.#removeListeners = () => {
      win?.removeEventListener?.('online', online);
      doc?.removeEventListener?.('visibilitychange', visible);
    };
  }

  /** Ends the current run; queued calls survive a restart, not a stop. */
  #shutdown(message, keepQueue) {
    this.#run += 1;
    this.#started = false;
    this.#removeListeners?.();
    this.#removeListeners = null;
    this.#opt.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const ws = this.#closed();
    try {
      ws?.close(CLOSE_NORMAL, message);
    } catch {
      // already closing
    }
    if (!keepQueue) {
      const queued = this.#queue;
      this.#queue = [];
      for (const e of queued) this.#reject(e, 'not_connected', `${e.msg.action}: connector ${message}`);
    }
    this.#startPromise?.reject(failure('not_connected', `connector ${message} before it was ready`));
  }

  #setState(state, detail) {
    if (state === this.#state) return;
    this.#state = state;
    this.#call(this.onstatechange, this, state, detail);
  }

  // ---- diagnosis ----------------------------------------------------------

  /** Probes `GET /health` on the daemon's port to learn why a socket failed. */
  async #probe() {
    const facts = { protocol: this.#protocol, http: 'unavailable' };
    if (typeof this.#opt.fetch !== 'function') return facts;
    const http = `http://${this.#hostPort}/health`;
    // no-cors sends no Origin and yields an opaque answer: "something answers".
    facts.http = await this.#fetchProbe(http, 'no-cors');
    if (facts.http === 'ok') {
      if (this.#protocol === 'wss') facts.https = await this.#fetchProbe(`https://${this.#hostPort}/health`, 'no-cors');
      // A refused origin gets 403 without CORS headers: the CORS fetch rejects.
      facts.cors = await this.#fetchProbe(http, 'cors');
    }
    facts.permission = await this.#permission();
    return facts;
  }

  /** @returns {Promise<ProbeResult>} */
  #fetchProbe(url, mode) {
    const abort = typeof AbortController === 'function' ? new AbortController() : null;
    return new Promise((resolve) => {
      const timer = this.#opt.setTimeout(() => {
        abort?.abort();
        resolve('timeout');
      }, this.#opt.probeTimeout);
      const done = (result) => {
        this.#opt.clearTimeout(timer);
        resolve(result);
      };
      try {
        this.#opt
          .fetch(url, { mode, cache: 'no-store', credentials: 'omit', signal: abort?.signal })
          .then(() => done('ok'), () => done('failed'));
      } catch {
        done('failed');
      }
    });
  }

  /** The browser's loopback-network permission, or null where there is none. */
  async #permission() {
    const permissions = this.#opt.navigator?.permissions;
    if (typeof permissions?.query !== 'function') return null;
    try {
      return (await permissions.query({ name: 'loopback-network' })).state;
    } catch {
      return null; // the browser does not know the permission
    }
  }

  // ---- messages -----------------------------------------------------------

  #onMessage(event) {
    this.#call(this.onwebsocketmessage, this, event.data, event);
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    if (msg.type === 'hello') this.#onHello(msg);
    else if (msg.type === 'reply') this.#onReply(msg);
    else if (msg.type === 'event') this.#onEvent(msg);
  }

  #onEvent(msg) {
    if (msg.event === 'ServerStatus') {
      this.#call(this.onserverstatus, this, msg.status, msg);
      return;
    }
    if (msg.event === 'PickupResult') {
      this.#call(this.onpickupresult, this, msg.key, msg.result, msg);
      return;
    }
    const rec = this.#envs[msg.EnvironmentName];
    if (!rec || !this.#advance(rec, msg.epoch, msg.seq)) return; // unknown, or seen already
    const api = rec.api;
    switch (msg.event) {
      case 'ContextChanged':
        this.#call(api.oncontextchanged, api, msg.VarChanged, msg.ValueChanged, msg);
        break;
      case 'VarRemoved':
        if (typeof api.onremoved === 'function') this.#call(api.onremoved, api, msg.VarChanged, msg);
        else this.#call(api.oncontextchanged, api, msg.VarChanged, undefined, msg);
        break;
      case 'EnvironmentCleaned':
      case 'EnvironmentRemoved':
        if (typeof api.oncleaned === 'function') this.#call(api.oncleaned, api, msg);
        else this.#call(api.oncontextchanged, api, '*', undefined, msg);
        break;
    }
  }

  #onHello(hello) {
    this.#opt.clearTimeout(this.#helloTimer);
    const previous = this.#token;
    this.#token = typeof hello.resumeToken === 'string' ? hello.resumeToken : null;
    this.#hello = hello;
    this.#persist();
    const envs = Object.values(this.#envs).filter((r) => r.registered);
    if (!previous) {
      // First connection: queued createEnvironment calls register; anything
      // else wanted (saved before any hello, or a queue emptied by stop())
      // is registered one by one.
      const queued = (r) => this.#queue.some((e) => e.msg.action === 'createEnvironment' && e.msg.environment === r.name);
      for (const rec of envs) if (!queued(rec)) this.#reregister(rec);
      this.#becomeReady(false);
      return;
    }
    if (envs.length === 0) {
      this.#becomeReady(false);
      return;
    }
    const environments = envs.map((r) => {
      const e = { environment: r.name, clientName: r.clientName };
      if (r.epoch !== undefined) Object.assign(e, { epoch: r.epoch, seq: r.seq });
      e.subscriptions = [...r.subs].map(([name, values]) => ({ name, values }));
      return e;
    });
    this.#request(
      'resume',
      { token: previous, environments },
      {
        direct: true,
        onReply: (reply) => this.#onResumed(reply, envs),
        onTimeout: () => this.#drop('no resume reply'),
      },
    );
  }

  #onResumed(reply, envs) {
    if (reply.result !== 'SUCCESS') {
      // All or nothing failed (a stored name the daemon now refuses, a
      // limit): register one by one and resynchronise each from a read.
      for (const rec of envs) this.#reregister(rec);
      this.#becomeReady(true);
      return;
    }
    for (const entry of reply.data?.environments ?? []) {
      const rec = this.#envs[entry.environment];
      if (!rec) continue;
      if (entry.mode === 'replay') {
        for (const event of entry.events ?? []) this.#onEvent(event);
        this.#advance(rec, entry.epoch, entry.seq);
      } else {
        const hadPosition = rec.epoch !== undefined;
        rec.epoch = entry.epoch;
        rec.seq = entry.seq;
        this.#persist();
        if (hadPosition) this.#call(this.onresync, this, rec.name, entry.values ?? {});
      }
    }
    this.#becomeReady(true);
  }

  /** Registers and subscribes `rec` with single requests; with a known
   *  position, also reads the environment and reports it with onresync. */
  #reregister(rec) {
    const fire = (action, fields, onReply) =>
      this.#request(action, { environment: rec.name, ...fields }, { direct: true, onReply: onReply ?? (() => {}) });
    fire('createEnvironment', { clientName: rec.clientName }, (reply) => {
      if (reply.result === 'SUCCESS') return;
      // The daemon refuses it (a name or limit changed): stop asking.
      rec.registered = false;
      rec.subs.clear();
      this.#persist();
    });
    for (const [name, values] of rec.subs) fire('setNotificationsOn', { name, values });
    if (rec.epoch === undefined) return;
    fire('getEnvironment', {}, (reply) => {
      if (reply.result !== 'SUCCESS') return;
      rec.epoch = reply.epoch;
      rec.seq = reply.seq;
      this.#persist();
      this.#call(this.onresync, this, rec.name, reply.data ?? {});
    });
  }

  #becomeReady(resumed) {
    this.#ready = true;
    this.#attempt = 0;
    this.#outageReported = false;
    this.#setState(States.CONNECTED, { url: this.#url, resumed, hello: this.#hello });
    const queued = this.#queue;
    this.#queue = [];
    for (const entry of queued) this.#send(entry);
    this.#scheduleHeartbeat();
    const hello = this.#hello;
    this.#call(this.onready, this, hello);
    this.#startPromise?.resolve(hello);
  }

  // ---- heartbeat ----------------------------------------------------------

  #scheduleHeartbeat() {
    this.#opt.clearTimeout(this.#heartbeatTimer);
    if (!this.#ready || this.#opt.heartbeatInterval <= 0) return;
    this.#heartbeatTimer = this.#opt.setTimeout(() => this.#heartbeat(), this.#opt.heartbeatInterval);
  }

  #heartbeat() {
    if (!this.#ready || this.#heartbeatInFlight) return;
    this.#heartbeatInFlight = true;
    this.#request('getVersion', {}, {
      direct: true,
      onReply: () => {
        this.#heartbeatInFlight = false;
      },
      onTimeout: () => this.#drop('no heartbeat reply'),
    });
  }

  // ---- persistence --------------------------------------------------------

  /** Token, positions and registrations from the last page of this tab. */
  #load() {
    const storage = this.#opt.storage;
    if (!storage) return;
    let saved;
    try {
      saved = JSON.parse(storage.getItem(this.#storageKey) ?? 'null');
    } catch {
      return;
    }
    if (!saved || typeof saved !== 'object') return;
    if (typeof saved.token === 'string') this.#token = saved.token;
    for (const e of Array.isArray(saved.environments) ? saved.environments : []) {
      if (typeof e?.environment !== 'string') continue;
      const rec = this.#record(e.environment);
      rec.registered = true;
      rec.clientName = e.clientName;
      if (typeof e.epoch === 'number' && typeof e.seq === 'number') {
        rec.epoch = e.epoch;
        rec.seq = e.seq;
      }
      for (const s of Array.isArray(e.subscriptions) ? e.subscriptions : []) {
        if (typeof s?.name === 'string') rec.subs.set(s.name, s.values === true);
      }
    }
  }

  #persist() {
    const storage = this.#opt.storage;
    if (!storage || !this.#storageKey) return;
    const environments = Object.values(this.#envs)
      .filter((r) => r.registered)
      .map((r) => ({
        environment: r.name,
        clientName: r.clientName,
        epoch: r.epoch,
        seq: r.seq,
        subscriptions: [...r.subs].map(([name, values]) => ({ name, values })),
      }));
    try {
      storage.setItem(this.#storageKey, JSON.stringify({ token: this.#token, environments }));
    } catch {
      // quota or privacy mode: the session simply does not survive a reload
    }
  }

  // ---- helpers ------------------------------------------------------------

  #deferred() {
    const d = {};
    d.promise = new Promise((resolve, reject) => {
      d.resolve = resolve;
      d.reject = reject;
    });
    return d;
  }

  /** Runs application code; an exception is reported, never breaks the connector. */
  #call(fn, self, ...args) {
    if (typeof fn !== 'function') return;
    try {
      fn.apply(self, args);
    } catch (error) {
      report(error);
    }
  }
}

Connector.States = States;
Connector.backoffDelay = backoffDelay;
Connector.diagnose = diagnose;
Connector.convertTyped = convertTyped;

export default Connector;

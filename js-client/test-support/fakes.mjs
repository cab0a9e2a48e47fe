// Test doubles for connector.mjs: a fake WebSocket the test drives from the
// server side, a fake clock, an in-memory Storage and a scripted fetch. No
// network, no real timers: every test runs in milliseconds.

import { Connector } from '../connector.mjs';

/** Lets pending promise chains (the /health probes) settle. */
export async function settle() {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** setTimeout/clearTimeout on a virtual clock advanced with `tick`. */
export class FakeClock {
  now = 0;
  #timers = new Map();
  #next = 0;

  setTimeout = (fn, ms = 0) => {
    const id = ++this.#next;
    this.#timers.set(id, { at: this.now + Math.max(0, ms), fn, id });
    return id;
  };

  clearTimeout = (id) => {
    this.#timers.delete(id);
  };

  /** Delays of the armed timers from now, ascending. */
  delays() {
    return [...this.#timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }

  /** Advances by `ms`, running due timers in time order (and settling promises after each). */
  async tick(ms) {
    const end = this.now + ms;
    for (;;) {
      let first = null;
      for (const t of this.#timers.values()) {
        if (t.at <= end && (first === null || t.at < first.at || (t.at === first.at && t.id < first.id))) first = t;
      }
      if (first === null) break;
      this.#timers.delete(first.id);
      this.now = first.at;
      first.fn();
      await settle();
    }
    this.now = end;
    await settle();
  }
}

/** A Storage (sessionStorage) in memory. */
export class MemoryStorage {
  #map = new Map();
  getItem(key) {
    return this.#map.has(key) ? this.#map.get(key) : null;
  }
  setItem(key, value) {
    this.#map.set(key, String(value));
  }
  removeItem(key) {
    this.#map.delete(key);
  }
}

/** A WebSocket class whose instances the test drives as the server. */
export function fakeWebSockets() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      /** Requests the client sent, parsed. */
      this.sent = [];
      /** `{code, reason}` once the client called close(). */
      this.closedByClient = null;
      sockets.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error(`InvalidStateError: send in state ${this.readyState}`);
      this.sent.push(JSON.parse(data));
    }
    close(code, reason) {
      this.closedByClient = { code, reason };
      this.readyState = 2;
    }
    // ---- the server's side ----
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    receive(message) {
      const data = typeof message === 'string' ? message : JSON.stringify(message);
      this.onmessage?.({ data });
    }
    hello(token = 'token-1', extra = {}) {
      this.receive({
        type: 'hello',
        protocol: 1,
        product: 'wsconnector',
        version: '0.1.0',
        capabilities: ['data'],
        resumeToken: token,
        user: 'alice',
        native: false,
        origin: 'http://crm.test',
        ...extra,
      });
    }
    /** open + hello. */
    accept(token) {
      this.open();
      this.hello(token);
    }
    /** Answers request `req` with SUCCESS (fields in `extra` override). */
    reply(req, extra = {}) {
      this.receive({ type: 'reply', requestId: req.requestId, action: req.action, result: 'SUCCESS', ...extra });
    }
    fail(req, errorCode, errorMessage = `${errorCode}!`) {
      this.receive({ type: 'reply', requestId: req.requestId, action: req.action, result: 'FAILURE', errorCode, errorMessage });
    }
    /** The last request with this action. */
    last(action) {
      return this.sent.filter((m) => m.action === action).at(-1);
    }
    serverClose(code = 1006, reason = '') {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }
    /** A refused or impossible connection: error, then close 1006, never open. */
    refuse() {
      this.onerror?.({});
      this.serverClose(1006);
    }
  }
  return {
    WebSocket: FakeWebSocket,
    sockets,
    get last() {
      return sockets.at(-1);
    },
  };
}

/** A ContextChanged event. */
export function changed(env, name, value, epoch, seq, extra = {}) {
  return { type: 'event', event: 'ContextChanged', EnvironmentName: env, VarChanged: name, ValueChanged: value, epoch, seq, ...extra };
}

/**
 * A Connector wired to fakes. `fetch` defaults to "nothing answers"
 * (TypeError), `random` to 0 (back-off = its ceiling).
 */
export function setup(options = {}) {
  const clock = new FakeClock();
  const ws = fakeWebSockets();
  const storage = 'storage' in options ? options.storage : new MemoryStorage();
  const fetchCalls = [];
  const fetch =
    'fetch' in options
      ? options.fetch
      : async (url, init) => {
          fetchCalls.push({ url, mode: init.mode });
          throw new TypeError('Failed to fetch');
        };
  const connector = new Connector({
    WebSocket: ws.WebSocket,
    fetch,
    storage,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    random: () => 0,
    window: null,
    document: null,
    navigator: null,
    ...options.connector,
  });
  return { connector, clock, ws, storage, fetchCalls };
}

/** A started connector on an accepted socket (hello received, ready). */
export function connected(options = {}) {
  const t = setup(options);
  t.connector.start('ws', 8443);
  t.ws.last.accept(options.token ?? 'token-1');
  return t;
}

/** Registers `env` on a ready connector and answers at `(epoch, seq)`. */
export function register(t, env, clientName, epoch, seq = 0, subscriptions = []) {
  t.connector.createEnvironment(env, clientName);
  const sock = t.ws.last;
  sock.reply(sock.last('createEnvironment'), { data: { environment: env, clientName, created: seq === 0 }, epoch, seq });
  for (const [name, values] of subscriptions) {
    t.connector.environment(env).setNotificationsOn(name, values);
    sock.reply(sock.last('setNotificationsOn'), { data: { environment: env, name, values }, epoch, seq });
  }
}

/** Records how `promise` settles, so a rejection during a clock tick is not "unhandled". */
export function outcome(promise) {
  return promise.then(
    (value) => ({ value }),
    (error) => ({ error }),
  );
}

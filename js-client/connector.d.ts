// Type declarations for connector.mjs / connector.js (wsconnector's browser client).
// README.md documents the behaviour; docs/protocol.md the wire protocol.

/** A JSON scalar: what a context variable holds. */
export type Value = string | number | boolean | null;

/** The connection states reported through `onstatechange`. */
export type ConnectionState =
  | 'disconnected'
  | 'connecting'
  | 'connected'
  | 'reconnecting'
  | 'daemon-not-running'
  | 'origin-refused'
  | 'blocked-by-browser'
  | 'certificate-untrusted';

/** Outcome of one `/health` probe. */
export type ProbeResult = 'ok' | 'failed' | 'timeout' | 'unavailable';

/** What the probes saw after a failed connection attempt. */
export interface ProbeFacts {
  protocol: 'ws' | 'wss';
  /** `no-cors` GET http://HOST:PORT/health: does anything answer? */
  http: ProbeResult;
  /** WSS only: `no-cors` GET https://HOST:PORT/health: is the certificate accepted? */
  https?: ProbeResult;
  /** CORS GET http://HOST:PORT/health: is this page's origin allowed? */
  cors?: ProbeResult;
  /** `navigator.permissions.query({name: 'loopback-network'})`, null where unknown. */
  permission?: PermissionState | null;
}

/** Second argument of `onstatechange`. */
export interface StateDetail extends Partial<ProbeFacts> {
  /** Websocket URL (`connecting`, `connected`). */
  url?: string;
  /** `connected`: whether a resume restored an earlier session. */
  resumed?: boolean;
  /** `connected`: the hello. */
  hello?: Hello;
  /** Close code of the failed or lost socket (1006 when it never opened, 4000 dropped by the client). */
  code?: number;
  reason?: string;
  wasClean?: boolean;
  /** Failed attempts since the last good connection. */
  attempt?: number;
}

/** The daemon's first message on every connection (docs/protocol.md §2). */
export interface Hello {
  type: 'hello';
  protocol: number;
  product: string;
  version: string;
  capabilities: string[];
  resumeToken: string;
  user: string;
  native: boolean;
  origin: string | null;
}

/** An event about one environment (docs/protocol.md §6). */
export interface ContextEvent {
  type: 'event';
  event: 'ContextChanged' | 'VarRemoved' | 'EnvironmentCleaned' | 'EnvironmentRemoved';
  EnvironmentName: string;
  VarChanged?: string;
  ValueChanged?: Value;
  epoch: number;
  seq: number;
  Values?: Record<string, Value>;
}

/** The error every promise rejects with. */
export interface ConnectorError extends Error {
  name: 'ConnectorError';
  /**
   * The protocol's `errorCode` (`bad_request`, `not_registered`, `forbidden`, ...),
   * `type_mismatch`, `out_of_range`, `not_found` (typed accessors),
   * or `timeout` (sent, no reply in time), `disconnected` (the socket closed
   * before the reply), `not_connected` (never sent: no connection in time, or stopped).
   */
  code: string;
  /** The action of the request. */
  action?: string;
}

/** `connector[env]` / `connector.environment(env)`. */
export interface Environment {
  readonly name: string;
  /** A variable was set: `(name, value, event)`. */
  oncontextchanged: ((this: Environment, name: string, value: Value | undefined, event: ContextEvent) => void) | null;
  /** A variable was removed. When unset, `oncontextchanged(name, undefined, event)` is called instead. */
  onremoved: ((this: Environment, name: string, event: ContextEvent) => void) | null;
  /** Every variable was removed. When unset, `oncontextchanged('*', undefined, event)` is called instead. */
  oncleaned: ((this: Environment, event: ContextEvent) => void) | null;
  setContextVariable(name: string, value: Value): Promise<void>;
  /** `[{name: value}, ...]` (a plain object is split into pairs); `clearData` empties the environment first. */
  setContextJSON(data: Array<Record<string, Value>> | Record<string, Value>, clearData?: boolean): Promise<void>;
  getEnvironment(callback?: (values: Record<string, Value>) => void): Promise<Record<string, Value>>;
  removeItemFromEnvironment(name: string): Promise<{ removed: boolean }>;
  cleanEnvironment(): Promise<void>;
  /** `name` or `*`; `values: true` adds the whole environment (`Values`) to each event. */
  setNotificationsOn(name: string, values?: boolean): Promise<{ environment: string; name: string; values: boolean }>;
  setNotificationsOff(name: string): Promise<unknown>;
  /** v1 `LoadXML` (docs/protocol.md "XML shape"): one atomic write; variables outside `<environment>` go to this environment. */
  LoadXML(xml: string, root?: string, prefix?: string): Promise<{ environments: Array<{ environment: string; epoch: number; seq: number }> }>;
  /** v1 `RetrieveEnvironmentXML`: this environment as an XML document. */
  RetrieveEnvironmentXML(callback?: (xml: string) => void): Promise<string>;
  /** v1 `RetrieveXML`: every environment as an XML document (same as `connector.RetrieveXML`). */
  RetrieveXML(callback?: (xml: string) => void): Promise<string>;
  /** v1 typed accessors: `(name)` reads and converts (README "Typed accessors"), `(name, value)` converts and writes. */
  ContextInteger(name: string): Promise<number>;
  ContextInteger(name: string, value: Value): Promise<void>;
  ContextLong(name: string): Promise<number>;
  ContextLong(name: string, value: Value): Promise<void>;
  ContextDouble(name: string): Promise<number>;
  ContextDouble(name: string, value: Value): Promise<void>;
  ContextBoolean(name: string): Promise<boolean>;
  ContextBoolean(name: string, value: Value): Promise<void>;
  ContextString(name: string): Promise<string>;
  ContextString(name: string, value: Value): Promise<void>;
}

/** The kinds of the typed accessors (`Context${kind}`). */
export type TypedKind = 'Integer' | 'Long' | 'Double' | 'Boolean' | 'String';

/**
 * The conversion the typed accessors apply; throws a ConnectorError with code
 * `type_mismatch` or `out_of_range` (and `action` = `Context${kind}`).
 */
export declare function convertTyped(kind: 'Integer' | 'Long' | 'Double', value: unknown, name?: string): number;
export declare function convertTyped(kind: 'Boolean', value: unknown, name?: string): boolean;
export declare function convertTyped(kind: 'String', value: unknown, name?: string): string;

export interface ConnectorOptions {
  /** Daemon host; default `127.0.0.1`. */
  host?: string;
  /** WebSocket implementation; default the global one. */
  WebSocket?: typeof WebSocket | null;
  /** fetch for the `/health` probes; default the global one, `null` disables diagnosis. */
  fetch?: typeof fetch | null;
  /** Where the session survives a reload; default `sessionStorage`, `null` disables it. */
  storage?: Pick<Storage, 'getItem' | 'setItem'> | null;
  /** ms a request waits for its reply, or queued for a connection; default 10000. */
  requestTimeout?: number;
  /** ms without a request before a `getVersion` heartbeat; default 30000, 0 disables. */
  heartbeatInterval?: number;
  /** ms per `/health` probe; default 3000. */
  probeTimeout?: number;
  /** Back-off: upper bound of the first wait in ms (default 500). */
  backoffBase?: number;
  /** Back-off growth per attempt (default 2). */
  backoffFactor?: number;
  /** Back-off: longest wait in ms (default 10000). */
  backoffMax?: number;
  /** Back-off: fraction taken off at random, 0..1 (default 0.5). */
  backoffJitter?: number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  random?: () => number;
  /** Receives `online`; default the global window. */
  window?: Pick<EventTarget, 'addEventListener' | 'removeEventListener'> | null;
  /** Receives `visibilitychange`; default the global document. */
  document?: (Pick<EventTarget, 'addEventListener' | 'removeEventListener'> & { visibilityState: string }) | null;
  /** For `permissions.query`; default the global navigator. */
  navigator?: { permissions?: { query(descriptor: { name: string }): Promise<{ state: string }> } } | null;
}

export declare const States: Readonly<{
  DISCONNECTED: 'disconnected';
  CONNECTING: 'connecting';
  CONNECTED: 'connected';
  RECONNECTING: 'reconnecting';
  DAEMON_NOT_RUNNING: 'daemon-not-running';
  ORIGIN_REFUSED: 'origin-refused';
  BLOCKED_BY_BROWSER: 'blocked-by-browser';
  CERTIFICATE_UNTRUSTED: 'certificate-untrusted';
}>;

/** Wait before reconnect attempt `attempt` (1, 2, ...), in ms. */
export declare function backoffDelay(
  attempt: number,
  params?: { base?: number; factor?: number; max?: number; jitter?: number },
  random?: () => number,
): number;

/** The state a failed attempt is reported as, from what the probes saw. */
export declare function diagnose(facts: ProbeFacts): ConnectionState;

export declare class Connector {
  constructor(options?: ConnectorOptions);

  static States: typeof States;
  static backoffDelay: typeof backoffDelay;
  static diagnose: typeof diagnose;
  static convertTyped: typeof convertTyped;

  /** Every message received: raw text and the MessageEvent. */
  onwebsocketmessage: ((data: string, event: MessageEvent) => void) | null;
  /** The connection is ready (again): after the hello and any resume. */
  onready: ((hello: Hello) => void) | null;
  /** The connection was lost, or the first attempt failed; once per outage. */
  ondisconnect: ((close: { code: number; reason: string; wasClean: boolean }) => void) | null;
  /** A resume answered with a snapshot: replace your copy of `env` with `values`. */
  onresync: ((env: string, values: Record<string, Value>) => void) | null;
  onstatechange: ((state: ConnectionState, detail: StateDetail) => void) | null;
  /** `stopping-service` and other ServerStatus events. */
  onserverstatus: ((status: string, event: { type: 'event'; event: 'ServerStatus'; status: string }) => void) | null;
  /** A pickup dialog ended: `pickedUp`, `dismissed`, `timedOut` or `failed`. */
  onpickupresult:
    | ((
        key: string,
        result: 'pickedUp' | 'dismissed' | 'timedOut' | 'failed',
        event: { type: 'event'; event: 'PickupResult'; key: string; result: string; errorCode?: string; errorMessage?: string },
      ) => void)
    | null;

  readonly state: ConnectionState;
  readonly hello: Hello | null;

  /** `"ws"` or `"wss"` (any case), port default 8443. Resolves once first ready; again with the same arguments returns the same promise. */
  start(protocol?: string, port?: number | string): Promise<Hello>;
  stop(): Promise<void>;

  /** The environment object, also for names that collide with a member. */
  environment(env: string): Environment | undefined;
  createEnvironment(env: string, clientName: string): Promise<{ environment: string; clientName: string; created: boolean }>;
  removeEnvironment(env: string, cleanup?: boolean): Promise<{ environment: string; cleaned: boolean; removed: boolean }>;
  setAllJSON(data: Array<{ environment: string; data: Record<string, Value> }>, clearData?: boolean): Promise<{
    environments: Array<{ environment: string; epoch: number; seq: number }>;
  }>;
  getData(callback?: (all: Record<string, Record<string, Value>>) => void): Promise<Record<string, Record<string, Value>>>;
  getVersion(callback?: (version: string) => void): Promise<string>;
  getHost(callback?: (host: string) => void): Promise<string>;
  getUser(callback?: (user: string) => void): Promise<string>;
  setSizeWindow(x: number, width: number, height: number, windowName: string, focus: boolean): Promise<unknown>;
  showNotification(title: string, message: string, duration: number, color?: string, width?: number | string, height?: number | string): Promise<unknown>;
  launchProcess(name: string, parameter?: string): Promise<unknown>;
  showPickupDialog(title: string, buttonText: string, interactionId?: string): Promise<unknown>;
  openUrl(url: string): Promise<unknown>;
  /** v1 `LoadXML`: the variables of an XML document with `<environment name>` elements, in one atomic write. */
  LoadXML(xml: string, root?: string, prefix?: string): Promise<{ environments: Array<{ environment: string; epoch: number; seq: number }> }>;
  /** v1 `RetrieveXML`: every environment as an XML document. */
  RetrieveXML(callback?: (xml: string) => void): Promise<string>;

  /** `connector[env]` after `createEnvironment(env, ...)` (unless `env` collides with a member). */
  [env: string]: unknown;
}

export default Connector;

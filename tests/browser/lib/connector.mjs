// Helpers for the connector.js browser tests: test pages that load the
// library (classic script or ES module) and record everything it reports,
// page servers over http and https, and small in-page call wrappers.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

import { DEADLINE_MS } from './harness.mjs';

/**
 * Runs before the library loads: wraps `WebSocket` so a test can close the
 * library's socket from the page side and hold back reconnects
 * (`window.blockSockets`: new sockets go to a closed port instead).
 */
const SOCKET_TAP = `
window.sockets = [];
window.blockSockets = false;
(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      const target = window.blockSockets ? String(url).replace(/:\\d+(\\/|$)/, ':1$1') : url;
      super(target, protocols);
      window.sockets.push(this);
    }
  };
})();
`;

/** Runs after the library loaded: one Connector recording its callbacks. */
const DRIVER = `
window.setup = () => {
  const log = { states: [], changes: [], resyncs: [], ready: 0, disconnects: 0, messages: 0 };
  window.log = log;
  const c = new window.Connector();
  window.c = c;
  const text = (d) => (d == null ? null : typeof d === 'string' ? d : String(d.message ?? d.reason ?? JSON.stringify(d)));
  c.onstatechange = (state, detail) => log.states.push({ state, detail: text(detail) });
  c.onready = () => { log.ready++; };
  c.ondisconnect = () => { log.disconnects++; };
  c.onresync = (env, values) => log.resyncs.push({ env, values: JSON.parse(JSON.stringify(values ?? null)) });
  c.onwebsocketmessage = () => { log.messages++; };
};
// Records the context changes of environment env (as an integrator would).
window.watch = (env) => {
  window.c.environment(env).oncontextchanged = (name, value, event) =>
    window.log.changes.push({ env, name, value, event: event ? event.event ?? null : null, seq: event ? event.seq ?? null : null });
};
// A call's outcome as plain data: the resolved value, or the Error's code and message.
window.settle = (p) =>
  Promise.resolve(p).then(
    (data) => ({ ok: true, data: data === undefined ? '(undefined)' : data }),
    (e) => ({ ok: false, code: e && e.code, message: e && e.message, isError: e instanceof Error }),
  );
// The reference callback style: resolves with what the callback got.
window.viaCallback = (fn) => new Promise((resolve) => { fn((v) => resolve(v)); });
window.state = () => window.log.states.length ? window.log.states[window.log.states.length - 1].state : null;
`;

/**
 * A test page loading the library from `src`: a classic `<script src>`
 * (global `Connector`), or with `module` an ES module import.
 */
export function connectorPageHtml(src, { module = false } = {}) {
  const load = module
    ? `<script type="module">
import * as lib from ${JSON.stringify(src)};
window.Connector = lib.Connector ?? lib.default;
window.setup();
window.loaded = 'module';
</script>`
    : `<script src=${JSON.stringify(src)}></script>
<script>window.setup(); window.loaded = 'classic';</script>`;
  return `<!doctype html>
<meta charset="utf-8"><title>connector.js test page</title>
<script>${SOCKET_TAP}</script>
<script>${DRIVER}</script>
${load}
<body>connector.js test page</body>`;
}

function handler(files) {
  return (req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (file === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const { body, type } = typeof file === 'string' ? { body: file, type: 'text/html; charset=utf-8' } : file;
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
}

async function listen(server, host, scheme) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address();
  const name = host === '127.0.0.1' ? '127.0.0.1' : 'localhost';
  return {
    port,
    origin: `${scheme}://${name}:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Serves `files` on 127.0.0.1 over http. `files` maps a path to an HTML
 * string or `{ body, type }`; it is read per request, so tests may add pages.
 */
export async function startFileServer(files) {
  return { files, ...(await listen(http.createServer(handler(files)), '127.0.0.1', 'http')) };
}

/**
 * Serves `files` over https on 127.0.0.1 as `https://localhost:PORT`, with
 * the `localhost` certificate `wsconnector cert create` made in `certs`.
 */
export async function startHttpsFileServer(files, certs) {
  const server = https.createServer(
    {
      key: readFileSync(path.join(certs, 'localhost.key')),
      cert: readFileSync(path.join(certs, 'localhost.pem')),
    },
    handler(files),
  );
  return { files, ...(await listen(server, '127.0.0.1', 'https')) };
}

/** A loopback port nothing listens on (bound, then released). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Opens a test page and waits until its Connector exists. */
export async function openConnectorPage(context, url) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.errors = errors;
  await page.goto(url, { timeout: DEADLINE_MS });
  await page
    .waitForFunction(() => window.c && window.loaded, null, { timeout: DEADLINE_MS })
    .catch((e) => {
      throw new Error(`the Connector did not load in ${url} (page errors: ${errors.join('; ')}): ${e.message}`);
    });
  return page;
}

/** The page's recorded callbacks. */
export function pageLog(page) {
  return page.evaluate(() => JSON.parse(JSON.stringify(window.log)));
}

/** Waits until the page's last reported state is `state`; returns the log. */
export async function waitForState(page, state) {
  try {
    await page.waitForFunction((s) => window.state() === s, state, { timeout: DEADLINE_MS });
  } catch (e) {
    const log = await pageLog(page);
    throw new Error(`state ${state} not reached; states seen: ${JSON.stringify(log.states)}`);
  }
  return pageLog(page);
}

/** Waits until `pred(log)` (a function run in the page on `window.log`) holds. */
export async function waitForLog(page, pred, arg, what) {
  try {
    await page.waitForFunction(([p, a]) => new Function('log', 'arg', `return (${p})(log, arg)`)(window.log, a), [pred.toString(), arg], {
      timeout: DEADLINE_MS,
    });
  } catch (e) {
    throw new Error(`timed out waiting for ${what}; log: ${JSON.stringify(await pageLog(page))}`);
  }
  return pageLog(page);
}

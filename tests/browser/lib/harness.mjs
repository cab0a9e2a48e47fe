// Test harness for the browser tests: the real daemon binary, small page
// servers and a headless Debian Chromium, all on loopback with ephemeral
// ports. Nothing here sleeps for a fixed time: every wait polls a condition
// under a deadline and fails with what it was waiting for.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..', '..');

/** How long any single wait may take before the test fails. */
export const DEADLINE_MS = 15_000;

/** The daemon binary: $WSCONNECTOR_BIN, else the cargo debug build. */
export function daemonBinary() {
  const bin =
    process.env.WSCONNECTOR_BIN ||
    path.join(process.env.CARGO_TARGET_DIR || path.join(repoRoot, 'target'), 'debug', 'wsconnector');
  if (!existsSync(bin)) {
    throw new Error(`daemon binary ${bin} not found: build it (cargo build) or set WSCONNECTOR_BIN`);
  }
  return bin;
}

/** Chromium from Debian; browsers are never downloaded. */
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** The flags of /work/shared/TESTING.md (Playwright adds --headless itself). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A fresh temporary directory (remove it with `removeDir`). */
export function tempDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), `wsc-browser-${prefix}-`));
}

/** Resolves when `cond()` is truthy, rejects with `what` after `ms`. */
export async function waitUntil(cond, what, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Races `p` against a deadline. */
export function withTimeout(p, what, ms = DEADLINE_MS) {
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

// Daemons still running if this process ends abruptly (a crash, an uncaught
// error): killed on exit so no run leaves one behind.
const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

const BANNER = /^wsconnector \S+ listening on (wss?):\/\/127\.0\.0\.1:(\d+) and wss?:\/\/\[::1\]:(\d+) \(config .*\)$/;

/**
 * Starts `wsconnector run --config <dir>/config.xml` with an ephemeral port
 * (or `port`, e.g. to restart a daemon where its clients expect it), DEBUG
 * logs on stderr and `settings` (XML elements) added to the config.
 * Resolves once the banner line gives the port.
 */
export async function startDaemon(dir, settings, { port: wanted = 0 } = {}) {
  const config = path.join(dir, 'config.xml');
  writeFileSync(
    config,
    `<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n` +
      `  <Socket-port>${wanted}</Socket-port>\n  <Log-level>DEBUG</Log-level>\n${settings}\n</configuration>\n`,
  );
  const child = spawn(daemonBinary(), ['run', '--config', config], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let exit = null;
  live.add(child);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      exit = { code, signal };
      resolve(exit);
    });
    // Spawning failed (e.g. not executable): no 'exit' follows.
    child.on('error', (error) => {
      live.delete(child);
      exit = { error: error.message };
      resolve(exit);
    });
  });
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));

  const banner = await waitUntil(() => {
    if (exit) throw new Error(`daemon exited early (${JSON.stringify(exit)}):\n${stderr}`);
    const line = stdout.split('\n').find((l) => BANNER.test(l));
    return line && line.match(BANNER);
  }, 'the daemon banner line on stdout');
  const [, scheme, port4, port6] = banner;
  if (port4 !== port6) throw new Error(`banner ports differ: ${banner[0]}`);
  const port = Number(port4);
  if (!(port > 0 && port < 65536)) throw new Error(`bad port in banner: ${banner[0]}`);

  return {
    port,
    scheme,
    banner: banner[0],
    /** Everything the daemon logged so far. */
    log: () => stderr,
    /** Waits for a log line containing every string of `parts`; returns it. */
    async waitForLog(parts, what) {
      return waitUntil(
        () => stderr.split('\n').find((l) => parts.every((p) => l.includes(p))),
        `a daemon log line with ${what ?? JSON.stringify(parts)}; log so far:\n${stderr}`,
      );
    },
    /** SIGTERM, then the exit status (must be 0 for a clean stop). */
    async stop() {
      if (!exit) child.kill('SIGTERM');
      return withTimeout(exited, 'daemon exit after SIGTERM');
    },
    /** `kill -9` (no close frames, nothing flushed), then the exit status. */
    async kill() {
      if (!exit) child.kill('SIGKILL');
      return withTimeout(exited, 'daemon exit after SIGKILL');
    },
    /** The process id (e.g. for /proc/PID/status). */
    pid: child.pid,
  };
}

/**
 * Starts a daemon again on `port`, where its clients expect it, retrying
 * while the port is still held (a predecessor being torn down) until the
 * deadline. Resolves like `startDaemon`.
 */
export async function restartDaemon(dir, settings, port) {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    try {
      const daemon = await startDaemon(dir, settings, { port });
      if (daemon.port !== port) throw new Error(`restarted on ${daemon.port}, not ${port}`);
      return daemon;
    } catch (e) {
      if (!/exited early/.test(e.message) || Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The test client page: a tiny websocket recorder driven from the tests. */
export const CLIENT_HTML = `<!doctype html>
<meta charset="utf-8"><title>wsconnector browser test client</title>
<script>
// Every socket records what the page's JavaScript sees, in order.
window.socks = {};
window.openSock = (id, url) => {
  const rec = { events: [], msgs: [], close: null, open: false };
  const s = new WebSocket(url);
  s.onopen = () => { rec.open = true; rec.events.push('open'); };
  s.onerror = () => { rec.events.push('error'); };
  s.onclose = (e) => { rec.close = { code: e.code, wasClean: e.wasClean }; rec.events.push('close'); };
  s.onmessage = (e) => { rec.msgs.push(JSON.parse(e.data)); };
  window.socks[id] = { s, rec };
};
window.rec = (id) => JSON.parse(JSON.stringify(window.socks[id].rec));
// Sends one request and resolves with the reply carrying its requestId.
let nextId = 1;
window.request = (id, req) => {
  const { s, rec } = window.socks[id];
  const requestId = 'r' + nextId++;
  const seen = rec.msgs.length;
  s.send(JSON.stringify({ ...req, requestId }));
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const poll = () => {
      const reply = rec.msgs.slice(seen).find((m) => m.type === 'reply' && m.requestId === requestId);
      if (reply) return resolve(reply);
      if (Date.now() - t0 > 10000) return reject(new Error('no reply to ' + JSON.stringify(req)));
      setTimeout(poll, 10);
    };
    poll();
  });
};
</script>
<body>client</body>`;

/**
 * Serves `pages` ({ '/path': body }) on 127.0.0.1:0 over http, as
 * JavaScript for `.js`/`.mjs` paths and HTML otherwise. Resolves to
 * { origin, port, close }.
 */
export async function startPageServer(pages) {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const body = pages[path];
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const type = /\.m?js$/.test(path) ? 'text/javascript' : 'text/html';
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' });
    res.end(body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Launches Debian's Chromium headless with a fresh profile, the TESTING.md
 * flags plus `extraArgs`, and `env` added to the environment (e.g. HOME for
 * the NSS database).
 */
export async function launchChromium({ extraArgs = [], env = {} } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
}

/** Opens `url` in a new page of `context` and waits for the client script. */
export async function openClient(context, url) {
  const page = await context.newPage();
  await page.goto(url, { timeout: DEADLINE_MS });
  await page.waitForFunction(() => typeof window.openSock === 'function', null, { timeout: DEADLINE_MS });
  return page;
}

/** Opens socket `id` to `url` in `frame` and waits until it opened or closed. */
export async function openSock(frame, id, url) {
  await frame.evaluate(([i, u]) => window.openSock(i, u), [id, url]);
  await frame.waitForFunction((i) => window.socks[i].rec.open || window.socks[i].rec.close, id, {
    timeout: DEADLINE_MS,
  });
  return frame.evaluate((i) => window.rec(i), id);
}

/** Waits until socket `id` in `frame` has received `n` messages; returns its record. */
export async function waitForMsgs(frame, id, n) {
  await frame.waitForFunction(([i, k]) => window.socks[i].rec.msgs.length >= k, [id, n], {
    timeout: DEADLINE_MS,
  });
  return frame.evaluate((i) => window.rec(i), id);
}

/** Waits until socket `id` in `frame` is closed; returns its record. */
export async function waitForClose(frame, id) {
  await frame.waitForFunction((i) => window.socks[i].rec.close !== null, id, { timeout: DEADLINE_MS });
  return frame.evaluate((i) => window.rec(i), id);
}

/** Sends a request on socket `id` in `frame`; resolves with its reply. */
export function request(frame, id, req) {
  return frame.evaluate(([i, r]) => window.request(i, r), [id, req]);
}

/**
 * Creates a local CA and localhost certificate with `wsconnector cert create`
 * in `<dir>/certs`.
 */
export function createCerts(dir) {
  const certs = path.join(dir, 'certs');
  execFileSync(daemonBinary(), ['cert', 'create', '--dir', certs], { stdio: ['ignore', 'pipe', 'pipe'] });
  return certs;
}

/**
 * A HOME whose NSS database (what Chromium on Linux trusts) holds `caPem`
 * when given, or is empty.
 */
export function nssHome(dir, caPem) {
  const home = mkdtempSync(path.join(dir, caPem ? 'home-trusting-' : 'home-empty-'));
  const db = path.join(home, '.pki', 'nssdb');
  mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password'], { stdio: 'pipe' });
  if (caPem) {
    execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'wsc-test-ca', '-i', caPem], {
      stdio: 'pipe',
    });
  }
  return home;
}

/** Removes a temp dir (best effort: a failed test must still report its own error). */
export function removeDir(dir) {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

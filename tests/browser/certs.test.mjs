// `wsconnector cert trust` / `cert untrust` seen by real browsers: after
// `cert create` + `cert trust --only nss` into a fresh HOME (Chromium's
// ~/.pki/nssdb and a fresh Firefox profile listed in profiles.ini), headless
// Chromium and Debian's firefox-esr open wss://localhost:PORT and
// wss://127.0.0.1:PORT with no certificate flag; after `cert untrust` a new
// browser process cannot. The real system store is never touched.
//
// Firefox: playwright-core drives only Playwright's own patched Firefox
// (Juggler), and Debian has no geckodriver, so Debian's firefox-esr is run
// headless on a page that reports what its websocket saw to the test's page
// server (GET /report?...), which the test waits for.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  CLIENT_HTML,
  createCerts,
  daemonBinary,
  launchChromium,
  openClient,
  openSock,
  removeDir,
  startDaemon,
  tempDir,
  waitForClose,
  waitForMsgs,
  waitUntil,
  withTimeout,
} from './lib/harness.mjs';

const FIREFOX = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';

/** The Firefox test page: opens `target`, reports open+hello or error. */
const FIREFOX_PAGE = `<!doctype html><meta charset="utf-8"><title>ff</title>
<script>
const q = new URLSearchParams(location.search);
const report = (r) => fetch('/report?' + new URLSearchParams({ run: q.get('run'), ...r }));
for (const [id, url] of [['localhost', q.get('localhost')], ['v4', q.get('v4')]]) {
  const s = new WebSocket(url);
  let done = false;
  s.onmessage = (e) => { if (!done) { done = true; report({ id, result: 'open', type: JSON.parse(e.data).type }); s.close(); } };
  s.onerror = () => { if (!done) { done = true; report({ id, result: 'error' }); } };
}
</script>`;

/** Serves the Chromium client, the Firefox page, and records /report calls. */
async function startReportServer() {
  const reports = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/report') {
      reports.push(Object.fromEntries(url.searchParams));
      res.writeHead(204).end();
      return;
    }
    const body = { '/client.html': CLIENT_HTML, '/ff.html': FIREFOX_PAGE }[url.pathname];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    reports,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `wsconnector cert <action> --dir certs --only nss` with HOME=home; its stdout. */
function cert(action, certs, home) {
  return execFileSync(daemonBinary(), ['cert', action, '--dir', certs, '--only', 'nss'], {
    env: { ...process.env, HOME: home },
    encoding: 'utf8',
  });
}

/** A home with one fresh Firefox profile (no database yet; Firefox never ran). */
function freshHome(dir) {
  const home = path.join(dir, 'home');
  const profile = path.join(home, '.mozilla', 'firefox', 'wsc.default-esr');
  mkdirSync(profile, { recursive: true });
  writeFileSync(
    path.join(home, '.mozilla', 'firefox', 'profiles.ini'),
    '[Profile0]\nName=wsc\nIsRelative=1\nPath=wsc.default-esr\nDefault=1\n',
  );
  // No first-run pages or update checks: the test page is the only tab.
  writeFileSync(
    path.join(profile, 'user.js'),
    [
      'user_pref("browser.shell.checkDefaultBrowser", false);',
      'user_pref("browser.startup.homepage_override.mstone", "ignore");',
      'user_pref("datareporting.policy.dataSubmissionEnabled", false);',
      'user_pref("app.update.disabledForTesting", true);',
      'user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);',
    ].join('\n') + '\n',
  );
  return { home, profile };
}

describe('cert trust / untrust in Chromium and Firefox', () => {
  let dir, certs, home, profile, server, daemon;
  const browsers = [];
  let run = 0;

  before(async () => {
    dir = tempDir('certs');
    certs = createCerts(dir);
    ({ home, profile } = freshHome(dir));
    server = await startReportServer();
    daemon = await startDaemon(
      dir,
      [
        '  <Socket-type>WSS</Socket-type>',
        '  <Certificate-path>certs/localhost.pem</Certificate-path>',
        '  <Key-path>certs/localhost.key</Key-path>',
        `  <AllowedHosts>${server.origin}</AllowedHosts>`,
      ].join('\n'),
    );
    assert.equal(daemon.scheme, 'wss', daemon.banner);
  });

  after(async () => {
    try {
      for (const b of browsers) await b.close();
      await server?.close();
      if (daemon) {
        const exit = await daemon.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `daemon exit; log:\n${daemon.log()}`);
      }
    } finally {
      removeDir(dir);
    }
  });

  /** Both loopback names from a new Chromium process with HOME=home. */
  async function chromiumSees() {
    const browser = await launchChromium({ env: { HOME: home } });
    browsers.push(browser);
    const page = await openClient(await browser.newContext(), `${server.origin}/client.html`);
    const seen = {};
    for (const host of ['localhost', '127.0.0.1']) {
      const rec = await openSock(page, host, `wss://${host}:${daemon.port}/`);
      if (rec.open) {
        seen[host] = (await waitForMsgs(page, host, 1)).msgs[0].type;
      } else {
        const closed = await waitForClose(page, host);
        seen[host] = `closed ${closed.close.code}`;
      }
    }
    await browser.close();
    return seen;
  }

  /** Both loopback names from a new headless firefox-esr process on the profile. */
  async function firefoxSees() {
    run += 1;
    const id = String(run);
    const q = new URLSearchParams({
      run: id,
      localhost: `wss://localhost:${daemon.port}/`,
      v4: `wss://127.0.0.1:${daemon.port}/`,
    });
    const ff = spawn(FIREFOX, ['--headless', '--no-remote', '--profile', profile, `${server.origin}/ff.html?${q}`], {
      env: { ...process.env, HOME: home, MOZ_CRASHREPORTER_DISABLE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    ff.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => ff.on('exit', resolve));
    try {
      const mine = () => server.reports.filter((r) => r.run === id);
      await waitUntil(() => mine().length >= 2, `two reports from Firefox; stderr:\n${stderr}`, 60_000);
      return Object.fromEntries(mine().map((r) => [r.id, r.result === 'open' ? r.type : r.result]));
    } finally {
      ff.kill('SIGTERM');
      await withTimeout(exited, 'firefox exit').catch(() => ff.kill('SIGKILL'));
    }
  }

  test('before trust: neither browser accepts the certificate', async () => {
    assert.deepEqual(await chromiumSees(), { localhost: 'closed 1006', '127.0.0.1': 'closed 1006' });
  });

  test('after cert trust: Chromium and firefox-esr get the hello on both names, no certificate flag', async () => {
    const out = cert('trust', certs, home);
    assert.match(out, /nssdb: added/, out);
    assert.match(out, /wsc\.default-esr: added/, out);
    assert.ok(existsSync(path.join(profile, 'cert9.db')), 'the Firefox profile got its database');
    // Twice is harmless.
    assert.match(cert('trust', certs, home), /already trusted/);

    assert.deepEqual(await chromiumSees(), { localhost: 'hello', '127.0.0.1': 'hello' });
    assert.deepEqual(await firefoxSees(), { localhost: 'hello', v4: 'hello' });
  });

  test('after cert untrust: a new browser process cannot connect', async () => {
    const out = cert('untrust', certs, home);
    assert.equal((out.match(/: removed/g) || []).length, 2, out);
    assert.deepEqual(await chromiumSees(), { localhost: 'closed 1006', '127.0.0.1': 'closed 1006' });
    assert.deepEqual(await firefoxSees(), { localhost: 'error', v4: 'error' });
  });
});

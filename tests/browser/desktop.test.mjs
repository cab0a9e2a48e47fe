// Desktop actions end to end from connector.js on Linux: a page loads
// connector.js (the file in js-client/, served here by the page server) with
// <script src>, and its promise-returning desktop methods drive the real
// daemon, which acts on a real desktop: Xvfb + openbox + a private D-Bus
// session bus + Debian's dunst, as scripts/test-desktop.sh sets them up.
// Every effect is checked where it lands: a file the launched program wrote,
// dunst's history, the X window's geometry and focus, dunst's displayed
// count, a marker file written by the "browser" xdg-open started.
//
// Outside that session (WSC_DESKTOP_SESSION unset) the whole file is skipped
// with the reason; scripts/test-desktop.sh runs it for real.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DEADLINE_MS, launchChromium, removeDir, startDaemon, startPageServer, tempDir, waitUntil } from './lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CONNECTOR_JS = path.resolve(here, '..', '..', 'js-client', 'connector.js');

const inSession = Boolean(process.env.WSC_DESKTOP_SESSION && process.env.DISPLAY);
const skipReason = inSession ? false : 'not in a desktop session (scripts/test-desktop.sh runs this file)';

/** A page that loads connector.js and exposes one started Connector. */
const PAGE = `<!doctype html>
<meta charset="utf-8"><title>desktop test page</title>
<script src="/connector.js"></script>
<script>
window.pickups = [];
window.connector = new Connector();
window.connector.onpickupresult = (key, result, event) => window.pickups.push({ key, result, type: event && event.type });
const port = Number(new URLSearchParams(location.search).get('port'));
window.started = window.connector.start('ws', port).then((hello) => hello.capabilities);
// Runs one connector method; resolves with how its promise settled.
window.call = (method, args) =>
  window.connector[method](...args).then(
    (data) => ({ ok: true, data: data === undefined ? null : data }),
    (e) => ({ ok: false, code: e.code, message: e.message }),
  );
</script>
<body>desktop</body>`;

/** Serves the test page and connector.js with their real content types. */
function startServer() {
  return startPageServer({ '/connector.js': readFileSync(CONNECTOR_JS, 'utf8'), '/page.html': PAGE });
}

function run(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** dunst's history as a list of { summary, body }. */
function dunstHistory() {
  const h = JSON.parse(run('dunstctl', ['history']));
  return (h.data?.[0] ?? []).map((n) => ({ summary: n.summary?.data, body: n.body?.data }));
}

function dunstDisplayed() {
  return Number(run('dunstctl', ['count', 'displayed']).trim());
}

function notificationsOwned() {
  try {
    const out = run('dbus-send', [
      '--session',
      '--print-reply',
      '--dest=org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus.NameHasOwner',
      'string:org.freedesktop.Notifications',
    ]);
    return out.includes('boolean true');
  } catch {
    return false;
  }
}

/** { width, height, id } of the window titled `title`, or null. */
function windowInfo(title) {
  try {
    const out = run('xwininfo', ['-name', title]);
    const num = (label) => Number(out.match(new RegExp(`${label}:\\s+(-?\\d+)`))[1]);
    const id = Number.parseInt(out.match(/Window id: (0x[0-9a-f]+)/)[1], 16);
    return { width: num('Width'), height: num('Height'), id };
  } catch {
    return null;
  }
}

function activeWindow() {
  const out = run('xprop', ['-root', '_NET_ACTIVE_WINDOW']);
  const m = out.match(/window id # (0x[0-9a-f]+)/);
  return m ? Number.parseInt(m[1], 16) : null;
}

describe('desktop actions from connector.js', { skip: skipReason }, () => {
  let dir;
  let markers;
  let opened;
  let granted;
  let plain;
  let daemon;
  let browser;
  let dunst;
  let xmessage;
  const children = [];

  /** A new page of `server` connected to the daemon; returns it once the hello came. */
  async function openPage(server) {
    const page = await browser.newPage();
    await page.goto(`${server.origin}/page.html?port=${daemon.port}`, { timeout: DEADLINE_MS });
    const caps = await page.evaluate(() => window.started);
    return { page, caps };
  }

  function call(page, method, ...args) {
    return page.evaluate(([m, a]) => window.call(m, a), [method, args]);
  }

  before(async () => {
    dir = tempDir('desktop');
    markers = path.join(dir, 'markers');
    mkdirSync(markers);
    // The "default browser" xdg-open starts for openUrl: with no desktop
    // environment and no URL handler in these XDG dirs, xdg-open runs
    // $BROWSER, which records the URL.
    opened = path.join(dir, 'opened.txt');
    const fakeBrowser = path.join(dir, 'browser.sh');
    writeFileSync(fakeBrowser, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`);
    chmodSync(fakeBrowser, 0o755);

    dunst = spawn('dunst', ['-verbosity', 'crit'], { stdio: 'ignore' });
    children.push(dunst);
    await waitUntil(notificationsOwned, 'dunst owning org.freedesktop.Notifications');

    granted = await startServer();
    plain = await startServer();
    const escaped = markers.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const saved = { ...process.env };
    Object.assign(process.env, {
      BROWSER: fakeBrowser,
      XDG_CURRENT_DESKTOP: '',
      XDG_DATA_HOME: path.join(dir, 'xdg'),
      XDG_DATA_DIRS: path.join(dir, 'xdg'),
      XDG_CONFIG_HOME: path.join(dir, 'xdg'),
      XDG_CONFIG_DIRS: path.join(dir, 'xdg'),
    });
    try {
      daemon = await startDaemon(
        dir,
        `  <Origins>
    <Origin url="${granted.origin}" capabilities="data launch window notify dialog openUrl">
      <OpenUrl>https://crm.example.com/*</OpenUrl>
    </Origin>
    <Origin url="${plain.origin}" capabilities="data"/>
  </Origins>
  <Programs>
    <Program name="touch" path="/usr/bin/touch" args="--" parameter="^${escaped}/[a-z0-9-]{1,32}$"/>
    <Program name="chrome.exe" path="/usr/bin/touch" openUrl="true" parameter="^${escaped}/[a-z0-9-]{1,32}$"/>
  </Programs>
  <Timers><PickupTimeout>20s</PickupTimeout></Timers>`,
      );
    } finally {
      process.env = saved;
    }
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    const status = await daemon?.stop();
    await granted?.close();
    await plain?.close();
    for (const c of children) c.kill('SIGTERM');
    removeDir(dir);
    if (status) assert.deepEqual(status, { code: 0, signal: null }, 'the daemon stops cleanly');
  });

  it('the hello grants the page its capabilities, and none to the other origin', async () => {
    const a = await openPage(granted);
    assert.deepEqual(a.caps, ['data', 'launch', 'openUrl', 'window', 'notify', 'dialog']);
    const b = await openPage(plain);
    assert.deepEqual(b.caps, ['data']);
    await a.page.close();
    await b.page.close();
  });

  it('launchProcess starts the declared program with the parameter', async () => {
    const { page } = await openPage(granted);
    const marker = path.join(markers, 'launched-1');
    const r = await call(page, 'launchProcess', 'touch', marker);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.ok(Number.isInteger(r.data.pid) && r.data.pid > 0, JSON.stringify(r));
    await waitUntil(() => existsSync(marker), `${marker} written by touch`);

    // A parameter outside the rule, a path, an undeclared name: refused with
    // the right code, and nothing runs.
    const outside = path.join(dir, 'outside');
    const cases = [
      [['touch', outside], 'invalid_argument'],
      [['touch', `${markers}/UPPER`], 'invalid_argument'],
      [['/usr/bin/touch', path.join(markers, 'by-path')], 'unknown_program'],
      [['rm', path.join(markers, 'x')], 'unknown_program'],
    ];
    for (const [args, code] of cases) {
      const f = await call(page, 'launchProcess', ...args);
      assert.equal(f.ok, false, JSON.stringify([args, f]));
      assert.equal(f.code, code, JSON.stringify([args, f]));
    }
    // The refusals came back before anything could run; a later allowed
    // launch that finishes proves no earlier one is still on its way.
    const last = path.join(markers, 'launched-2');
    assert.equal((await call(page, 'launchProcess', 'touch', last)).ok, true);
    await waitUntil(() => existsSync(last), `${last} written by touch`);
    assert.equal(existsSync(outside), false, 'no file outside the rule');
    assert.equal(existsSync(path.join(markers, 'UPPER')), false);
    assert.equal(existsSync(path.join(markers, 'by-path')), false);
    await page.close();
  });

  it('openUrl, and launchProcess with a URL on an openUrl="true" program, open the default browser', async () => {
    const { page } = await openPage(granted);
    const urls = () => (existsSync(opened) ? readFileSync(opened, 'utf8').split('\n').filter(Boolean) : []);
    assert.deepEqual(await call(page, 'openUrl', 'https://crm.example.com/case/1'), { ok: true, data: null });
    await waitUntil(() => urls().includes('https://crm.example.com/case/1'), 'the browser opening case/1');
    // Legacy launchProcess('chrome.exe', url): opened as openUrl, no pid.
    const r = await call(page, 'launchProcess', 'chrome.exe', 'https://crm.example.com/case/2');
    assert.deepEqual(r, { ok: true, data: null });
    await waitUntil(() => urls().includes('https://crm.example.com/case/2'), 'the browser opening case/2');
    // Outside the origin's <OpenUrl> patterns: forbidden either way.
    for (const [method, args] of [
      ['openUrl', ['https://evil.example/x']],
      ['launchProcess', ['chrome.exe', 'https://evil.example/y']],
    ]) {
      const f = await call(page, method, ...args);
      assert.equal(f.ok, false, JSON.stringify(f));
      assert.equal(f.code, 'forbidden', JSON.stringify(f));
    }
    // A non-URL parameter on the same program: a normal launch.
    const marker = path.join(markers, 'chrome-launched');
    const l = await call(page, 'launchProcess', 'chrome.exe', marker);
    assert.equal(l.ok, true, JSON.stringify(l));
    assert.ok(l.data.pid > 0);
    await waitUntil(() => existsSync(marker), `${marker} written by the chrome.exe program`);
    // Another allowed URL, then: the refused ones never reached the browser.
    await call(page, 'openUrl', 'https://crm.example.com/case/3');
    await waitUntil(() => urls().includes('https://crm.example.com/case/3'), 'the browser opening case/3');
    assert.deepEqual(urls(), [
      'https://crm.example.com/case/1',
      'https://crm.example.com/case/2',
      'https://crm.example.com/case/3',
    ]);
    await page.close();
  });

  it('showNotification reaches dunst', async () => {
    const { page } = await openPage(granted);
    const title = `wsc-toast-${process.pid}`;
    const r = await call(page, 'showNotification', title, 'toast body', 300, 'Red', 300, 100);
    assert.deepEqual(r, { ok: true, data: null });
    // The short toast expires into dunst's history.
    const entry = await waitUntil(
      () => dunstHistory().find((n) => n.summary === title),
      `${title} in dunst's history`,
    );
    assert.match(entry.body, /toast body/);
    await page.close();
  });

  it('setSizeWindow resizes and focuses a real X window', async () => {
    const title = `wsc-window-${process.pid}`;
    xmessage = spawn('xmessage', ['-title', title, '-geometry', '220x120+40+60', 'resize me'], {
      stdio: 'ignore',
    });
    children.push(xmessage);
    const before = await waitUntil(() => windowInfo(title), `the xmessage window ${title}`);
    await waitUntil(() => run('xprop', ['-root', '_NET_CLIENT_LIST']).includes(before.id.toString(16)), 'openbox managing it');
    assert.notDeepEqual([before.width, before.height], [400, 300]);
    const { page } = await openPage(granted);
    const r = await call(page, 'setSizeWindow', 0, 400, 300, title, true);
    assert.deepEqual(r, { ok: true, data: null });
    await waitUntil(() => {
      const w = windowInfo(title);
      return w && w.width === 400 && w.height === 300;
    }, `${title} resized to 400x300 (now ${JSON.stringify(windowInfo(title))})`);
    await waitUntil(() => activeWindow() === before.id, `${title} focused`);
    // A window that does not exist: not_found.
    const f = await call(page, 'setSizeWindow', 0, 400, 300, 'no such window anywhere', true);
    assert.equal(f.code, 'not_found', JSON.stringify(f));
    await page.close();
  });

  it('showPickupDialog from two pages: one dialog, both hear the result', async () => {
    const a = await openPage(granted);
    const b = await openPage(granted);
    // Earlier toasts have expired into the history by now.
    await waitUntil(() => dunstDisplayed() === 0, 'no notification displayed');
    const shownBefore = dunstHistory().filter((n) => n.summary === 'Caller 123').length;
    const ra = await call(a.page, 'showPickupDialog', 'Caller 123', 'Pick up', 'IX-1');
    const rb = await call(b.page, 'showPickupDialog', 'Caller 123', 'Pick up', 'IX-1');
    assert.deepEqual(ra, { ok: true, data: { key: 'IX-1', shown: true } });
    assert.deepEqual(rb, { ok: true, data: { key: 'IX-1', shown: false } });
    await waitUntil(() => dunstDisplayed() === 1, 'the pickup notification displayed');
    assert.deepEqual(
      await Promise.all([a.page, b.page].map((p) => p.evaluate(() => window.pickups))),
      [[], []],
      'no result before the dialog ends',
    );
    // The agent closes it.
    run('dunstctl', ['close']);
    for (const p of [a.page, b.page]) {
      await p.waitForFunction(() => window.pickups.length > 0, null, { timeout: DEADLINE_MS });
    }
    const results = await Promise.all([a.page, b.page].map((p) => p.evaluate(() => window.pickups)));
    assert.deepEqual(results, [
      [{ key: 'IX-1', result: 'dismissed', type: 'event' }],
      [{ key: 'IX-1', result: 'dismissed', type: 'event' }],
    ]);
    // Exactly one notification was ever shown for the two requests.
    await waitUntil(() => dunstDisplayed() === 0, 'the dialog gone');
    assert.equal(dunstHistory().filter((n) => n.summary === 'Caller 123').length, shownBefore + 1);
    await a.page.close();
    await b.page.close();
  });

  it('a page of an origin without desktop capabilities: every method is forbidden, nothing happens', async () => {
    const title = `wsc-window-${process.pid}`;
    const geometry = windowInfo(title);
    assert.ok(geometry, 'the window of the earlier test is still there');
    const historyBefore = dunstHistory().length;
    const { page } = await openPage(plain);
    const marker = path.join(markers, 'forbidden');
    const calls = [
      ['launchProcess', 'touch', marker],
      ['launchProcess', 'chrome.exe', 'https://crm.example.com/forbidden'],
      ['openUrl', 'https://crm.example.com/forbidden'],
      ['showNotification', 'wsc-forbidden', 'm', 300, '', 0, 0],
      ['setSizeWindow', 0, 640, 480, title, true],
      ['showPickupDialog', 'Caller 999', 'Pick up', 'IX-2'],
    ];
    for (const [method, ...args] of calls) {
      const f = await call(page, method, ...args);
      assert.equal(f.ok, false, `${method}: ${JSON.stringify(f)}`);
      assert.equal(f.code, 'forbidden', `${method}: ${JSON.stringify(f)}`);
    }
    // Nothing happened: no file, no URL opened, no notification, same window.
    assert.equal(existsSync(marker), false);
    const urls = existsSync(opened) ? readFileSync(opened, 'utf8') : '';
    assert.ok(!urls.includes('forbidden'), urls);
    assert.equal(dunstDisplayed(), 0);
    assert.equal(dunstHistory().length, historyBefore);
    assert.deepEqual(windowInfo(title), geometry);
    // The daemon's audit log has every refusal.
    for (const [method] of calls) {
      await daemon.waitForLog(['desktop action', plain.origin, 'refused: forbidden', method === 'launchProcess' ? '' : method]);
    }
    await page.close();
  });
});

// connector.js in a real Chromium against the real daemon, over WS and over
// WSS (a CA from `wsconnector cert create` trusted in Chromium's NSS
// database, never --ignore-certificate-errors). Pages from an allowed origin
// on another loopback port load the library from the daemon
// (/connector.js, and /connector.mjs as an ES module) and use every method of
// the reference API (§3.2) across two pages; a page that lost its socket gets
// what it missed, in order, once (also across a page reload, from
// sessionStorage); a daemon restart ends in onresync; and each
// connection state is reached the way an agent's browser would reach it.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  createCerts,
  launchChromium,
  nssHome,
  removeDir,
  startDaemon,
  tempDir,
} from './lib/harness.mjs';
import {
  connectorPageHtml,
  freePort,
  openConnectorPage,
  pageLog,
  startFileServer,
  startHttpsFileServer,
  waitForLog,
  waitForState,
} from './lib/connector.mjs';

/** The settings of a daemon over `transport` allowing `origins`. */
function daemonSettings(transport, origins) {
  const lines = [`  <AllowedHosts>${origins.join(';')}</AllowedHosts>`];
  if (transport === 'wss') {
    lines.push(
      '  <Socket-type>WSS</Socket-type>',
      '  <Certificate-path>certs/localhost.pem</Certificate-path>',
      '  <Key-path>certs/localhost.key</Key-path>',
    );
  }
  return lines.join('\n');
}

/** Where a page loads the library from the daemon. */
function libraryBase(transport, port) {
  return transport === 'wss' ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
}

/** Calls `start(transport, port)` in the page without waiting for its promise
 * (it resolves only once connected, which some tests expect never to happen). */
function start(page, transport, port) {
  return page.evaluate(([t, p]) => {
    window.c.start(t, p);
  }, [transport, port]);
}

/** Starts page `page`'s Connector and waits for `connected` and onready. */
async function connect(page, transport, port) {
  await start(page, transport, port);
  await waitForState(page, 'connected');
  return waitForLog(page, (log) => log.ready > 0, null, 'onready');
}

/** Calls `fn(c, ...args)` in the page; resolves with `{ ok, data }` or `{ ok: false, code, message }`. */
function call(page, fn, ...args) {
  return page.evaluate(
    ([src, a]) => window.settle(new Function('c', '...args', `return (${src})(c, ...args)`)(window.c, ...a)),
    [fn.toString(), args],
  );
}

async function ok(page, fn, ...args) {
  const r = await call(page, fn, ...args);
  assert.equal(r.ok, true, `${fn} failed: ${JSON.stringify(r)}`);
  return r.data;
}

/** Registers `page` in `env` as `client`, records its changes and watches `*`. */
async function register(page, env, client) {
  // As reference code does: the handler is set right after createEnvironment.
  const r = await page.evaluate(
    ([e, n]) => {
      const p = window.c.createEnvironment(e, n);
      window.watch(e);
      return window.settle(p);
    },
    [env, client],
  );
  assert.equal(r.ok, true, JSON.stringify(r));
  await ok(page, (c, e) => c.environment(e).setNotificationsOn('*'), env);
}

/** The changes `page` recorded for `env`, without the seq numbers. */
async function changes(page, env) {
  return (await pageLog(page)).changes.filter((c) => c.env === env).map(({ seq, ...rest }) => rest);
}

function waitForChanges(page, env, n) {
  return waitForLog(page, (log, a) => log.changes.filter((c) => c.env === a.env).length >= a.n, { env, n }, `${n} changes in ${env}`);
}

for (const transport of ['ws', 'wss']) {
  describe(`connector.js over ${transport.toUpperCase()}`, () => {
    let dir, certs, files, secure, daemon, browser, context;
    let settings;

    before(async () => {
      dir = tempDir(`connector-${transport}`);
      certs = createCerts(dir);
      files = await startFileServer({});
      const origins = [files.origin];
      if (transport === 'wss') {
        secure = await startHttpsFileServer({}, certs);
        origins.push(secure.origin);
      }
      settings = daemonSettings(transport, origins);
      daemon = await startDaemon(dir, settings);
      assert.equal(daemon.scheme, transport, daemon.banner);
      const base = libraryBase(transport, daemon.port);
      files.files['/classic.html'] = connectorPageHtml(`${base}/connector.js`);
      files.files['/module.html'] = connectorPageHtml(`${base}/connector.mjs`, { module: true });
      // WS runs with an empty NSS database, WSS with the generated CA trusted.
      const home = nssHome(dir, transport === 'wss' ? path.join(certs, 'wsconnector-ca.pem') : null);
      browser = await launchChromium({ env: { HOME: home } });
      context = await browser.newContext();
    });

    after(async () => {
      try {
        await browser?.close();
        await files?.close();
        await secure?.close();
        if (daemon) {
          const exit = await daemon.stop();
          assert.deepEqual(exit, { code: 0, signal: null }, `daemon exit; log:\n${daemon.log()}`);
        }
      } finally {
        removeDir(dir);
      }
    });

    async function twoPages(kindA = 'classic', kindB = 'classic') {
      const a = await openConnectorPage(context, `${files.origin}/${kindA}.html`);
      const b = await openConnectorPage(context, `${files.origin}/${kindB}.html`);
      await connect(a, transport, daemon.port);
      await connect(b, transport, daemon.port);
      return [a, b];
    }

    test('every §3.2 method across two pages: values and types, no echo, callbacks and promises', async () => {
      const [a, b] = await twoPages();
      const env = 'E1';
      await register(a, env, 'crmA');
      await register(b, env, 'crmB');
      // connector[env] is the environment object, as in the reference.
      assert.equal(await a.evaluate((e) => window.c[e] === window.c.environment(e), env), true);

      // setContextVariable: every JSON scalar type round-trips.
      const values = [
        ['s', 'text'],
        ['n', 42.5],
        ['zero', 0],
        ['t', true],
        ['f', false],
        ['nul', null],
        ['uni', 'é日本\u{1F600}'],
        ['html', '<img src=x onerror=alert(1)>'],
        ['ATTR:Segment', 'gold'],
      ];
      for (const [name, value] of values) {
        await ok(a, (c, e, n, v) => c.environment(e).setContextVariable(n, v), env, name, value);
      }
      await waitForChanges(b, env, values.length);
      assert.deepEqual(
        await changes(b, env),
        values.map(([name, value]) => ({ env, name, value, event: 'ContextChanged' })),
      );

      // setContextJSON: several variables, one event each, in array order.
      await ok(a, (c, e) => c.environment(e).setContextJSON([{ j1: 'one' }, { j2: 2 }]), env);
      // setAllJSON: the reference shape, an array of {environment, data}.
      await ok(a, (c, e) => c.setAllJSON([{ environment: e, data: { all1: 'x', all2: false } }]), env);
      await waitForChanges(b, env, values.length + 4);
      assert.deepEqual((await changes(b, env)).slice(values.length), [
        { env, name: 'j1', value: 'one', event: 'ContextChanged' },
        { env, name: 'j2', value: 2, event: 'ContextChanged' },
        { env, name: 'all1', value: 'x', event: 'ContextChanged' },
        { env, name: 'all2', value: false, event: 'ContextChanged' },
      ]);
      // No echo: the writer heard nothing of its own writes.
      assert.deepEqual(await changes(a, env), []);

      // getEnvironment: the callback of the reference and the promise agree.
      const expected = Object.fromEntries([...values, ['j1', 'one'], ['j2', 2], ['all1', 'x'], ['all2', false]]);
      const byCallback = await b.evaluate((e) => window.viaCallback((cb) => window.c.environment(e).getEnvironment(cb)), env);
      assert.deepEqual(byCallback, expected);
      assert.deepEqual(await ok(b, (c, e) => c.environment(e).getEnvironment(), env), expected);
      // getData: every environment, callback and promise.
      const all = await a.evaluate(() => window.viaCallback((cb) => window.c.getData(cb)));
      assert.deepEqual(all[env], expected);
      assert.deepEqual((await ok(a, (c) => c.getData()))[env], expected);

      // removeItemFromEnvironment: the other page hears VarRemoved.
      const before = (await changes(b, env)).length;
      await ok(a, (c, e) => c.environment(e).removeItemFromEnvironment('s'), env);
      await waitForChanges(b, env, before + 1);
      const removed = (await changes(b, env))[before];
      assert.equal(removed.event, 'VarRemoved');
      assert.equal(removed.name, 's');
      assert.equal('s' in (await ok(a, (c, e) => c.environment(e).getEnvironment(), env)), false);

      // setNotificationsOff('*') then On(one name): only that name is heard.
      await ok(b, (c, e) => c.environment(e).setNotificationsOff('*'), env);
      await ok(b, (c, e) => c.environment(e).setNotificationsOn('sentinel'), env);
      const mark = (await changes(b, env)).length;
      await ok(a, (c, e) => c.environment(e).setContextVariable('ignored', 1), env);
      await ok(a, (c, e) => c.environment(e).setContextVariable('sentinel', 'here'), env);
      await waitForChanges(b, env, mark + 1);
      assert.deepEqual((await changes(b, env)).slice(mark), [
        { env, name: 'sentinel', value: 'here', event: 'ContextChanged' },
      ]);
      await ok(b, (c, e) => c.environment(e).setNotificationsOn('*'), env);

      // cleanEnvironment: everything goes, the other page is told.
      const mark2 = (await changes(b, env)).length;
      await ok(a, (c, e) => c.environment(e).cleanEnvironment(), env);
      await waitForChanges(b, env, mark2 + 1);
      assert.equal((await changes(b, env))[mark2].event, 'EnvironmentCleaned');
      assert.deepEqual(await ok(b, (c, e) => c.environment(e).getEnvironment(), env), {});

      // The writes of B reach A; B hears no echo of them.
      const markA = (await changes(a, env)).length;
      const markB = (await changes(b, env)).length;
      await ok(b, (c, e) => c.environment(e).setContextVariable('fromB', 7), env);
      await waitForChanges(a, env, markA + 1);
      assert.deepEqual((await changes(a, env)).slice(markA), [{ env, name: 'fromB', value: 7, event: 'ContextChanged' }]);
      assert.equal((await changes(b, env)).length, markB);

      // getVersion, getHost, getUser: the daemon's answers.
      const health = await (await fetch(`http://127.0.0.1:${daemon.port}/health`).catch(() => null))?.json?.().catch(() => null);
      const version = await ok(a, (c) => c.getVersion());
      assert.equal(typeof version, 'string');
      if (health) assert.equal(version, health.version);
      assert.equal(typeof (await ok(a, (c) => c.getHost())), 'string');
      assert.equal(await ok(a, (c) => c.getUser()), (await import('node:os')).userInfo().username);

      // Desktop actions: this origin has data only, so each rejects with an
      // Error carrying code `forbidden` and a message.
      for (const fn of [
        (c) => c.setSizeWindow(0, 0, 0, 'focuswindow', true),
        (c) => c.showNotification('title', 'message', 5000, 'Red', 300, 100),
        (c) => c.launchProcess('processname', 'parameter'),
        (c) => c.showPickupDialog('title', 'buttontext'),
      ]) {
        const r = await call(a, fn);
        assert.equal(r.ok, false, `${fn}: ${JSON.stringify(r)}`);
        assert.equal(r.isError, true);
        assert.equal(r.code, 'forbidden', `${fn}: ${JSON.stringify(r)}`);
        assert.ok(r.message && r.message.length > 5, JSON.stringify(r));
      }

      // A failure of a data method: an invalid name rejects with its code.
      const bad = await call(a, (c, e) => c.environment(e).setContextVariable('bad name!', 1), env);
      assert.equal(bad.ok, false);
      assert.equal(bad.code, 'invalid_name', JSON.stringify(bad));

      // removeEnvironment(env, true) while B stays registered: the data is
      // cleaned, B is told; A is no longer registered.
      await ok(b, (c, e) => c.environment(e).setContextVariable('keep', 1), env);
      const mark3 = (await changes(b, env)).length;
      await ok(a, (c, e) => c.removeEnvironment(e, true), env);
      await waitForChanges(b, env, mark3 + 1);
      assert.equal((await changes(b, env))[mark3].event, 'EnvironmentCleaned');
      const after = await a.evaluate(
        (e) => window.settle(Promise.resolve().then(() => window.c.environment(e).setContextVariable('x', 1))),
        env,
      );
      assert.equal(after.ok, false, JSON.stringify(after));
      await ok(b, (c, e) => c.removeEnvironment(e, false), env);
      assert.deepEqual(a.errors, []);
      assert.deepEqual(b.errors, []);
      await a.close();
      await b.close();
    });

    test('the ES module /connector.mjs and the classic script talk to each other', async () => {
      const [m, c] = await twoPages('module', 'classic');
      assert.equal(await m.evaluate(() => window.loaded), 'module');
      await register(m, 'MOD', 'module-page');
      await register(c, 'MOD', 'classic-page');
      await ok(m, (x) => x.environment('MOD').setContextVariable('from', 'module'));
      await ok(c, (x) => x.environment('MOD').setContextVariable('from', 'classic'));
      await waitForChanges(c, 'MOD', 1);
      await waitForChanges(m, 'MOD', 1);
      assert.deepEqual(await changes(c, 'MOD'), [{ env: 'MOD', name: 'from', value: 'module', event: 'ContextChanged' }]);
      assert.deepEqual(await changes(m, 'MOD'), [{ env: 'MOD', name: 'from', value: 'classic', event: 'ContextChanged' }]);
      assert.deepEqual(m.errors, []);
      await m.close();
      await c.close();
    });

    test('a page that lost its socket gets what it missed, in order, once, without its own writes', async () => {
      const [a, b] = await twoPages();
      const env = 'REPLAY';
      await register(a, env, 'writer');
      await register(b, env, 'reader');
      await ok(a, (c, e) => c.environment(e).setContextVariable('before', 0), env);
      await waitForChanges(b, env, 1);
      await ok(b, (c, e) => c.environment(e).setContextVariable('mine', 'b'), env);

      // B's socket closes (the page side), and B cannot reconnect for now.
      await b.evaluate(() => {
        window.blockSockets = true;
        window.sockets[window.sockets.length - 1].close();
      });
      await waitForLog(b, (log) => log.disconnects > 0, null, 'ondisconnect');
      // Meanwhile A writes and removes.
      for (let i = 1; i <= 5; i++) {
        await ok(a, (c, e, n, v) => c.environment(e).setContextVariable(n, v), env, `m${i}`, i);
      }
      await ok(a, (c, e) => c.environment(e).removeItemFromEnvironment('before'), env);
      assert.equal((await changes(b, env)).length, 1, 'B heard nothing while disconnected');

      // B may reconnect; the browser says it is online again (an immediate retry).
      await b.evaluate(() => {
        window.blockSockets = false;
        window.dispatchEvent(new Event('online'));
      });
      await waitForState(b, 'connected');
      await waitForChanges(b, env, 7);
      const got = await changes(b, env);
      assert.deepEqual(got.slice(1, 6), [1, 2, 3, 4, 5].map((i) => ({ env, name: `m${i}`, value: i, event: 'ContextChanged' })));
      assert.equal(got[6].event, 'VarRemoved');
      assert.equal(got[6].name, 'before');
      // Sequence numbers strictly increase: nothing twice, and no resync.
      const seqs = (await pageLog(b)).changes.filter((c) => c.env === env).map((c) => c.seq);
      if (seqs.every((s) => typeof s === 'number')) {
        for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seqs ${seqs}`);
      }
      assert.deepEqual((await pageLog(b)).resyncs.filter((r) => r.env === env), []);
      // Live again: registration and subscription were restored.
      await ok(a, (c, e) => c.environment(e).setContextVariable('after', true), env);
      await waitForChanges(b, env, 8);
      assert.deepEqual((await changes(b, env)).slice(7), [{ env, name: 'after', value: true, event: 'ContextChanged' }]);
      assert.equal((await changes(b, env)).length, 8, 'no duplicates');
      assert.deepEqual(await changes(a, env), [{ env, name: 'mine', value: 'b', event: 'ContextChanged' }]);
      await a.close();
      await b.close();
    });

    test('a page reload keeps the session: the new page gets what was missed while it loaded', async () => {
      const [a, b] = await twoPages();
      const env = 'RELOAD';
      await register(a, env, 'writer');
      await register(b, env, 'reader');
      await ok(a, (c, e) => c.environment(e).setContextVariable('before', 0), env);
      await waitForChanges(b, env, 1);
      // B leaves (its socket closes with the page) ...
      await b.goto('about:blank');
      for (let i = 1; i <= 3; i++) {
        await ok(a, (c, e, n, v) => c.environment(e).setContextVariable(n, v), env, `r${i}`, i);
      }
      // ... and comes back in the same tab: a new Connector, no createEnvironment,
      // only the handler set again, as a reloaded page does.
      await b.goto(`${files.origin}/classic.html`);
      await b.waitForFunction(() => window.c && window.loaded, null, { timeout: 15_000 });
      await b.evaluate(([t, p, e]) => {
        window.c.start(t, p);
        window.watch(e);
      }, [transport, daemon.port, env]);
      await waitForState(b, 'connected');
      await waitForChanges(b, env, 3);
      assert.deepEqual(await changes(b, env), [1, 2, 3].map((i) => ({ env, name: `r${i}`, value: i, event: 'ContextChanged' })));
      assert.deepEqual((await pageLog(b)).resyncs, []);
      // Registered and subscribed again, from sessionStorage alone.
      await ok(a, (c, e) => c.environment(e).setContextVariable('live', 'yes'), env);
      await waitForChanges(b, env, 4);
      assert.deepEqual((await changes(b, env))[3], { env, name: 'live', value: 'yes', event: 'ContextChanged' });
      await a.close();
      await b.close();
    });

    test('a daemon restart mid-session: both pages reconnect and get onresync', async () => {
      const [a, b] = await twoPages();
      const env = 'RESTART';
      await register(a, env, 'a');
      await register(b, env, 'b');
      await ok(a, (c, e) => c.environment(e).setContextVariable('x', 1), env);
      await waitForChanges(b, env, 1);

      const port = daemon.port;
      const exit = await daemon.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
      await waitForLog(a, (log) => log.disconnects > 0, null, 'ondisconnect on A');
      await waitForLog(b, (log) => log.disconnects > 0, null, 'ondisconnect on B');
      daemon = await startDaemon(dir, settings, { port });
      assert.equal(daemon.port, port);
      // Reconnect by back-off on A; B is told the network is back.
      await b.evaluate(() => window.dispatchEvent(new Event('online')));
      for (const p of [a, b]) {
        await waitForState(p, 'connected');
        const log = await waitForLog(p, (l, e) => l.resyncs.some((r) => r.env === e), env, `onresync(${env})`);
        // The new daemon started empty: the snapshot says so.
        assert.deepEqual(log.resyncs.find((r) => r.env === env).values, {});
      }
      // Registrations and subscriptions came back with the resume.
      const mark = (await changes(b, env)).length;
      await ok(a, (c, e) => c.environment(e).setContextVariable('y', 2), env);
      await waitForChanges(b, env, mark + 1);
      assert.deepEqual((await changes(b, env)).slice(mark), [{ env, name: 'y', value: 2, event: 'ContextChanged' }]);
      assert.deepEqual(await ok(b, (c, e) => c.environment(e).getEnvironment(), env), { y: 2 });
      await a.close();
      await b.close();
    });

    if (transport === 'wss') {
      test('an https page (certificate from cert create) loads the library and connects over wss', async () => {
        const port = daemon.port;
        secure.files['/page.html'] = connectorPageHtml(`https://localhost:${port}/connector.js`);
        const p = await openConnectorPage(context, `${secure.origin}/page.html`);
        const q = await openConnectorPage(context, `${files.origin}/classic.html`);
        assert.equal(await p.evaluate(() => window.location.protocol), 'https:');
        await connect(p, 'wss', port);
        await connect(q, 'wss', port);
        await register(p, 'HTTPS', 'secure');
        await register(q, 'HTTPS', 'plain');
        await ok(p, (c) => c.environment('HTTPS').setContextVariable('v', 'over https'));
        await waitForChanges(q, 'HTTPS', 1);
        assert.deepEqual(await changes(q, 'HTTPS'), [{ env: 'HTTPS', name: 'v', value: 'over https', event: 'ContextChanged' }]);
        await daemon.waitForLog(['websocket connected', `origin="${secure.origin}"`], 'a connection from the https page');
        await p.close();
        await q.close();
      });
    }
  });
}

describe('connection states', () => {
  let dir, certs, files, pub, daemon, wssDaemon, library;
  const browsers = [];

  before(async () => {
    dir = tempDir('states');
    certs = createCerts(dir);
    files = await startFileServer({});
    pub = await startFileServer({});
    daemon = await startDaemon(dir, daemonSettings('ws', [files.origin, pub.origin]));
    // Pages that cannot load the library from the daemon (blocked by the
    // browser, untrusted certificate) get the same bytes from their own server.
    const res = await fetch(`http://127.0.0.1:${daemon.port}/connector.js`);
    assert.equal(res.status, 200);
    library = await res.text();
    files.files['/connector.js'] = { body: library, type: 'text/javascript; charset=utf-8' };
    files.files['/own.html'] = connectorPageHtml('/connector.js');
    const wssDir = path.join(dir, 'wss');
    (await import('node:fs')).mkdirSync(wssDir);
    (await import('node:fs')).cpSync(certs, path.join(wssDir, 'certs'), { recursive: true });
    wssDaemon = await startDaemon(wssDir, daemonSettings('wss', [files.origin]));
  });

  after(async () => {
    try {
      for (const b of browsers) await b.close();
      await files?.close();
      await pub?.close();
      for (const d of [daemon, wssDaemon]) {
        if (d) assert.deepEqual(await d.stop(), { code: 0, signal: null }, d.log());
      }
    } finally {
      removeDir(dir);
    }
  });

  async function browserWith(opts = {}) {
    const b = await launchChromium(opts);
    browsers.push(b);
    return b;
  }

  test('daemon absent: daemon-not-running', async () => {
    const browser = await browserWith({ env: { HOME: nssHome(dir, null) } });
    const page = await openConnectorPage(await browser.newContext(), `${files.origin}/own.html`);
    const port = await freePort();
    await start(page, 'ws', port);
    const log = await waitForState(page, 'daemon-not-running');
    assert.equal(log.ready, 0);
    await page.close();
  });

  test('origin not in AllowedHosts: origin-refused', async () => {
    const other = await startFileServer({});
    try {
      other.files['/page.html'] = connectorPageHtml(`http://127.0.0.1:${daemon.port}/connector.js`);
      const browser = await browserWith({ env: { HOME: nssHome(dir, null) } });
      const page = await openConnectorPage(await browser.newContext(), `${other.origin}/page.html`);
      await start(page, 'ws', daemon.port);
      const log = await waitForState(page, 'origin-refused');
      assert.equal(log.ready, 0);
      await daemon.waitForLog(['request refused', other.origin], 'the refusal of the other origin');
      await page.close();
    } finally {
      await other.close();
    }
  });

  test('a public page: blocked-by-browser, then connected once loopback-network is granted', async () => {
    // The daemon allows this origin; only the browser stands in the way.
    pub.files['/connector.js'] = { body: library, type: 'text/javascript; charset=utf-8' };
    pub.files['/page.html'] = connectorPageHtml('/connector.js');
    const browser = await browserWith({
      env: { HOME: nssHome(dir, null) },
      extraArgs: [`--ip-address-space-overrides=127.0.0.1:${pub.port}=public`],
    });
    const context = await browser.newContext();
    const page = await openConnectorPage(context, `${pub.origin}/page.html`);
    await start(page, 'ws', daemon.port);
    const blocked = await waitForState(page, 'blocked-by-browser');
    assert.equal(blocked.ready, 0);
    assert.ok(!daemon.log().includes(`origin=${pub.origin}`), 'the daemon saw no socket of the blocked page');
    // Grant the permission in this page's browser context (as an agent
    // answering the prompt, or an enterprise policy, would).
    const pageSession = await context.newCDPSession(page);
    const { targetInfo } = await pageSession.send('Target.getTargetInfo');
    const cdp = await browser.newBrowserCDPSession();
    await cdp.send('Browser.setPermission', {
      permission: { name: 'loopback-network' },
      setting: 'granted',
      origin: pub.origin,
      browserContextId: targetInfo.browserContextId,
    });
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await waitForState(page, 'connected');
    await register(page, 'PUBLIC', 'public-page');
    await page.close();
  });

  test('WSS with a CA the browser does not trust: certificate-untrusted', async () => {
    const browser = await browserWith({ env: { HOME: nssHome(dir, null) } });
    const page = await openConnectorPage(await browser.newContext(), `${files.origin}/own.html`);
    await start(page, 'wss', wssDaemon.port);
    const log = await waitForState(page, 'certificate-untrusted');
    assert.equal(log.ready, 0);
    // The plain-HTTP /health on the WSS port is what told it apart.
    await wssDaemon.waitForLog(['plain HTTP on the WSS port'], 'the plain /health probe');
    await page.close();
  });

  test('WSS with the CA trusted: connected', async () => {
    const browser = await browserWith({ env: { HOME: nssHome(dir, path.join(certs, 'wsconnector-ca.pem')) } });
    const page = await openConnectorPage(await browser.newContext(), `${files.origin}/own.html`);
    await start(page, 'wss', wssDaemon.port);
    await waitForState(page, 'connected');
    await page.close();
  });
});

// The handshake guard seen from a real Chromium: an allowed page connects on
// both address families and gets the hello; a foreign origin, Origin: null
// and a rebound host name are refused (the page sees only 1006, the daemon
// logs why); /health answers allowed pages with CORS only.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  CLIENT_HTML,
  launchChromium,
  openClient,
  openSock,
  removeDir,
  startDaemon,
  startPageServer,
  tempDir,
  waitForClose,
  waitForMsgs,
} from './lib/harness.mjs';

describe('handshake guard in Chromium', () => {
  let dir, allowed, foreign, daemon, browser, context;

  before(async () => {
    dir = tempDir('guard');
    // The allowed page also embeds a sandboxed (opaque-origin) frame of the client.
    allowed = await startPageServer({
      '/client.html': CLIENT_HTML,
      '/sandboxed.html':
        '<!doctype html><meta charset="utf-8"><iframe id="f" sandbox="allow-scripts" src="/client.html"></iframe>',
    });
    foreign = await startPageServer({ '/client.html': CLIENT_HTML });
    daemon = await startDaemon(dir, `  <AllowedHosts>${allowed.origin}</AllowedHosts>`);
    browser = await launchChromium({ extraArgs: ['--host-resolver-rules=MAP rebind.test 127.0.0.1'] });
    context = await browser.newContext();
  });

  after(async () => {
    try {
      await context?.close();
      await browser?.close();
      await allowed?.close();
      await foreign?.close();
      if (daemon) {
        const exit = await daemon.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `daemon exit after SIGTERM; log:\n${daemon.log()}`);
      }
    } finally {
      removeDir(dir);
    }
  });

  function assertHello(hello, origin) {
    assert.equal(hello.type, 'hello');
    assert.equal(hello.protocol, 1);
    assert.equal(hello.product, 'wsconnector');
    assert.deepEqual(hello.capabilities, ['data']);
    assert.equal(hello.origin, origin);
    assert.equal(hello.native, false);
    assert.match(hello.resumeToken, /^[0-9a-f]{32}$/);
  }

  test('1. an allowed page gets the hello on ws://127.0.0.1 and ws://localhost ([::1] first)', async () => {
    const page = await openClient(context, `${allowed.origin}/client.html`);
    for (const [id, host] of [
      ['v4', '127.0.0.1'],
      ['local', 'localhost'],
    ]) {
      const opened = await openSock(page, id, `ws://${host}:${daemon.port}/`);
      assert.equal(opened.open, true, `ws://${host} did not open: ${JSON.stringify(opened)}`);
      const rec = await waitForMsgs(page, id, 1);
      assertHello(rec.msgs[0], allowed.origin);
      assert.deepEqual(rec.events, ['open']);
    }
    // Chromium resolved localhost to ::1 first: the daemon served it on IPv6.
    await daemon.waitForLog(['tcp{peer=[::1]:', 'websocket connected'], 'a websocket from [::1]');
    await daemon.waitForLog(['tcp{peer=127.0.0.1:', 'websocket connected'], 'a websocket from 127.0.0.1');
    await page.close();
  });

  test('3. a page of an origin not in AllowedHosts is refused: error, close 1006, logged', async () => {
    const page = await openClient(context, `${foreign.origin}/client.html`);
    const rec0 = await openSock(page, 'x', `ws://127.0.0.1:${daemon.port}/`);
    assert.equal(rec0.open, false);
    const rec = await waitForClose(page, 'x');
    assert.deepEqual(rec.events, ['error', 'close']);
    assert.equal(rec.close.code, 1006);
    assert.deepEqual(rec.msgs, []);
    const line = await daemon.waitForLog(['request refused', `origin=Some("${foreign.origin}")`]);
    assert.match(line, /status=403/);
    assert.match(line, /is not in AllowedHosts/);
    await page.close();
  });

  test('4. Origin: null from a sandboxed iframe of the allowed page is refused', async () => {
    const page = await context.newPage();
    await page.goto(`${allowed.origin}/sandboxed.html`);
    const frame = await page.waitForSelector('#f').then((h) => h.contentFrame());
    await frame.waitForFunction(() => typeof window.openSock === 'function');
    assert.equal(await frame.evaluate(() => window.origin), 'null');
    await openSock(frame, 'n', `ws://127.0.0.1:${daemon.port}/`);
    const rec = await waitForClose(frame, 'n');
    assert.deepEqual(rec.events, ['error', 'close']);
    assert.equal(rec.close.code, 1006);
    const line = await daemon.waitForLog(['request refused', 'origin=Some("null")']);
    assert.match(line, /Origin null is never allowed/);
    assert.match(line, /status=403/);
    await page.close();
  });

  test('5. DNS rebinding: ws://rebind.test:PORT (mapped to 127.0.0.1) is refused on Host', async () => {
    const page = await openClient(context, `${allowed.origin}/client.html`);
    await openSock(page, 'r', `ws://rebind.test:${daemon.port}/`);
    const rec = await waitForClose(page, 'r');
    assert.deepEqual(rec.events, ['error', 'close']);
    assert.equal(rec.close.code, 1006);
    const line = await daemon.waitForLog(['request refused', `host=Some("rebind.test:${daemon.port}")`]);
    assert.match(line, /is not this daemon/);
    assert.match(line, /status=403/);
    // The Origin was the allowed one: the Host alone caused the refusal.
    assert.ok(line.includes(`origin=Some("${allowed.origin}")`), line);
    await page.close();
  });

  test('6. fetch /health: JSON with CORS for the allowed page, TypeError for a foreign one', async () => {
    const url = `http://127.0.0.1:${daemon.port}/health`;
    const fetchIt = (u) =>
      fetch(u).then(
        async (r) => ({ ok: true, status: r.status, body: await r.json() }),
        (e) => ({ ok: false, name: e.name }),
      );
    const good = await openClient(context, `${allowed.origin}/client.html`);
    const got = await good.evaluate(fetchIt, url);
    assert.equal(got.ok, true, JSON.stringify(got));
    assert.equal(got.status, 200);
    assert.equal(got.body.status, 'ok');
    assert.equal(got.body.product, 'wsconnector');
    assert.equal(got.body.protocol, 1);

    const bad = await openClient(context, `${foreign.origin}/client.html`);
    assert.deepEqual(await bad.evaluate(fetchIt, url), { ok: false, name: 'TypeError' });
    await daemon.waitForLog(['request refused', 'path="/health"', `origin=Some("${foreign.origin}")`]);
    await good.close();
    await bad.close();
  });
});

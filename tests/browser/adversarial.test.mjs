// Look-alike origins from real pages in Chromium: every page is served by one
// page server under names that --host-resolver-rules maps to 127.0.0.1, so
// the Origin each socket carries is what a browser really sends (never
// hand-written). Each refusal is asserted in the page (error, close 1006, no
// message) and in the daemon log (status 403 and the reason); so are a
// sandboxed frame (Origin null) and a rebound Host. A witness page of the
// allowed origin keeps its stored values and still gets a fresh event.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  CLIENT_HTML,
  launchChromium,
  openClient,
  openSock,
  removeDir,
  request,
  startDaemon,
  startPageServer,
  tempDir,
  waitForClose,
  waitForMsgs,
} from './lib/harness.mjs';

const NAMES = ['crm.test', 'crm.test.evil.test', 'evilcrm.test', 'secure.test', 'rebind.test'];

describe('look-alike origins in Chromium', () => {
  let dir, pages, otherPort, daemon, browser, context, witness;
  const allowed = () => `http://crm.test:${pages.port}`;

  before(async () => {
    dir = tempDir('adversarial');
    pages = await startPageServer({
      '/client.html': CLIENT_HTML,
      '/sandboxed.html':
        '<!doctype html><meta charset="utf-8"><iframe id="f" sandbox="allow-scripts" src="/client.html"></iframe>',
    });
    otherPort = await startPageServer({ '/client.html': CLIENT_HTML });
    // crm.test is allowed over http on the page server's port; secure.test
    // only over https (so its http:// page is a look-alike).
    daemon = await startDaemon(
      dir,
      `  <AllowedHosts>http://crm.test:${pages.port};https://secure.test:${pages.port}</AllowedHosts>`,
    );
    const rules = NAMES.map((n) => `MAP ${n} 127.0.0.1`).join(', ');
    browser = await launchChromium({ extraArgs: [`--host-resolver-rules=${rules}`] });
    context = await browser.newContext();
  });

  after(async () => {
    try {
      await context?.close();
      await browser?.close();
      await pages?.close();
      await otherPort?.close();
      if (daemon) {
        const exit = await daemon.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `daemon exit after SIGTERM; log:\n${daemon.log()}`);
      }
    } finally {
      removeDir(dir);
    }
  });

  test('1. the witness: the allowed origin stores values and subscribes', async () => {
    witness = await openClient(context, `${allowed()}/client.html`);
    assert.equal(await witness.evaluate(() => window.origin), allowed());
    for (const id of ['sub', 'pub']) {
      const opened = await openSock(witness, id, `ws://127.0.0.1:${daemon.port}/`);
      assert.equal(opened.open, true, JSON.stringify(opened));
      const hello = (await waitForMsgs(witness, id, 1)).msgs[0];
      assert.equal(hello.origin, allowed());
      const r = await request(witness, id, { action: 'createEnvironment', environment: 'W', clientName: id });
      assert.equal(r.result, 'SUCCESS', JSON.stringify(r));
    }
    let r = await request(witness, 'pub', {
      action: 'setContextJSON',
      environment: 'W',
      data: [{ ANI: '3225551234' }, { Count: 7 }],
    });
    assert.equal(r.result, 'SUCCESS', JSON.stringify(r));
    r = await request(witness, 'sub', { action: 'setNotificationsOn', environment: 'W', name: '*' });
    assert.equal(r.result, 'SUCCESS', JSON.stringify(r));
  });

  // Each look-alike page: the URL to load and the Origin Chromium sends.
  const lookalikes = () => [
    ['a suffix (crm.test.evil.test)', `http://crm.test.evil.test:${pages.port}/client.html`, `http://crm.test.evil.test:${pages.port}`],
    ['a prefix (evilcrm.test)', `http://evilcrm.test:${pages.port}/client.html`, `http://evilcrm.test:${pages.port}`],
    ['another port', `http://crm.test:${otherPort.port}/client.html`, `http://crm.test:${otherPort.port}`],
    ['the page server by IP', `http://127.0.0.1:${pages.port}/client.html`, `http://127.0.0.1:${pages.port}`],
    ['http:// where only https:// is allowed', `http://secure.test:${pages.port}/client.html`, `http://secure.test:${pages.port}`],
  ];

  test('2. every look-alike page is refused: error, close 1006, no message, 403 logged', async () => {
    for (const [what, url, origin] of lookalikes()) {
      const page = await openClient(context, url);
      assert.equal(await page.evaluate(() => window.origin), origin, what);
      for (const [id, host] of [
        ['v4', '127.0.0.1'],
        ['local', 'localhost'],
      ]) {
        const opened = await openSock(page, id, `ws://${host}:${daemon.port}/`);
        assert.equal(opened.open, false, `${what} ${host}`);
        const rec = await waitForClose(page, id);
        assert.deepEqual(rec.events, ['error', 'close'], `${what} ${host}`);
        assert.equal(rec.close.code, 1006, `${what} ${host}`);
        assert.deepEqual(rec.msgs, [], `${what} ${host}`);
      }
      const line = await daemon.waitForLog(['request refused', `origin=Some("${origin}")`], `${what}: refusal logged`);
      assert.match(line, /status=403/, what);
      assert.match(line, /is not in AllowedHosts/, what);
      // /health is not readable from the look-alike either (no CORS).
      const fetched = await page.evaluate(
        (u) => fetch(u).then((r) => ({ ok: true, status: r.status }), (e) => ({ ok: false, name: e.name })),
        `http://127.0.0.1:${daemon.port}/health`,
      );
      assert.deepEqual(fetched, { ok: false, name: 'TypeError' }, what);
      await page.close();
    }
  });

  test('2b. Origin null (a sandboxed frame of the allowed page) and a rebound Host are refused too', async () => {
    const page = await context.newPage();
    await page.goto(`${allowed()}/sandboxed.html`);
    const frame = await page.waitForSelector('#f').then((h) => h.contentFrame());
    await frame.waitForFunction(() => typeof window.openSock === 'function');
    assert.equal(await frame.evaluate(() => window.origin), 'null');
    await openSock(frame, 'n', `ws://127.0.0.1:${daemon.port}/`);
    let rec = await waitForClose(frame, 'n');
    assert.deepEqual([rec.events, rec.close.code, rec.msgs], [['error', 'close'], 1006, []]);
    let line = await daemon.waitForLog(['request refused', 'origin=Some("null")']);
    assert.match(line, /status=403/);
    assert.match(line, /Origin null is never allowed/);
    // The allowed page itself, to a name that resolves to 127.0.0.1.
    const top = await openClient(context, `${allowed()}/client.html`);
    await openSock(top, 'r', `ws://rebind.test:${daemon.port}/`);
    rec = await waitForClose(top, 'r');
    assert.deepEqual([rec.events, rec.close.code, rec.msgs], [['error', 'close'], 1006, []]);
    line = await daemon.waitForLog(['request refused', `host=Some("rebind.test:${daemon.port}")`]);
    assert.match(line, /status=403/);
    assert.match(line, /is not this daemon/);
    await top.close();
    await page.close();
  });

  test('3. a host name in another case is the same origin to the browser: allowed', async () => {
    const page = await openClient(context, `http://CRM.Test:${pages.port}/client.html`);
    assert.equal(await page.evaluate(() => window.origin), allowed());
    const opened = await openSock(page, 'c', `ws://127.0.0.1:${daemon.port}/`);
    assert.equal(opened.open, true, JSON.stringify(opened));
    assert.equal((await waitForMsgs(page, 'c', 1)).msgs[0].origin, allowed());
    await page.close();
  });

  test('4. the witness still reads its values and gets a fresh event', async () => {
    const r = await request(witness, 'sub', { action: 'getData' });
    assert.equal(r.result, 'SUCCESS', JSON.stringify(r));
    assert.deepEqual(r.data, { W: { ANI: '3225551234', Count: 7 } });
    const before = (await witness.evaluate(() => window.rec('sub'))).msgs.length;
    const w = await request(witness, 'pub', { action: 'setContextVariable', environment: 'W', name: 'After', value: 1 });
    assert.equal(w.result, 'SUCCESS', JSON.stringify(w));
    const rec = await waitForMsgs(witness, 'sub', before + 1);
    const ev = rec.msgs[before];
    assert.equal(ev.event, 'ContextChanged', JSON.stringify(ev));
    assert.equal(ev.VarChanged, 'After');
    assert.equal(ev.ValueChanged, 1);
    for (const id of ['sub', 'pub']) {
      const state = await witness.evaluate((i) => window.rec(i), id);
      assert.equal(state.close, null, `${id} still open`);
    }
  });
});

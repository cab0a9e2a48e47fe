// WSS in a real Chromium: a CA made by `wsconnector cert create` and trusted
// in the NSS database of Chromium's HOME makes wss://localhost work from an
// allowed http page; the same daemon with a Chromium that does not trust the
// CA fails the socket (1006).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  CLIENT_HTML,
  createCerts,
  launchChromium,
  nssHome,
  openClient,
  openSock,
  removeDir,
  startDaemon,
  startPageServer,
  tempDir,
  waitForClose,
  waitForMsgs,
  waitUntil,
} from './lib/harness.mjs';

describe('WSS with a local CA in Chromium', () => {
  let dir, certs, pages, daemon;
  const browsers = [];

  before(async () => {
    dir = tempDir('wss');
    certs = createCerts(dir);
    pages = await startPageServer({ '/client.html': CLIENT_HTML });
    daemon = await startDaemon(
      dir,
      [
        '  <Socket-type>WSS</Socket-type>',
        '  <Certificate-path>certs/localhost.pem</Certificate-path>',
        '  <Key-path>certs/localhost.key</Key-path>',
        `  <AllowedHosts>${pages.origin}</AllowedHosts>`,
      ].join('\n'),
    );
    assert.equal(daemon.scheme, 'wss', daemon.banner);
  });

  after(async () => {
    try {
      for (const b of browsers) await b.close();
      await pages?.close();
      if (daemon) {
        const exit = await daemon.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `daemon exit after SIGTERM; log:\n${daemon.log()}`);
      }
    } finally {
      removeDir(dir);
    }
  });

  async function clientIn(home) {
    const browser = await launchChromium({ env: { HOME: home } });
    browsers.push(browser);
    const context = await browser.newContext();
    return openClient(context, `${pages.origin}/client.html`);
  }

  test('7a. Chromium trusting the CA gets the hello on wss://localhost and wss://127.0.0.1', async () => {
    const page = await clientIn(nssHome(dir, path.join(certs, 'wsconnector-ca.pem')));
    for (const [id, host] of [
      ['local', 'localhost'],
      ['v4', '127.0.0.1'],
    ]) {
      const opened = await openSock(page, id, `wss://${host}:${daemon.port}/`);
      assert.equal(opened.open, true, `wss://${host} did not open: ${JSON.stringify(opened)}`);
      const hello = (await waitForMsgs(page, id, 1)).msgs[0];
      assert.equal(hello.type, 'hello');
      assert.deepEqual(hello.capabilities, ['data']);
      assert.equal(hello.origin, pages.origin);
    }
  });

  test('7b. Chromium without the CA cannot open wss://localhost (1006, TLS failure logged)', async () => {
    const tlsFailures = () => daemon.log().split('\n').filter((l) => l.includes('TLS handshake failed')).length;
    const before = tlsFailures();
    const page = await clientIn(nssHome(dir, null));
    await openSock(page, 'u', `wss://localhost:${daemon.port}/`);
    const rec = await waitForClose(page, 'u');
    assert.deepEqual(rec.events, ['error', 'close']);
    assert.equal(rec.close.code, 1006);
    assert.deepEqual(rec.msgs, []);
    // The daemon saw the handshake fail (the browser rejected our certificate).
    await waitUntil(
      () => tlsFailures() > before,
      `a new "TLS handshake failed" log line; log:\n${daemon.log()}`,
    );
  });
});

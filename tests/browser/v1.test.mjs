// The v1 compatibility methods of connector.js in a real Chromium against
// the real daemon: LoadXML from one page reaches another page as typed
// events (no echo), RetrieveXML / RetrieveEnvironmentXML give back what was
// loaded, a bad document rejects with invalid_xml naming line and column,
// CLEAR_DATA replaces an environment, and the typed accessors convert.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchChromium, removeDir, startDaemon, tempDir } from './lib/harness.mjs';
import { connectorPageHtml, openConnectorPage, pageLog, startFileServer, waitForLog, waitForState } from './lib/connector.mjs';

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

async function connectAndRegister(page, port, env, client) {
  await page.evaluate((p) => {
    window.c.start('ws', p);
  }, port);
  await waitForState(page, 'connected');
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

async function changes(page, env) {
  return (await pageLog(page)).changes.filter((c) => c.env === env).map(({ seq, ...rest }) => rest);
}

function waitForChanges(page, env, n) {
  return waitForLog(page, (log, a) => log.changes.filter((c) => c.env === a.env).length >= a.n, { env, n }, `${n} changes in ${env}`);
}

const DOC = `<?xml version="1.0"?>
<context>
  <environment name="VOICE">
    <variable name="GEN_T2P">EvRinging</variable>
    <variable name="ANI" type="number">3225551234</variable>
    <variable name="vip" type="boolean">true</variable>
    <variable name="html">&lt;img src=x onerror=alert(1)&gt;</variable>
  </environment>
</context>`;

describe('connector.js v1 methods against the daemon', () => {
  let dir, files, daemon, browser, context;

  before(async () => {
    dir = tempDir('v1');
    files = await startFileServer({});
    daemon = await startDaemon(dir, `  <AllowedHosts>${files.origin}</AllowedHosts>`);
    files.files['/classic.html'] = connectorPageHtml(`http://127.0.0.1:${daemon.port}/connector.js`);
    files.files['/module.html'] = connectorPageHtml(`http://127.0.0.1:${daemon.port}/connector.mjs`, { module: true });
    browser = await launchChromium();
    context = await browser.newContext();
  });

  after(async () => {
    try {
      await browser?.close();
      await files?.close();
      if (daemon) {
        const exit = await daemon.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `daemon exit; log:\n${daemon.log()}`);
      }
    } finally {
      removeDir(dir);
    }
  });

  test('LoadXML, RetrieveXML, CLEAR_DATA and typed accessors across two pages', async () => {
    const a = await openConnectorPage(context, `${files.origin}/classic.html`);
    const b = await openConnectorPage(context, `${files.origin}/module.html`);
    await connectAndRegister(a, daemon.port, 'VOICE', 'crmA');
    await connectAndRegister(b, daemon.port, 'VOICE', 'crmB');

    const loaded = await ok(a, (c, xml) => c.LoadXML(xml), DOC);
    assert.equal(loaded.environments[0].environment, 'VOICE');
    await waitForChanges(b, 'VOICE', 4);
    assert.deepEqual(await changes(b, 'VOICE'), [
      { env: 'VOICE', name: 'GEN_T2P', value: 'EvRinging', event: 'ContextChanged' },
      { env: 'VOICE', name: 'ANI', value: 3225551234, event: 'ContextChanged' },
      { env: 'VOICE', name: 'vip', value: true, event: 'ContextChanged' },
      { env: 'VOICE', name: 'html', value: '<img src=x onerror=alert(1)>', event: 'ContextChanged' },
    ]);
    assert.deepEqual(await changes(a, 'VOICE'), [], 'no echo');

    // The v1 flat form into this page's environment, with root and prefix.
    await ok(a, (c) => c.VOICE.LoadXML('<crm><customer><Id>42</Id></customer></crm>', 'customer', 'CRM_'));
    const xml = await ok(b, (c) => c.RetrieveXML());
    assert.match(xml, /<variable name="CRM_Id">42<\/variable>/);
    assert.match(xml, /&lt;img src=x onerror=alert\(1\)&gt;/);
    const one = await ok(b, (c) => c.VOICE.RetrieveEnvironmentXML());
    assert.match(one, /<environment name="VOICE">/);

    // Typed accessors over what was loaded.
    assert.equal(await ok(b, (c) => c.VOICE.ContextLong('CRM_Id')), 42);
    assert.equal(await ok(b, (c) => c.VOICE.ContextString('ANI')), '3225551234');
    assert.equal(await ok(b, (c) => c.VOICE.ContextBoolean('vip')), true);
    const mismatch = await call(b, (c) => c.VOICE.ContextInteger('GEN_T2P'));
    assert.deepEqual([mismatch.ok, mismatch.code], [false, 'type_mismatch']);
    await ok(b, (c) => c.VOICE.ContextDouble('ratio', '0.25'));
    assert.equal((await ok(a, (c) => c.VOICE.getEnvironment())).ratio, 0.25);

    // A bad document: invalid_xml with line and column, nothing changed.
    const bad = await call(a, (c) => c.LoadXML('<context>\n<environment name="VOICE">\n<variable name="x">1</oops>'));
    assert.equal(bad.ok, false);
    assert.equal(bad.code, 'invalid_xml');
    assert.match(bad.message, /line 3, column \d+/);

    // CLEAR_DATA=1 in a bulk write: only this request's content remains.
    await ok(a, (c) => c.VOICE.setContextJSON([{ CLEAR_DATA: '1' }, { GEN_T2P: 'EvEstablished' }]));
    assert.deepEqual(await ok(b, (c) => c.VOICE.getEnvironment()), { GEN_T2P: 'EvEstablished' });
    for (const p of [a, b]) assert.deepEqual(p.errors, []);
  });
});

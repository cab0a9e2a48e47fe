// kill -9 of the daemon under connector.js in a real Chromium: a CRM page
// and a web toolbar page (both connector.js, loaded from the daemon) are
// connected when the daemon process is killed with SIGKILL (no close frame,
// no stopping-service event). The daemon is started again on the same port.
// Without any help from the test (no `online` event, no reload), both pages
// reconnect by back-off and get `onresync` for the lost environment; the
// toolbar re-publishes its call state from its onresync handler, and the CRM
// page ends with exactly that state. (The same fault for a native toolbar:
// tests/faults.rs.)

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { DEADLINE_MS, launchChromium, removeDir, restartDaemon, startDaemon, tempDir } from './lib/harness.mjs';
import { connectorPageHtml, openConnectorPage, pageLog, startFileServer, waitForLog, waitForState } from './lib/connector.mjs';

const ENV = 'VOICE';
const CALL_STATE = { GEN_T2P: 'EvEstablished', ANI: '3225551234', InteractionId: '0001AaBb', QueueWaitSeconds: 42 };

let dir, files, daemon, settings, browser, context;

before(async () => {
  dir = tempDir('faults');
  files = await startFileServer({});
  settings = `  <AllowedHosts>${files.origin}</AllowedHosts>`;
  daemon = await startDaemon(dir, settings);
  files.files['/page.html'] = connectorPageHtml(`http://127.0.0.1:${daemon.port}/connector.js`);
  browser = await launchChromium();
  context = await browser.newContext();
});

after(async () => {
  await context?.close();
  await browser?.close();
  await daemon?.stop();
  await files?.close();
  removeDir(dir);
});

/** Opens a connector page, starts it and waits until it is ready. */
async function connectedPage() {
  const page = await openConnectorPage(context, `${files.origin}/page.html`);
  await page.evaluate((port) => {
    window.c.start('ws', port);
  }, daemon.port);
  await waitForState(page, 'connected');
  await waitForLog(page, (log) => log.ready > 0, null, 'onready');
  return page;
}

/** Key order does not matter: a snapshot is sorted, events come in write order. */
const canonical = (o) => JSON.stringify(Object.fromEntries(Object.entries(o).sort()));

/** Waits until the CRM page's model equals `want`. */
async function crmHas(page, want) {
  try {
    await page.waitForFunction(
      ([w, src]) => new Function(`return ${src}`)()(window.model) === w,
      [canonical(want), canonical.toString()],
      { timeout: DEADLINE_MS },
    );
  } catch (e) {
    throw new Error(`CRM model ${JSON.stringify(await page.evaluate(() => window.model))}, want ${canonical(want)}: ${e.message}`);
  }
}

test('kill -9 and a restart on the same port: pages reconnect by themselves, onresync, the toolbar re-publishes', async () => {
  const crm = await connectedPage();
  const toolbar = await connectedPage();

  // The CRM page keeps a model of VOICE from onresync and its changes.
  await crm.evaluate(async (env) => {
    window.model = {};
    const c = window.c;
    await c.createEnvironment(env, 'crm');
    window.watch(env);
    const e = c.environment(env);
    const record = e.oncontextchanged;
    e.oncontextchanged = (name, value, event) => {
      record(name, value, event);
      window.model[name] = value;
    };
    const resync = c.onresync;
    c.onresync = (name, values) => {
      resync(name, values);
      if (name === env) window.model = { ...values };
    };
    await e.setNotificationsOn('*');
  }, ENV);

  // The toolbar publishes its call state, and again whenever the daemon
  // lost it (onresync after a reconnect).
  await toolbar.evaluate(
    async ([env, state]) => {
      const c = window.c;
      window.republished = 0;
      const publish = () => c.environment(env).setContextJSON(state);
      const resync = c.onresync;
      c.onresync = (name, values) => {
        resync(name, values);
        if (name === env) publish().then(() => window.republished++);
      };
      await c.createEnvironment(env, 'toolbar');
      await publish();
    },
    [ENV, CALL_STATE],
  );
  await crmHas(crm, CALL_STATE);
  assert.deepEqual((await pageLog(crm)).resyncs, []);

  const port = daemon.port;
  const exit = await daemon.kill();
  assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
  for (const p of [crm, toolbar]) {
    await waitForLog(p, (log) => log.disconnects > 0, null, 'ondisconnect after kill -9');
  }
  daemon = await restartDaemon(dir, settings, port);

  // Both pages come back on their own (back-off), each with onresync(VOICE).
  for (const p of [crm, toolbar]) {
    await waitForState(p, 'connected');
    await waitForLog(p, (log, env) => log.resyncs.some((r) => r.env === env), ENV, `onresync(${ENV})`);
    const log = await pageLog(p);
    const states = log.states.map((s) => s.state);
    assert.ok(states.includes('reconnecting'), `states: ${JSON.stringify(states)}`);
    assert.deepEqual(p.errors, []);
  }
  await toolbar.waitForFunction(() => window.republished > 0, null, { timeout: DEADLINE_MS });

  // The CRM page ends with exactly the re-published state.
  await crmHas(crm, CALL_STATE);
  // The new daemon holds it too (a fresh read, not the page's copy).
  const data = await crm.evaluate((env) => window.c.environment(env).getEnvironment(), ENV);
  assert.deepEqual(data, CALL_STATE);
  await crm.close();
  await toolbar.close();
});

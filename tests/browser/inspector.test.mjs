// The inspector page (/inspector) in Chromium: opened with the one-time URL
// of `wsconnector inspect --print-url`, it lists a connector.js page as a
// client, simulates EvRinging that the page receives with its attached data,
// shows a value holding markup as text, records and replays; the token works
// once; without it, from another origin or framed by another page, nothing.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { DEADLINE_MS, daemonBinary, launchChromium, nssHome, removeDir, startDaemon, tempDir } from './lib/harness.mjs';
import { connectorPageHtml, openConnectorPage, startFileServer, waitForLog, waitForState } from './lib/connector.mjs';

const MARKUP = '<img src=x onerror="window.pwned=1"><b>bold</b>';

describe('the inspector page', () => {
  let dir, files, daemon, browser, config;

  before(async () => {
    dir = tempDir('inspector');
    // The daemon and `wsconnector inspect` find token files here.
    process.env.WSCONNECTOR_RUNTIME_DIR = path.join(dir, 'runtime');
    files = await startFileServer({});
    daemon = await startDaemon(dir, `  <AllowedHosts>${files.origin}</AllowedHosts>`);
    config = path.join(dir, 'config.xml');
    files.files['/crm.html'] = connectorPageHtml(`http://127.0.0.1:${daemon.port}/connector.js`);
    files.files['/framer.html'] =
      `<!doctype html><meta charset="utf-8"><title>framer</title>` +
      `<iframe id="f" src="http://127.0.0.1:${daemon.port}/inspector"></iframe>`;
    files.files['/other.html'] = '<!doctype html><meta charset="utf-8"><title>other</title><body>other</body>';
    browser = await launchChromium({ env: { HOME: nssHome(dir, null) } });
  });

  after(async () => {
    try {
      await browser?.close();
      await files?.close();
      if (daemon) assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.log());
    } finally {
      delete process.env.WSCONNECTOR_RUNTIME_DIR;
      removeDir(dir);
    }
  });

  /** `wsconnector inspect --print-url`: a fresh one-time URL. */
  function inspectUrl() {
    const out = execFileSync(daemonBinary(), ['--config', config, 'inspect', '--print-url', '--port', String(daemon.port)], {
      env: process.env,
      encoding: 'utf8',
    }).trim();
    assert.match(out, new RegExp(`^http://127\\.0\\.0\\.1:${daemon.port}/inspector\\?token=[0-9a-f]{32}$`));
    return out;
  }

  /** Opens the inspector with a fresh token; records page errors and policy reports. */
  async function openInspector(context) {
    const page = await context.newPage();
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push(`pageerror: ${e}`));
    page.on('console', (m) => {
      // Failed loads are checked by URL below (Chromium asks for /favicon.ico).
      if (/Failed to load resource/.test(m.text())) return;
      if (m.type() === 'error' || /Content Security Policy|Trusted Type|Refused/i.test(m.text())) {
        page.problems.push(`console: ${m.text()}`);
      }
    });
    page.on('response', (r) => {
      if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) page.problems.push(`${r.status()} ${r.url()}`);
    });
    const url = inspectUrl();
    const response = await page.goto(url, { timeout: DEADLINE_MS });
    await page.waitForSelector('#state.state-connected', { timeout: DEADLINE_MS });
    return { page, response, url };
  }

  test('open with the token, see the page appear, simulate EvRinging it receives, values as text, replay', async () => {
    const context = await browser.newContext();
    const { page: insp, response, url } = await openInspector(context);
    // The token left the address bar at once, and the page has its policy.
    assert.equal(insp.url(), `http://127.0.0.1:${daemon.port}/inspector`);
    assert.equal(response.status(), 200);
    const h = response.headers();
    assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
    assert.match(h['content-security-policy'], /require-trusted-types-for 'script'/);
    assert.doesNotMatch(h['content-security-policy'], /unsafe-inline/);
    assert.equal(h['x-frame-options'], 'DENY');
    assert.equal(await insp.title(), 'wsconnector inspector');
    const cookies = await context.cookies(`http://127.0.0.1:${daemon.port}/inspector`);
    const session = cookies.find((c) => c.name === 'wsc_inspector');
    assert.ok(session, JSON.stringify(cookies));
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await insp.evaluate(() => document.cookie), '', 'the session cookie is HttpOnly');

    // The token cannot be used twice (a fresh browser context has no cookie).
    const other = await browser.newContext();
    const again = await (await other.newPage()).goto(url, { timeout: DEADLINE_MS });
    assert.equal(again.status(), 403);
    await other.close();

    // A CRM page with connector.js registers in VOICE and subscribes with Values.
    const crm = await openConnectorPage(context, `${files.origin}/crm.html`);
    await crm.evaluate((p) => window.c.start('ws', p), daemon.port);
    await waitForState(crm, 'connected');
    const reg = await crm.evaluate(async () => {
      window.got = [];
      await window.c.createEnvironment('VOICE', 'crm-tab');
      window.c.environment('VOICE').oncontextchanged = (name, value, event) =>
        window.got.push({ name, value, values: event && event.Values ? event.Values : null });
      return window.settle(window.c.environment('VOICE').setNotificationsOn('GEN_T2P', true));
    });
    assert.equal(reg.ok, true, JSON.stringify(reg));

    // It appears in the client list with its origin, name and subscription.
    await insp.bringToFront();
    const row = insp.locator('#clients tbody tr', { hasText: 'crm-tab' });
    await row.waitFor({ timeout: DEADLINE_MS });
    const text = await row.textContent();
    assert.ok(text.includes(files.origin), text);
    assert.ok(text.includes('GEN_T2P (+Values)'), text);

    // Simulate EvRinging with attached data, one value holding markup.
    await insp.fill('#sim-env', 'VOICE');
    await insp.selectOption('#sim-event', 'EvRinging');
    await insp.fill('#sim-ani', '3225551234');
    await insp.fill('#sim-iid', 'IX-77');
    await insp.fill('#sim-data', `CustomerId=42\nNote=${MARKUP}`);
    await insp.click('#sim-send');
    await insp.waitForSelector('#sim-result[data-ok="true"]', { timeout: DEADLINE_MS });

    // The subscribed page received it with everything attached.
    await crm.waitForFunction(() => window.got.some((g) => g.name === 'GEN_T2P'), null, { timeout: DEADLINE_MS });
    const got = await crm.evaluate(() => window.got);
    const ringing = got.find((g) => g.name === 'GEN_T2P');
    assert.equal(ringing.value, 'EvRinging');
    assert.deepEqual(ringing.values, {
      ANI: '3225551234',
      CustomerId: '42',
      GEN_T2P: 'EvRinging',
      InteractionId: 'IX-77',
      Note: MARKUP,
    });

    // The environment view shows the markup as text, never as an element.
    const cell = insp.locator('#envs [data-env="VOICE"] tr[data-name="Note"] td.value');
    await cell.waitFor({ timeout: DEADLINE_MS });
    assert.equal(await cell.textContent(), MARKUP);
    assert.equal(await insp.locator('#envs img, #envs b, #trace img').count(), 0);
    assert.equal(await insp.evaluate(() => window.pwned), undefined);
    assert.match(await insp.locator('#envs [data-env="VOICE"] h3').textContent(), /\(epoch \d+, seq \d+\)/);

    // The trace shows the page's frames; one opens as JSON.
    const traceRow = insp.locator('#trace tbody tr', { hasText: 'GEN_T2P = EvRinging' }).first();
    await traceRow.waitFor({ timeout: DEADLINE_MS });
    await traceRow.click();
    const json = await insp.locator('#trace-json').textContent();
    assert.ok(json.includes('"VarChanged": "GEN_T2P"'), json);

    // Record EvEstablished, then replay it: the page hears it again.
    await insp.click('#rec-toggle');
    await insp.selectOption('#sim-event', 'EvEstablished');
    await insp.fill('#sim-data', '');
    await insp.click('#sim-send');
    await insp.click('#rec-toggle');
    assert.equal(await insp.locator('#rec-steps li').count(), 1);
    await crm.waitForFunction(() => window.got.filter((g) => g.value === 'EvEstablished').length === 1, null, {
      timeout: DEADLINE_MS,
    });
    await insp.click('#rec-replay');
    await crm.waitForFunction(() => window.got.filter((g) => g.value === 'EvEstablished').length === 2, null, {
      timeout: DEADLINE_MS,
    });
    assert.deepEqual(insp.problems, []);
    await context.close();
  });

  test('without the token, from another origin, or framed: nothing', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    for (const p of ['/inspector', '/inspector/inspector.js', '/inspector?token=0123456789abcdef0123456789abcdef']) {
      const r = await page.goto(`http://127.0.0.1:${daemon.port}${p}`, { timeout: DEADLINE_MS });
      assert.equal(r.status(), 403, p);
    }
    // Log in, so the browser holds a valid session cookie from here on.
    const { page: insp } = await openInspector(context);
    assert.equal(await insp.locator('#clients').count(), 1);

    // Another origin (even an allowed CRM origin, even same-site 127.0.0.1):
    // its fetch and its socket get nothing.
    const other = await context.newPage();
    await other.goto(`${files.origin}/other.html`, { timeout: DEADLINE_MS });
    const fetched = await other.evaluate(async (p) => {
      try {
        const r = await fetch(`http://127.0.0.1:${p}/inspector`, { credentials: 'include' });
        return `status ${r.status}`;
      } catch (e) {
        return `blocked: ${e.name}`;
      }
    }, daemon.port);
    assert.equal(fetched, 'blocked: TypeError');
    const socket = await other.evaluate(
      (p) =>
        new Promise((resolve) => {
          const s = new WebSocket(`ws://127.0.0.1:${p}/inspector/ws`);
          s.onopen = () => resolve('open');
          s.onclose = (e) => resolve(`closed ${e.code}`);
        }),
      daemon.port,
    );
    assert.equal(socket, 'closed 1006');
    await daemon.waitForLog(['inspector request refused', 'Origin is not'], 'the refused socket');

    // Framed by another page: the daemon refuses and the browser blocks the frame.
    const framed = await context.newPage();
    const frameResponse = framed.waitForResponse((r) => r.url() === `http://127.0.0.1:${daemon.port}/inspector`, {
      timeout: DEADLINE_MS,
    });
    await framed.goto(`${files.origin}/framer.html`, { timeout: DEADLINE_MS });
    const r = await frameResponse;
    assert.equal(r.status(), 403);
    assert.equal(r.headers()['x-frame-options'], 'DENY');
    const frame = framed.frames().find((f) => f !== framed.mainFrame());
    assert.ok(frame, 'the iframe exists');
    const inFrame = await frame.evaluate(() => document.querySelector('#clients') !== null).catch(() => false);
    assert.equal(inFrame, false, 'no inspector inside the frame');
    await context.close();
  });
});

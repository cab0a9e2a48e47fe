// The demo page the daemon serves at http://127.0.0.1:PORT/, in Chromium:
// its security headers, registering in two tabs, a variable set in one tab
// shown in the other as text (never markup), and a desktop action answered
// with a readable error code.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { DEADLINE_MS, launchChromium, nssHome, removeDir, startDaemon, tempDir } from './lib/harness.mjs';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
  "connect-src 'self' ws://localhost:* ws://127.0.0.1:* wss://localhost:* wss://127.0.0.1:*; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

describe('the demo page', () => {
  let dir, daemon, browser;

  before(async () => {
    dir = tempDir('demo');
    // The embedded defaults: no AllowedHosts, the daemon's own origin only.
    daemon = await startDaemon(dir, '');
    browser = await launchChromium({ env: { HOME: nssHome(dir, null) } });
  });

  after(async () => {
    try {
      await browser?.close();
      if (daemon) assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.log());
    } finally {
      removeDir(dir);
    }
  });

  /** Opens the demo in a new tab; records page errors, dialogs and CSP reports. */
  async function openDemo(context, host = '127.0.0.1') {
    const page = await context.newPage();
    page.problems = [];
    page.on('pageerror', (e) => page.problems.push(`pageerror: ${e}`));
    page.on('dialog', (d) => {
      page.problems.push(`dialog: ${d.message()}`);
      d.dismiss();
    });
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) page.problems.push(`console: ${m.text()}`);
    });
    const response = await page.goto(`http://${host}:${daemon.port}/`, { timeout: DEADLINE_MS });
    await page.waitForSelector('#state[data-state="connected"]', { timeout: DEADLINE_MS });
    return { page, response };
  }

  async function registerAs(page, client) {
    await page.fill('#client', client);
    await page.click('#register');
    await page.waitForFunction(() => document.querySelector('#registered').textContent.includes('demo'), null, {
      timeout: DEADLINE_MS,
    });
  }

  test('headers, two tabs seeing each other, values as text, desktop actions refused', async () => {
    const context = await browser.newContext();
    const { page: one, response } = await openDemo(context);
    const h = response.headers();
    assert.equal(response.status(), 200);
    assert.equal(h['content-security-policy'], CSP);
    assert.equal(h['x-frame-options'], 'DENY');
    assert.equal(h['referrer-policy'], 'no-referrer');
    assert.equal(h['x-content-type-options'], 'nosniff');
    assert.equal(await one.title(), 'wsconnector demo');
    // The second tab uses the other name of the daemon (localhost: [::1] first).
    const { page: two } = await openDemo(context, 'localhost');
    await daemon.waitForLog(['websocket connected', `origin="http://localhost:${daemon.port}"`], 'the localhost tab');

    await one.bringToFront();
    await registerAs(one, 'tab-one');
    await two.bringToFront();
    await registerAs(two, 'tab-two');

    // Tab one sets a value that would be markup if it were rendered as HTML.
    // (A background tab is throttled: the tab acted on comes to the front.)
    await one.bringToFront();
    const evil = '<img src=x onerror=alert(1)>';
    await one.fill('#var-name', 'html');
    await one.fill('#var-value', evil);
    await one.click('#set');
    const cell = two.locator('#variables-body tr[data-name="html"] td').nth(1);
    await cell.waitFor({ timeout: DEADLINE_MS });
    assert.equal(await cell.textContent(), evil);
    assert.equal(await two.locator('#variables img').count(), 0);
    assert.equal(await two.locator('#events img').count(), 0);
    // The change is in tab two's event list, not echoed in tab one's.
    await two.waitForFunction(() => document.querySelector('#events').textContent.includes('html'), null, {
      timeout: DEADLINE_MS,
    });
    assert.equal(await one.locator('#events li').count(), 0);
    // Typed values: a number set in tab two shows as a number in tab one.
    await two.bringToFront();
    await two.fill('#var-name', 'count');
    await two.fill('#var-value', '42');
    await two.selectOption('#var-type', 'number');
    await two.click('#set');
    const row = one.locator('#variables-body tr[data-name="count"] td');
    await row.nth(2).waitFor({ timeout: DEADLINE_MS });
    assert.equal(await row.nth(1).textContent(), '42');
    assert.equal(await row.nth(2).textContent(), 'number');

    // A desktop action: the demo origin has data only, the answer is shown.
    await one.bringToFront();
    await one.click('#action-notify');
    const failure = one.locator('#results li.failure').first();
    await failure.waitFor({ timeout: DEADLINE_MS });
    assert.equal(await failure.locator('.code').textContent(), 'forbidden');
    assert.equal(await failure.locator('.what').textContent(), 'showNotification');
    await one.click('#info-version');
    const version = one.locator('#results li.success .value').first();
    await version.waitFor({ timeout: DEADLINE_MS });
    const health = await (await fetch(`http://127.0.0.1:${daemon.port}/health`)).json();
    assert.equal(await version.textContent(), health.version);

    // Nothing went wrong: no script error, no alert, no CSP violation.
    assert.deepEqual(one.problems, []);
    assert.deepEqual(two.problems, []);
    await context.close();
  });

  test('the page cannot be framed', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // A blank page (no CSP of its own) frames the demo and waits for the load.
    await page.setContent('<iframe id="f"></iframe>');
    const url = `http://localhost:${daemon.port}/`;
    await page.evaluate(
      (src) =>
        new Promise((resolve) => {
          const f = document.getElementById('f');
          f.onload = resolve;
          f.src = src;
        }),
      url,
    );
    const frame = page.frames().find((f) => f !== page.mainFrame());
    assert.ok(frame, 'the iframe exists');
    // frame-ancestors 'none': the frame holds an error page, not the demo.
    const title = await frame.title().catch(() => '');
    assert.notEqual(title, 'wsconnector demo');
    assert.equal(await frame.locator('#register').count().catch(() => 0), 0);
    await context.close();
  });
});

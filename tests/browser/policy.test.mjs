// `wsconnector browser-policy` in a real Chromium: a CRM page that Chromium
// treats as public (`--ip-address-space-overrides`) is blocked from
// ws://127.0.0.1 by Local Network Access; with the managed policy file that
// `browser-policy --format linux-json` writes for the configured origin
// installed in /etc/chromium/policies/managed/, the same page connects
// without any granted permission. Each policy name is also checked alone, so
// a Chromium that drops one of them is noticed.
//
// The page is served as http://crm.test:PORT (mapped to 127.0.0.1 with
// --host-resolver-rules): a page on 127.0.0.1 itself is never gated, and the
// policy only lists non-loopback origins. Local Network Access is for secure
// contexts only (an http:// page on another host is refused outright, policy
// or not), and real CRM pages are https://, so the test page is declared
// secure with --unsafely-treat-insecure-origin-as-secure instead of needing a
// certificate for crm.test. Writing the policy folder needs
// root (CI runs as root); the file is removed after each case. It allows only
// this test's crm.test origin, so other Chromium runs are not affected.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  CLIENT_HTML,
  daemonBinary,
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

const POLICY_DIR = process.env.WSC_CHROMIUM_POLICY_DIR || '/etc/chromium/policies/managed';
const POLICY_FILE = path.join(POLICY_DIR, `wsconnector-test-${process.pid}.json`);

/** Can this process write Chromium's managed policy folder? */
function policyDirWritable() {
  try {
    mkdirSync(POLICY_DIR, { recursive: true });
    accessSync(POLICY_DIR, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function skipLoudly(t, why) {
  const line = `browser policy test: ${why}`;
  console.log(`!!! SKIPPED: ${line}`);
  if (process.env.WSC_SKIP_LOG) appendFileSync(process.env.WSC_SKIP_LOG, `${line}\n`);
  t.skip(why);
}

describe('browser-policy: a public CRM page reaches the daemon without a prompt', () => {
  let dir, pages, daemon, crmOrigin, generated;
  const writable = policyDirWritable();

  before(async () => {
    dir = tempDir('policy');
    pages = await startPageServer({ '/client.html': CLIENT_HTML });
    crmOrigin = `http://crm.test:${pages.port}`;
    daemon = await startDaemon(dir, `  <AllowedHosts>${crmOrigin}</AllowedHosts>`);
    // What IT would deploy: the file written by the command for this config.
    const out = path.join(dir, 'policy');
    execFileSync(
      daemonBinary(),
      ['--config', path.join(dir, 'config.xml'), 'browser-policy', '--format', 'linux-json', '--out', out],
      { encoding: 'utf8' },
    );
    generated = JSON.parse(readFileSync(path.join(out, 'wsconnector.json'), 'utf8'));
  });

  after(async () => {
    try {
      rmSync(POLICY_FILE, { force: true });
      await pages?.close();
      if (daemon) {
        const exit = await daemon.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `daemon exit; log:\n${daemon.log()}`);
      }
    } finally {
      removeDir(dir);
    }
  });

  /** Opens ws://127.0.0.1:PORT from the public crm.test page in a new Chromium. */
  async function publicPageConnects() {
    const browser = await launchChromium({
      extraArgs: [
        `--host-resolver-rules=MAP crm.test 127.0.0.1`,
        `--unsafely-treat-insecure-origin-as-secure=${crmOrigin}`,
        `--ip-address-space-overrides=127.0.0.1:${pages.port}=public`,
      ],
    });
    try {
      const page = await openClient(await browser.newContext(), `${crmOrigin}/client.html`);
      const rec = await openSock(page, 's', `ws://127.0.0.1:${daemon.port}/`);
      if (!rec.open) {
        return `closed ${(await waitForClose(page, 's')).close.code}`;
      }
      const hello = (await waitForMsgs(page, 's', 1)).msgs[0];
      assert.equal(hello.origin, crmOrigin);
      return hello.type;
    } finally {
      await browser.close();
    }
  }

  test('the generated file lists the CRM origin under both policy names', () => {
    assert.deepEqual(generated, {
      LoopbackNetworkAllowedForUrls: [crmOrigin],
      LocalNetworkAccessAllowedForUrls: [crmOrigin],
    });
  });

  test('without the policy the public page is blocked and the daemon sees nothing', async (t) => {
    if (!writable) return skipLoudly(t, `${POLICY_DIR} is not writable (run as root)`);
    rmSync(POLICY_FILE, { force: true });
    assert.equal(await publicPageConnects(), 'closed 1006');
    assert.ok(!daemon.log().includes(crmOrigin), `no request of the blocked page reached the daemon:\n${daemon.log()}`);
  });

  test('with the generated policy installed the same page connects, no permission granted', async (t) => {
    if (!writable) return skipLoudly(t, `${POLICY_DIR} is not writable (run as root)`);
    writeFileSync(POLICY_FILE, JSON.stringify(generated));
    try {
      assert.equal(await publicPageConnects(), 'hello');
      // The log line the blocked case looks for does appear for a real socket.
      await daemon.waitForLog([crmOrigin], `the connection of the allowed page`);
    } finally {
      rmSync(POLICY_FILE, { force: true });
    }
  });

  for (const name of ['LoopbackNetworkAllowedForUrls', 'LocalNetworkAccessAllowedForUrls']) {
    test(`${name} alone is honoured by this Chromium`, async (t) => {
      if (!writable) return skipLoudly(t, `${POLICY_DIR} is not writable (run as root)`);
      writeFileSync(POLICY_FILE, JSON.stringify({ [name]: [crmOrigin] }));
      try {
        assert.equal(await publicPageConnects(), 'hello');
      } finally {
        rmSync(POLICY_FILE, { force: true });
      }
    });
  }
});

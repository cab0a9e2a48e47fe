// The protocol between two tabs of one allowed page in a real Chromium:
// the same clientName in both, typed values delivered to the other tab as
// ContextChanged events, and no echo to the tab that wrote.

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
  waitForMsgs,
} from './lib/harness.mjs';

describe('protocol across two Chromium tabs', () => {
  let dir, pages, daemon, browser, context;

  before(async () => {
    dir = tempDir('protocol');
    pages = await startPageServer({ '/client.html': CLIENT_HTML });
    daemon = await startDaemon(dir, `  <AllowedHosts>${pages.origin}</AllowedHosts>`);
    browser = await launchChromium();
    context = await browser.newContext();
  });

  after(async () => {
    try {
      await context?.close();
      await browser?.close();
      await pages?.close();
      if (daemon) {
        const exit = await daemon.stop();
        assert.deepEqual(exit, { code: 0, signal: null }, `daemon exit after SIGTERM; log:\n${daemon.log()}`);
      }
    } finally {
      removeDir(dir);
    }
  });

  test('2. tab B hears tab A\'s typed writes as ContextChanged; A never hears its own', async () => {
    const url = `ws://127.0.0.1:${daemon.port}/`;
    const tabA = await openClient(context, `${pages.origin}/client.html`);
    const tabB = await openClient(context, `${pages.origin}/client.html`);
    for (const tab of [tabA, tabB]) {
      assert.equal((await openSock(tab, 's', url)).open, true);
      assert.equal((await waitForMsgs(tab, 's', 1)).msgs[0].type, 'hello');
    }

    // Both tabs register with the SAME clientName: still two clients.
    const regA = await request(tabA, 's', { action: 'createEnvironment', environment: 'VOICE', clientName: 'crm' });
    assert.equal(regA.result, 'SUCCESS', JSON.stringify(regA));
    assert.deepEqual(regA.data, { environment: 'VOICE', clientName: 'crm', created: true });
    const regB = await request(tabB, 's', { action: 'createEnvironment', environment: 'VOICE', clientName: 'crm' });
    assert.equal(regB.result, 'SUCCESS', JSON.stringify(regB));
    assert.deepEqual(regB.data, { environment: 'VOICE', clientName: 'crm', created: false });
    assert.equal(regB.epoch, regA.epoch);

    // Both subscribe to every variable, so silence in A means "no echo".
    for (const tab of [tabA, tabB]) {
      const sub = await request(tab, 's', { action: 'setNotificationsOn', environment: 'VOICE', name: '*' });
      assert.equal(sub.result, 'SUCCESS', JSON.stringify(sub));
      assert.deepEqual(sub.data, { environment: 'VOICE', name: '*', values: false });
    }

    // A writes a string, a number and a boolean.
    const writes = [
      ['GEN_T2P', 'EvRinging'],
      ['CALL_COUNT', 42],
      ['RECORDING', true],
    ];
    const seqs = [];
    for (const [name, value] of writes) {
      const r = await request(tabA, 's', { action: 'setContextVariable', environment: 'VOICE', name, value });
      assert.equal(r.result, 'SUCCESS', JSON.stringify(r));
      assert.equal(r.epoch, regA.epoch);
      seqs.push(r.seq);
    }
    assert.deepEqual(seqs, [seqs[0], seqs[0] + 1, seqs[0] + 2]);

    // B: exactly those three events, in order, with the values' JSON types.
    const recB = await waitForMsgs(tabB, 's', 1 + 2 + 3);
    const eventsB = recB.msgs.filter((m) => m.type === 'event');
    assert.deepEqual(
      eventsB.map((e) => ({ ...e })),
      writes.map(([name, value], i) => ({
        type: 'event',
        event: 'ContextChanged',
        EnvironmentName: 'VOICE',
        VarChanged: name,
        ValueChanged: value,
        epoch: regA.epoch,
        seq: seqs[i],
      })),
    );
    assert.equal(typeof eventsB[1].ValueChanged, 'number');
    assert.equal(typeof eventsB[2].ValueChanged, 'boolean');

    // B writes; A's first (and only) event must be B's write: A's socket was
    // live all along, and its own three writes were not echoed before it.
    const rB = await request(tabB, 's', {
      action: 'setContextVariable',
      environment: 'VOICE',
      name: 'GEN_P2T',
      value: 'RqAnswer',
    });
    assert.equal(rB.result, 'SUCCESS', JSON.stringify(rB));
    assert.equal(rB.seq, seqs[2] + 1);
    await tabA.waitForFunction(() => window.socks.s.rec.msgs.some((m) => m.type === 'event'), null, {
      timeout: 15_000,
    });
    const recA = await tabA.evaluate(() => window.rec('s'));
    assert.deepEqual(
      recA.msgs.filter((m) => m.type === 'event'),
      [
        {
          type: 'event',
          event: 'ContextChanged',
          EnvironmentName: 'VOICE',
          VarChanged: 'GEN_P2T',
          ValueChanged: 'RqAnswer',
          epoch: regA.epoch,
          seq: rB.seq,
        },
      ],
    );
    // Replies only otherwise: hello, 2 requests, 3 writes, then the event.
    assert.deepEqual(
      recA.msgs.map((m) => m.type),
      ['hello', 'reply', 'reply', 'reply', 'reply', 'reply', 'event'],
    );

    // And the store holds the typed values for both tabs.
    const env = await request(tabB, 's', { action: 'getEnvironment', environment: 'VOICE' });
    assert.deepEqual(env.data, { CALL_COUNT: 42, GEN_P2T: 'RqAnswer', GEN_T2P: 'EvRinging', RECORDING: true });

    // B got no echo of its own write either.
    const recB2 = await tabB.evaluate(() => window.rec('s'));
    assert.equal(recB2.msgs.filter((m) => m.type === 'event').length, 3);
    await tabA.close();
    await tabB.close();
  });
});

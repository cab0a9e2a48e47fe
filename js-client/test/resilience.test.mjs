// Reconnect, back-off, immediate retries, resume with replay or snapshot,
// heartbeats, and the session surviving a page reload.

import test from 'node:test';
import assert from 'node:assert/strict';

import { backoffDelay } from '../connector.mjs';
import { setup, connected, register, changed, settle, outcome, MemoryStorage } from '../test-support/fakes.mjs';

test('backoffDelay: doubling from 500 ms up to 10 s, jitter takes off at most half', () => {
  const ceilings = [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];
  assert.deepEqual(
    ceilings.map((_, i) => backoffDelay(i + 1, {}, () => 0)),
    ceilings,
  );
  assert.deepEqual(
    ceilings.map((_, i) => backoffDelay(i + 1, {}, () => 0.999999)),
    ceilings.map((c) => Math.round(c * (1 - 0.5 * 0.999999))),
  );
  for (let attempt = 1; attempt <= 40; attempt++) {
    for (const r of [0, 0.1, 0.37, 0.5, 0.73, 0.999]) {
      const d = backoffDelay(attempt, {}, () => r);
      const ceiling = Math.min(10_000, 500 * 2 ** (attempt - 1));
      assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${attempt} r ${r}: ${d}`);
    }
  }
  assert.equal(backoffDelay(3, { base: 100, factor: 3, max: 500, jitter: 0 }, () => 0.9), 500);
  assert.equal(backoffDelay(2, { base: 100, factor: 3, max: 5000, jitter: 0 }, () => 0.9), 300);
  assert.equal(backoffDelay(0, {}, () => 0), 500, 'attempt 0 is treated as the first');
});

test('failed attempts retry after the back-off sequence', async () => {
  const t = setup({ fetch: null });
  t.connector.start('ws');
  const waits = [];
  for (let i = 0; i < 7; i++) {
    t.ws.last.refuse();
    await settle();
    const [delay] = t.clock.delays();
    waits.push(delay);
    const before = t.ws.sockets.length;
    await t.clock.tick(delay - 1);
    assert.equal(t.ws.sockets.length, before, 'not before the delay');
    await t.clock.tick(1);
    assert.equal(t.ws.sockets.length, before + 1, 'a new socket at the delay');
  }
  assert.deepEqual(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
});

test('the back-off starts again after a good connection; ondisconnect once per outage, onready each time', async () => {
  const t = connected({ fetch: null });
  const calls = [];
  t.connector.ondisconnect = (d) => calls.push(['disconnect', d.code]);
  t.connector.onready = (hello) => calls.push(['ready', hello.resumeToken]);
  t.ws.last.serverClose(1001, 'stopping');
  await settle();
  assert.deepEqual(t.clock.delays(), [500]);
  await t.clock.tick(500);
  t.ws.last.refuse();
  await settle();
  assert.deepEqual(t.clock.delays(), [1000]);
  await t.clock.tick(1000);
  t.ws.last.accept('token-2');
  t.ws.last.serverClose(1006);
  await settle();
  assert.deepEqual(t.clock.delays(), [500], 'attempts reset by the good connection');
  assert.deepEqual(calls, [
    ['disconnect', 1001],
    ['ready', 'token-2'],
    ['disconnect', 1006],
  ]);
});

test('online and a tab becoming visible retry at once', async () => {
  const win = new EventTarget();
  const doc = new EventTarget();
  doc.visibilityState = 'hidden';
  const t = setup({ fetch: null, connector: { window: win, document: doc, backoffBase: 60_000 } });
  t.connector.start('ws');
  t.ws.last.refuse();
  await settle();
  assert.equal(t.ws.sockets.length, 1);
  win.dispatchEvent(new Event('online'));
  assert.equal(t.ws.sockets.length, 2, 'online: retried without waiting');
  t.ws.last.refuse();
  await settle();
  doc.dispatchEvent(new Event('visibilitychange'));
  assert.equal(t.ws.sockets.length, 2, 'hidden: nothing');
  doc.visibilityState = 'visible';
  doc.dispatchEvent(new Event('visibilitychange'));
  assert.equal(t.ws.sockets.length, 3, 'visible: retried without waiting');
  // while a socket is still connecting, nothing happens
  win.dispatchEvent(new Event('online'));
  assert.equal(t.ws.sockets.length, 3);
  // connected: becoming visible checks the socket with a heartbeat
  t.ws.last.accept('t');
  doc.dispatchEvent(new Event('visibilitychange'));
  assert.deepEqual(t.ws.last.sent.map((m) => m.action), ['getVersion']);
  // after stop() the listeners are gone
  await t.connector.stop();
  win.dispatchEvent(new Event('online'));
  assert.equal(t.ws.sockets.length, 3);
});

/** A connector registered in VOICE (`*`) and EMAIL (`subject` with values), at VOICE 10/3 and EMAIL 20/0. */
function registered(options) {
  const t = connected({ fetch: null, ...options });
  register(t, 'VOICE', 'crm', 10, 0, [['*', false]]);
  register(t, 'EMAIL', 'mail', 20, 0, [['subject', true]]);
  t.ws.last.receive(changed('VOICE', 'a', 1, 10, 3));
  return t;
}

test('after a reconnect one resume request carries token, clientName, position and subscriptions', async () => {
  const t = registered();
  const on = outcome(t.connector.VOICE.setNotificationsOn('extra'));
  const off = outcome(t.connector.VOICE.setNotificationsOff('extra'));
  t.ws.last.serverClose(1006);
  assert.equal((await on).error.code, 'disconnected');
  assert.equal((await off).error.code, 'disconnected');
  await t.clock.tick(500);
  t.ws.last.accept('token-2');
  const sent = t.ws.last.sent;
  assert.equal(sent.length, 1, 'one request');
  const { requestId, ...resume } = sent[0];
  assert.equal(typeof requestId, 'string');
  assert.deepEqual(resume, {
    action: 'resume',
    token: 'token-1',
    environments: [
      { environment: 'VOICE', clientName: 'crm', epoch: 10, seq: 3, subscriptions: [{ name: '*', values: false }] },
      { environment: 'EMAIL', clientName: 'mail', epoch: 20, seq: 0, subscriptions: [{ name: 'subject', values: true }] },
    ],
  });
  // the next reconnect presents the token of this connection
  t.ws.last.reply(sent[0], { data: { resumed: true, environments: [] } });
  t.ws.last.serverClose(1006);
  await t.clock.tick(500);
  t.ws.last.accept('token-3');
  assert.equal(t.ws.last.last('resume').token, 'token-2');
});

test('calls made while disconnected wait for the resume reply; state goes reconnecting -> connected', async () => {
  const t = registered();
  const states = [];
  t.connector.onstatechange = (s, d) => states.push([s, d.resumed]);
  let ready = 0;
  t.connector.onready = () => ready++;
  t.ws.last.serverClose(1006);
  const write = t.connector.VOICE.setContextVariable('GEN_P2T', 'RqDial');
  await t.clock.tick(500);
  const sock = t.ws.last;
  sock.accept('token-2');
  assert.deepEqual(sock.sent.map((m) => m.action), ['resume']);
  assert.equal(ready, 0, 'not ready before the resume reply');
  sock.reply(sock.sent[0], { data: { resumed: true, environments: [] } });
  assert.deepEqual(sock.sent.map((m) => m.action), ['resume', 'setContextVariable']);
  assert.equal(ready, 1);
  sock.reply(sock.last('setContextVariable'), { epoch: 10, seq: 4 });
  await write;
  assert.deepEqual(states, [
    ['reconnecting', undefined],
    ['connected', true],
  ]);
});

test('replayed events are delivered in order, each once, and live duplicates dropped', async () => {
  const t = registered();
  const seen = [];
  t.connector.VOICE.oncontextchanged = (name, value, e) => seen.push(`${name}=${value}@${e.seq}`);
  t.ws.last.serverClose(1006);
  await t.clock.tick(500);
  const sock = t.ws.last;
  sock.accept('token-2');
  sock.reply(sock.sent[0], {
    data: {
      resumed: true,
      environments: [
        {
          environment: 'VOICE',
          epoch: 10,
          seq: 6,
          created: false,
          mode: 'replay',
          events: [changed('VOICE', 'a', 'old', 10, 3), changed('VOICE', 'b', 4, 10, 4), changed('VOICE', 'c', 5, 10, 5), changed('VOICE', 'd', 6, 10, 6)],
        },
        { environment: 'EMAIL', epoch: 20, seq: 0, created: false, mode: 'replay', events: [] },
      ],
    },
  });
  sock.receive(changed('VOICE', 'd', 6, 10, 6));
  sock.receive(changed('VOICE', 'e', 7, 10, 7));
  assert.deepEqual(seen, ['b=4@4', 'c=5@5', 'd=6@6', 'e=7@7']);
});

test('a snapshot calls onresync(env, values) and replaces the position', async () => {
  const t = registered();
  const resyncs = [];
  t.connector.onresync = (env, values) => resyncs.push([env, values]);
  const seen = [];
  t.connector.VOICE.oncontextchanged = (name, _v, e) => seen.push(`${name}@${e.epoch}/${e.seq}`);
  t.ws.last.serverClose(1001);
  await t.clock.tick(500);
  let sock = t.ws.last;
  sock.accept('token-2');
  sock.reply(sock.sent[0], {
    data: {
      resumed: true,
      environments: [
        { environment: 'VOICE', epoch: 99, seq: 0, created: true, mode: 'snapshot', values: {} },
        { environment: 'EMAIL', epoch: 20, seq: 2, created: false, mode: 'snapshot', values: { subject: 'Hi' } },
      ],
    },
  });
  assert.deepEqual(resyncs, [
    ['VOICE', {}],
    ['EMAIL', { subject: 'Hi' }],
  ]);
  sock.receive(changed('VOICE', 'x', 1, 99, 1));
  assert.deepEqual(seen, ['x@99/1']);
  sock.serverClose(1006);
  await t.clock.tick(500);
  sock = t.ws.last;
  sock.accept('token-3');
  assert.deepEqual(
    sock.sent[0].environments.map((e) => [e.environment, e.epoch, e.seq]),
    [
      ['VOICE', 99, 1],
      ['EMAIL', 20, 2],
    ],
  );
});

test('a resume that fails re-registers one by one and resynchronises from a read', async () => {
  const t = registered();
  const resyncs = [];
  t.connector.onresync = (env, values) => resyncs.push([env, values]);
  t.ws.last.serverClose(1006);
  await t.clock.tick(500);
  const sock = t.ws.last;
  sock.accept('token-2');
  sock.fail(sock.sent[0], 'limit_exceeded');
  const strip = ({ requestId, ...m }) => m;
  assert.deepEqual(sock.sent.slice(1).map(strip), [
    { action: 'createEnvironment', environment: 'VOICE', clientName: 'crm' },
    { action: 'setNotificationsOn', environment: 'VOICE', name: '*', values: false },
    { action: 'getEnvironment', environment: 'VOICE' },
    { action: 'createEnvironment', environment: 'EMAIL', clientName: 'mail' },
    { action: 'setNotificationsOn', environment: 'EMAIL', name: 'subject', values: true },
    { action: 'getEnvironment', environment: 'EMAIL' },
  ]);
  assert.equal(t.connector.state, 'connected');
  for (const m of sock.sent.slice(1)) {
    if (m.action === 'getEnvironment') sock.reply(m, { data: { v: m.environment }, epoch: 7, seq: 1 });
    else sock.reply(m, { epoch: 7, seq: 1 });
  }
  assert.deepEqual(resyncs, [
    ['VOICE', { v: 'VOICE' }],
    ['EMAIL', { v: 'EMAIL' }],
  ]);
});

test('an environment the daemon refuses during the fallback is no longer asked for', async () => {
  const storage = new MemoryStorage();
  const t = registered({ storage });
  t.ws.last.serverClose(1006);
  await t.clock.tick(500);
  let sock = t.ws.last;
  sock.accept('token-2');
  sock.fail(sock.sent[0], 'limit_exceeded');
  const create = sock.sent.find((m) => m.action === 'createEnvironment' && m.environment === 'EMAIL');
  sock.fail(create, 'limit_exceeded');
  sock.serverClose(1006);
  await t.clock.tick(500);
  sock = t.ws.last;
  sock.accept('token-3');
  assert.deepEqual(sock.sent[0].environments.map((e) => e.environment), ['VOICE']);
  const saved = JSON.parse(storage.getItem('wsconnector:127.0.0.1:8443'));
  assert.deepEqual(saved.environments.map((e) => e.environment), ['VOICE']);
});

test('registrations with no token and nothing queued are sent one by one on the first connection', async () => {
  const storage = new MemoryStorage();
  // saved before any hello: the page registered, then reloaded before connecting
  storage.setItem(
    'wsconnector:127.0.0.1:8443',
    JSON.stringify({ token: null, environments: [{ environment: 'VOICE', clientName: 'crm', subscriptions: [{ name: '*', values: false }] }] }),
  );
  const t = setup({ storage, fetch: null });
  t.connector.start('ws');
  t.connector.createEnvironment('EMAIL', 'mail'); // queued: sent from the queue, not twice
  t.ws.last.accept('token-1');
  const strip = ({ requestId, ...m }) => m;
  assert.deepEqual(t.ws.last.sent.map(strip), [
    { action: 'createEnvironment', environment: 'VOICE', clientName: 'crm' },
    { action: 'setNotificationsOn', environment: 'VOICE', name: '*', values: false },
    { action: 'createEnvironment', environment: 'EMAIL', clientName: 'mail' },
  ]);
});

test('no resume reply within requestTimeout: the socket is dropped and the client reconnects', async () => {
  const t = registered({ connector: { requestTimeout: 3000 } });
  t.ws.last.serverClose(1006);
  await t.clock.tick(500);
  const sock = t.ws.last;
  sock.accept('token-2');
  await t.clock.tick(3000);
  assert.deepEqual(sock.closedByClient, { code: 4000, reason: 'no resume reply' });
  assert.equal(t.connector.state, 'reconnecting');
  await t.clock.tick(999);
  assert.equal(t.ws.sockets.length, 2, 'the attempt count went on: it never became ready');
  await t.clock.tick(1);
  assert.equal(t.ws.sockets.length, 3, 'reconnected after the back-off');
});

test('heartbeat: getVersion after 30 s without a request; no reply drops the socket', async () => {
  const t = connected({ fetch: null });
  const sock = t.ws.last;
  await t.clock.tick(20_000);
  t.connector.getHost(); // activity postpones the heartbeat
  sock.reply(sock.last('getHost'), { data: 'PC' });
  await t.clock.tick(29_999);
  assert.deepEqual(sock.sent.map((m) => m.action), ['getHost']);
  await t.clock.tick(1);
  assert.deepEqual(sock.sent.map((m) => m.action), ['getHost', 'getVersion']);
  sock.reply(sock.last('getVersion'), { data: '0.1.0' });
  await t.clock.tick(30_000);
  assert.deepEqual(sock.sent.map((m) => m.action), ['getHost', 'getVersion', 'getVersion']);
  await t.clock.tick(10_000); // requestTimeout without the reply
  assert.deepEqual(sock.closedByClient, { code: 4000, reason: 'no heartbeat reply' });
  assert.equal(t.connector.state, 'reconnecting');
});

test('a socket that opens but sends no hello is dropped', async () => {
  const t = setup({ fetch: null, connector: { requestTimeout: 2000 } });
  t.connector.start('ws');
  t.ws.last.open();
  await t.clock.tick(2000);
  assert.deepEqual(t.ws.last.closedByClient, { code: 4000, reason: 'no hello' });
  await t.clock.tick(500);
  assert.equal(t.ws.sockets.length, 2);
});

test('token, positions and registrations survive a page reload (sessionStorage)', async () => {
  const storage = new MemoryStorage();
  const first = registered({ storage });
  first.connector.VOICE.setNotificationsOn('ANI', true);
  first.ws.last.reply(first.ws.last.last('setNotificationsOn'), { epoch: 10, seq: 3 });
  first.ws.last.receive(changed('VOICE', 'a', 2, 10, 4));
  // the page reloads: a new Connector on the same storage
  const t = setup({ fetch: null, storage });
  t.connector.start('ws', 8443);
  // the page's code runs again before anything arrives
  t.connector.createEnvironment('VOICE', 'crm').catch(() => {});
  const seen = [];
  t.connector.VOICE.oncontextchanged = (name, value, e) => seen.push(`${name}=${value}@${e.seq}`);
  assert.ok(t.connector.EMAIL, 'restored environments exist before the connection');
  const sock = t.ws.last;
  sock.accept('token-new');
  const { requestId, ...resume } = sock.sent[0];
  assert.deepEqual(resume, {
    action: 'resume',
    token: 'token-1',
    environments: [
      {
        environment: 'VOICE',
        clientName: 'crm',
        epoch: 10,
        seq: 4,
        subscriptions: [
          { name: '*', values: false },
          { name: 'ANI', values: true },
        ],
      },
      { environment: 'EMAIL', clientName: 'mail', epoch: 20, seq: 0, subscriptions: [{ name: 'subject', values: true }] },
    ],
  });
  sock.reply(sock.sent[0], {
    data: {
      resumed: true,
      environments: [{ environment: 'VOICE', epoch: 10, seq: 5, created: false, mode: 'replay', events: [changed('VOICE', 'b', 5, 10, 5)] }],
    },
  });
  assert.deepEqual(seen, ['b=5@5']);
  assert.deepEqual(sock.sent.map((m) => m.action), ['resume', 'createEnvironment']);
  // what is stored now: the new token and the new position
  const saved = JSON.parse(storage.getItem('wsconnector:127.0.0.1:8443'));
  assert.equal(saved.token, 'token-new');
  assert.deepEqual(saved.environments.map((e) => [e.environment, e.epoch, e.seq]), [
    ['VOICE', 10, 5],
    ['EMAIL', 20, 0],
  ]);
});

test('removeEnvironment drops the environment from resume and storage', async () => {
  const storage = new MemoryStorage();
  const t = registered({ storage });
  t.connector.removeEnvironment('EMAIL');
  t.ws.last.reply(t.ws.last.last('removeEnvironment'), { data: { environment: 'EMAIL', cleaned: false, removed: false }, epoch: 20, seq: 0 });
  const saved = JSON.parse(storage.getItem('wsconnector:127.0.0.1:8443'));
  assert.deepEqual(saved.environments.map((e) => e.environment), ['VOICE']);
  t.ws.last.serverClose(1006);
  await t.clock.tick(500);
  t.ws.last.accept('token-2');
  assert.deepEqual(t.ws.last.sent[0].environments.map((e) => e.environment), ['VOICE']);
  assert.ok(t.connector.EMAIL, 'the object stays (reference §3.2.3)');
});

test('a storage that throws (privacy mode) does not break the connector', async () => {
  const storage = {
    getItem() {
      throw new Error('SecurityError');
    },
    setItem() {
      throw new Error('QuotaExceededError');
    },
  };
  const t = connected({ storage, fetch: null });
  register(t, 'VOICE', 'crm', 1);
  const v = outcome(t.connector.getVersion());
  t.ws.last.reply(t.ws.last.last('getVersion'), { data: '0.1.0' });
  assert.equal((await v).value, '0.1.0');
});

test('a socket that reports an error but never a close (Node 20) is retried too', async () => {
  const t = setup({ fetch: null });
  t.connector.start('ws');
  const first = t.ws.last;
  first.onerror({}); // no close follows
  await settle();
  assert.equal(t.connector.state, 'reconnecting');
  await t.clock.tick(500);
  assert.equal(t.ws.sockets.length, 2);
  first.serverClose(1006); // a late close of the old socket changes nothing
  await settle();
  assert.deepEqual(t.clock.delays(), []);
  assert.equal(t.ws.sockets.length, 2);
});

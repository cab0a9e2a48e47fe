// Connection states: why a connection cannot be made, from /health probes.

import test from 'node:test';
import assert from 'node:assert/strict';

import { diagnose, States } from '../connector.mjs';
import { setup, settle } from '../test-support/fakes.mjs';

test('diagnose: the decision table', () => {
  const cases = [
    // [facts, state]
    [{ protocol: 'ws', http: 'unavailable' }, States.RECONNECTING],
    [{ protocol: 'ws', http: 'failed', permission: null }, States.DAEMON_NOT_RUNNING],
    [{ protocol: 'ws', http: 'failed', permission: 'prompt' }, States.DAEMON_NOT_RUNNING],
    [{ protocol: 'ws', http: 'failed', permission: 'granted' }, States.DAEMON_NOT_RUNNING],
    [{ protocol: 'ws', http: 'failed', permission: 'denied' }, States.BLOCKED_BY_BROWSER],
    [{ protocol: 'ws', http: 'timeout', permission: null }, States.BLOCKED_BY_BROWSER],
    [{ protocol: 'ws', http: 'ok', cors: 'failed' }, States.ORIGIN_REFUSED],
    [{ protocol: 'ws', http: 'ok', cors: 'timeout' }, States.ORIGIN_REFUSED],
    [{ protocol: 'ws', http: 'ok', cors: 'ok', permission: 'denied' }, States.RECONNECTING],
    [{ protocol: 'wss', http: 'ok', https: 'failed', cors: 'ok' }, States.CERTIFICATE_UNTRUSTED],
    [{ protocol: 'wss', http: 'ok', https: 'failed', cors: 'failed' }, States.CERTIFICATE_UNTRUSTED],
    [{ protocol: 'wss', http: 'ok', https: 'ok', cors: 'failed' }, States.ORIGIN_REFUSED],
    [{ protocol: 'wss', http: 'ok', https: 'ok', cors: 'ok' }, States.RECONNECTING],
    [{ protocol: 'wss', http: 'failed', permission: null }, States.DAEMON_NOT_RUNNING],
  ];
  for (const [facts, state] of cases) assert.equal(diagnose(facts), state, JSON.stringify(facts));
});

/**
 * A fetch answering like the daemon would: `answers[mode]` for plain HTTP,
 * `answers.https` for https. Each is 'ok' (resolves), 'fail' (TypeError) or
 * 'hang' (never settles).
 */
function daemonFetch(answers) {
  const calls = [];
  const fetch = (url, init) => {
    calls.push(`${init.mode} ${url}`);
    const how = url.startsWith('https:') ? answers.https : answers[init.mode];
    if (how === 'ok') return Promise.resolve({ ok: true, type: init.mode === 'no-cors' ? 'opaque' : 'cors' });
    if (how === 'hang') return new Promise(() => {});
    return Promise.reject(new TypeError('Failed to fetch'));
  };
  return { fetch, calls };
}

/** Starts, lets the first attempt fail (1006 before open), returns the states seen. */
async function firstFailure({ protocol = 'ws', answers, permission, probeTimeout }) {
  const { fetch, calls } = daemonFetch(answers);
  const navigator =
    permission === undefined
      ? null
      : {
          permissions: {
            query: async ({ name }) => {
              if (name !== 'loopback-network') throw new TypeError(`unknown permission ${name}`);
              if (permission === 'unknown') throw new TypeError('unknown permission');
              return { state: permission };
            },
          },
        };
  const t = setup({ fetch, connector: { navigator, probeTimeout } });
  const states = [];
  t.connector.onstatechange = (state, detail) => states.push([state, detail]);
  t.connector.start(protocol, 8443);
  t.ws.last.refuse();
  await settle();
  if (probeTimeout) await t.clock.tick(probeTimeout);
  return { t, states, calls };
}

test('nothing answers on the port: daemon-not-running', async () => {
  const { states, calls } = await firstFailure({ answers: {}, permission: 'prompt' });
  assert.deepEqual(
    states.map(([s]) => s),
    ['connecting', 'daemon-not-running'],
  );
  assert.deepEqual(calls, ['no-cors http://127.0.0.1:8443/health']);
  const detail = states[1][1];
  assert.equal(detail.code, 1006);
  assert.equal(detail.attempt, 1);
  assert.equal(detail.permission, 'prompt');
});

test('the daemon answers but not with CORS for this page: origin-refused', async () => {
  const { states, calls } = await firstFailure({ answers: { 'no-cors': 'ok', cors: 'fail' } });
  assert.deepEqual(states.at(-1)[0], 'origin-refused');
  assert.deepEqual(calls, ['no-cors http://127.0.0.1:8443/health', 'cors http://127.0.0.1:8443/health']);
});

test('WSS fails while plain HTTP /health answers on the same port: certificate-untrusted', async () => {
  const { states, calls } = await firstFailure({ protocol: 'wss', answers: { 'no-cors': 'ok', cors: 'ok', https: 'fail' } });
  assert.equal(states.at(-1)[0], 'certificate-untrusted');
  assert.deepEqual(calls, [
    'no-cors http://127.0.0.1:8443/health',
    'no-cors https://127.0.0.1:8443/health',
    'cors http://127.0.0.1:8443/health',
  ]);
});

test('the browser refused the loopback request (permission denied): blocked-by-browser', async () => {
  const { states } = await firstFailure({ answers: {}, permission: 'denied' });
  assert.equal(states.at(-1)[0], 'blocked-by-browser');
  assert.equal(states.at(-1)[1].permission, 'denied');
});

test('a probe that hangs (permission prompt open): blocked-by-browser after probeTimeout', async () => {
  const { states } = await firstFailure({ answers: { 'no-cors': 'hang' }, permission: 'prompt', probeTimeout: 3000 });
  assert.equal(states.at(-1)[0], 'blocked-by-browser');
  assert.equal(states.at(-1)[1].http, 'timeout');
});

test('a browser without the permission: the fetch pattern decides', async () => {
  const { states } = await firstFailure({ answers: {}, permission: 'unknown' });
  assert.equal(states.at(-1)[0], 'daemon-not-running');
  assert.equal(states.at(-1)[1].permission, null);
});

test('daemon reachable and origin allowed, yet refused: reconnecting (see the daemon log)', async () => {
  const { states } = await firstFailure({ answers: { 'no-cors': 'ok', cors: 'ok' } });
  assert.deepEqual(
    states.map(([s]) => s),
    ['connecting', 'reconnecting'],
  );
});

test('retries keep the diagnosed state without flicker, then connected', async () => {
  const { t, states } = await firstFailure({ answers: {} });
  for (let i = 0; i < 3; i++) {
    await t.clock.tick(t.clock.delays()[0]);
    t.ws.last.refuse();
    await settle();
  }
  await t.clock.tick(t.clock.delays()[0]);
  t.ws.last.accept('t');
  assert.deepEqual(
    states.map(([s]) => s),
    ['connecting', 'daemon-not-running', 'connected'],
  );
  assert.equal(t.connector.state, 'connected');
  // the daemon goes away: reconnecting, then the new diagnosis
  t.ws.last.serverClose(1006);
  await t.clock.tick(500);
  t.ws.last.refuse();
  await settle();
  assert.deepEqual(
    states.map(([s]) => s),
    ['connecting', 'daemon-not-running', 'connected', 'reconnecting', 'daemon-not-running'],
  );
});

test('a connection lost after the handshake is not probed', async () => {
  const { fetch, calls } = daemonFetch({});
  const t = setup({ fetch });
  t.connector.start('ws');
  t.ws.last.accept('t');
  t.ws.last.serverClose(1013, 'too slow: outbox full');
  await settle();
  assert.deepEqual(calls, []);
  assert.equal(t.connector.state, 'reconnecting');
});

test('a diagnosis that arrives after stop() is ignored', async () => {
  let release;
  const fetch = () => new Promise((_, reject) => (release = () => reject(new TypeError('x'))));
  const t = setup({ fetch });
  t.connector.start('ws');
  t.ws.last.refuse();
  await settle();
  await t.connector.stop();
  release();
  await settle();
  assert.equal(t.connector.state, 'disconnected');
  assert.deepEqual(t.clock.delays().filter((d) => d > 3000), [], 'no retry armed');
});

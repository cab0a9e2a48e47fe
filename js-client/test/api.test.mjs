// The compatible API of reference §3.2 and the promise API on top of it:
// names, messages on the wire, queueing before open, replies, errors, timeouts.

import test from 'node:test';
import assert from 'node:assert/strict';

import { Connector } from '../connector.mjs';
import { setup, connected, register, outcome } from '../test-support/fakes.mjs';

const CONNECTOR_METHODS = [
  'start',
  'createEnvironment',
  'removeEnvironment',
  'setAllJSON',
  'getData',
  'getVersion',
  'getHost',
  'getUser',
  'setSizeWindow',
  'showNotification',
  'launchProcess',
  'showPickupDialog',
];
const ENVIRONMENT_METHODS = [
  'setContextVariable',
  'setContextJSON',
  'getEnvironment',
  'removeItemFromEnvironment',
  'cleanEnvironment',
  'setNotificationsOn',
  'setNotificationsOff',
];

test('every name of reference §3.2 exists', () => {
  const { connector } = setup();
  for (const m of CONNECTOR_METHODS) assert.equal(typeof connector[m], 'function', m);
  for (const cb of ['onwebsocketmessage', 'onready', 'ondisconnect', 'onresync', 'onstatechange', 'onserverstatus', 'onpickupresult']) {
    assert.ok(cb in connector, cb);
    assert.equal(connector[cb], null, cb);
  }
  connector.start('ws', 8443);
  connector.createEnvironment('VOICE', 'crm').catch(() => {});
  const env = connector.VOICE;
  assert.equal(env, connector.environment('VOICE'));
  for (const m of ENVIRONMENT_METHODS) assert.equal(typeof env[m], 'function', m);
  assert.ok('oncontextchanged' in env);
});

test('the reference examples run unchanged, eval included', async () => {
  const { connector: IDealConnector, ws } = setup();
  const seen = [];
  const contexthandler = (name, value) => seen.push([name, value]);
  // §3.2.1, callbacks set after start() as in the reference
  IDealConnector.start('wss', 8443);
  IDealConnector.onready = () => seen.push('ready');
  // §3.2.2, right after start(): queued until the socket is ready
  const cmbEnvironment = 'environment';
  IDealConnector.createEnvironment(cmbEnvironment, 'client');
  eval('IDealConnector.' + cmbEnvironment + '.oncontextchanged = contexthandler');
  eval("IDealConnector." + cmbEnvironment + ".setContextVariable('var_name','var_value')");
  const sock = ws.last;
  assert.equal(sock.url, 'wss://127.0.0.1:8443/');
  sock.accept('t');
  assert.deepEqual(
    sock.sent.map((m) => m.action),
    ['createEnvironment', 'setContextVariable'],
  );
  assert.deepEqual(seen, ['ready']);
  sock.receive({ type: 'event', event: 'ContextChanged', EnvironmentName: 'environment', VarChanged: 'x', ValueChanged: 'y', epoch: 1, seq: 1 });
  assert.deepEqual(seen, ['ready', ['x', 'y']]);
  // §3.2.3 sets the handler again after removeEnvironment: the object stays
  IDealConnector.removeEnvironment(cmbEnvironment);
  eval('IDealConnector.' + cmbEnvironment + '.oncontextchanged = contexthandler');
  assert.deepEqual(sock.last('removeEnvironment'), {
    action: 'removeEnvironment',
    requestId: sock.last('removeEnvironment').requestId,
    environment: 'environment',
    cleanup: false,
  });
});

test('calls before open are queued and sent in call order once ready', () => {
  const { connector, ws } = setup();
  connector.start('ws');
  connector.createEnvironment('VOICE', 'crm');
  connector.VOICE.setNotificationsOn('*');
  connector.VOICE.setContextVariable('GEN_P2T', 'RqDial');
  const sock = ws.last;
  sock.open();
  assert.deepEqual(sock.sent, [], 'nothing before the hello');
  sock.hello('t1');
  const ids = sock.sent.map((m) => m.requestId);
  assert.equal(new Set(ids).size, 3, 'one requestId per request');
  assert.ok(ids.every((id) => typeof id === 'string'));
  assert.deepEqual(
    sock.sent.map(({ requestId, ...m }) => m),
    [
      { action: 'createEnvironment', environment: 'VOICE', clientName: 'crm' },
      { action: 'setNotificationsOn', environment: 'VOICE', name: '*', values: false },
      { action: 'setContextVariable', environment: 'VOICE', name: 'GEN_P2T', value: 'RqDial' },
    ],
  );
});

test('promises resolve with the reply data and reject with code and message', async () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 7);
  const sock = t.ws.last;
  const read = t.connector.VOICE.getEnvironment();
  sock.reply(sock.last('getEnvironment'), { data: { ANI: '322' }, epoch: 7, seq: 0 });
  assert.deepEqual(await read, { ANI: '322' });

  const write = t.connector.VOICE.setContextVariable('A', { no: 'objects' });
  sock.fail(sock.last('setContextVariable'), 'invalid_value', 'send a scalar');
  await assert.rejects(write, (e) => {
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'invalid_value');
    assert.equal(e.message, 'send a scalar');
    assert.equal(e.action, 'setContextVariable');
    return true;
  });

  const version = t.connector.getVersion();
  sock.reply(sock.last('getVersion'), { data: '0.1.0' });
  assert.equal(await version, '0.1.0');
});

test('callbacks of getEnvironment and getData get the data', async () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 7);
  const sock = t.ws.last;
  const got = [];
  t.connector.VOICE.getEnvironment((v) => got.push(['env', v]));
  t.connector.getData((v) => got.push(['all', v]));
  sock.reply(sock.last('getEnvironment'), { data: { A: 1 }, epoch: 7, seq: 0 });
  sock.reply(sock.last('getData'), { data: { VOICE: { A: 1 } } });
  assert.deepEqual(got, [
    ['env', { A: 1 }],
    ['all', { VOICE: { A: 1 } }],
  ]);
});

test('data actions carry the protocol fields', () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 7);
  const sock = t.ws.last;
  const { connector } = t;
  const strip = ({ requestId, ...m }) => m;
  connector.VOICE.setContextJSON([{ a: 1 }, { b: null }]);
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'setContextJSON', environment: 'VOICE', data: [{ a: 1 }, { b: null }] });
  connector.VOICE.setContextJSON({ a: 1, b: 2 }, true);
  assert.deepEqual(strip(sock.sent.at(-1)), {
    action: 'setContextJSON',
    environment: 'VOICE',
    data: [{ a: 1 }, { b: 2 }],
    clearData: true,
  });
  const all = [{ environment: 'VOICE', data: { myvar: 'myvalue' } }];
  connector.setAllJSON(all);
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'setAllJSON', data: all });
  connector.VOICE.removeItemFromEnvironment('ANI');
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'removeItemFromEnvironment', environment: 'VOICE', name: 'ANI' });
  connector.VOICE.cleanEnvironment();
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'cleanEnvironment', environment: 'VOICE' });
  connector.VOICE.setNotificationsOn('GEN_T2P', true);
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'setNotificationsOn', environment: 'VOICE', name: 'GEN_T2P', values: true });
  connector.VOICE.setNotificationsOff('*');
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'setNotificationsOff', environment: 'VOICE', name: '*' });
  connector.removeEnvironment('VOICE', true);
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'removeEnvironment', environment: 'VOICE', cleanup: true });
  for (const a of ['getData', 'getVersion', 'getHost', 'getUser']) {
    connector[a]();
    assert.deepEqual(strip(sock.sent.at(-1)), { action: a });
  }
});

test('desktop actions map their arguments to named fields', () => {
  const { connector, ws } = connected();
  const sock = ws.last;
  const strip = ({ requestId, ...m }) => m;
  connector.setSizeWindow(0, 0, 0, 'focuswindow', true);
  assert.deepEqual(strip(sock.sent.at(-1)), {
    action: 'setSizeWindow',
    x: 0,
    width: 0,
    height: 0,
    windowName: 'focuswindow',
    focus: true,
  });
  // the reference passes sizes as strings; numeric ones become numbers
  connector.showNotification('popuptitle', 'popupdescription', 5000, 'Red', '300', '120');
  assert.deepEqual(strip(sock.sent.at(-1)), {
    action: 'showNotification',
    title: 'popuptitle',
    message: 'popupdescription',
    duration: 5000,
    color: 'Red',
    width: 300,
    height: 120,
  });
  connector.showNotification('t', 'm', 1000);
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'showNotification', title: 't', message: 'm', duration: 1000 });
  connector.launchProcess('browser', 'https://crm.example.com/');
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'launchProcess', name: 'browser', parameter: 'https://crm.example.com/' });
  connector.launchProcess('notepad');
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'launchProcess', name: 'notepad' });
  connector.showPickupDialog('Call from 322', 'Pick up');
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'showPickupDialog', title: 'Call from 322', buttonText: 'Pick up' });
  connector.showPickupDialog('Call', 'Pick up', 'ix-42');
  assert.deepEqual(strip(sock.sent.at(-1)), {
    action: 'showPickupDialog',
    title: 'Call',
    buttonText: 'Pick up',
    interactionId: 'ix-42',
  });
  connector.openUrl('https://crm.example.com/case/1');
  assert.deepEqual(strip(sock.sent.at(-1)), { action: 'openUrl', url: 'https://crm.example.com/case/1' });
});

test('an environment named like a Connector member is reachable through environment(name) only', () => {
  const { connector, ws } = connected();
  const proto = Object.getPrototypeOf(connector);
  for (const name of ['start', 'onready', 'state', 'hello', 'toString', '__proto__', 'constructor']) {
    connector.createEnvironment(name, 'crm');
    const env = connector.environment(name);
    assert.equal(typeof env.setContextVariable, 'function', name);
    assert.notEqual(connector[name], env, `${name} must not be replaced`);
  }
  assert.equal(typeof connector.start, 'function');
  assert.equal(connector.onready, null);
  assert.equal(Object.getPrototypeOf(connector), proto);
  assert.equal(connector.environment('start').name, 'start');
  connector.environment('start').setContextVariable('a', 1);
  assert.equal(ws.last.sent.at(-1).environment, 'start');
  // an ordinary name is a property too, and unknown names are undefined
  connector.createEnvironment('VOICE', 'crm');
  assert.equal(connector.VOICE, connector.environment('VOICE'));
  assert.equal(connector.environment('nope'), undefined);
  assert.equal(connector.environment('hasOwnProperty'), undefined);
});

test('the reference\'s environment named "environment" works as connector.environment, and environment(name) still works', () => {
  const { connector, ws } = connected();
  connector.createEnvironment('environment', 'client');
  connector.createEnvironment('VOICE', 'crm');
  const env = connector.environment;
  assert.equal(connector.environment('environment'), env);
  assert.equal(connector.environment('VOICE'), connector.VOICE);
  assert.equal(env.name, 'environment');
  env.setContextVariable('a', 1);
  assert.equal(ws.last.sent.at(-1).environment, 'environment');
  const seen = [];
  env.oncontextchanged = (name, value) => seen.push([name, value]);
  ws.last.receive({ type: 'event', event: 'ContextChanged', EnvironmentName: 'environment', VarChanged: 'x', ValueChanged: 2, epoch: 1, seq: 1 });
  assert.deepEqual(seen, [['x', 2]]);
});

test('start: protocol in any case, port 8443 by default, host option, bad protocol throws', () => {
  const a = setup();
  a.connector.start('WSS');
  assert.equal(a.ws.last.url, 'wss://127.0.0.1:8443/');
  const b = setup({ connector: { host: '::1' } });
  b.connector.start('ws', '9000');
  assert.equal(b.ws.last.url, 'ws://[::1]:9000/');
  const c = setup({ connector: { host: 'localhost' } });
  c.connector.start();
  assert.equal(c.ws.last.url, 'ws://localhost:8443/');
  assert.throws(() => setup().connector.start('http', 8443), TypeError);
});

test('start() resolves with the hello once ready; stop() rejects what is pending', async () => {
  const t = setup();
  const started = t.connector.start('ws');
  const queued = outcome(t.connector.getVersion());
  t.ws.last.accept('tok');
  const hello = await started;
  assert.equal(hello.resumeToken, 'tok');
  assert.equal(t.connector.hello, hello);
  const inflight = outcome(t.connector.getHost());
  await t.connector.stop();
  assert.deepEqual(t.ws.last.closedByClient, { code: 1000, reason: 'stopped' });
  assert.equal((await inflight).error.code, 'disconnected');
  const late = outcome(t.connector.getUser());
  await t.clock.tick(10_000);
  assert.equal((await late).error.code, 'not_connected');
  assert.equal((await queued).error.code, 'disconnected', 'sent at the hello, never answered');
  assert.equal(t.connector.state, 'disconnected');
  assert.equal(t.ws.sockets.length, 1, 'no reconnect after stop');
});

test('start() again: same arguments change nothing, others move the connection and keep the queue', async () => {
  const t = setup();
  const first = t.connector.start('ws', 8443);
  assert.equal(t.connector.start('WS', '8443'), first);
  assert.equal(t.ws.sockets.length, 1);
  const queued = t.connector.getVersion();
  const moved = t.connector.start('ws', 9443);
  assert.equal(t.ws.sockets.length, 2);
  assert.equal((await outcome(first)).error.code, 'not_connected');
  assert.deepEqual(t.ws.sockets[0].closedByClient, { code: 1000, reason: 'restarted' });
  t.ws.sockets[0].serverClose(1000); // the old socket's close is not a failure of the new one
  assert.equal(t.ws.last.url, 'ws://127.0.0.1:9443/');
  t.ws.last.accept('t');
  assert.deepEqual(t.ws.last.sent.map((m) => m.action), ['getVersion']);
  t.ws.last.reply(t.ws.last.sent[0], { data: '0.1.0' });
  assert.equal(await queued, '0.1.0');
  assert.equal((await moved).resumeToken, 't');
});

test('a request with no reply rejects with timeout after requestTimeout', async () => {
  const t = connected({ connector: { requestTimeout: 2000 } });
  let settled = false;
  const p = outcome(t.connector.getVersion()).finally(() => (settled = true));
  await t.clock.tick(1999);
  assert.equal(settled, false);
  await t.clock.tick(1);
  const { error } = await p;
  assert.equal(error.code, 'timeout');
  assert.equal(error.action, 'getVersion');
  // the late reply is ignored
  t.ws.last.reply(t.ws.last.last('getVersion'), { data: '0.1.0' });
});

test('queued calls reject with not_connected; writes are dropped, registrations still sent later', async () => {
  const t = setup({ connector: { requestTimeout: 1000, backoffBase: 60_000 } });
  t.connector.start('ws');
  const reg = outcome(t.connector.createEnvironment('VOICE', 'crm'));
  const write = outcome(t.connector.VOICE.setContextVariable('A', 1));
  t.ws.last.refuse();
  await t.clock.tick(1000);
  assert.equal((await reg).error.code, 'not_connected');
  assert.equal((await write).error.code, 'not_connected');
  await t.clock.tick(60_000);
  t.ws.last.accept('t1');
  assert.deepEqual(
    t.ws.last.sent.map((m) => m.action),
    ['createEnvironment'],
    'the rejected write is never applied; the registration is',
  );
});

test('requests on a socket that closes reject with disconnected', async () => {
  const t = connected();
  const p = outcome(t.connector.getData());
  t.ws.last.serverClose(1001, 'stopping');
  const { error } = await p;
  assert.equal(error.code, 'disconnected');
  assert.equal(error.action, 'getData');
});

test('a FAILURE of createEnvironment or setNotificationsOn is not restored on reconnect', async () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 7);
  const sock = t.ws.last;
  t.connector.createEnvironment('bad name', 'crm').catch(() => {});
  sock.fail(sock.last('createEnvironment'), 'invalid_name');
  t.connector.VOICE.setNotificationsOn('not allowed').catch(() => {});
  sock.fail(sock.last('setNotificationsOn'), 'invalid_name');
  sock.serverClose(1006);
  await t.clock.tick(500);
  t.ws.last.accept('token-2');
  const resume = t.ws.last.last('resume');
  assert.deepEqual(
    resume.environments.map((e) => [e.environment, e.subscriptions]),
    [['VOICE', []]],
  );
});

test('Connector is also the default export, with its helpers as statics', async () => {
  const mod = await import('../connector.mjs');
  assert.equal(mod.default, Connector);
  assert.equal(Connector.backoffDelay, mod.backoffDelay);
  assert.equal(Connector.diagnose, mod.diagnose);
  assert.equal(Connector.States.CONNECTED, 'connected');
});

// v1 compatibility in connector.js: LoadXML / RetrieveXML /
// RetrieveEnvironmentXML on the wire, and the typed accessors
// ContextInteger, ContextLong, ContextDouble, ContextBoolean, ContextString
// (conversion rules, errors for wrong types, writes with JSON types).

import test from 'node:test';
import assert from 'node:assert/strict';

import { convertTyped } from '../connector.mjs';
import { connected, register, outcome, settle } from '../test-support/fakes.mjs';

const XML = '<context><environment name="VOICE"><variable name="ANI">1</variable></environment></context>';

test('LoadXML and RetrieveXML send the documented actions and resolve with the data', async () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 7);
  const sock = t.ws.last;
  const env = t.connector.VOICE;

  const loaded = outcome(env.LoadXML('<crm><Id>4</Id></crm>', 'crm', 'CRM_'));
  const req = sock.last('loadXML');
  assert.deepEqual(req, { action: 'loadXML', requestId: req.requestId, environment: 'VOICE', xml: '<crm><Id>4</Id></crm>', root: 'crm', prefix: 'CRM_' });
  sock.reply(req, { data: { environments: [{ environment: 'VOICE', epoch: 7, seq: 1 }] } });
  assert.deepEqual((await loaded).value, { environments: [{ environment: 'VOICE', epoch: 7, seq: 1 }] });

  // Top level: no environment, defaults for root and prefix.
  const all = outcome(t.connector.LoadXML(XML));
  const top = sock.last('loadXML');
  assert.deepEqual(top, { action: 'loadXML', requestId: top.requestId, xml: XML, root: '', prefix: '' });
  sock.reply(top, { data: { environments: [{ environment: 'VOICE', epoch: 7, seq: 2 }] } });
  await all;
  // The position moved with the reply: an older event is now stale and ignored.
  const seen = [];
  env.oncontextchanged = (name, value) => seen.push([name, value]);
  sock.receive({ type: 'event', event: 'ContextChanged', EnvironmentName: 'VOICE', VarChanged: 'old', ValueChanged: 1, epoch: 7, seq: 2 });
  sock.receive({ type: 'event', event: 'ContextChanged', EnvironmentName: 'VOICE', VarChanged: 'new', ValueChanged: 2, epoch: 7, seq: 3 });
  assert.deepEqual(seen, [['new', 2]]);

  let fromCallback;
  const retrieved = t.connector.RetrieveXML((xml) => {
    fromCallback = xml;
  });
  sock.reply(sock.last('retrieveXML'), { data: XML });
  assert.equal(await retrieved, XML);
  assert.equal(fromCallback, XML);

  const one = env.RetrieveEnvironmentXML();
  const r = sock.last('retrieveEnvironmentXML');
  assert.equal(r.environment, 'VOICE');
  sock.reply(r, { data: XML, epoch: 7, seq: 3 });
  assert.equal(await one, XML);

  const viaEnv = env.RetrieveXML();
  sock.reply(sock.last('retrieveXML'), { data: XML });
  assert.equal(await viaEnv, XML);

  const bad = outcome(env.LoadXML('<context>'));
  sock.fail(sock.last('loadXML'), 'invalid_xml', 'loadXML: XML line 1, column 10: the document ends inside an element');
  const { error } = await bad;
  assert.equal(error.code, 'invalid_xml');
  assert.match(error.message, /line 1, column 10/);
});

test('typed getters convert stored JSON values by the documented rules', () => {
  const ok = [
    ['Integer', 42, 42],
    ['Integer', ' -7 ', -7],
    ['Integer', '+12', 12],
    ['Integer', 32767, 32767],
    ['Long', 2147483647, 2147483647],
    ['Long', '-2147483648', -2147483648],
    ['Double', 1.5, 1.5],
    ['Double', '-2.5e3', -2500],
    ['Double', '.5', 0.5],
    ['Double', 7, 7],
    ['Boolean', true, true],
    ['Boolean', false, false],
    ['Boolean', 1, true],
    ['Boolean', 0, false],
    ['Boolean', 'TRUE', true],
    ['Boolean', ' false ', false],
    ['Boolean', '1', true],
    ['Boolean', '0', false],
    ['String', 'abc', 'abc'],
    ['String', 3225551234, '3225551234'],
    ['String', true, 'true'],
    ['String', null, ''],
  ];
  for (const [kind, stored, expected] of ok) {
    assert.equal(convertTyped(kind, stored), expected, `${kind} ${JSON.stringify(stored)}`);
  }
  const bad = [
    ['Integer', 1.5, 'type_mismatch'],
    ['Integer', '1.0', 'type_mismatch'],
    ['Integer', '', 'type_mismatch'],
    ['Integer', 'twelve', 'type_mismatch'],
    ['Integer', true, 'type_mismatch'],
    ['Integer', null, 'type_mismatch'],
    ['Integer', 32768, 'out_of_range'],
    ['Integer', '-32769', 'out_of_range'],
    ['Long', 2147483648, 'out_of_range'],
    ['Long', '0x10', 'type_mismatch'],
    ['Double', 'abc', 'type_mismatch'],
    ['Double', '', 'type_mismatch'],
    ['Double', 'Infinity', 'type_mismatch'],
    ['Double', false, 'type_mismatch'],
    ['Double', null, 'type_mismatch'],
    ['Boolean', 2, 'type_mismatch'],
    ['Boolean', 'yes', 'type_mismatch'],
    ['Boolean', null, 'type_mismatch'],
    ['String', { a: 1 }, 'type_mismatch'],
    ['String', undefined, 'type_mismatch'],
  ];
  for (const [kind, stored, code] of bad) {
    assert.throws(
      () => convertTyped(kind, stored, 'VOICE.x'),
      (e) => e.name === 'ConnectorError' && e.code === code && e.action === `Context${kind}` && e.message.includes('VOICE.x'),
      `${kind} ${JSON.stringify(stored)}`,
    );
  }
  assert.throws(() => convertTyped('Currency', 1), TypeError);
});

test('typed accessors read through getEnvironment and write typed values', async () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 7);
  const sock = t.ws.last;
  const env = t.connector.VOICE;
  const stored = { count: '12', ratio: 0.25, vip: 'true', ANI: 3225551234, big: 70000 };
  const answer = () => sock.reply(sock.last('getEnvironment'), { data: stored, epoch: 7, seq: 1 });

  const reads = [
    [env.ContextInteger('count'), 12],
    [env.ContextDouble('ratio'), 0.25],
    [env.ContextBoolean('vip'), true],
    [env.ContextString('ANI'), '3225551234'],
    [env.ContextLong('big'), 70000],
  ];
  assert.equal(sock.sent.filter((m) => m.action === 'getEnvironment').length, 5);
  for (const m of sock.sent.filter((m) => m.action === 'getEnvironment')) {
    sock.reply(m, { data: stored, epoch: 7, seq: 1 });
  }
  for (const [promise, expected] of reads) assert.equal(await promise, expected);

  // Wrong type, out of range and absent: rejected with a code.
  const wrong = outcome(env.ContextInteger('big'));
  answer();
  assert.equal((await wrong).error.code, 'out_of_range');
  const notBool = outcome(env.ContextBoolean('ratio'));
  answer();
  assert.equal((await notBool).error.code, 'type_mismatch');
  const absent = outcome(env.ContextString('nothing'));
  answer();
  const { error } = await absent;
  assert.equal(error.code, 'not_found');
  assert.match(error.message, /VOICE\.nothing is not set/);

  // Writes: converted, then one setContextVariable with the JSON type.
  const writes = [
    [env.ContextInteger('n', '42'), 42],
    [env.ContextLong('l', 100000), 100000],
    [env.ContextDouble('d', '1.5'), 1.5],
    [env.ContextBoolean('b', 'false'), false],
    [env.ContextString('s', 3225551234), '3225551234'],
  ];
  const sets = sock.sent.filter((m) => m.action === 'setContextVariable');
  assert.deepEqual(
    sets.map((m) => [m.environment, m.name, m.value]),
    [
      ['VOICE', 'n', 42],
      ['VOICE', 'l', 100000],
      ['VOICE', 'd', 1.5],
      ['VOICE', 'b', false],
      ['VOICE', 's', '3225551234'],
    ],
  );
  for (const m of sets) sock.reply(m, { epoch: 7, seq: 2 });
  for (const [promise] of writes) assert.equal(await promise, undefined);

  // A value of the wrong type is refused before anything is sent.
  const before = sock.sent.length;
  const refused = await outcome(env.ContextInteger('n', 'many'));
  assert.equal(refused.error.code, 'type_mismatch');
  const big = await outcome(env.ContextInteger('n', 40000));
  assert.equal(big.error.code, 'out_of_range');
  await settle();
  assert.equal(sock.sent.length, before);
});

test('the classic build exposes the same helpers', async () => {
  const { createRequire } = await import('node:module');
  const Classic = createRequire(import.meta.url)('../connector.js');
  assert.equal(Classic.convertTyped('Integer', '42'), 42);
  assert.equal(typeof new Classic({ WebSocket: null, fetch: null, storage: null, window: null, document: null, navigator: null }).RetrieveXML, 'function');
});

// Events reach the right environment and callback, once each.

import test from 'node:test';
import assert from 'node:assert/strict';

import { connected, register, changed } from '../test-support/fakes.mjs';

test('ContextChanged goes to oncontextchanged(name, value, event) of its environment only', () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 10);
  register(t, 'EMAIL', 'crm', 20);
  const seen = [];
  t.connector.VOICE.oncontextchanged = function (name, value, event) {
    seen.push(['VOICE', name, value, event.seq, this === t.connector.VOICE]);
  };
  t.connector.EMAIL.oncontextchanged = (name, value) => seen.push(['EMAIL', name, value]);
  const sock = t.ws.last;
  sock.receive(changed('VOICE', 'GEN_T2P', 'EvRinging', 10, 1, { Values: { GEN_T2P: 'EvRinging' } }));
  sock.receive(changed('EMAIL', 'subject', 'Invoice', 20, 1));
  sock.receive(changed('VOICE', 'n', null, 10, 2));
  sock.receive(changed('VOICE', 'count', 3, 10, 3));
  sock.receive(changed('OTHER', 'x', 1, 30, 1)); // not ours: ignored
  assert.deepEqual(seen, [
    ['VOICE', 'GEN_T2P', 'EvRinging', 1, true],
    ['EMAIL', 'subject', 'Invoice'],
    ['VOICE', 'n', null, 2, true],
    ['VOICE', 'count', 3, 3, true],
  ]);
});

test('the event object is passed whole (Values included)', () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 10);
  let got;
  t.connector.VOICE.oncontextchanged = (_n, _v, event) => (got = event);
  const ev = changed('VOICE', 'ANI', '322', 10, 1, { Values: { ANI: '322' } });
  t.ws.last.receive(ev);
  assert.deepEqual(got, ev);
});

test('VarRemoved and EnvironmentCleaned: onremoved/oncleaned, else oncontextchanged with undefined', () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 10);
  register(t, 'EMAIL', 'crm', 20);
  const seen = [];
  // VOICE only has the legacy handler
  t.connector.VOICE.oncontextchanged = (name, value, event) => seen.push(['VOICE', event.event, name, value]);
  // EMAIL has the dedicated ones
  t.connector.EMAIL.oncontextchanged = () => seen.push(['EMAIL', 'unexpected']);
  t.connector.EMAIL.onremoved = (name, event) => seen.push(['EMAIL', event.event, name]);
  t.connector.EMAIL.oncleaned = (event) => seen.push(['EMAIL', event.event, event.seq]);
  const sock = t.ws.last;
  const removed = (env, name, epoch, seq) => ({ type: 'event', event: 'VarRemoved', EnvironmentName: env, VarChanged: name, epoch, seq });
  const cleaned = (env, epoch, seq) => ({ type: 'event', event: 'EnvironmentCleaned', EnvironmentName: env, epoch, seq });
  sock.receive(removed('VOICE', 'ANI', 10, 1));
  sock.receive(cleaned('VOICE', 10, 2));
  sock.receive(removed('EMAIL', 'subject', 20, 1));
  sock.receive(cleaned('EMAIL', 20, 2));
  assert.deepEqual(seen, [
    ['VOICE', 'VarRemoved', 'ANI', undefined],
    ['VOICE', 'EnvironmentCleaned', '*', undefined],
    ['EMAIL', 'VarRemoved', 'subject'],
    ['EMAIL', 'EnvironmentCleaned', 2],
  ]);
});

test('ServerStatus goes to onserverstatus; every raw message to onwebsocketmessage', () => {
  const t = connected();
  const raw = [];
  const status = [];
  t.connector.onwebsocketmessage = (text, event) => raw.push([text, typeof event.data]);
  t.connector.onserverstatus = (s, event) => status.push([s, event.event]);
  const sock = t.ws.last;
  sock.receive({ type: 'event', event: 'ServerStatus', status: 'stopping-service' });
  sock.receive('not json at all');
  sock.receive('[1,2]');
  assert.deepEqual(status, [['stopping-service', 'ServerStatus']]);
  assert.deepEqual(raw, [
    ['{"type":"event","event":"ServerStatus","status":"stopping-service"}', 'string'],
    ['not json at all', 'string'],
    ['[1,2]', 'string'],
  ]);
});

test('PickupResult goes to onpickupresult(key, result, event)', () => {
  const t = connected();
  const got = [];
  t.connector.onpickupresult = (key, result, event) => got.push([key, result, event.errorCode]);
  t.ws.last.receive({ type: 'event', event: 'PickupResult', key: 'ix-1', result: 'pickedUp' });
  t.ws.last.receive({ type: 'event', event: 'PickupResult', key: 'ix-2', result: 'failed', errorCode: 'not_supported', errorMessage: 'no desktop' });
  assert.deepEqual(got, [
    ['ix-1', 'pickedUp', undefined],
    ['ix-2', 'failed', 'not_supported'],
  ]);
});

test('an event already seen (same epoch, seq not higher) is not delivered again; a new epoch is', () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 10);
  const seqs = [];
  t.connector.VOICE.oncontextchanged = (_n, _v, e) => seqs.push(`${e.epoch}/${e.seq}`);
  const sock = t.ws.last;
  for (const seq of [1, 2, 2, 1, 3]) sock.receive(changed('VOICE', 'a', seq, 10, seq));
  // a reply moves the position too: an event at or below it is old
  t.connector.VOICE.setContextVariable('b', 1);
  sock.reply(sock.last('setContextVariable'), { epoch: 10, seq: 5 });
  sock.receive(changed('VOICE', 'a', 5, 10, 5));
  sock.receive(changed('VOICE', 'a', 6, 10, 6));
  // the environment was re-created: new epoch, seq restarts
  sock.receive(changed('VOICE', 'a', 1, 11, 1));
  assert.deepEqual(seqs, ['10/1', '10/2', '10/3', '10/6', '11/1']);
});

test('setAllJSON replies move the position of every environment they name', () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 10);
  register(t, 'EMAIL', 'crm', 20);
  const seen = [];
  t.connector.VOICE.oncontextchanged = (_n, _v, e) => seen.push(`VOICE ${e.seq}`);
  t.connector.EMAIL.oncontextchanged = (_n, _v, e) => seen.push(`EMAIL ${e.seq}`);
  const sock = t.ws.last;
  t.connector.setAllJSON([
    { environment: 'VOICE', data: { a: 1, b: 2 } },
    { environment: 'EMAIL', data: { c: 3 } },
  ]);
  sock.reply(sock.last('setAllJSON'), {
    data: { environments: [{ environment: 'VOICE', epoch: 10, seq: 2 }, { environment: 'EMAIL', epoch: 20, seq: 1 }] },
  });
  sock.receive(changed('VOICE', 'a', 0, 10, 2));
  sock.receive(changed('EMAIL', 'a', 0, 20, 2));
  assert.deepEqual(seen, ['EMAIL 2']);
});

test('an exception in a handler is reported and does not stop later events', () => {
  const t = connected();
  register(t, 'VOICE', 'crm', 10);
  const reported = [];
  const saved = globalThis.reportError;
  globalThis.reportError = (e) => reported.push(e.message);
  try {
    const seen = [];
    t.connector.VOICE.oncontextchanged = (name) => {
      seen.push(name);
      if (name === 'boom') throw new Error('handler bug');
    };
    t.ws.last.receive(changed('VOICE', 'boom', 1, 10, 1));
    t.ws.last.receive(changed('VOICE', 'next', 1, 10, 2));
    assert.deepEqual(seen, ['boom', 'next']);
    assert.deepEqual(reported, ['handler bug']);
  } finally {
    if (saved === undefined) delete globalThis.reportError;
    else globalThis.reportError = saved;
  }
});

// The classic-script build: committed, identical to what build.mjs makes
// from connector.mjs now, and usable as a plain <script> or under CommonJS.

import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

import { build, SOURCE, OUTPUT } from '../build.mjs';
import { Connector as EsmConnector } from '../connector.mjs';
import { fakeWebSockets } from '../test-support/fakes.mjs';

const classic = readFileSync(OUTPUT, 'utf8');

test('connector.js is exactly what build.mjs generates from connector.mjs (run `node build.mjs`)', () => {
  assert.equal(classic, build(readFileSync(SOURCE, 'utf8')));
});

test('as a classic script it defines the global Connector, which works', async () => {
  const ws = fakeWebSockets();
  const sandbox = { setTimeout, clearTimeout, console };
  vm.runInNewContext(classic, sandbox, { filename: 'connector.js' });
  const Connector = sandbox.Connector;
  assert.equal(typeof Connector, 'function');
  assert.deepEqual(
    Object.getOwnPropertyNames(Connector.prototype).sort(),
    Object.getOwnPropertyNames(EsmConnector.prototype).sort(),
    'same API as the module',
  );
  const c = new Connector({ WebSocket: ws.WebSocket, fetch: null, storage: null });
  c.start('ws', 8443);
  const registered = c.createEnvironment('VOICE', 'crm').catch((e) => e);
  ws.last.accept('t');
  assert.deepEqual(ws.last.sent.map((m) => m.action), ['createEnvironment']);
  assert.equal(typeof c.VOICE.setContextVariable, 'function');
  c.stop();
  assert.equal((await registered).code, 'disconnected');
});

test('under CommonJS it sets module.exports and no global', () => {
  const module = { exports: {} };
  const sandbox = { module, exports: module.exports, setTimeout, clearTimeout };
  vm.runInNewContext(classic, sandbox);
  assert.equal(typeof module.exports, 'function');
  assert.equal(module.exports.name, 'Connector');
  assert.equal(sandbox.Connector, undefined);
});

test('build.mjs refuses module syntax it cannot convert', () => {
  assert.throws(() => build("import x from './x.mjs';\nexport class Connector {}\n"), /does not know how to convert/);
  assert.throws(() => build('export { Connector };\n'), /does not know how to convert/);
});

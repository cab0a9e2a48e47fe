// The wsconnector demo page, built on connector.js (global `Connector`).
// Values come from other clients and origins: they are only ever rendered
// with textContent, never as markup. No inline script anywhere (the daemon
// sends a Content-Security-Policy without 'unsafe-inline').
'use strict';

(function () {
  /** What each connection state means for someone looking at this page. */
  const STATE_TEXT = {
    connecting: 'Connecting to the daemon…',
    connected: 'The daemon on this PC answers.',
    reconnecting: 'Connection lost: reconnecting…',
    disconnected: 'Disconnected.',
    'daemon-not-running': 'The wsconnector daemon is not running on this PC.',
    'origin-refused': 'The daemon refuses this page\u2019s origin (AllowedHosts in config.xml).',
    'blocked-by-browser': 'The browser blocks this page from reaching the local network: allow it in the site settings.',
    'certificate-untrusted': 'The daemon runs, but this browser does not trust its certificate (wsconnector cert create, then trust the CA).',
  };
  /** How many log lines each list keeps. */
  const MAX_LOG = 50;

  const $ = (id) => document.getElementById(id);
  const values = new Map(); // variable name -> value, for the current environment
  let connector = null;
  let env = null; // the registered environment name, or null

  // ---- rendering -------------------------------------------------------

  function typeOf(v) {
    return v === null ? 'null' : typeof v;
  }

  function show(v) {
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  function setState(state, detail) {
    const box = $('state');
    box.className = 'state state-' + String(state).replace(/[^a-z-]/g, '');
    $('state-name').textContent = state;
    const reason = detail && (detail.message || detail.reason || (typeof detail === 'string' ? detail : ''));
    $('state-detail').textContent = (STATE_TEXT[state] || '') + (reason ? ' ' + reason : '');
    box.dataset.state = state;
  }

  function renderValues() {
    const body = $('variables-body');
    body.replaceChildren();
    const names = [...values.keys()].sort();
    for (const name of names) {
      const v = values.get(name);
      const tr = document.createElement('tr');
      tr.dataset.name = name;
      for (const text of [name, show(v), typeOf(v)]) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      const td = document.createElement('td');
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'small';
      remove.textContent = 'Remove';
      remove.addEventListener('click', () =>
        run('removeItemFromEnvironment', () => connector.environment(env).removeItemFromEnvironment(name)).then(
          (ok) => ok && (values.delete(name), renderValues()),
        ),
      );
      td.append(remove);
      tr.append(td);
      body.append(tr);
    }
    $('variables-empty').hidden = names.length > 0;
  }

  function log(listId, parts, kind) {
    const li = document.createElement('li');
    if (kind) li.className = kind;
    const time = document.createElement('time');
    time.textContent = new Date().toLocaleTimeString();
    li.append(time);
    for (const [cls, text] of parts) {
      const span = document.createElement('span');
      span.className = cls;
      span.textContent = text;
      li.append(span);
    }
    const list = $(listId);
    list.prepend(li);
    while (list.children.length > MAX_LOG) list.lastChild.remove();
  }

  function logError(what, err) {
    const code = (err && err.code) || 'error';
    const message = (err && err.message) || String(err);
    log('results', [['what', what], ['code', code], ['message', message]], 'failure');
  }

  /** Runs one connector call; logs failures; resolves true on success. */
  function run(what, call) {
    let p;
    try {
      p = Promise.resolve(call());
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.then(
      (data) => {
        if (data !== undefined && what.startsWith('info:')) {
          log('results', [['what', what.slice(5)], ['value', show(data)]], 'success');
        }
        return true;
      },
      (err) => {
        logError(what, err);
        return false;
      },
    );
  }

  function setRegistered(name) {
    env = name;
    for (const id of ['unregister', 'set', 'refresh', 'clean']) $(id).disabled = !name;
    $('register').textContent = name ? 'Register again' : 'Register';
    $('registered').textContent = name ? 'Registered in environment \u201c' + name + '\u201d.' : 'Not registered.';
    if (!name) {
      values.clear();
      renderValues();
    }
  }

  // ---- context changes from other clients -------------------------------

  function onChange(envName, name, value, event) {
    if (envName !== env) return;
    const kind = (event && event.event) || 'ContextChanged';
    if (event && event.Values && typeof event.Values === 'object') {
      values.clear();
      for (const [k, v] of Object.entries(event.Values)) values.set(k, v);
    } else if (kind === 'VarRemoved') {
      values.delete(name);
    } else if (kind === 'EnvironmentCleaned' || kind === 'EnvironmentRemoved') {
      values.clear();
    } else {
      values.set(name, value);
    }
    renderValues();
    const parts = [['event', kind]];
    if (name !== undefined && name !== null && kind !== 'EnvironmentCleaned') parts.push(['name', String(name)]);
    if (kind === 'ContextChanged') parts.push(['value', show(value)], ['type', typeOf(value)]);
    log('events', parts);
  }

  function reload() {
    if (!env) return Promise.resolve(false);
    const name = env;
    return run('getEnvironment', () =>
      connector
        .environment(name)
        .getEnvironment()
        .then((data) => {
          values.clear();
          for (const [k, v] of Object.entries(data || {})) values.set(k, v);
          renderValues();
        }),
    );
  }

  // ---- wiring -----------------------------------------------------------

  function parseValue(text, type) {
    switch (type) {
      case 'number': {
        const n = Number(text);
        if (text.trim() === '' || !Number.isFinite(n)) throw Object.assign(new Error('not a number: ' + text), { code: 'invalid_value' });
        return n;
      }
      case 'boolean':
        if (text !== 'true' && text !== 'false') throw Object.assign(new Error('write true or false'), { code: 'invalid_value' });
        return text === 'true';
      case 'null':
        return null;
      default:
        return text;
    }
  }

  function wire() {
    $('register-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const name = $('env').value.trim();
      const client = $('client').value.trim();
      run('createEnvironment', () => connector.createEnvironment(name, client)).then((ok) => {
        if (!ok) return;
        const environment = connector.environment(name);
        environment.oncontextchanged = (n, v, ev) => onChange(name, n, v, ev);
        setRegistered(name);
        run('setNotificationsOn', () => environment.setNotificationsOn('*'));
        reload();
      });
    });

    $('unregister').addEventListener('click', () => {
      const name = env;
      run('removeEnvironment', () => connector.removeEnvironment(name, $('cleanup').checked)).then(
        (ok) => ok && setRegistered(null),
      );
    });

    $('set-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const name = $('var-name').value.trim();
      let value;
      try {
        value = parseValue($('var-value').value, $('var-type').value);
      } catch (err) {
        logError('setContextVariable', err);
        return;
      }
      run('setContextVariable', () => connector.environment(env).setContextVariable(name, value)).then((ok) => {
        if (ok) {
          values.set(name, value);
          renderValues();
        }
      });
    });

    $('refresh').addEventListener('click', reload);
    $('clean').addEventListener('click', () =>
      run('cleanEnvironment', () => connector.environment(env).cleanEnvironment()).then(
        (ok) => ok && (values.clear(), renderValues()),
      ),
    );
    $('get-data').addEventListener('click', () =>
      run('getData', () =>
        connector.getData().then((data) => {
          const box = $('all-data');
          box.textContent = JSON.stringify(data, null, 2);
          box.hidden = false;
        }),
      ),
    );

    const actions = {
      'action-notify': ['showNotification', () => connector.showNotification('wsconnector demo', 'Hello from the demo page', 5000, 'Blue', 300, 100)],
      'action-dialog': ['showPickupDialog', () => connector.showPickupDialog('Incoming call', 'Pick up')],
      'action-launch': ['launchProcess', () => connector.launchProcess('notepad', '')],
      'action-window': ['setSizeWindow', () => connector.setSizeWindow(0, 0, 0, 'wsconnector demo', true)],
      'info-version': ['info:getVersion', () => connector.getVersion()],
      'info-host': ['info:getHost', () => connector.getHost()],
      'info-user': ['info:getUser', () => connector.getUser()],
    };
    for (const [id, [what, call]] of Object.entries(actions)) {
      $(id).addEventListener('click', () =>
        run(what, call).then((ok) => {
          if (ok && !what.startsWith('info:')) log('results', [['what', what], ['value', 'done']], 'success');
        }),
      );
    }
  }

  function start() {
    if (typeof window.Connector !== 'function') {
      setState('daemon-not-running', { message: 'connector.js did not load.' });
      return;
    }
    // Talk to the daemon under the very name this page came from: the
    // socket and the /health probes stay same-origin ('self' in the CSP).
    connector = new window.Connector({ host: window.location.hostname });
    connector.onstatechange = (state, detail) => setState(state, detail);
    connector.onready = () => {
      setState('connected');
      reload();
    };
    connector.ondisconnect = () => {
      if ($('state').dataset.state === 'connected') setState('reconnecting');
    };
    connector.onresync = (name, vals) => {
      if (name !== env) return;
      values.clear();
      for (const [k, v] of Object.entries(vals || {})) values.set(k, v);
      renderValues();
      log('events', [['event', 'resynchronised'], ['name', 'the daemon restarted or history was lost']]);
    };
    const secure = window.location.protocol === 'https:';
    const port = Number(window.location.port) || (secure ? 443 : 80);
    wire();
    setRegistered(null);
    setState('connecting');
    connector.start(secure ? 'wss' : 'ws', port);
  }

  start();
})();

// The wsconnector inspector page. It talks to the daemon over its own
// socket (/inspector/ws, docs/inspector.md) and renders everything with
// textContent: values come from other origins and must never become markup
// (the page's policy also requires Trusted Types, so markup sinks throw).
'use strict';

(function () {
  const MAX_TRACE_ROWS = 1000;
  const RETRY_MS = [500, 1000, 2000, 5000];

  const $ = (id) => document.getElementById(id);

  /** A new element with text (never markup) and optional class. */
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function row(cells, cls) {
    const tr = el('tr', null, cls);
    for (const c of cells) {
      const td = el('td');
      if (c instanceof Node) td.appendChild(c);
      else td.textContent = c === undefined || c === null ? '' : String(c);
      tr.appendChild(td);
    }
    return tr;
  }

  /** A JSON value as the text a person reads: strings bare, the rest as JSON. */
  function show(v) {
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  function time(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString() + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }

  /** KEY=VALUE lines into an object (insertion order kept). */
  function keyValues(text) {
    const out = {};
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const i = line.indexOf('=');
      if (i <= 0) throw new Error('not KEY=VALUE: ' + line);
      out[line.slice(0, i).trim()] = line.slice(i + 1);
    }
    return out;
  }

  // ---- state
  let socket = null;
  let tries = 0;
  let catalogue = { channels: [], events: [], requests: [] };
  let lastEnvs = new Map(); // "env" -> Map(name -> JSON text)
  let clients = [];
  let traceRows = [];
  let selectedSeq = null;
  let nextId = 1;
  const results = new Map(); // id -> description
  let recording = null; // { started, steps: [] } while recording
  let recorded = [];

  function setState(name, detail) {
    $('state').className = 'state state-' + name;
    $('state-name').textContent = name;
    $('state-detail').textContent = detail || '';
  }

  // ---- socket
  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    socket = new WebSocket(scheme + location.host + '/inspector/ws');
    socket.onopen = () => {
      tries = 0;
      setState('connected');
    };
    socket.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      const handler = handlers[msg.type];
      if (handler) handler(msg);
    };
    socket.onclose = () => {
      socket = null;
      const wait = RETRY_MS[Math.min(tries, RETRY_MS.length - 1)];
      tries += 1;
      setState('closed', 'retrying; if this lasts, run `wsconnector inspect` again');
      setTimeout(connect, wait);
    };
  }

  function send(cmd) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      $('sim-result').textContent = 'not connected';
      $('sim-result').className = 'bad';
      return null;
    }
    const id = nextId++;
    socket.send(JSON.stringify({ ...cmd, id }));
    return id;
  }

  const handlers = {
    hello(msg) {
      catalogue = msg.catalogue;
      setState('connected', msg.user + ' · wsconnector ' + msg.version + ' · port ' + msg.port);
      fillCatalogue();
    },
    clients(msg) {
      clients = msg.clients;
      renderClients();
    },
    environments(msg) {
      renderEnvs(msg.environments);
    },
    trace(msg) {
      addTrace(msg.entries);
    },
    result(msg) {
      const what = results.get(msg.id) || 'command';
      results.delete(msg.id);
      const r = $('sim-result');
      if (msg.ok) {
        const reply = msg.reply || {};
        r.textContent = what + ': SUCCESS (epoch ' + reply.epoch + ', seq ' + reply.seq + ')';
        r.className = 'ok';
      } else {
        r.textContent = what + ': FAILURE ' + (msg.error || '');
        r.className = 'bad';
      }
      r.dataset.ok = String(Boolean(msg.ok));
      r.dataset.id = String(msg.id);
    },
  };

  // ---- clients
  function renderClients() {
    const body = $('clients').tBodies[0];
    const rows = clients.map((c) => {
      const envs = el('div');
      for (const e of c.environments) {
        const subs = e.subscriptions.map((s) => s.name + (s.values ? ' (+Values)' : '')).join(', ');
        envs.appendChild(el('div', e.environment + ' — ' + e.clientName + (subs ? ': ' + subs : '')));
      }
      const origin = c.inspector ? 'inspector (simulator)' : c.native ? 'native' : c.origin;
      const tr = row(
        [c.id, c.user, origin, envs, new Date(c.sinceMs).toLocaleString(), c.messagesIn, c.messagesOut],
        c.inspector ? 'inspector-row' : '',
      );
      tr.dataset.conn = String(c.id);
      return tr;
    });
    body.replaceChildren(...rows);
    $('clients-count').textContent = '(' + clients.length + ')';
    // The trace's client filter follows the list.
    const sel = $('trace-conn');
    const keep = sel.value;
    const opts = [new Option('all', '')];
    for (const c of clients) {
      const name = c.environments.map((e) => e.clientName).join(', ');
      opts.push(new Option('#' + c.id + ' ' + (c.native ? 'native' : c.origin || '') + (name ? ' ' + name : ''), String(c.id)));
    }
    if (keep && !clients.some((c) => String(c.id) === keep)) opts.push(new Option('#' + keep + ' (gone)', keep));
    sel.replaceChildren(...opts);
    sel.value = keep;
  }

  // ---- environments
  function renderEnvs(envs) {
    const box = $('envs');
    const seen = new Map();
    const parts = envs.map((env) => {
      const before = lastEnvs.get(env.name);
      const now = new Map();
      const div = el('div', null, 'env');
      div.dataset.env = env.name;
      const h = el('h3', env.name + ' ');
      h.appendChild(el('span', '(epoch ' + env.epoch + ', seq ' + env.seq + ') · ' + env.registrations.length + ' registered', 'muted'));
      div.appendChild(h);
      const table = el('table');
      const body = el('tbody');
      for (const [name, value] of Object.entries(env.variables)) {
        const text = JSON.stringify(value);
        now.set(name, text);
        const changed = before !== undefined && before.get(name) !== text;
        const valueCell = el('td', show(value), 'value');
        const tr = el('tr', null, changed ? 'changed' : '');
        tr.appendChild(el('td', name));
        tr.appendChild(valueCell);
        tr.dataset.name = name;
        body.appendChild(tr);
      }
      if (!body.firstChild) body.appendChild(row(['(no variables)', '']));
      table.appendChild(body);
      div.appendChild(table);
      seen.set(env.name, now);
      return div;
    });
    lastEnvs = seen;
    box.replaceChildren(...parts);
    if (!parts.length) box.appendChild(el('p', 'no environment yet', 'muted'));
    $('envs-count').textContent = '(' + envs.length + ')';
  }

  // ---- trace
  function summary(text) {
    try {
      const m = JSON.parse(text);
      const bits = [m.type || '', m.action || m.event || ''];
      if (m.environment || m.EnvironmentName) bits.push(m.environment || m.EnvironmentName);
      if (m.VarChanged !== undefined) bits.push(m.VarChanged + ' = ' + show(m.ValueChanged));
      if (m.result) bits.push(m.result);
      if (m.errorCode) bits.push(m.errorCode);
      return bits.filter(Boolean).join(' · ');
    } catch (_) {
      return text.slice(0, 120);
    }
  }

  function traceVisible(e) {
    const conn = $('trace-conn').value;
    const dir = $('trace-dir').value;
    const needle = $('trace-filter').value;
    return (!conn || String(e.conn) === conn) && (!dir || e.dir === dir) && (!needle || e.text.includes(needle));
  }

  function traceRow(e) {
    const tr = row([time(e.atMs), '#' + e.conn, e.dir, summary(e.text) + (e.truncated ? ' (cut)' : '')]);
    tr.cells[2].className = 'dir-' + e.dir;
    tr.dataset.seq = String(e.seq);
    tr.addEventListener('click', () => selectTrace(e, tr));
    return tr;
  }

  function selectTrace(e, tr) {
    selectedSeq = e.seq;
    for (const r of $('trace').tBodies[0].rows) r.classList.remove('selected');
    tr.classList.add('selected');
    const pre = $('trace-json');
    let text = e.text;
    try {
      text = JSON.stringify(JSON.parse(e.text), null, 2);
    } catch (_) {
      // Shown as received.
    }
    pre.textContent = text;
    pre.hidden = false;
  }

  function addTrace(entries) {
    for (const e of entries) traceRows.push(e);
    if (traceRows.length > MAX_TRACE_ROWS) traceRows = traceRows.slice(-MAX_TRACE_ROWS);
    if (!$('trace-pause').checked) renderTrace();
    else $('trace-count').textContent = '(' + traceRows.length + ', paused)';
  }

  function renderTrace() {
    const body = $('trace').tBodies[0];
    const visible = traceRows.filter(traceVisible);
    const rows = visible.slice().reverse().map(traceRow);
    body.replaceChildren(...rows);
    for (const r of rows) if (r.dataset.seq === String(selectedSeq)) r.classList.add('selected');
    $('trace-count').textContent = '(' + visible.length + ' of ' + traceRows.length + ')';
  }

  // ---- simulator
  function fillCatalogue() {
    const events = $('sim-event');
    events.replaceChildren(...catalogue.events.map((e) => new Option(e.name, e.name)));
    events.value = 'EvRinging';
    const requests = $('req-request');
    requests.replaceChildren(...catalogue.requests.map((r) => new Option(r.name, r.name)));
    $('channels').replaceChildren(...catalogue.channels.map((c) => new Option(c, c)));
    describe();
  }

  function describe() {
    const e = catalogue.events.find((x) => x.name === $('sim-event').value);
    $('sim-event-help').textContent = e ? e.description + (e.newInteraction ? ' — clears the environment first' : '') : '';
    const r = catalogue.requests.find((x) => x.name === $('req-request').value);
    $('req-help').textContent = r ? r.description + (r.fields.length ? ' — variables: ' + r.fields.join(', ') : '') : '';
    if (r && !$('req-fields').value.trim()) $('req-fields').value = r.fields.map((f) => f + '=').join('\n');
  }

  /** Sends one simulator command; records it while recording. */
  function run(cmd, what) {
    const id = send(cmd);
    if (id === null) return;
    results.set(id, what);
    if (recording) {
      recording.steps.push({ at: Date.now() - recording.started, cmd, what });
      renderSteps(recording.steps);
    }
  }

  function simulate(ev) {
    ev.preventDefault();
    let data;
    try {
      data = keyValues($('sim-data').value);
    } catch (e) {
      $('sim-result').textContent = e.message;
      $('sim-result').className = 'bad';
      return;
    }
    const cmd = {
      type: 'simulate',
      environment: $('sim-env').value.trim(),
      event: $('sim-event').value,
      ani: $('sim-ani').value,
      dnis: $('sim-dnis').value,
      interactionId: $('sim-iid').value,
      parties: $('sim-parties').value,
      data,
    };
    run(cmd, cmd.event + ' in ' + cmd.environment);
  }

  function request(ev) {
    ev.preventDefault();
    let fields;
    try {
      fields = keyValues($('req-fields').value);
    } catch (e) {
      $('sim-result').textContent = e.message;
      $('sim-result').className = 'bad';
      return;
    }
    const cmd = { type: 'request', environment: $('req-env').value.trim(), request: $('req-request').value, fields };
    run(cmd, cmd.request + ' in ' + cmd.environment);
  }

  function renderSteps(steps) {
    $('rec-steps').replaceChildren(...steps.map((s) => el('li', '+' + (s.at / 1000).toFixed(1) + ' s: ' + s.what)));
  }

  function toggleRecording() {
    if (recording) {
      recorded = recording.steps;
      recording = null;
      $('rec-toggle').textContent = 'Start recording';
    } else {
      recording = { started: Date.now(), steps: [] };
      $('rec-toggle').textContent = 'Stop recording';
      renderSteps([]);
    }
    $('rec-replay').disabled = Boolean(recording) || !recorded.length;
    $('rec-clear').disabled = Boolean(recording) || !recorded.length;
  }

  /** Replays the recorded steps with their original spacing. */
  function replay() {
    const steps = recorded.slice();
    $('rec-replay').disabled = true;
    for (const s of steps) {
      setTimeout(() => {
        const id = send(s.cmd);
        if (id !== null) results.set(id, 'replay: ' + s.what);
      }, s.at);
    }
    const last = steps.length ? steps[steps.length - 1].at : 0;
    setTimeout(() => ($('rec-replay').disabled = false), last + 50);
  }

  function clearRecording() {
    recorded = [];
    renderSteps([]);
    $('rec-replay').disabled = true;
    $('rec-clear').disabled = true;
  }

  // ---- wiring
  document.addEventListener('DOMContentLoaded', () => {
    $('sim-form').addEventListener('submit', simulate);
    $('req-form').addEventListener('submit', request);
    $('sim-event').addEventListener('change', describe);
    $('req-request').addEventListener('change', () => {
      $('req-fields').value = '';
      describe();
    });
    $('rec-toggle').addEventListener('click', toggleRecording);
    $('rec-replay').addEventListener('click', replay);
    $('rec-clear').addEventListener('click', clearRecording);
    for (const id of ['trace-conn', 'trace-dir', 'trace-filter']) $(id).addEventListener('input', renderTrace);
    $('trace-pause').addEventListener('change', renderTrace);
    $('trace-clear').addEventListener('click', () => {
      traceRows = [];
      selectedSeq = null;
      $('trace-json').hidden = true;
      renderTrace();
    });
    connect();
  });
})();

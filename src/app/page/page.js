// vigil's status page: polls the JSON API every 2 s and updates the rows in
// place (keyed by program and index, so focus and scroll stay put). Text from
// the API only ever goes into textContent, never into HTML. The bearer token
// lives in sessionStorage and goes only into an Authorization header.
'use strict';

const POLL_MS = 2000;
const SPARK_POINTS = 90;        // 3 minutes of polls
const SEED_PROGRAMS_MAX = 50;   // sparklines seeded from history for at most this many
const TOKEN_KEY = 'vigil.token';

const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};
const SVG = 'http://www.w3.org/2000/svg';
const svgEl = (tag, attrs) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  self: null,
  control: false,
  instances: [],
  fetchedAt: 0,
  cpuPrev: new Map(),   // key -> {cpu, t}
  cpuNow: new Map(),    // key -> percent
  spark: new Map(),     // key -> {rss: [], cpu: []}
  seeded: new Set(),
  programEls: new Map(),
  rowEls: new Map(),
  detail: null,         // {name, index}
};

function fmtBytes(b) {
  if (b == null) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i === 0 ? b.toFixed(0) : b.toFixed(b < 10 ? 1 : 0)) + ' ' + u[i];
}
function fmtDur(s) {
  if (s == null) return '-';
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, x = s % 60;
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${x}s`;
  return `${x}s`;
}
const key = (i) => `${i.name}/${i.index}`;
const label = (i, n) => (n > 1 ? `${i.name}[${i.index}]` : i.name);

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}
async function getJson(url) {
  const r = await fetch(url, { headers: authHeaders(), cache: 'no-store' });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

function showError(text) {
  const e = $('error');
  e.hidden = !text;
  e.textContent = text || '';
}
function toast(text) {
  const t = el('div', { class: 'toast', role: 'status', text });
  document.body.append(t);
  setTimeout(() => t.remove(), 5000);
}

// ---------------------------------------------------------------------------
// Polling

async function poll() {
  try {
    const [self, instances, watches] = await Promise.all([
      getJson('/api/v1/vigil'), getJson('/api/v1/programs'), getJson('/api/v1/watches')]);
    state.self = self;
    state.control = !!self.control;
    state.fetchedAt = performance.now();
    const now = Date.now() / 1000;
    for (const i of instances) {
      const k = key(i);
      const prev = state.cpuPrev.get(k);
      if (prev && now > prev.t && i.cpu_seconds >= prev.cpu)
        state.cpuNow.set(k, ((i.cpu_seconds - prev.cpu) / (now - prev.t)) * 100);
      state.cpuPrev.set(k, { cpu: i.cpu_seconds, t: now });
      const sp = state.spark.get(k) || { rss: [], cpu: [] };
      sp.rss.push(i.pid ? i.memory_rss_bytes : 0);
      sp.cpu.push(state.cpuNow.get(k) || 0);
      if (sp.rss.length > SPARK_POINTS) { sp.rss.shift(); sp.cpu.shift(); }
      state.spark.set(k, sp);
    }
    state.instances = instances;
    showError('');
    renderSelf();
    renderControl();
    renderPrograms();
    renderWatches(watches);
    if (state.detail) renderDetailFacts();
    seedSparks();
  } catch (e) {
    showError(`vigil does not answer (${e.message}); retrying`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// The sparklines start with what vigil kept, not empty (a few programs only).
async function seedSparks() {
  const names = [...new Set(state.instances.map((i) => i.name))];
  if (names.length > SEED_PROGRAMS_MAX) return;
  for (const name of names) {
    if (state.seeded.has(name)) continue;
    state.seeded.add(name);
    try {
      const since = Date.now() / 1000 - (SPARK_POINTS * POLL_MS) / 1000;
      const h = await getJson(`/api/v1/programs/${encodeURIComponent(name)}/history?since=${since}`);
      for (const inst of h.instances) {
        const k = `${name}/${inst.index}`;
        const sp = state.spark.get(k) || { rss: [], cpu: [] };
        const step = Math.max(1, Math.round(POLL_MS / 1000 / (h.sample_interval_seconds || 1)));
        const rss = [], cpu = [];
        for (let j = 0; j < inst.t.length; j += step) { rss.push(inst.rss_bytes[j]); cpu.push(inst.cpu_percent[j] || 0); }
        sp.rss = rss.concat(sp.rss).slice(-SPARK_POINTS);
        sp.cpu = cpu.concat(sp.cpu).slice(-SPARK_POINTS);
        state.spark.set(k, sp);
      }
    } catch (e) { /* the program went away; the next poll shows it */ }
  }
}

// ---------------------------------------------------------------------------
// Header

function renderSelf() {
  const s = state.self;
  $('version').textContent = s.version;
  const reload = s.reloads.success + s.reloads.failure === 0 ? 'no reload yet'
    : s.last_reload_ok ? `last reload applied (${s.reloads.success} ok, ${s.reloads.failure} failed)`
      : `last reload FAILED (${s.reloads.failure} failed)`;
  $('self').textContent = `up ${fmtDur(s.uptime_seconds)} · ${reload} · history ${fmtBytes(s.history_bytes)}`;
  const counts = {};
  for (const i of state.instances) counts[i.state] = (counts[i.state] || 0) + 1;
  const running = counts.running || 0;
  const parts = Object.entries(counts).filter(([st]) => st !== 'running').map(([st, n]) => `${n} ${st}`);
  $('summary').textContent = `${running}/${state.instances.length} running` + (parts.length ? ', ' + parts.join(', ') : '');
}

function renderControl() {
  const s = state.self;
  $('control').hidden = !s.control_possible;
  $('unlock').hidden = state.control || !$('token-form').hidden;
  $('lock').hidden = !state.token;
  $('control-state').textContent = state.control ? 'controls enabled'
    : state.token ? 'token refused' : '';
}

function setupControl() {
  $('unlock').addEventListener('click', () => {
    $('token-form').hidden = false;
    $('unlock').hidden = true;
    $('token').focus();
  });
  $('token-cancel').addEventListener('click', () => { $('token-form').hidden = true; renderControl(); });
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token').value.trim();
    $('token').value = '';
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    $('token-form').hidden = true;
    refreshNow();
  });
  $('lock').addEventListener('click', () => {
    state.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    state.control = false;
    refreshNow();
  });
}

async function refreshNow() {
  try {
    state.self = await getJson('/api/v1/vigil');
    state.control = !!state.self.control;
    renderControl();
    renderPrograms();
    if (state.detail) renderDetailFacts();
  } catch (e) { showError(e.message); }
}

// ---------------------------------------------------------------------------
// Programs and their instances

const COLUMNS = [
  ['#', 'index'], ['state', 'state'], ['pid', 'pid'], ['uptime', 'uptime'], ['restarts', 'restarts wide'],
  ['next try', 'backoff'], ['CPU', 'cpu'], ['memory', 'memory'], ['heartbeat', 'heartbeat'],
  ['probe', 'probe'], ['status', 'status wide'], ['', 'actions wide'],
];

function programSummary(list) {
  const counts = {};
  for (const i of list) counts[i.state] = (counts[i.state] || 0) + 1;
  const running = counts.running || 0;
  const rest = Object.entries(counts).filter(([s]) => s !== 'running').map(([s, n]) => `${n} ${s}`);
  return `${running}/${list.length} running` + (rest.length ? ', ' + rest.join(', ') : '');
}

function actionButtons(name, index, st) {
  if (!state.control) return null;
  const box = el('span', { class: 'actions' });
  const what = index == null ? name : `${name}[${index}]`;
  const verbs = st === 'stopped' || st === 'fatal' ? ['start', 'restart'] : ['restart', 'stop'];
  if (index == null) verbs.splice(0, verbs.length, 'start', 'restart', 'stop');
  for (const verb of verbs) {
    box.append(el('button', {
      type: 'button', class: verb === 'stop' ? 'danger' : '', 'data-action': verb,
      'aria-label': `${verb} ${what}`, text: verb,
      onclick: (ev) => { ev.stopPropagation(); act(name, index, verb); },
    }));
  }
  return box;
}

function sparkline(values, cls, max) {
  const s = svgEl('svg', { class: 'spark', viewBox: '0 0 80 22', preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  if (values.length < 2) return s;
  const top = Math.max(max || 0, ...values, 1e-9);
  const d = values.map((v, i) => `${i ? 'L' : 'M'}${((i / (values.length - 1)) * 80).toFixed(1)},${(21 - (v / top) * 20).toFixed(1)}`).join('');
  s.append(svgEl('path', { d, class: cls }));
  return s;
}

function cell(row, cls, labelText) {
  const td = el('td', { class: cls, 'data-label': labelText });
  row.append(td);
  return td;
}

function fillRow(tr, i, n) {
  const k = key(i);
  tr.replaceChildren();
  const remaining = i.next_restart_in_seconds;
  cell(tr, 'num', '#').textContent = String(i.index);
  const st = cell(tr, '', 'state');
  st.append(el('span', { class: `state s-${i.state}`, text: i.state }));
  if (i.rollout && i.rollout.in_progress && i.rollout.current === i.index)
    st.append(el('div', { class: 'sub', text: `rolling ${i.rollout.done + 1}/${i.rollout.total}` }));
  cell(tr, 'num', 'pid').textContent = i.pid ?? '-';
  cell(tr, 'num', 'uptime').textContent = i.pid ? fmtDur(i.uptime_seconds) : '-';
  const rs = cell(tr, 'wide', 'restarts');
  rs.append(el('span', { class: 'num restarts', text: String(i.restarts) }));
  const last = i.recent_exits && i.recent_exits.length ? i.recent_exits[i.recent_exits.length - 1] : null;
  if (i.restarts > 0 && (i.reason || last)) {
    rs.append(el('div', { class: 'sub reason-line', text: `last: ${i.reason || ''}${last ? ' — ' + last.reason : ''}` }));
  }
  if (i.last_error && !['running', 'stopped'].includes(i.state))
    rs.append(el('div', { class: 'reason', text: i.last_error }));
  const bo = cell(tr, 'num backoff', 'next try');
  bo.dataset.deadline = remaining != null ? String(remaining) : '';
  bo.textContent = remaining != null ? `in ${remaining.toFixed(1)}s` : '-';
  const cpu = cell(tr, 'num', 'CPU');
  const sp = state.spark.get(k) || { rss: [], cpu: [] };
  const c = state.cpuNow.get(k);
  cpu.append(document.createTextNode(i.pid && c != null ? `${c.toFixed(1)}%` : '-'), sparkline(sp.cpu, 'cpu', 100));
  const mem = cell(tr, 'num', 'memory');
  let memText = i.pid ? fmtBytes(i.memory_rss_bytes) : '-';
  if (i.memory_limit_bytes) memText += ` / ${fmtBytes(i.memory_limit_bytes)}`;
  const memSpan = el('span', { text: memText });
  if (i.memory_limit_bytes && i.memory_rss_bytes > 0.9 * i.memory_limit_bytes) memSpan.className = 'over';
  mem.append(memSpan);
  if (i.memory_reported_bytes != null) mem.append(el('div', { class: 'sub', text: `reports ${fmtBytes(i.memory_reported_bytes)}` }));
  mem.append(sparkline(sp.rss, '', i.memory_limit_bytes || 0));
  const hb = cell(tr, 'num', 'heartbeat');
  hb.textContent = i.last_heartbeat_seconds_ago != null ? `${fmtDur(i.last_heartbeat_seconds_ago)} ago` : '-';
  if (i.heartbeat_misses) hb.append(el('div', { class: 'sub', text: `${i.heartbeat_misses} missed` }));
  const pr = cell(tr, '', 'probe');
  pr.textContent = i.probe ? (i.probe.success == null ? 'pending' : i.probe.success ? 'pass' : 'FAIL') : '-';
  if (i.probe && i.probe.success === false) pr.className = 'reason';
  cell(tr, 'wide', 'status').textContent = i.status_text || '';
  const ac = cell(tr, 'wide', '');
  const buttons = actionButtons(i.name, i.index, i.state);
  if (buttons) ac.append(buttons);
  tr.setAttribute('aria-label', `${label(i, n)} ${i.state}; open details`);
}

function renderPrograms() {
  const main = $('programs');
  const groups = new Map();
  for (const i of state.instances) {
    if (!groups.has(i.name)) groups.set(i.name, []);
    groups.get(i.name).push(i);
  }
  // Sections in the API's order; gone ones removed.
  for (const [name, sec] of state.programEls) if (!groups.has(name)) { sec.root.remove(); state.programEls.delete(name); }
  for (const [k, tr] of state.rowEls) if (!state.instances.some((i) => key(i) === k)) { tr.remove(); state.rowEls.delete(k); }
  for (const [name, list] of groups) {
    let sec = state.programEls.get(name);
    if (!sec) {
      const head = el('div', { class: 'head' });
      const tbody = el('tbody');
      const thead = el('thead', {}, el('tr', {}, ...COLUMNS.map(([t]) => el('th', { scope: 'col', text: t }))));
      const root = el('section', { class: 'program', 'data-program': name }, head, el('table', {}, thead, tbody));
      sec = { root, head, tbody };
      state.programEls.set(name, sec);
    }
    main.append(sec.root);  // keeps the order; a no-op move for an element in place
    sec.head.replaceChildren(el('h2', { text: name }), el('span', { class: 'counts', text: programSummary(list) }));
    const b = actionButtons(name, null, null);
    if (b) sec.head.append(b);
    for (const i of list) {
      const k = key(i);
      let tr = state.rowEls.get(k);
      if (!tr) {
        tr = el('tr', { tabindex: '0', 'data-key': k });
        tr.addEventListener('click', () => openDetail(i.name, i.index));
        tr.addEventListener('keydown', (ev) => {
          if ((ev.key === 'Enter' || ev.key === ' ') && ev.target === tr) { ev.preventDefault(); openDetail(i.name, i.index); }
        });
        state.rowEls.set(k, tr);
      }
      const focused = tr.contains(document.activeElement) ? document.activeElement.getAttribute('data-action') : null;
      fillRow(tr, i, list.length);
      sec.tbody.append(tr);
      if (focused) { const again = tr.querySelector(`[data-action="${focused}"]`); if (again) again.focus(); }
    }
  }
}

// Backoff countdowns move between polls.
function tick() {
  const gone = (performance.now() - state.fetchedAt) / 1000;
  for (const td of document.querySelectorAll('td.backoff')) {
    if (!td.dataset.deadline) continue;
    td.textContent = `in ${Math.max(0, Number(td.dataset.deadline) - gone).toFixed(1)}s`;
  }
}

function renderWatches(watches) {
  $('watches-section').hidden = watches.length === 0;
  if (!watches.length) return;
  const rows = watches.map((w) => el('tr', {},
    el('td', { 'data-label': 'watch', text: w.name }),
    el('td', { 'data-label': 'kind', text: w.kind }),
    el('td', { 'data-label': 'state' }, el('span', { class: `state s-${w.state}`, text: w.state })),
    el('td', { class: 'num', 'data-label': 'failures', text: `${w.consecutive_failures} in a row, ${w.failures} in all` }),
    el('td', { class: 'num', 'data-label': 'last check', text: w.last_check_seconds_ago != null ? `${fmtDur(w.last_check_seconds_ago)} ago` : '-' }),
    el('td', { class: 'wide', 'data-label': 'target', text: w.target }),
    el('td', { class: 'wide reason', 'data-label': 'last error', text: w.last_error || '' })));
  const head = el('tr', {}, ...['watch', 'kind', 'state', 'failures', 'last check', 'target', 'last error'].map((t) => el('th', { scope: 'col', text: t })));
  $('watches').replaceChildren(el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)));
}

// ---------------------------------------------------------------------------
// Actions

function confirmAction(text) {
  return new Promise((resolve) => {
    const d = $('confirm');
    $('confirm-text').textContent = text;
    d.returnValue = '';
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.showModal();
    $('confirm-ok').focus();
  });
}

async function act(name, index, verb) {
  const what = index == null ? `every instance of ${name}` : `${name}[${index}]`;
  if (!(await confirmAction(`${verb[0].toUpperCase() + verb.slice(1)} ${what}?`))) return;
  const url = `/api/v1/programs/${encodeURIComponent(name)}/${verb}` + (index == null ? '' : `?index=${index}`);
  try {
    const r = await fetch(url, { method: 'POST', headers: authHeaders() });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) { toast(`${verb} ${what}: ${body.error || r.status}`); return; }
    const pids = (body.instances || []).map((i) => `${label(i, 2)} ${i.state}${i.pid ? ' pid ' + i.pid : ''}`);
    toast(`${verb} ${what}: ${pids.join(', ') || 'done'}`);
  } catch (e) {
    toast(`${verb} ${what}: ${e.message}`);
  }
}

// ---------------------------------------------------------------------------
// Detail view of one instance

function openDetail(name, index) {
  state.detail = { name, index };
  const d = $('detail');
  renderDetailFacts();
  loadHistory();
  loadLog();
  if (!d.open) d.showModal();
}

function detailInstance() {
  const s = state.detail;
  return s && state.instances.find((i) => i.name === s.name && i.index === s.index);
}

function renderDetailFacts() {
  const i = detailInstance();
  if (!i) { $('detail-title').textContent = `${state.detail.name}[${state.detail.index}]: gone`; return; }
  const n = state.instances.filter((x) => x.name === i.name).length;
  $('detail-title').textContent = label(i, Math.max(n, 2));
  $('detail-actions').replaceChildren(...[actionButtons(i.name, i.index, i.state)].filter(Boolean));
  const facts = [
    ['state', i.state], ['pid', i.pid ?? '-'], ['uptime', i.pid ? fmtDur(i.uptime_seconds) : '-'],
    ['restarts', `${i.restarts} (${Object.entries(i.restarts_by_reason).filter(([, v]) => v).map(([r, v]) => `${r} ${v}`).join(', ') || 'none'})`],
    ['last exit code', i.last_exit_code ?? '-'], ['last error', i.last_error || '-'],
    ['memory', `${fmtBytes(i.memory_rss_bytes)}${i.memory_limit_bytes ? ' of ' + fmtBytes(i.memory_limit_bytes) : ''}`],
    ['CPU time', `${i.cpu_seconds.toFixed(2)} s`], ['heartbeats', `${i.heartbeats} (${i.heartbeat_misses} missed)`],
    ['status', i.status_text || '-'],
  ];
  $('detail-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: String(v) })]));
  const exits = (i.recent_exits || []).slice().reverse();
  $('detail-exits').replaceChildren(exits.length ? el('table', {},
    el('thead', {}, el('tr', {}, ...['when', 'ran', 'reason'].map((t) => el('th', { text: t })))),
    el('tbody', {}, ...exits.map((e) => el('tr', {},
      el('td', { class: 'num', 'data-label': 'when', text: new Date(e.time * 1000).toLocaleTimeString() }),
      el('td', { class: 'num', 'data-label': 'ran', text: fmtDur(e.run_seconds) }),
      el('td', { class: 'wide', 'data-label': 'reason', text: e.reason }))))) : el('p', { class: 'sub', text: 'none' }));
}

function chart(title, t, values, opts) {
  const W = 300, H = 80;
  const box = el('div', { class: 'chart' });
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': title });
  const pts = values.map((v, j) => [t[j], v]).filter(([, v]) => v != null);
  const latest = pts.length ? pts[pts.length - 1][1] : null;
  box.append(el('div', { class: 'label', text: `${title}: ${latest == null ? '-' : opts.fmt(latest)}` }));
  if (t.length > 1) {
    const t0 = t[0], t1 = t[t.length - 1] || t0 + 1;
    const top = Math.max(opts.max || 0, ...pts.map(([, v]) => v), 1e-9) * 1.05;
    const x = (tt) => ((tt - t0) / Math.max(t1 - t0, 1e-9)) * W;
    const y = (v) => H - (v / top) * (H - 2) - 1;
    if (pts.length > 1) svg.append(svgEl('path', { d: pts.map(([tt, v], j) => `${j ? 'L' : 'M'}${x(tt).toFixed(1)},${y(v).toFixed(1)}`).join('') }));
    if (opts.limit) svg.append(svgEl('line', { class: 'limit', x1: 0, x2: W, y1: y(opts.limit), y2: y(opts.limit) }));
    for (let j = 0; opts.restarts && j < t.length; j++)
      if (opts.restarts[j]) svg.append(svgEl('line', { class: 'restart', x1: x(t[j]), x2: x(t[j]), y1: 0, y2: H }));
  }
  box.append(svg);
  return box;
}

async function loadHistory() {
  const s = state.detail;
  if (!s) return;
  try {
    const h = await getJson(`/api/v1/programs/${encodeURIComponent(s.name)}/history`);
    const inst = h.instances.find((x) => x.index === s.index);
    const i = detailInstance();
    if (!inst) return;
    $('detail-charts').replaceChildren(
      chart('memory', inst.t, inst.rss_bytes, { fmt: fmtBytes, limit: i && i.memory_limit_bytes, restarts: inst.restarts }),
      chart('CPU', inst.t, inst.cpu_percent, { fmt: (v) => `${v.toFixed(1)}%`, restarts: inst.restarts }),
      chart('heartbeat age', inst.t, inst.heartbeat_age_seconds, { fmt: (v) => `${v.toFixed(1)} s` }),
      chart('restarts', inst.t, inst.restarts, { fmt: () => `${inst.restarts.reduce((a, b) => a + b, 0)} in the last ${fmtDur(inst.t.length ? inst.t[inst.t.length - 1] - inst.t[0] : 0)}` }));
  } catch (e) {
    $('detail-charts').replaceChildren(el('p', { class: 'sub', text: `no history: ${e.message}` }));
  }
}

async function loadLog() {
  const s = state.detail;
  if (!s) return;
  const pre = $('detail-log');
  try {
    const r = await fetch(`/api/v1/programs/${encodeURIComponent(s.name)}/logs?n=200&index=${s.index}`, { headers: authHeaders() });
    const body = await r.json();
    if (!r.ok) { pre.textContent = body.error || String(r.status); return; }
    pre.replaceChildren(...body.lines.map((l) => el('div', { class: l.stream === 'stderr' ? 'err' : '', text: l.text })));
    pre.scrollTop = pre.scrollHeight;
  } catch (e) {
    pre.textContent = e.message;
  }
}

function setupDetail() {
  const d = $('detail');
  $('detail-close').addEventListener('click', () => d.close());
  $('detail-log-refresh').addEventListener('click', loadLog);
  d.addEventListener('close', () => {
    const s = state.detail;
    state.detail = null;
    const tr = s && state.rowEls.get(`${s.name}/${s.index}`);
    if (tr) tr.focus();
  });
  // History once a sample interval or so while open.
  setInterval(() => { if (state.detail) loadHistory(); }, 5000);
}

setupControl();
setupDetail();
setInterval(tick, 250);
poll();

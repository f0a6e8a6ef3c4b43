// skyhost dashboard: every number comes from the server's /v1/* answers.
// No framework, no build step. The bearer token, when the server asks for
// one, is kept in sessionStorage and sent only as an Authorization header.
'use strict';

const REFRESH_MS = 10000;
const ROW_LIMIT = 500;
const TOKEN_KEY = 'skyhost-token';

const $ = (s) => document.querySelector(s);
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const num = (v) => (v === null || v === undefined ? '?' : Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100));
const price = (v) => (v === null || v === undefined ? '—' : '$' + v.toFixed(2));

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
  return e;
}

const st = {
  page: 'overview',
  plugins: null,
  listing: null, // {status, body} of /v1/gpus (all allowed contexts when the server allows that)
  allContexts: true,
  at: 0,
  context: '', // "backend/context" shown on the cluster page
  nodeSort: { key: 'name', dir: 1 },
  showAll: false,
  offer: { name: '', qty: '', result: null, sort: null, dir: 1 },
  loading: false,
};

class NeedToken extends Error {}

// Anything the Content-Security-Policy blocks is a bug of this page: keep a list for the tests.
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));

async function api(path) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
  if (r.status === 401) {
    const body = await r.json().catch(() => null);
    throw new NeedToken(token ? 'The token was not accepted. ' + (body?.error?.message || '') : 'Enter a token to see its answers.');
  }
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = { error: { message: `${path} answered ${r.status} without JSON` } };
  }
  return { status: r.status, body };
}

function errorText(a) {
  const e = a.body?.error;
  if (!e) return `HTTP ${a.status}`;
  return `${e.message}${e.hint ? ' — ' + e.hint : ''}`;
}

function showError(text) {
  const p = $('#error');
  p.textContent = text || '';
  p.hidden = !text;
}

// ---- loading -------------------------------------------------------------

async function listing() {
  if (st.allContexts) {
    const a = await api('/v1/gpus?all_contexts=true');
    // Without [kubernetes] allowed_contexts the server answers for its default context only.
    if (a.status !== 403) return a;
    st.allContexts = false;
  }
  return api('/v1/gpus');
}

async function load() {
  if (st.loading) {
    st.again = true;
    return;
  }
  st.loading = true;
  st.again = false;
  const t0 = performance.now();
  try {
    if (st.page === 'offerings') {
      if (!st.listing) st.listing = await listing();
      if (st.offer.name) await searchOfferings();
    } else {
      const [plugins, gpus] = await Promise.all([st.plugins && st.page !== 'overview' ? null : api('/v1/plugins'), listing()]);
      if (plugins) st.plugins = plugins;
      st.listing = gpus;
    }
    $('#token-form').hidden = true;
    $('#forget').hidden = !sessionStorage.getItem(TOKEN_KEY);
    showError('');
    st.at = Date.now();
    render();
    if (!performance.getEntriesByName('skyhost-data').length) performance.mark('skyhost-data');
  } catch (e) {
    if (e instanceof NeedToken) {
      $('#token-why').textContent = e.message;
      $('#token-form').hidden = false;
      $('#token').focus();
    } else {
      showError('Cannot reach the server: ' + e.message);
    }
  } finally {
    st.loading = false;
    window.skyhostTiming = { ...window.skyhostTiming, load_ms: performance.now() - t0 };
    tick();
    if (st.again) load();
  }
}

function tick() {
  const age = $('#age');
  if (!st.at) return;
  const s = Math.round((Date.now() - st.at) / 1000);
  age.textContent = `refreshed ${s} s ago`;
}

// ---- pages ---------------------------------------------------------------

function render() {
  const t0 = performance.now();
  for (const p of ['overview', 'cluster', 'offerings']) {
    $('#page-' + p).hidden = p !== st.page;
    const a = $('#nav-' + p);
    if (p === st.page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (st.page === 'overview') renderOverview();
  else if (st.page === 'cluster') renderCluster();
  else renderOfferings();
  window.skyhostTiming = { ...window.skyhostTiming, render_ms: performance.now() - t0 };
}

function renderOverview() {
  const cards = $('#backends');
  cards.replaceChildren();
  if (st.plugins?.status === 200) {
    for (const p of st.plugins.body.plugins) {
      const info = p.info || {};
      cards.append(
        h('article', { class: 'card', 'data-backend': p.name, 'data-status': p.status },
          h('h3', {}, h('span', { text: info.display_name || p.name }), ' ', h('span', { class: 'badge ' + p.status, text: p.status })),
          info.version ? h('p', { class: 'muted', text: `version ${info.version}` }) : null,
          p.reason ? h('p', { class: 'reason', text: p.reason }) : null,
          p.hint ? h('p', { class: 'hint' }, h('strong', { text: 'help: ' }), h('code', { text: p.hint })) : null,
        ),
      );
    }
  } else if (st.plugins) {
    cards.append(h('p', { class: 'box error', text: errorText(st.plugins) }));
  }

  const clusters = $('#clusters');
  clusters.replaceChildren();
  const g = st.listing;
  if (!g) return;
  if (g.status !== 200) {
    clusters.append(h('p', { class: 'box error', text: errorText(g) }));
  } else if (!g.body.clusters.length) {
    clusters.append(h('p', { class: 'muted', text: 'No cluster backend answered: see the backends above and the notes below.' }));
  }
  for (const b of g.status === 200 ? g.body.clusters : []) {
    const sec = h('section', { class: 'backend', 'data-backend': b.backend }, h('h3', { text: b.display_name }));
    for (const c of b.clusters) {
      const ctx = h('div', { class: 'context card', 'data-context': c.name },
        h('h4', {}, h('a', { href: `#/cluster/${encodeURIComponent(b.backend)}/${encodeURIComponent(c.name)}`, text: c.name })));
      if (c.error) {
        ctx.classList.add('failed');
        ctx.append(h('p', { class: 'reason', text: c.error.reason }), c.error.hint ? h('p', { class: 'hint' }, h('strong', { text: 'help: ' }), h('code', { text: c.error.hint })) : null);
      } else if (!c.gpus.length) {
        ctx.append(h('p', { class: 'muted', text: 'no GPUs' }));
      }
      for (const gpu of c.gpus) ctx.append(bar(c.name, gpu));
      for (const n of c.notes || []) ctx.append(h('p', { class: 'muted', text: n.message || String(n) }));
      sec.append(ctx);
    }
    clusters.append(sec);
  }
  const notes = $('#notes');
  notes.replaceChildren();
  for (const n of g.status === 200 ? g.body.notes : []) {
    notes.append(h('li', { 'data-kind': n.kind }, h('span', { text: n.message }), n.hint ? h('code', { class: 'hint', text: n.hint }) : null));
  }
}

// One GPU model of one context: free, in use and not ready, as a bar with its words.
function bar(context, g) {
  const known = g.free !== null && g.free !== undefined;
  const free = known ? g.free : 0;
  const used = known ? Math.max(0, g.capacity - g.free) : 0;
  const unknown = known ? 0 : g.capacity;
  const total = g.capacity + g.not_ready;
  const words = `${known ? g.free : '?'} free · ${known ? used : '?'} in use · ${g.not_ready} not ready · ${total} total`;
  const b = h('div', { class: 'bar', role: 'img', 'aria-label': `${g.name}: ${words}` });
  for (const [cls, n] of [['free', free], ['used', used], ['unknown', unknown], ['notready', g.not_ready]]) {
    if (!n) continue;
    const s = h('span', { class: cls });
    s.style.flexGrow = String(n);
    b.append(s);
  }
  return h('div', { class: 'gpu-row', 'data-context': context, 'data-gpu': g.name },
    h('span', { class: 'gpu-name', text: g.name }), b, h('span', { class: 'nums', 'aria-hidden': 'true', text: words }));
}

function contexts() {
  const out = [];
  for (const b of st.listing?.status === 200 ? st.listing.body.clusters : []) {
    for (const c of b.clusters) out.push({ key: `${b.backend}/${c.name}`, backend: b, c });
  }
  return out;
}

function renderCluster() {
  const all = contexts();
  const sel = $('#context');
  const keys = all.map((x) => x.key);
  if (sel.dataset.keys !== keys.join('\n')) {
    sel.replaceChildren(...all.map((x) => h('option', { value: x.key, text: `${x.backend.display_name}: ${x.c.name}` })));
    sel.dataset.keys = keys.join('\n');
  }
  if (!keys.includes(st.context)) st.context = keys[0] || '';
  sel.value = st.context;
  const cur = all.find((x) => x.key === st.context);
  const err = $('#cluster-error');
  err.hidden = true;
  if (!cur && st.listing) {
    err.textContent = st.listing && st.listing.status !== 200 ? errorText(st.listing) : 'No cluster answered.';
    err.hidden = false;
  } else if (cur.c.error) {
    err.textContent = cur.c.error.reason + (cur.c.error.hint ? ' — ' + cur.c.error.hint : '');
    err.hidden = false;
  }
  const c = cur?.c || { gpus: [], nodes: [] };
  $('#gpu-table tbody').innerHTML = c.gpus
    .map((g) => `<tr data-gpu="${esc(g.name)}"><th scope="row">${esc(g.name)}</th><td>${esc(g.requestable_quantities.join(', '))}</td><td>${esc(num(g.free))} of ${g.capacity}</td><td>${g.not_ready}</td></tr>`)
    .join('');
  renderNodes(c.nodes);
}

const STATES = {
  all: () => true,
  ready: (n) => n.ready,
  'not-ready': (n) => !n.ready,
  cordoned: (n) => n.cordoned,
  free: (n) => (n.gpu_free ?? 0) > 0,
  tainted: (n) => n.taints.length > 0,
};
const NODE_KEYS = {
  name: (n) => n.name,
  gpu: (n) => n.gpu ?? '',
  gpu_free: (n) => n.gpu_free ?? -1,
  cpu: (n) => n.cpu_free ?? -1,
  mem: (n) => n.memory_gb_free ?? -1,
  ready: (n) => (n.ready ? 1 : 0),
  cordoned: (n) => (n.cordoned ? 1 : 0),
  taints: (n) => n.taints.length,
};

const collator = new Intl.Collator(undefined, { numeric: true });
function compare(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return collator.compare(String(a), String(b));
}

function renderNodes(nodes) {
  const q = $('#filter-gpu').value.trim().toLowerCase();
  const keep = STATES[$('#filter-state').value] || STATES.all;
  const { key, dir } = st.nodeSort;
  const k = NODE_KEYS[key];
  const rows = nodes.filter((n) => keep(n) && (!q || (n.gpu ?? '').toLowerCase().includes(q)));
  rows.sort((a, b) => dir * compare(k(a), k(b)) || compare(a.name, b.name));
  const shown = st.showAll ? rows : rows.slice(0, ROW_LIMIT);
  const yn = (v) => (v ? 'yes' : 'no');
  const pair = (f, t) => `${num(f)} / ${num(t)}`;
  $('#node-table tbody').innerHTML = shown
    .map((n) => `<tr><th scope="row">${esc(n.name)}</th><td>${esc(n.gpu ?? (n.unlabeled_gpu ? '(unlabelled)' : '—'))}</td><td>${n.gpu_total ? pair(n.gpu_free, n.gpu_total) : '—'}</td><td>${pair(n.cpu_free, n.cpu_total)}</td><td>${pair(n.memory_gb_free, n.memory_gb_total)}</td><td class="${n.ready ? '' : 'warn'}">${yn(n.ready)}</td><td class="${n.cordoned ? 'warn' : ''}">${yn(n.cordoned)}</td><td>${esc(n.taints.map((t) => `${t.key}:${t.effect}`).join(', '))}</td></tr>`)
    .join('');
  $('#node-count').textContent = `${rows.length} of ${nodes.length} nodes` + (shown.length < rows.length ? `, first ${shown.length} shown` : '');
  $('#more').hidden = shown.length === rows.length;
  for (const th of document.querySelectorAll('#node-table th[data-key]')) {
    th.setAttribute('aria-sort', th.dataset.key === key ? (dir > 0 ? 'ascending' : 'descending') : 'none');
  }
}

function currentNodes() {
  return contexts().find((x) => x.key === st.context)?.c.nodes || [];
}

// ---- offerings -----------------------------------------------------------

async function searchOfferings() {
  const p = new URLSearchParams({ name: st.offer.name });
  if (st.offer.qty) p.set('quantity', st.offer.qty);
  st.offer.result = await api('/v1/gpus?' + p);
}

function renderOfferings() {
  const names = new Set();
  const l = st.listing?.status === 200 ? st.listing.body : null;
  for (const g of [...(l?.common_gpus || []), ...(l?.tpus || []), ...(l?.other_gpus || [])]) names.add(g.name);
  const dl = $('#gpu-names');
  if (dl.childElementCount !== names.size) dl.replaceChildren(...[...names].map((n) => h('option', { value: n })));

  const r = st.offer.result;
  const nf = $('#offer-notfound');
  const table = $('#offer-table');
  nf.hidden = true;
  table.hidden = true;
  if (!r) return;
  if (r.status !== 200) {
    nf.replaceChildren(h('p', { class: 'error', text: errorText(r) }));
    nf.hidden = false;
    return;
  }
  if (r.body.not_found) {
    const s = r.body.not_found.suggestions || [];
    nf.replaceChildren(
      h('p', { text: r.body.not_found.message }),
      s.length ? h('p', {}, 'Did you mean: ', ...s.map((n) => h('button', { type: 'button', class: 'suggestion', 'data-name': n, text: n }))) : null,
    );
    nf.hidden = false;
    return;
  }
  let rows = r.body.offerings.flatMap((t) => t.rows);
  const { sort, dir } = st.offer;
  if (sort) {
    // Missing values (no spot price) go last either way.
    const nulls = (a, b) => (a[sort] == null) - (b[sort] == null);
    rows = rows.slice().sort((a, b) => nulls(a, b) || dir * compare(a[sort], b[sort]));
  }
  table.querySelector('tbody').innerHTML = rows
    .map((x) => `<tr><td>${esc(x.cloud)}</td><th scope="row">${esc(x.accelerator)}</th><td>${num(x.quantity)}</td><td>${esc(x.instance_type)}</td><td>${x.device_memory_gib == null ? '—' : num(x.device_memory_gib)}</td><td>${x.vcpus == null ? '—' : num(x.vcpus)}</td><td>${x.host_memory_gib == null ? '—' : num(x.host_memory_gib)}</td><td class="price">${price(x.price)}</td><td class="price">${price(x.spot_price)}</td><td>${esc(x.region)}</td></tr>`)
    .join('');
  for (const th of table.querySelectorAll('th[data-key]')) {
    th.setAttribute('aria-sort', th.dataset.key === sort ? (dir > 0 ? 'ascending' : 'descending') : 'none');
  }
  table.hidden = false;
  if (!rows.length) {
    nf.replaceChildren(h('p', { text: 'Nothing matches on the clouds for this quantity.' }));
    nf.hidden = false;
  }
}

// ---- routing and events --------------------------------------------------

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

// #/overview, #/cluster/BACKEND/CONTEXT, #/offerings/NAME[/QUANTITY]
function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decode);
  const page = ['overview', 'cluster', 'offerings'].includes(parts[0]) ? parts[0] : 'overview';
  st.page = page;
  if (page === 'cluster' && parts.length >= 3) st.context = `${parts[1]}/${parts.slice(2).join('/')}`;
  if (page === 'offerings' && parts[1]) {
    st.offer = { ...st.offer, name: parts[1], qty: parts[2] || '', result: null };
    $('#offer-name').value = st.offer.name;
    $('#offer-qty').value = st.offer.qty;
  }
  render();
  load();
}

function sortBy(state, key) {
  if (state.key === key || state.sort === key) state.dir = -state.dir;
  else state.dir = 1;
}

// For the tests' timing: apply a /v1/gpus document as an update would (parse and render).
window.skyhost = {
  apply(text) {
    const t0 = performance.now();
    st.listing = { status: 200, body: JSON.parse(text) };
    const t1 = performance.now();
    st.at = Date.now();
    render();
    return { parse_ms: t1 - t0, render_ms: performance.now() - t1 };
  },
};

document.addEventListener('DOMContentLoaded', () => {
  window.addEventListener('hashchange', route);
  $('#refresh').addEventListener('click', () => load());
  $('#forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $('#forget').hidden = true;
    st.plugins = st.listing = null;
    st.offer.result = null;
    st.at = 0;
    render();
    load();
  });
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('#token').value.trim());
    $('#token').value = '';
    load();
  });
  $('#context').addEventListener('change', (e) => {
    location.hash = '#/cluster/' + e.target.value.split('/').map(encodeURIComponent).join('/');
  });
  const redraw = () => renderNodes(currentNodes());
  $('#filter-gpu').addEventListener('input', redraw);
  $('#filter-gpu').addEventListener('change', redraw);
  $('#filter-state').addEventListener('change', redraw);
  $('#more').addEventListener('click', () => {
    st.showAll = true;
    redraw();
  });
  $('#node-table thead').addEventListener('click', (e) => {
    const th = e.target.closest('th[data-key]');
    if (!th) return;
    const s = st.nodeSort;
    s.dir = s.key === th.dataset.key ? -s.dir : 1;
    s.key = th.dataset.key;
    redraw();
  });
  $('#offer-table thead').addEventListener('click', (e) => {
    const th = e.target.closest('th[data-key]');
    if (!th) return;
    const o = st.offer;
    o.dir = o.sort === th.dataset.key ? -o.dir : 1;
    o.sort = th.dataset.key;
    renderOfferings();
  });
  $('#offer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('#offer-name').value.trim();
    const qty = $('#offer-qty').value.trim();
    if (!name) return;
    const hash = `#/offerings/${encodeURIComponent(name)}` + (qty ? `/${encodeURIComponent(qty)}` : '');
    if (location.hash === hash) load();
    else location.hash = hash;
  });
  $('#offer-notfound').addEventListener('click', (e) => {
    const b = e.target.closest('button.suggestion');
    if (!b) return;
    $('#offer-name').value = b.dataset.name;
    $('#offer-form').requestSubmit();
  });
  setInterval(tick, 1000);
  setInterval(() => {
    if (!document.hidden && $('#token-form').hidden) load();
  }, REFRESH_MS);
  route();
});

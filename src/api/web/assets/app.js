// storetrack web page: vanilla JS, SVG and canvas-free drawing, no build step, no framework.
// Tabs: Overview, Floor (live positions over SSE, heatmap and paths), Camera (latest frame with
// boxes, zones, lines and calibration points), Setup (zones, calibration; lines in lines.js),
// History (SVG charts, CSV).
'use strict';
const $ = (id) => document.getElementById(id);
const NS = 'http://www.w3.org/2000/svg';
const S = { cfg: null, csrf: null, live: null, features: {}, draft: [], zones: [], pairs: [], pending: null };
const COLOURS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#9a6324'];

function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function h(tag, text, parent) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
async function getJSON(url) {
  const r = await fetch(url, { credentials: 'same-origin' });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.status);
  return r.json();
}
async function postJSON(url, body) {
  const r = await fetch(url, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': S.csrf },
    body: JSON.stringify(body),
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || r.status);
  return j;
}
const fmt = (v, d = 1) => (v === null || v === undefined ? '–' : Number(v).toFixed(d));
const camColour = (id) => COLOURS[(S.cfg?.cameras.findIndex((c) => c.id === id) ?? 0) % COLOURS.length];

// ---- geometry ---------------------------------------------------------------------------
function applyH(m, u, v) {
  const w = m[6] * u + m[7] * v + m[8];
  if (Math.abs(w) < 1e-12) return null;
  return [(m[0] * u + m[1] * v + m[2]) / w, (m[3] * u + m[4] * v + m[5]) / w];
}
function invert3(m) {
  const [a, b, c, d, e, f, g, hh, i] = m;
  const A = e * i - f * hh, B = -(d * i - f * g), C = d * hh - e * g;
  const det = a * A + b * B + c * C;
  if (Math.abs(det) < 1e-15) return null;
  return [A, -(b * i - c * hh), b * f - c * e, B, a * i - c * g, -(a * f - c * d), C, -(a * hh - b * g), a * e - b * d].map((x) => x / det);
}
// Least-squares homography image -> floor (h33 = 1) from >= 4 pairs [u, v, x, y], solved on
// normalised coordinates (as the service does) by the normal equations.
function solveH(pairs) {
  if (pairs.length < 4) return null;
  const norm = (pts) => {
    const n = pts.length, mx = pts.reduce((s, p) => s + p[0], 0) / n, my = pts.reduce((s, p) => s + p[1], 0) / n;
    const d = pts.reduce((s, p) => s + Math.hypot(p[0] - mx, p[1] - my), 0) / n || 1;
    const k = Math.SQRT2 / d;
    return [k, 0, -k * mx, 0, k, -k * my, 0, 0, 1];
  };
  const Ti = norm(pairs.map((p) => [p[0], p[1]])), Tf = norm(pairs.map((p) => [p[2], p[3]]));
  const M = Array.from({ length: 8 }, () => new Array(9).fill(0));
  for (const p of pairs) {
    const [u, v] = applyH(Ti, p[0], p[1]), [x, y] = applyH(Tf, p[2], p[3]);
    for (const [row, rhs] of [[[u, v, 1, 0, 0, 0, -u * x, -v * x], x], [[0, 0, 0, u, v, 1, -u * y, -v * y], y]]) {
      for (let r = 0; r < 8; r++) { for (let c = 0; c < 8; c++) M[r][c] += row[r] * row[c]; M[r][8] += row[r] * rhs; }
    }
  }
  for (let c = 0; c < 8; c++) {
    let p = c; for (let r = c + 1; r < 8; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    if (Math.abs(M[c][c]) < 1e-12) return null;
    for (let r = 0; r < 8; r++) if (r !== c) { const f = M[r][c] / M[c][c]; for (let k = c; k < 9; k++) M[r][k] -= f * M[c][k]; }
  }
  const hn = M.map((r, i) => r[8] / r[i]).concat([1]);
  const TfInv = invert3(Tf);
  const mul = (A, B) => [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => A[3 * r] * B[c] + A[3 * r + 1] * B[3 + c] + A[3 * r + 2] * B[6 + c]));
  const H = mul(mul(TfInv, hn), Ti);
  return H.map((x) => x / H[8]);
}

// ---- tabs -------------------------------------------------------------------------------
function showTab() {
  const name = (location.hash || '#overview').slice(1);
  for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== name;
  for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('on', a.dataset.tab === name);
  if (name === 'floor') drawFloor();
  if (name === 'camera') refreshCamera();
  if (name === 'setup') drawSetup();
  if (name === 'history' && !$('charts').dataset.loaded) loadHistory();
}

// ---- floor plan drawing -----------------------------------------------------------------
function planSvg(svg) {
  svg.replaceChildren();
  const f = S.cfg.floor || { width: 20, height: 15, scale: 40, origin: [0, 0], plan: false };
  svg.setAttribute('viewBox', `0 0 ${f.width} ${f.height}`);
  el('rect', { x: 0, y: 0, width: f.width, height: f.height, fill: '#fafafa' }, svg);
  if (f.plan) {
    const img = el('image', { href: '/ui/api/plan', x: -f.origin[0] / f.scale, y: -f.origin[1] / f.scale, preserveAspectRatio: 'none' }, svg);
    const probe = new Image();
    probe.onload = () => { img.setAttribute('width', probe.naturalWidth / f.scale); img.setAttribute('height', probe.naturalHeight / f.scale); };
    probe.src = '/ui/api/plan';
  } else {
    const g = el('g', { stroke: '#e4e4ea', 'stroke-width': 0.02 }, svg);
    for (let x = 0; x <= f.width; x++) el('line', { x1: x, y1: 0, x2: x, y2: f.height }, g);
    for (let y = 0; y <= f.height; y++) el('line', { x1: 0, y1: y, x2: f.width, y2: y }, g);
  }
  return { heat: el('g', {}, svg), paths: el('g', {}, svg), zones: el('g', {}, svg), live: el('g', {}, svg), draft: el('g', {}, svg) };
}
function drawZones(g, zones, project) {
  g.replaceChildren();
  for (const z of zones) {
    const pts = z.polygon.map((p) => (project ? project(p) : p)).filter(Boolean);
    if (pts.length < 3) continue;
    el('polygon', { class: 'zone', points: pts.map((p) => p.join(',')).join(' '), 'data-zone': z.id }, g);
    const c = pts.reduce((s, p) => [s[0] + p[0] / pts.length, s[1] + p[1] / pts.length], [0, 0]);
    el('text', { class: 'zone-label', x: c[0], y: c[1], 'text-anchor': 'middle' }, g).textContent = z.name || z.id;
  }
}
function svgPoint(svg, ev) {
  const p = svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY;
  const q = p.matrixTransform(svg.getScreenCTM().inverse());
  return [Math.round(q.x * 100) / 100, Math.round(q.y * 100) / 100];
}

// ---- live -------------------------------------------------------------------------------
function dedupPeople(people) {
  const d = S.cfg.join_distance_m || 1, out = [];
  for (const p of people) if (!out.some((q) => q.camera !== p.camera && Math.hypot(q.x - p.x, q.y - p.y) < d)) out.push(p);
  return out;
}
function inside(poly, x, y) {
  let c = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) c = !c;
  }
  return c;
}
function onLive(ev) {
  const L = JSON.parse(ev.data);
  S.live = L;
  $('status').textContent = `${L.cameras.filter((c) => c.state === 'up').length}/${L.cameras.length} cameras up · ${L.people.length} tracks live`;
  for (const c of L.cameras) {
    const card = $('cam-' + c.id);
    if (!card) continue;
    card.querySelector('.state').textContent = c.state;
    card.querySelector('.state').className = 'state state-' + c.state;
    card.querySelector('.fps').textContent = fmt(c.fps);
    card.querySelector('.age').textContent = c.frame_age_ms === null ? '–' : fmt(c.frame_age_ms / 1000, 2) + ' s';
    card.querySelector('.inferred').textContent = c.inferred;
  }
  const people = dedupPeople(L.people);
  const body = $('occupancy-now').tBodies[0];
  body.replaceChildren();
  for (const z of S.cfg.zones) {
    const tr = h('tr', undefined, body);
    h('td', z.name || z.id, tr);
    h('td', String(people.filter((p) => inside(z.polygon, p.x, p.y)).length), tr).className = 'occ';
  }
  if (S.floorLayers) {
    const g = S.floorLayers.live; g.replaceChildren();
    for (const p of L.people) el('circle', { class: 'person', cx: p.x, cy: p.y, r: 0.25, fill: camColour(p.camera), 'data-track': p.track }, g);
  }
}
function startLive() {
  const es = new EventSource('/ui/live');
  es.onmessage = onLive;
  es.onerror = () => { $('status').textContent = 'live stream interrupted; retrying…'; };
}

// ---- overview ---------------------------------------------------------------------------
function buildOverview() {
  const box = $('cameras'); box.replaceChildren();
  for (const c of S.cfg.cameras) {
    const card = h('div', undefined, box); card.className = 'card'; card.id = 'cam-' + c.id;
    const img = h('img', undefined, card); img.alt = c.name; img.className = 'thumb';
    h('div', `${c.name} (${c.id})`, card).className = 'name';
    const t = h('table', undefined, card);
    for (const [k, cls] of [['state', 'state'], ['analysed fps', 'fps'], ['frame age', 'age'], ['frames analysed', 'inferred']]) {
      const tr = h('tr', undefined, t); h('th', k, tr); h('td', '–', tr).className = cls;
    }
  }
  refreshThumbs();
  setInterval(refreshThumbs, 5000);
  loadToday();
  setInterval(loadToday, 30000);
  loadOptional();
  setInterval(loadOptional, 15000);
}
function refreshThumbs() {
  if (document.hidden || $('overview').hidden) return;
  for (const c of S.cfg.cameras) {
    const probe = new Image();
    probe.onload = () => { const img = document.querySelector(`#cam-${CSS.escape(c.id)} img`); if (img) img.src = probe.src; };
    probe.onerror = () => {};
    if (S.live && S.live.cameras.some((l) => l.id === c.id && l.frame_age_ms !== null)) probe.src = `/api/v1/cameras/${encodeURIComponent(c.id)}/frame.jpg?t=${Date.now()}`;
  }
}
function midnight() { const d = new Date(); d.setHours(0, 0, 0, 0); return d.getTime(); }
async function loadToday() {
  try {
    const t = await getJSON(`/ui/api/today?from=${midnight()}`);
    const box = $('today'); box.replaceChildren();
    const tb = h('table', undefined, box);
    for (const [k, v] of [['visitors', t.visitors], ['zone visits', t.visits]]) { const tr = h('tr', undefined, tb); h('th', k, tr); h('td', String(v), tr).id = 'today-' + k.replace(' ', '-'); }
    tableOf(t.dwell, box, 'dwell per zone (s)');
  } catch (e) { $('today').textContent = String(e.message); }
}
function tableOf(t, parent, title) {
  if (title) h('div', title, parent).className = 'muted small';
  const tb = h('table', undefined, parent), hr = h('tr', undefined, h('thead', undefined, tb));
  for (const c of t.columns) h('th', c, hr);
  const body = h('tbody', undefined, tb);
  for (const r of t.rows) { const tr = h('tr', undefined, body); for (const v of r) h('td', v === null ? '' : String(v), tr); }
}
async function loadOptional() {
  const box = $('optional');
  try { S.features = await getJSON('/ui/api/features'); } catch (e) { return; }
  for (const [path, on] of Object.entries(S.features)) {
    const id = 'opt-' + path.split('/').pop();
    let panel = $(id);
    if (!on) { if (panel) panel.remove(); continue; }
    if (!panel) { panel = h('div', undefined, box); panel.className = 'panel'; panel.id = id; }
    try {
      const j = await getJSON(path);
      panel.replaceChildren(); h('h2', path.split('/').pop(), panel);
      genericTable(j, panel);
    } catch (e) { panel.textContent = path + ': ' + e.message; }
  }
}
function genericTable(j, parent) {
  const rows = Array.isArray(j) ? j : (Array.isArray(j.items) ? j.items : null);
  if (!rows) { const pre = h('pre', JSON.stringify(j, null, 1).slice(0, 2000), parent); pre.className = 'small'; return; }
  if (!rows.length) { h('div', 'none', parent).className = 'muted'; return; }
  const cols = Object.keys(rows[0]);
  tableOf({ columns: cols, rows: rows.slice(0, 50).map((r) => cols.map((c) => (typeof r[c] === 'object' ? JSON.stringify(r[c]) : r[c]))) }, parent);
}

// ---- floor ------------------------------------------------------------------------------
function drawFloor() {
  S.floorLayers = planSvg($('floor-svg'));
  drawZones(S.floorLayers.zones, S.cfg.zones);
  drawLines(S.floorLayers.zones, S.cfg.lines);
  if (S.paths) drawPaths();
}
async function loadPaths() {
  const from = $('floor-from').value ? new Date($('floor-from').value).getTime() : midnight();
  const to = $('floor-to').value ? new Date($('floor-to').value).getTime() : Date.now();
  $('floor-info').textContent = 'loading…';
  try {
    S.paths = await getJSON(`/ui/api/paths?from=${from}&to=${to}`);
    $('floor-info').textContent = `${S.paths.tracks.length} trajectories${S.paths.truncated ? ' (truncated)' : ''}`;
    drawPaths();
  } catch (e) { $('floor-info').textContent = e.message; }
}
function drawPaths() {
  const L = S.floorLayers, f = S.cfg.floor || { width: 20, height: 15 }, cell = 0.25;
  const nx = Math.ceil(f.width / cell), ny = Math.ceil(f.height / cell), grid = new Float64Array(nx * ny);
  for (const [, pts] of S.paths.tracks) for (const [, x, y] of pts) {
    const i = Math.floor(x / cell), j = Math.floor(y / cell);
    if (i >= 0 && j >= 0 && i < nx && j < ny) grid[j * nx + i] += 1;
  }
  const max = Math.max(1, ...grid);
  L.heat.replaceChildren();
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    const v = grid[j * nx + i]; if (!v) continue;
    const a = Math.sqrt(v / max);
    el('rect', { x: i * cell, y: j * cell, width: cell, height: cell, fill: `hsl(${Math.round(240 - 240 * a)},90%,50%)`, 'fill-opacity': 0.25 + 0.5 * a }, L.heat);
  }
  L.paths.replaceChildren();
  if (!$('floor-paths').checked) return;
  S.paths.tracks.forEach(([id, pts], k) => {
    el('polyline', { points: pts.map((p) => `${p[1]},${p[2]}`).join(' '), fill: 'none', stroke: COLOURS[k % COLOURS.length], 'stroke-width': 0.05, 'stroke-opacity': 0.7, 'data-track': id }, L.paths);
  });
}

// ---- camera -----------------------------------------------------------------------------
function drawCameraOverlay(svg, cam, src, boxes) {
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${src[0]} ${src[1]}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const Hinv = cam.homography ? invert3(cam.homography) : null;
  const project = Hinv && ((p) => {
    const q = applyH(Hinv, p[0], p[1]);
    return q && q[0] > -5 * src[0] && q[0] < 6 * src[0] && q[1] > -5 * src[1] && q[1] < 6 * src[1] ? q : null;
  });
  if (svg.id !== 'camera-svg' || $('camera-zones').checked) {
    const g = el('g', {}, svg);
    if (project) drawZones(g, S.cfg.zones, project);
    drawLines(g, S.cfg.lines, cam, project);
  }
  if (cam.calibration && (svg.id !== 'camera-svg' || $('camera-calib').checked)) for (const [u, v, x, y] of cam.calibration) {
    el('circle', { cx: u, cy: v, r: 6, fill: 'none', stroke: '#0f0', 'stroke-width': 2 }, svg);
    const q = Hinv && applyH(Hinv, x, y);
    if (q) el('path', { d: `M${q[0] - 6},${q[1]}h12M${q[0]},${q[1] - 6}v12`, stroke: '#f0f', 'stroke-width': 2 }, svg);
  }
  for (const b of boxes || []) {
    el('rect', { x: b.box[0], y: b.box[1], width: b.box[2], height: b.box[3], fill: 'none', stroke: '#ffc800', 'stroke-width': 2, class: 'box' }, svg);
    el('text', { x: b.box[0] + 3, y: b.box[1] + 15, class: 'box-label' }, svg).textContent = '#' + b.track;
  }
}
async function refreshCamera() {
  if ($('camera').hidden || document.hidden) return;
  const id = $('camera-select').value, cam = S.cfg.cameras.find((c) => c.id === id);
  if (!cam) return;
  try {
    const b = await getJSON(`/ui/api/cameras/${encodeURIComponent(id)}/boxes`);
    const img = $('camera-img'), url = `/api/v1/cameras/${encodeURIComponent(id)}/frame.jpg?boxes=1&t=${b.captured_ms}`;
    if (img.dataset.t !== String(b.captured_ms)) {
      const probe = new Image();
      probe.onload = () => { img.src = url; img.dataset.t = b.captured_ms; drawCameraOverlay($('camera-svg'), cam, b.source, b.boxes); };
      probe.src = url;
    }
    $('camera-info').textContent = `${b.boxes.length} tracks · captured ${new Date(b.captured_ms).toLocaleTimeString()}${cam.rms_m != null ? ` · calibration rms ${fmt(cam.rms_m, 2)} m` : ''}`;
  } catch (e) { $('camera-info').textContent = e.message; }
}

// ---- setup: zones -----------------------------------------------------------------------
function drawSetup() {
  if (!S.cfg.setup) return;
  S.setupLayers = planSvg($('setup-svg'));
  drawZones(S.setupLayers.zones, S.zones);
  const d = S.setupLayers.draft; d.replaceChildren();
  if (S.draft.length) el('polygon', { class: 'draft', points: S.draft.map((p) => p.join(',')).join(' ') }, d);
  for (const p of S.draft) el('circle', { cx: p[0], cy: p[1], r: 0.12, fill: '#e08000' }, d);
  const body = $('zone-list').tBodies[0]; body.replaceChildren();
  for (const z of S.zones) {
    const tr = h('tr', undefined, body); h('td', z.id, tr); h('td', String(z.polygon.length), tr);
    const del = h('button', 'delete', h('td', undefined, tr));
    del.onclick = () => { S.zones = S.zones.filter((q) => q !== z); drawSetup(); };
  }
  drawCalib();
  drawLineSetup();
}
function setupMode(mode) {
  for (const m of ['zones', 'calib', 'lines']) { $('setup-' + m).hidden = m !== mode; $('mode-' + m).classList.toggle('on', m === mode); }
  setupMsg('');
  if (mode === 'calib') loadCalibCamera();
  if (mode === 'lines') { loadLineFrame(); drawLineSetup(); }
}
function setupMsg(text, ok) { $('setup-msg').textContent = text; $('setup-msg').className = ok ? 'msg ok' : 'msg'; }
function finishZone() {
  const id = $('zone-id').value.trim();
  if (S.draft.length < 3) return setupMsg('A zone needs at least three corners.');
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) return setupMsg('Give the zone an id: letters, digits, -, _ or .');
  S.zones = S.zones.filter((z) => z.id !== id);
  S.zones.push({ id, name: $('zone-name').value.trim() || id, polygon: S.draft });
  S.draft = []; $('zone-id').value = ''; $('zone-name').value = '';
  setupMsg(''); drawSetup();
}
async function save(url, body) {
  setupMsg('saving…', true);
  try {
    const r = await postJSON(url, body);
    setupMsg(`Saved ${r.saved} (backup ${r.backup}); reload ${r.reload}.${r.note ? ' Note: ' + r.note + '.' : ''}`, true);
    setTimeout(() => reloadConfig(url), 1500);
  } catch (e) { setupMsg('Refused: ' + e.message); }
}
// After a save to `url`, the config in force again; only what that save wrote is reset in
// Setup (a line being drawn survives a zones save).
async function reloadConfig(url) {
  S.cfg = await getJSON('/ui/api/config');
  if (url.endsWith('/zones')) S.zones = S.cfg.zones.map((z) => ({ ...z }));
  if (url.endsWith('/lines')) resetLines(); else lineNote();
  drawFloor(); drawSetup();
}

// ---- setup: calibration -----------------------------------------------------------------
function calibCam() { return S.cfg.cameras.find((c) => c.id === $('calib-camera').value); }
function drawCalib() {
  const cam = calibCam(); if (!cam) return;
  const src = cam.source || [768, 576];
  const H = solveH(S.pairs);
  const view = { ...cam, calibration: S.pairs, homography: H };
  drawCameraOverlay($('calib-img-svg'), view, src, []);
  if (S.pending) el('circle', { cx: S.pending[0], cy: S.pending[1], r: 8, fill: '#f80' }, $('calib-img-svg'));
  S.calibLayers = planSvg($('calib-svg'));
  drawZones(S.calibLayers.zones, S.cfg.zones);
  S.pairs.forEach(([u, v, x, y], i) => {
    el('circle', { cx: x, cy: y, r: 0.15, fill: '#0a0' }, S.calibLayers.draft);
    el('text', { x: x + 0.2, y: y, class: 'zone-label' }, S.calibLayers.draft).textContent = String(i + 1);
  });
  const body = $('calib-pairs').tBodies[0]; body.replaceChildren();
  let sq = 0;
  S.pairs.forEach((p, i) => {
    const q = H && applyH(H, p[0], p[1]), err = q ? Math.hypot(q[0] - p[2], q[1] - p[3]) : null;
    if (err !== null) sq += err * err;
    const tr = h('tr', undefined, body);
    for (const v of [i + 1, fmt(p[0], 0), fmt(p[1], 0), fmt(p[2], 2), fmt(p[3], 2), fmt(err, 3)]) h('td', String(v), tr);
    const del = h('button', 'delete', h('td', undefined, tr));
    del.onclick = () => { S.pairs.splice(i, 1); drawCalib(); };
  });
  $('calib-rms').textContent = H ? `rms error ${fmt(Math.sqrt(sq / S.pairs.length), 3)} m over ${S.pairs.length} pairs` : `${S.pairs.length} pairs (at least 4 needed)`;
  $('calib-rms').dataset.h = H ? JSON.stringify(H) : '';
}
function loadCalibCamera() {
  const cam = calibCam(); if (!cam) return;
  S.pairs = (cam.calibration || []).map((p) => p.slice());
  S.pending = null;
  $('calib-img').src = `/api/v1/cameras/${encodeURIComponent(cam.id)}/frame.jpg?t=${Date.now()}`;
  drawCalib();
}
function imagePoint(ev) {
  const cam = calibCam(), src = cam.source || [768, 576], r = $('calib-img-svg').getBoundingClientRect();
  return [Math.round(((ev.clientX - r.left) / r.width) * src[0] * 10) / 10, Math.round(((ev.clientY - r.top) / r.height) * src[1] * 10) / 10];
}

// ---- history ----------------------------------------------------------------------------
function rangeQuery() {
  const from = $('hist-from').value ? new Date($('hist-from').value).getTime() : midnight();
  const to = $('hist-to').value ? new Date($('hist-to').value).getTime() : Date.now();
  return `from=${from}&to=${to}&bucket=${$('hist-bucket').value}`;
}
function barChart(parent, title, labels, series, csvUrl) {
  const head = h('div', title + ' ', parent); head.className = 'chart-title';
  const a = h('a', 'CSV', head); a.href = csvUrl; a.setAttribute('download', '');
  const W = 760, H = 220, pad = 40, n = labels.length;
  const svg = el('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: 'chart' }, parent);
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  el('line', { x1: pad, y1: H - pad, x2: W - 10, y2: H - pad, stroke: '#888' }, svg);
  el('text', { x: 4, y: 14, 'font-size': 11 }, svg).textContent = fmt(max, max < 10 ? 1 : 0);
  const bw = (W - pad - 10) / Math.max(1, n) / series.length;
  series.forEach((s, k) => s.values.forEach((v, i) => {
    const bh = (v / max) * (H - 2 * pad);
    el('rect', { x: pad + (i * series.length + k) * bw, y: H - pad - bh, width: Math.max(1, bw - 1), height: bh, fill: COLOURS[k % COLOURS.length] }, svg)
      .appendChild(document.createElementNS(NS, 'title')).textContent = `${s.name} ${labels[i]}: ${v}`;
  }));
  const step = Math.ceil(n / 10);
  labels.forEach((l, i) => { if (i % step === 0) el('text', { x: pad + i * series.length * bw, y: H - pad + 14, 'font-size': 10 }, svg).textContent = l; });
  series.forEach((s, k) => { el('text', { x: pad + 10 + k * 140, y: 14, 'font-size': 11, fill: COLOURS[k % COLOURS.length] }, svg).textContent = s.name; });
}
const label = (ms) => { const d = new Date(ms); return `${d.getMonth() + 1}/${d.getDate()} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`; };
async function loadHistory() {
  const box = $('charts'); box.replaceChildren(); box.dataset.loaded = '1';
  const q = rangeQuery(), url = (k, csv) => `/ui/api/history/${k}?${q}${csv ? '&format=csv' : ''}`;
  const seq = (S.historySeq = (S.historySeq || 0) + 1);
  try {
    const [vis, dwell, flows, occ] = await Promise.all(['visitors', 'dwell', 'flows', 'occupancy'].map((k) => getJSON(url(k))));
    if (seq !== S.historySeq) return; // a newer load (Show pressed again) draws instead
    barChart(box, 'Visitors', vis.rows.map((r) => label(r[0])), [{ name: 'visitors', values: vis.rows.map((r) => r[1]) }], url('visitors', true));
    barChart(box, 'Dwell per zone (s)', dwell.rows.map((r) => r[0]), ['median_s', 'p90_s', 'mean_s'].map((c) => ({ name: c, values: dwell.rows.map((r) => r[dwell.columns.indexOf(c)]) })), url('dwell', true));
    barChart(box, 'Flows between zones', flows.rows.map((r) => `${r[0]}→${r[1]}`), [{ name: 'moves', values: flows.rows.map((r) => r[2]) }], url('flows', true));
    const zones = [...new Set(occ.rows.map((r) => r[0]))], times = [...new Set(occ.rows.map((r) => r[1]))];
    barChart(box, 'Occupancy (mean people inside)', times.map(label), zones.map((z) => ({ name: z, values: times.map((t) => { const r = occ.rows.find((x) => x[0] === z && x[1] === t); return r ? r[5] : 0; }) })), url('occupancy', true));
  } catch (e) { if (seq === S.historySeq) h('div', e.message, box).className = 'msg'; }
}

// ---- start ------------------------------------------------------------------------------
async function main() {
  const sess = await getJSON('/ui/api/session');
  S.csrf = sess.csrf;
  $('logout').hidden = !sess.login;
  S.cfg = await getJSON('/ui/api/config');
  S.zones = S.cfg.zones.map((z) => ({ ...z }));
  $('tab-setup').hidden = !S.cfg.setup;
  for (const sel of [$('camera-select'), $('calib-camera')]) for (const c of S.cfg.cameras) { const o = h('option', c.name, sel); o.value = c.id; }
  buildOverview();
  startLive();
  $('camera-select').onchange = () => { $('camera-img').dataset.t = ''; refreshCamera(); };
  $('camera-zones').onchange = $('camera-calib').onchange = () => { $('camera-img').dataset.t = ''; refreshCamera(); };
  setInterval(refreshCamera, 1000);
  $('floor-load').onclick = loadPaths;
  $('floor-paths').onchange = () => S.paths && drawPaths();
  $('hist-load').onclick = loadHistory;
  $('setup-svg').addEventListener('click', (ev) => { S.draft.push(svgPoint($('setup-svg'), ev)); drawSetup(); });
  $('zone-finish').onclick = finishZone;
  $('zone-undo').onclick = () => { S.draft.pop(); drawSetup(); };
  $('zones-save').onclick = () => save('/ui/api/setup/zones', { zones: S.zones });
  for (const mode of ['zones', 'calib', 'lines']) $('mode-' + mode).onclick = () => setupMode(mode);
  setupLines();
  $('calib-camera').onchange = loadCalibCamera;
  $('calib-clear').onclick = () => { S.pairs = []; S.pending = null; drawCalib(); };
  $('calib-img-svg').addEventListener('click', (ev) => { S.pending = imagePoint(ev); drawCalib(); });
  $('calib-svg').addEventListener('click', (ev) => {
    if (!S.pending) return setupMsg('Click the point on the camera picture first.');
    const [x, y] = svgPoint($('calib-svg'), ev);
    S.pairs.push([S.pending[0], S.pending[1], x, y]); S.pending = null; setupMsg(''); drawCalib();
  });
  $('calib-save').onclick = () => save('/ui/api/setup/calibration', { camera: $('calib-camera').value, pairs: S.pairs });
  window.addEventListener('hashchange', showTab);
  showTab();
  document.body.dataset.ready = '1';
}
main().catch((e) => { $('status').textContent = 'error: ' + e.message; });

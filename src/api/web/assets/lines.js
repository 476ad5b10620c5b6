// storetrack web page: counting lines ([[lines]]) drawn on the plan, on the Camera page and in
// Setup, where they are drawn, named, flipped, deleted and saved. Loaded before app.js; uses its
// helpers ($, el, h, S, svgPoint, postJSON) at call time.
'use strict';

// A line is directed: facing from its first point to its last (x right, y down), crossing from
// its left to its right is `in`. The arrow starts at the middle of the middle segment and points
// to the `in` side; `k` is the drawing's unit (1 on the plan, in metres; about 40 on a picture,
// in pixels); `sign` -1 turns it round (a floor line seen through a mirroring homography).
function inArrow(pts, k, sign = 1) {
  const i = Math.floor((pts.length - 2) / 2), a = pts[i], b = pts[i + 1];
  const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
  if (!(len > 0)) return null;
  const m = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2], n = [-sign * (b[1] - a[1]) / len, sign * (b[0] - a[0]) / len];
  const tip = [m[0] + n[0] * 0.8 * k, m[1] + n[1] * 0.8 * k];
  const w = [n[1] * 0.2 * k, -n[0] * 0.2 * k], back = [tip[0] - n[0] * 0.3 * k, tip[1] - n[1] * 0.3 * k];
  return { m, tip, n, head: [[back[0] + w[0], back[1] + w[1]], tip, [back[0] - w[0], back[1] - w[1]]] };
}
function drawLine(g, line, pts, k, cls, sign = 1) {
  if (pts.length < 2) return;
  const colour = cls === 'line-draft' ? '#e08000' : '#c0306a';
  el('polyline', { class: cls, points: pts.map((p) => p.join(',')).join(' '), fill: 'none', stroke: colour, 'stroke-width': 0.1 * k, 'data-line': line.id || '' }, g);
  const a = inArrow(pts, k, sign);
  if (!a) return;
  el('path', { class: 'line-in', d: `M${a.m.join(',')}L${a.tip.join(',')}M${a.head.map((p) => p.join(',')).join('L')}`, fill: 'none', stroke: colour, 'stroke-width': 0.08 * k, 'data-line': line.id || '', 'data-in': a.tip.join(',') }, g);
  el('text', { x: a.tip[0] + a.n[0] * 0.35 * k, y: a.tip[1] + a.n[1] * 0.35 * k, fill: colour, 'font-size': 0.45 * k, 'text-anchor': 'middle', 'dominant-baseline': 'central' }, g).textContent = 'in';
  if (line.id) el('text', { x: pts[0][0], y: pts[0][1] - 0.2 * k, fill: colour, 'font-size': 0.5 * k }, g).textContent = line.name || line.id;
}
// 1 when the floor's `in` side lands on the right of the projected line, -1 when the projection
// mirrors it.
function seenSide(floorPts, pts, project) {
  const f = inArrow(floorPts, 0.1), p = inArrow(pts, 1), tip = f && project(f.tip);
  if (!f || !p || !tip) return 1;
  return (tip[0] - p.m[0]) * p.n[0] + (tip[1] - p.m[1]) * p.n[1] < 0 ? -1 : 1;
}
// The floor lines on a plan (`project` absent), or the lines seen on camera `cam`'s picture:
// its own pixel lines and the floor lines through `project` (floor -> pixels).
function drawLines(g, lines, cam, project) {
  const k = cam ? 40 : 1;
  for (const l of lines || []) {
    if (l.camera) { if (cam && l.camera === cam.id) drawLine(g, l, l.pixels, k, 'line'); continue; }
    if (cam && !project) continue;
    const pts = project ? l.points.map(project) : l.points;
    if (pts.every(Boolean)) drawLine(g, l, pts, k, 'line', project ? seenSide(l.points, pts, project) : 1);
  }
}

// ---- setup: lines -------------------------------------------------------------------------
const L = { lines: [], draft: [], editing: null };
function lineCam() { return S.cfg.cameras.find((c) => c.id === $('line-on').value) || null; }
function resetLines() {
  L.lines = (S.cfg.lines || []).map((l) => ({ id: l.id, name: l.name || '', door: l.door, camera: l.camera || null, points: l.camera ? l.pixels : l.points }));
  L.draft = []; L.editing = null;
  lineNote();
}
function lineNote() {
  const waiting = (S.cfg.lines || []).filter((l) => !l.counting).map((l) => l.id);
  $('lines-note').textContent = waiting.length ? `Saved but not counted yet (waiting for the reload): ${waiting.join(', ')}` : '';
}
function drawLineSetup() {
  if (!S.cfg.setup) return;
  const cam = lineCam();
  $('line-plan').hidden = !!cam; $('line-frame').hidden = !cam;
  let g, k = 1;
  if (cam) {
    const svg = $('line-img-svg'), src = cam.source || [768, 576];
    svg.replaceChildren(); svg.setAttribute('viewBox', `0 0 ${src[0]} ${src[1]}`); svg.setAttribute('preserveAspectRatio', 'none');
    g = el('g', {}, svg); k = 40;
  } else {
    const layers = planSvg($('line-svg'));
    drawZones(layers.zones, S.cfg.zones);
    g = layers.draft;
  }
  for (const l of L.lines) if ((l.camera || null) === (cam ? cam.id : null) && l.id !== L.editing) drawLine(g, l, l.points, k, 'line');
  drawLine(g, {}, L.draft, k, 'line-draft');
  for (const p of L.draft) el('circle', { cx: p[0], cy: p[1], r: 0.12 * k, fill: '#e08000' }, g);
  const body = $('line-list').tBodies[0]; body.replaceChildren();
  for (const l of L.lines) {
    const tr = h('tr', undefined, body); tr.dataset.line = l.id;
    h('td', l.name && l.name !== l.id ? `${l.id} (${l.name})` : l.id, tr);
    h('td', (l.camera ? `camera ${l.camera}` : 'floor') + (l.door ? ', door' : ''), tr);
    h('td', String(l.points.length), tr);
    const td = h('td', undefined, tr);
    for (const [label, fn] of [['edit', editLine], ['flip', flipLine], ['delete', deleteLine]]) {
      const b = h('button', label, td); b.className = 'line-' + label; b.onclick = () => fn(l);
    }
  }
}
function editLine(l) {
  L.editing = l.id; L.draft = l.points.map((p) => p.slice());
  $('line-id').value = l.id; $('line-name').value = l.name; $('line-door').checked = l.door;
  $('line-on').value = l.camera || '';
  if (l.camera) loadLineFrame();
  drawLineSetup();
}
function flipLine(l) { l.points.reverse(); drawLineSetup(); }
function deleteLine(l) { L.lines = L.lines.filter((q) => q !== l); if (L.editing === l.id) L.editing = null; drawLineSetup(); }
function finishLine() {
  const id = $('line-id').value.trim();
  if (L.draft.length < 2) return setupMsg('A line needs at least two points.');
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) return setupMsg('Give the line an id: letters, digits, -, _ or .');
  const line = { id, name: $('line-name').value.trim(), door: $('line-door').checked, camera: $('line-on').value || null, points: L.draft };
  const was = L.editing ?? id;
  const at = L.lines.findIndex((q) => q.id === was);
  L.lines = L.lines.filter((q, i) => i === at || q.id !== id);
  const j = L.lines.findIndex((q) => q.id === was);
  if (j >= 0) L.lines[j] = line; else L.lines.push(line);
  L.draft = []; L.editing = null;
  for (const f of ['line-id', 'line-name']) $(f).value = '';
  $('line-door').checked = false;
  setupMsg(''); drawLineSetup();
}
function linesBody() {
  return { lines: L.lines.map((l) => ({ id: l.id, name: l.name || null, door: l.door, ...(l.camera ? { camera: l.camera, pixels: l.points } : { points: l.points }) })) };
}
function loadLineFrame() {
  const cam = lineCam();
  if (cam) $('line-img').src = `/api/v1/cameras/${encodeURIComponent(cam.id)}/frame.jpg?t=${Date.now()}`;
}
function framePoint(svg, cam, ev) {
  const src = cam.source || [768, 576], r = svg.getBoundingClientRect();
  return [Math.round(((ev.clientX - r.left) / r.width) * src[0] * 10) / 10, Math.round(((ev.clientY - r.top) / r.height) * src[1] * 10) / 10];
}
function setupLines() {
  for (const c of S.cfg.cameras) { const o = h('option', `camera ${c.name}`, $('line-on')); o.value = c.id; }
  resetLines();
  $('line-on').onchange = () => { L.draft = []; L.editing = null; loadLineFrame(); drawLineSetup(); };
  $('line-svg').addEventListener('click', (ev) => { L.draft.push(svgPoint($('line-svg'), ev)); drawLineSetup(); });
  $('line-img-svg').addEventListener('click', (ev) => { L.draft.push(framePoint($('line-img-svg'), lineCam(), ev)); drawLineSetup(); });
  $('line-finish').onclick = finishLine;
  $('line-undo').onclick = () => { L.draft.pop(); drawLineSetup(); };
  $('line-flip-draft').onclick = () => { L.draft.reverse(); drawLineSetup(); };
  $('lines-save').onclick = () => save('/ui/api/setup/lines', linesBody());
}

// @ts-check
// The org chart: workspaces as nodes, parent → child edges, an automatic
// tree layout that a dragged node leaves (its position is saved through
// PATCH /workspaces/:id), zoom and pan (the viewport saved through PUT
// /canvas/viewport), collapsible subtrees, search, keyboard navigation.

import { api, wsPath } from './api.js';
import { state, childrenOf, shownStatus } from './store.js';
import { h, debounce, toast } from './util.js';

const W = 210;
const H = 96;
const GAP_X = 26;
const GAP_Y = 60;
const COLLAPSED_KEY = 'molecule.collapsed';
/** Below this zoom, nodes are drawn as tiles without text. */
const FAR = 0.3;

const chart = /** @type {HTMLElement} */ (document.getElementById('chart'));
const world = /** @type {HTMLElement} */ (document.getElementById('world'));
const edges = /** @type {SVGPathElement} */ (/** @type {unknown} */ (document.getElementById('edge-paths')));
const search = /** @type {HTMLInputElement} */ (document.getElementById('search'));

/** @type {Map<string, HTMLElement>} */
const nodes = new Map();
/** What each node shows, so an unchanged workspace costs no DOM write. @type {WeakMap<HTMLElement, string>} */
const painted = new WeakMap();
/**
 * Where each visible node is drawn.
 * @type {Map<string, {x: number, y: number}>}
 */
let placed = new Map();
/** @type {Set<string>} */
const collapsed = new Set(JSON.parse(localStorage.getItem(COLLAPSED_KEY) || '[]'));
const view = { x: 40, y: 40, zoom: 1 };
/** @type {string|null} */
let selected = null;
let fitWhenDrawn = false;
/** @type {(id: string|null) => void} */
let onSelect = () => {};

/** @param {(id: string|null) => void} f */
export function whenSelected(f) {
  onSelect = f;
}

/** The selected workspace. */
export const selection = () => selected;

// ---- drawing --------------------------------------------------------------

/** One node's markup, built once and cloned for every workspace. */
const PROTO = h(
  'div',
  { class: 'node', role: 'treeitem', tabindex: '-1' },
  h(
    'div',
    { class: 'node-head' },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    h('span', { class: 'name' }),
    h('button', { class: 'fold', type: 'button', tabindex: '-1', 'aria-label': 'Collapse or expand the team' }),
  ),
  h('div', { class: 'node-role' }),
  h('div', { class: 'node-meta' }, h('span', { class: 'status' }), h('span', { class: 'runtime' }), h('span', { class: 'tasks' })),
  h('div', { class: 'node-task' }),
);

/** @param {import('./store.js').Workspace} w */
function nodeFor(w) {
  let el = nodes.get(w.id);
  if (el) return el;
  el = /** @type {HTMLElement} */ (PROTO.cloneNode(true));
  el.dataset.id = w.id;
  dragging(el, w.id);
  nodes.set(w.id, el);
  world.append(el);
  return el;
}

// A fold button folds its node's team (one listener for every node).
world.addEventListener('click', (ev) => {
  const fold = /** @type {Element} */ (ev.target).closest('.fold');
  const id = fold && /** @type {HTMLElement|null} */ (fold.closest('.node'))?.dataset.id;
  if (!id) return;
  ev.stopPropagation();
  toggle(id);
});

/**
 * Write a workspace's fields into its node (nothing when nothing changed).
 * @param {import('./store.js').Workspace} w
 */
function paint(w) {
  const el = nodeFor(w);
  const status = shownStatus(w);
  const kids = childrenOf(w.id).length;
  const folded = collapsed.has(w.id);
  const tasks = w.active_tasks ? `${w.active_tasks} active` : '';
  const key = [w.name, w.role, status, w.runtime, tasks, w.current_task, kids, folded, w.status_reason, w.parent_id].join('\u0000');
  if (painted.get(el) === key) return;
  painted.set(el, key);
  el.dataset.status = status;
  el.dataset.parent = w.parent_id || '';
  const [head, role, meta, task] = /** @type {HTMLElement[]} */ ([...el.children]);
  const [, name, fold] = /** @type {HTMLElement[]} */ ([...head.children]);
  const [statusEl, runtime, tasksEl] = /** @type {HTMLElement[]} */ ([...meta.children]);
  name.textContent = w.name;
  role.textContent = w.role || '';
  statusEl.textContent = status;
  runtime.textContent = w.runtime || '';
  tasksEl.textContent = tasks;
  task.textContent = w.current_task || '';
  fold.hidden = kids === 0;
  fold.textContent = folded ? `▸ ${kids}` : '▾';
  el.setAttribute('aria-expanded', kids ? String(!folded) : 'false');
  el.setAttribute('aria-label', `${w.name}, ${status}${w.role ? `, ${w.role}` : ''}`);
  el.title = w.status_reason ? `${status}: ${w.status_reason}` : status;
}

/**
 * Tree layout of what is visible; saved positions win. A team whose members
 * have no teams of their own is drawn as a grid under its lead (a team of
 * ten is four wide, not ten), so a big org stays a readable map.
 */
function layout() {
  /** @type {Map<string, {x: number, y: number}>} */
  const pos = new Map();
  let cursor = 0;
  /** @param {import('./store.js').Workspace} w */
  const shownKids = (w) => (collapsed.has(w.id) ? [] : childrenOf(w.id));
  /** @param {import('./store.js').Workspace} w @param {number} x @param {number} y */
  const put = (w, x, y) => pos.set(w.id, w.x || w.y ? { x: w.x, y: w.y } : { x, y });
  /**
   * Place `w` and what is under it, from the cursor; answers its x.
   * @param {import('./store.js').Workspace} w
   * @param {number} y
   * @returns {number}
   */
  const place = (w, y) => {
    const kids = shownKids(w);
    let x;
    if (kids.length === 0) {
      x = cursor;
      cursor += W + GAP_X;
    } else if (kids.length > 3 && kids.every((k) => shownKids(k).length === 0)) {
      const cols = Math.ceil(Math.sqrt(kids.length));
      const left = cursor;
      kids.forEach((k, i) =>
        put(k, left + (i % cols) * (W + GAP_X), y + H + GAP_Y + Math.floor(i / cols) * (H + GAP_Y / 2)),
      );
      cursor += cols * (W + GAP_X);
      x = left + ((cols - 1) * (W + GAP_X)) / 2;
    } else {
      const xs = kids.map((k) => place(k, y + H + GAP_Y));
      x = (xs[0] + xs[xs.length - 1]) / 2;
    }
    put(w, x, y);
    return x;
  };
  for (const root of childrenOf(null)) {
    place(root, 0);
    cursor += GAP_X * 2;
  }
  return pos;
}

/** Lay out and draw every node (after a structural change). */
export function render() {
  placed = layout();
  for (const [id, el] of nodes) {
    if (!state.workspaces.has(id)) {
      el.remove();
      nodes.delete(id);
    }
  }
  for (const w of state.workspaces.values()) {
    paint(w);
    const el = /** @type {HTMLElement} */ (nodes.get(w.id));
    const p = placed.get(w.id);
    el.hidden = !p;
    if (p) el.style.transform = `translate(${p.x}px, ${p.y}px)`;
  }
  drawEdges();
  highlight();
  if (selected && !state.workspaces.has(selected)) select(null);
  if (fitWhenDrawn && placed.size > 0) {
    fitWhenDrawn = false;
    fit();
  }
}

/**
 * Repaint one workspace; a new one or a new parent means a new layout.
 * @param {string} id
 */
export function update(id) {
  const w = state.workspaces.get(id);
  const el = nodes.get(id);
  if (!w || !el || el.dataset.parent !== (w.parent_id || '')) return render();
  paint(w);
  highlight();
}

function drawEdges() {
  let d = '';
  for (const [id, p] of placed) {
    const w = state.workspaces.get(id);
    const parent = w && w.parent_id ? placed.get(w.parent_id) : undefined;
    if (!parent) continue;
    const x1 = parent.x + W / 2;
    const y1 = parent.y + H;
    const x2 = p.x + W / 2;
    const y2 = p.y;
    const mid = Math.max(y1 + GAP_Y / 4, y2 - GAP_Y / 4);
    d += `M${x1} ${y1}V${mid}H${x2}V${y2}`;
  }
  edges.setAttribute('d', d);
}

// ---- collapse, search, selection ------------------------------------------

/** @param {string} id */
export function toggle(id) {
  if (collapsed.has(id)) collapsed.delete(id);
  else collapsed.add(id);
  localStorage.setItem(COLLAPSED_KEY, JSON.stringify([...collapsed]));
  render();
}

function highlight() {
  const q = search.value.trim().toLowerCase();
  for (const [id, el] of nodes) {
    const w = state.workspaces.get(id);
    const hit =
      !q ||
      Boolean(w && (w.name.toLowerCase().includes(q) || (w.role || '').toLowerCase().includes(q) || id.startsWith(q)));
    el.classList.toggle('dim', !hit);
    el.classList.toggle('match', Boolean(q) && hit);
  }
}

search.addEventListener('input', highlight);
search.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Enter') return;
  const q = search.value.trim().toLowerCase();
  const hit = [...state.workspaces.values()].find((w) => w.name.toLowerCase().includes(q));
  if (!hit) return toast(`no workspace matches “${search.value}”`, true);
  reveal(hit.id);
  select(hit.id);
  nodes.get(hit.id)?.focus();
});

/**
 * Unfold the ancestors of a workspace.
 * @param {string} id
 */
function reveal(id) {
  let changed = false;
  for (let w = state.workspaces.get(id); w && w.parent_id; w = state.workspaces.get(w.parent_id)) {
    if (collapsed.delete(w.parent_id)) changed = true;
  }
  if (changed) {
    localStorage.setItem(COLLAPSED_KEY, JSON.stringify([...collapsed]));
    render();
  }
  center(id);
}

/** @param {string|null} id */
export function select(id) {
  const old = selected ? nodes.get(selected) : null;
  old?.setAttribute('aria-selected', 'false');
  old?.classList.remove('selected');
  selected = id;
  const el = id ? nodes.get(id) : null;
  el?.setAttribute('aria-selected', 'true');
  el?.classList.add('selected');
  onSelect(id);
}

// ---- viewport ----------------------------------------------------------------

function applyView() {
  world.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.zoom})`;
  // Zoomed far out, text is unreadable: nodes become status-coloured tiles
  // (and the browser paints a 500-node overview in a fraction of the time).
  world.classList.toggle('far', view.zoom < FAR);
}

const saveView = debounce(() => {
  api('PUT', '/canvas/viewport', { x: view.x, y: view.y, zoom: view.zoom }).catch((e) =>
    toast(`viewport not saved: ${e.message}`, true),
  );
}, 700);

/**
 * @param {number} factor
 * @param {number} cx
 * @param {number} cy
 */
function zoomAt(factor, cx, cy) {
  const zoom = Math.min(3, Math.max(0.03, view.zoom * factor));
  const k = zoom / view.zoom;
  view.x = cx - (cx - view.x) * k;
  view.y = cy - (cy - view.y) * k;
  view.zoom = zoom;
  applyView();
  saveView();
}

/** Show the whole chart. */
export function fit() {
  if (placed.size === 0) return;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const p of placed.values()) {
    minX = Math.min(minX, p.x);
    minY = Math.min(minY, p.y);
    maxX = Math.max(maxX, p.x + W);
    maxY = Math.max(maxY, p.y + H);
  }
  const r = chart.getBoundingClientRect();
  const zoom = Math.min(1, Math.max(0.03, Math.min((r.width - 40) / (maxX - minX), (r.height - 40) / (maxY - minY))));
  view.zoom = zoom;
  view.x = (r.width - (maxX - minX) * zoom) / 2 - minX * zoom;
  view.y = 20 - minY * zoom;
  applyView();
  saveView();
}

/**
 * Bring a node into the middle of the chart.
 * @param {string} id
 */
function center(id) {
  const p = placed.get(id);
  if (!p) return;
  const r = chart.getBoundingClientRect();
  view.x = r.width / 2 - (p.x + W / 2) * view.zoom;
  view.y = r.height / 3 - (p.y + H / 2) * view.zoom;
  applyView();
  saveView();
}

/**
 * Start from the saved viewport, or fit the chart when none was saved.
 * @param {{x: number, y: number, zoom: number} | null | undefined} v
 */
export function useView(v) {
  if (v && (v.x || v.y || (v.zoom && v.zoom !== 1))) {
    view.x = v.x;
    view.y = v.y;
    view.zoom = v.zoom || 1;
    applyView();
  } else if (placed.size > 0) {
    fit();
  } else {
    // An empty org: fit when the first workspace arrives.
    applyView();
    fitWhenDrawn = true;
  }
}

chart.addEventListener(
  'wheel',
  (ev) => {
    ev.preventDefault();
    const r = chart.getBoundingClientRect();
    zoomAt(ev.deltaY < 0 ? 1.1 : 1 / 1.1, ev.clientX - r.left, ev.clientY - r.top);
  },
  { passive: false },
);

// Pan: drag the background.
chart.addEventListener('pointerdown', (ev) => {
  const target = /** @type {Element} */ (ev.target);
  if (target !== chart && target !== world && !target.closest('svg')) return;
  const start = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y };
  chart.setPointerCapture(ev.pointerId);
  chart.classList.add('panning');
  const move = (/** @type {PointerEvent} */ e) => {
    view.x = start.vx + e.clientX - start.x;
    view.y = start.vy + e.clientY - start.y;
    applyView();
  };
  const up = () => {
    chart.removeEventListener('pointermove', move);
    chart.classList.remove('panning');
    if (view.x !== start.vx || view.y !== start.vy) saveView();
    else select(null);
  };
  chart.addEventListener('pointermove', move);
  chart.addEventListener('pointerup', up, { once: true });
});

/**
 * A node follows the pointer; dropping it saves its position.
 * @param {HTMLElement} el
 * @param {string} id
 */
function dragging(el, id) {
  el.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0 || /** @type {HTMLElement} */ (ev.target).closest('button')) return;
    const from = placed.get(id);
    if (!from) return;
    ev.stopPropagation();
    const start = { x: ev.clientX, y: ev.clientY };
    let moved = false;
    el.setPointerCapture(ev.pointerId);
    const move = (/** @type {PointerEvent} */ e) => {
      const dx = (e.clientX - start.x) / view.zoom;
      const dy = (e.clientY - start.y) / view.zoom;
      if (!moved && Math.hypot(dx, dy) < 4) return;
      moved = true;
      el.classList.add('dragging');
      const p = { x: Math.round(from.x + dx), y: Math.round(from.y + dy) };
      placed.set(id, p);
      el.style.transform = `translate(${p.x}px, ${p.y}px)`;
      drawEdges();
    };
    const up = () => {
      el.removeEventListener('pointermove', move);
      el.classList.remove('dragging');
      if (!moved) return select(id);
      const p = /** @type {{x: number, y: number}} */ (placed.get(id));
      const w = state.workspaces.get(id);
      if (w) {
        w.x = p.x || 1;
        w.y = p.y || 1;
      }
      api('PATCH', wsPath(id), { x: p.x || 1, y: p.y || 1 }).catch((e) => toast(`position not saved: ${e.message}`, true));
    };
    el.addEventListener('pointermove', move);
    el.addEventListener('pointerup', up, { once: true });
  });
}

// ---- keyboard ----------------------------------------------------------------

/**
 * Where keyboard zoom centres: the selected node, else the chart's middle.
 * @returns {[number, number]}
 */
function focusPoint() {
  const p = selected ? placed.get(selected) : undefined;
  if (!p) return [chart.clientWidth / 2, chart.clientHeight / 2];
  return [view.x + (p.x + W / 2) * view.zoom, view.y + (p.y + H / 2) * view.zoom];
}

chart.addEventListener('keydown', (ev) => {
  const id = selected;
  const w = id ? state.workspaces.get(id) : undefined;
  /** @type {string|undefined} */
  let next;
  switch (ev.key) {
    case 'ArrowUp':
      next = w?.parent_id || undefined;
      break;
    case 'ArrowDown':
      next = w ? (collapsed.has(w.id) ? undefined : childrenOf(w.id)[0]?.id) : childrenOf(null)[0]?.id;
      break;
    case 'ArrowLeft':
    case 'ArrowRight': {
      const sibs = w ? childrenOf(w.parent_id && state.workspaces.has(w.parent_id) ? w.parent_id : null) : childrenOf(null);
      const i = w ? sibs.findIndex((s) => s.id === w.id) : -1;
      next = sibs[ev.key === 'ArrowLeft' ? Math.max(0, i - 1) : Math.min(sibs.length - 1, i + 1)]?.id;
      break;
    }
    case ' ':
      if (w) toggle(w.id);
      break;
    case '+':
    case '=':
      zoomAt(1.2, ...focusPoint());
      break;
    case '-':
      zoomAt(1 / 1.2, ...focusPoint());
      break;
    case 'f':
      fit();
      break;
    case 'Enter':
      if (id) onSelect(id);
      break;
    default:
      return;
  }
  ev.preventDefault();
  if (next) {
    select(next);
    center(next);
    nodes.get(next)?.focus();
  }
});

// @ts-check
// The side panel: one workspace's details and status reason, its chat and
// its resources (tabs.js), and the operations on it.

import { api, wsApi, wsPath } from './api.js';
import { chatView } from './chat.js';
import { confirm } from './dialogs.js';
import { state, shownStatus, refresh } from './store.js';
import { TABS, button } from './tabs.js';
import { h, fill, when, toast } from './util.js';

const panel = /** @type {HTMLElement} */ (document.getElementById('panel'));
/** @type {string|null} */
let current = null;
let tab = 'details';
/** Bumped on every draw, so a late answer never overwrites a newer view. */
let generation = 0;

/**
 * Show a workspace (null closes the panel).
 * @param {string|null} id
 */
export function open(id) {
  if (id !== current) tab = 'details';
  current = id;
  panel.hidden = !id;
  document.body.classList.toggle('panel-open', Boolean(id));
  draw();
}

export const shown = () => current;

/**
 * A live event: redraw what it concerns.
 * @param {any} e
 */
export function onEvent(e) {
  if (!current) return;
  if (e.workspace_id !== current) return;
  if (tab === 'details' && /^(WORKSPACE_|TASK_|AGENT_)/.test(e.event)) draw();
  else if (TABS[tab] && TABS[tab].on.test(e.event)) draw();
}

/**
 * The open workspace changed (re-read or removed).
 * @param {string} id
 */
export function onWorkspace(id) {
  if (id !== current) return;
  if (!state.workspaces.has(id)) return open(null);
  if (tab === 'details') draw();
  else drawHead();
}

const head = h('div', { class: 'panel-head' });
const tabBar = h('nav', { class: 'tabs', role: 'tablist', 'aria-label': 'Workspace' });
const body = h('div', { class: 'panel-body', role: 'tabpanel' });
panel.append(head, tabBar, body);

function drawHead() {
  const w = current ? state.workspaces.get(current) : undefined;
  if (!w) return;
  const status = shownStatus(w);
  fill(
    head,
    h('h2', {}, w.name),
    h('span', { class: 'badge', dataset: { status } }, status),
    h('button', { type: 'button', class: 'close', 'aria-label': 'Close the panel', onclick: () => open(null) }, '×'),
  );
}

function drawTabs() {
  const names = ['details', 'chat', ...Object.keys(TABS)];
  fill(
    tabBar,
    names.map((n) =>
      h(
        'button',
        {
          type: 'button',
          role: 'tab',
          'aria-selected': String(n === tab),
          dataset: { tab: n },
          onclick: () => {
            tab = n;
            draw();
          },
        },
        n === 'details' ? 'Details' : n === 'chat' ? 'Chat' : TABS[n].label,
      ),
    ),
  );
}

async function draw() {
  const id = current;
  const w = id ? state.workspaces.get(id) : undefined;
  if (!id || !w) return;
  const mine = ++generation;
  drawHead();
  drawTabs();
  panel.dataset.tab = tab;
  if (tab === 'details') return fill(body, details(w));
  if (tab === 'chat') return fill(body, chatView(id));
  if (!body.firstChild) body.append(h('p', { class: 'muted' }, 'Loading…'));
  try {
    const view = await TABS[tab].load(id, () => draw());
    if (mine === generation) fill(body, view);
  } catch (e) {
    if (mine === generation) fill(body, h('p', { class: 'form-error', role: 'alert' }, /** @type {Error} */ (e).message));
  }
}

/** @param {import('./store.js').Workspace} w */
function details(w) {
  const parent = w.parent_id ? state.workspaces.get(w.parent_id) : undefined;
  const card = w.agent_card && typeof w.agent_card === 'object' ? w.agent_card : null;
  /** @type {[string, any][]} */
  const rows = [
    ['Status', shownStatus(w)],
    ['Why', w.status_reason || ''],
    ['Role', w.role || ''],
    ['Tier', w.tier],
    ['Runtime', w.runtime],
    ['Parent', parent ? parent.name : ''],
    ['Current task', w.current_task || ''],
    ['Active tasks', w.active_tasks],
    ['Error rate', w.last_error_rate ? `${Math.round(w.last_error_rate * 100)} %` : ''],
    ['Last error', w.last_sample_error || ''],
    ['Uptime', w.uptime_seconds ? `${Math.round(w.uptime_seconds / 60)} min` : ''],
    ['URL', w.url || ''],
    ['Agent', card ? `${card.name || ''} ${card.version ? `v${card.version}` : ''}`.trim() : ''],
    ['Skills', card && Array.isArray(card.skills) ? card.skills.map((/** @type {any} */ s) => s.name || s.id).join(', ') : ''],
    ['Id', h('code', {}, w.id)],
  ];
  const last = state.decisions.find((d) => d.workspace_id === w.id);
  if (last) rows.push(['Last decision', `${last.decision}: ${last.reason} (${when(last.timestamp)})`]);
  return h(
    'div',
    {},
    h('dl', { class: 'facts' }, rows.filter(([, v]) => v !== '' && v !== null && v !== undefined).map(([k, v]) => [h('dt', {}, k), h('dd', { dataset: { fact: k } }, v)])),
    h('div', { class: 'actions' }, operations(w)),
  );
}

/** @param {import('./store.js').Workspace} w */
function operations(w) {
  const p = wsPath(w.id);
  /**
   * @param {string} what
   * @param {string} path
   * @param {string} done
   */
  const act = (what, path, done) =>
    button(what, async () => {
      await wsApi(w.id, 'POST', path);
      toast(`${w.name}: ${done}`);
      refresh(w.id);
    });
  const out = [];
  if (w.status === 'paused') out.push(act('Resume', `${p}/resume`, 'resuming'));
  else out.push(act('Pause', `${p}/pause`, 'paused'));
  out.push(act(w.status === 'failed' ? 'Retry' : 'Restart', `${p}/restart`, 'restarting'));
  out.push(
    button(
      'Delete',
      async () => {
        const kids = [...state.workspaces.values()].filter((c) => c.parent_id === w.id).length;
        const text = kids
          ? `${w.name} and everything under it (${kids} direct ${kids === 1 ? 'child' : 'children'}) will be removed, with their containers.`
          : `${w.name} will be removed, with its container.`;
        if (!(await confirm(`Delete ${w.name}?`, text))) return;
        const r = await api('DELETE', `${p}?confirm=true`);
        toast(`${w.name}: removed${r && r.cascade_deleted ? ` with ${r.cascade_deleted} more` : ''}`);
      },
      'danger',
    ),
  );
  return out;
}

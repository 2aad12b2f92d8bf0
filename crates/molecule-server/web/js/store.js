// @ts-check
// What the page knows: the workspaces, the restart decisions, the breaker,
// recent events. Changes are announced to subscribers; nothing here draws.

import { api, wsPath } from './api.js';

/**
 * @typedef {{
 *   id: string, name: string, role: string|null, tier: number, status: string,
 *   status_reason?: string|null, parent_id: string|null, active_tasks: number,
 *   current_task: string, runtime: string, url: string, x: number, y: number,
 *   agent_card: any, uptime_seconds: number, last_error_rate: number,
 *   last_sample_error: string, workspace_dir: string|null,
 * }} Workspace
 */

export const state = {
  /** @type {Map<string, Workspace>} */
  workspaces: new Map(),
  /**
   * Workspaces the governor decided to restart that are not back yet.
   * @type {Set<string>}
   */
  restarting: new Set(),
  /**
   * Restart decisions, newest first.
   * @type {{workspace_id: string, decision: string, reason: string, timestamp: string}[]}
   */
  decisions: [],
  breakerOpen: false,
  /**
   * Recent events, newest first.
   * @type {any[]}
   */
  events: [],
  /** The live feed's state. */
  live: 'connecting',
};

/** @typedef {{kind: 'reset'} | {kind: 'workspace', id: string} | {kind: 'removed', id: string} | {kind: 'event', event: any} | {kind: 'live'}} Change */
/** @type {Set<(c: Change) => void>} */
const subscribers = new Set();

/** @param {(c: Change) => void} f */
export function subscribe(f) {
  subscribers.add(f);
}

/** @param {Change} c */
function announce(c) {
  for (const f of subscribers) {
    try {
      f(c);
    } catch (e) {
      console.warn('a view failed to update', e);
    }
  }
}

/**
 * The status shown: the stored one, or `restarting` between a restart decision and the way back.
 * @param {Workspace} w
 */
export function shownStatus(w) {
  if (state.restarting.has(w.id) && w.status !== 'online') return 'restarting';
  return w.status;
}

/**
 * Children by parent id ('' for the roots), sorted by name; rebuilt on the
 * next use after the set of workspaces, a name or a parent changes.
 * @type {Map<string, Workspace[]> | null}
 */
let tree = null;
const byName = new Intl.Collator(undefined, { numeric: true });

/**
 * Children of a workspace (or the roots for null), by name.
 * @param {string|null} parent
 * @returns {Workspace[]}
 */
export function childrenOf(parent) {
  if (!tree) {
    tree = new Map();
    for (const w of state.workspaces.values()) {
      const p = w.parent_id && state.workspaces.has(w.parent_id) ? w.parent_id : '';
      let kids = tree.get(p);
      if (!kids) tree.set(p, (kids = []));
      kids.push(w);
    }
    for (const kids of tree.values()) kids.sort((a, b) => byName.compare(a.name, b.name));
  }
  return tree.get(parent || '') || [];
}

function restructured() {
  tree = null;
}

/** Load everything again (first load, reconnect, RESYNC). */
export async function reload() {
  const [list, events, liveness] = await Promise.all([
    api('GET', '/workspaces'),
    api('GET', '/events').catch(() => []),
    api('GET', '/admin/liveness').catch(() => null),
  ]);
  state.workspaces = new Map((list || []).map((/** @type {Workspace} */ w) => [w.id, w]));
  restructured();
  if (liveness && liveness.fleet) state.breakerOpen = Boolean(liveness.fleet.breaker_open);
  const rows = Array.isArray(events) ? events : [];
  state.events = rows.map((e) => ({
    event: e.event_type,
    workspace_id: e.workspace_id,
    timestamp: e.created_at,
    payload: e.payload,
  }));
  state.decisions = state.events
    .filter((e) => e.event === 'WORKSPACE_RESTART_DECISION')
    .map((e) => ({ workspace_id: e.workspace_id, ...e.payload, timestamp: e.timestamp }));
  // Restarting: the newest word on a workspace is a restart decision, not
  // yet followed (newer, so earlier in the list) by its way back.
  state.restarting = new Set();
  /** @type {Set<string>} */
  const settled = new Set();
  for (const e of state.events) {
    const id = e.workspace_id;
    if (!id || settled.has(id)) continue;
    if (e.event === 'WORKSPACE_RESTART_DECISION') {
      const decision = e.payload && e.payload.decision;
      if (decision === 'keep' || decision === 'frozen') continue; // changes nothing (as in apply)
      if (decision === 'restart') state.restarting.add(id);
      settled.add(id);
    } else if (/^WORKSPACE_(ONLINE|PAUSED|PROVISION_FAILED|REMOVED)$/.test(e.event)) {
      settled.add(id);
    }
  }
  announce({ kind: 'reset' });
}

/**
 * Reads in flight, and whether another was asked for meanwhile.
 * @type {Map<string, {again: boolean}>}
 */
const refreshing = new Map();

/**
 * Re-read one workspace. Reads of one id never overlap; one asked for
 * while another runs happens after it, so the last answer is never older
 * than the last event.
 * @param {string} id
 */
export function refresh(id) {
  const running = refreshing.get(id);
  if (running) {
    running.again = true;
    return;
  }
  const mark = { again: false };
  refreshing.set(id, mark);
  api('GET', wsPath(id))
    .then((/** @type {Workspace} */ w) => {
      if (w.status === 'removed') return drop(id);
      if (w.status === 'online' || w.status === 'failed' || w.status === 'paused') {
        state.restarting.delete(id);
      }
      const old = state.workspaces.get(id);
      if (!old || old.parent_id !== w.parent_id || old.name !== w.name) restructured();
      state.workspaces.set(id, w);
      announce({ kind: 'workspace', id });
    })
    .catch(() => {})
    .finally(() => {
      refreshing.delete(id);
      if (mark.again) refresh(id);
    });
}

/** @param {string} id */
function drop(id) {
  restructured();
  if (state.workspaces.delete(id)) announce({ kind: 'removed', id });
  state.restarting.delete(id);
}

/** Status an event implies at once (before the row is re-read). */
const STATUS_OF = /** @type {Record<string, string>} */ ({
  WORKSPACE_ONLINE: 'online',
  WORKSPACE_OFFLINE: 'offline',
  WORKSPACE_DEGRADED: 'degraded',
  WORKSPACE_PAUSED: 'paused',
  WORKSPACE_PROVISIONING: 'provisioning',
  WORKSPACE_PROVISION_FAILED: 'failed',
});

/**
 * Apply one live event.
 * @param {any} e
 */
export function apply(e) {
  const id = e.workspace_id || '';
  const p = e.payload || {};
  state.events.unshift(e);
  if (state.events.length > 500) state.events.length = 500;
  const w = id ? state.workspaces.get(id) : undefined;
  switch (e.event) {
    case 'WORKSPACE_REMOVED':
      drop(id);
      break;
    case 'WORKSPACE_RESTART_DECISION':
      state.decisions.unshift({ workspace_id: id, ...p, timestamp: e.timestamp });
      if (state.decisions.length > 200) state.decisions.length = 200;
      if (p.decision === 'restart') state.restarting.add(id);
      else if (p.decision !== 'keep' && p.decision !== 'frozen') state.restarting.delete(id);
      if (w) announce({ kind: 'workspace', id });
      break;
    case 'FLEET_BREAKER_TRIPPED':
    case 'FLEET_BREAKER_RESET':
      state.breakerOpen = e.event === 'FLEET_BREAKER_TRIPPED';
      break;
    case 'TASK_UPDATED':
      if (w) {
        w.current_task = p.current_task ?? w.current_task;
        w.active_tasks = p.active_tasks ?? w.active_tasks;
        announce({ kind: 'workspace', id });
      }
      break;
    case 'WORKSPACE_EXPANDED':
    case 'WORKSPACE_COLLAPSED':
      reload().catch(() => {});
      break;
    default:
      if (STATUS_OF[e.event]) {
        if (w) {
          w.status = STATUS_OF[e.event];
          if (w.status === 'online' || w.status === 'failed' || w.status === 'paused') {
            state.restarting.delete(id);
          }
          if (p.reason || p.error) w.status_reason = p.reason || p.error;
          announce({ kind: 'workspace', id });
        }
        if (id) refresh(id);
      } else if (id && !w && e.event.startsWith('WORKSPACE_')) {
        refresh(id);
      } else if (e.event === 'AGENT_CARD_UPDATED' && id) {
        refresh(id);
      }
  }
  announce({ kind: 'event', event: e });
}

/** @param {string} live */
export function setLive(live) {
  state.live = live;
  announce({ kind: 'live' });
}

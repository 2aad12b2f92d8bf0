// @ts-check
// Operator views reached from the top bar: create a workspace, import an
// org template, the approvals inbox across the org, and the fleet view
// (counts by status, the breaker, restart decisions with their reasons).

import { api, wsApi, wsPath } from './api.js';
import { form } from './dialogs.js';
import { state, shownStatus, refresh } from './store.js';
import { button, table } from './tabs.js';
import { h, fill, when, toast } from './util.js';

const drawer = /** @type {HTMLElement} */ (document.getElementById('drawer'));
/** @type {'approvals'|'fleet'|null} */
let showing = null;
/** @type {any[]} */
let pending = [];

/** @param {'approvals'|'fleet'|null} what */
export function show(what) {
  showing = showing === what ? null : what;
  drawer.hidden = !showing;
  drawer.dataset.view = showing || '';
  for (const b of document.querySelectorAll('[data-drawer]')) {
    b.setAttribute('aria-pressed', String(b.getAttribute('data-drawer') === showing));
  }
  if (showing === 'approvals') loadApprovals();
  else draw();
}

/**
 * A live event.
 * @param {any} e
 */
export function onEvent(e) {
  if (/^APPROVAL_/.test(e.event)) loadApprovals();
  else if (showing === 'fleet' && /^(WORKSPACE_|FLEET_)/.test(e.event)) draw();
}

/** Everything was reloaded. */
export function onReset() {
  loadApprovals();
  if (showing === 'fleet') draw();
}

export function onWorkspace() {
  if (showing === 'fleet') draw();
}

async function loadApprovals() {
  try {
    pending = (await api('GET', '/approvals/pending')) || [];
  } catch (e) {
    pending = [];
  }
  const count = document.getElementById('approvals-count');
  if (count) count.textContent = pending.length ? String(pending.length) : '';
  if (showing === 'approvals') draw();
}

function draw() {
  if (showing === 'approvals') return fill(drawer, head('Approvals'), approvals());
  if (showing === 'fleet') return fill(drawer, head('Fleet'), fleet());
}

/** @param {string} title */
function head(title) {
  return h(
    'div',
    { class: 'panel-head' },
    h('h2', {}, title),
    h('button', { type: 'button', class: 'close', 'aria-label': `Close ${title}`, onclick: () => show(null) }, '×'),
  );
}

function approvals() {
  /**
   * @param {any} a
   * @param {'approved'|'denied'} decision
   */
  const decide = (a, decision) =>
    button(
      decision === 'approved' ? 'Approve' : 'Deny',
      async () => {
        await wsApi(a.workspace_id, 'POST', `${wsPath(a.workspace_id)}/approvals/${a.id}/decide`, {
          decision,
          decided_by: 'canvas',
        });
        toast(`${a.action}: ${decision}`);
        await loadApprovals();
      },
      decision === 'approved' ? 'primary' : 'danger',
    );
  return h(
    'div',
    { class: 'panel-body approvals' },
    table(
      pending,
      ['Workspace', 'Action', 'Reason', 'Asked', ''],
      (a) => [a.workspace_name || a.workspace_id, h('strong', {}, a.action), a.reason || '', when(a.created_at), h('span', { class: 'row-actions' }, decide(a, 'approved'), decide(a, 'denied'))],
      'Nothing waits for a decision.',
    ),
  );
}

function fleet() {
  /** @type {Record<string, number>} */
  const counts = {};
  for (const w of state.workspaces.values()) {
    const s = shownStatus(w);
    counts[s] = (counts[s] || 0) + 1;
  }
  const name = (/** @type {string} */ id) => state.workspaces.get(id)?.name || id.slice(0, 8);
  return h(
    'div',
    { class: 'panel-body fleet' },
    h(
      'p',
      { class: state.breakerOpen ? 'breaker open' : 'breaker', role: 'status', dataset: { breaker: state.breakerOpen ? 'open' : 'closed' } },
      state.breakerOpen
        ? 'Fleet breaker OPEN: too many workspaces looked gone at once, so nothing is restarted automatically until the observer looks healthy again.'
        : 'Fleet breaker closed: automatic restarts go through the governor (backoff, crash-loop limit).',
    ),
    h(
      'ul',
      { class: 'counts' },
      Object.entries(counts)
        .sort()
        .map(([s, n]) => h('li', { dataset: { status: s } }, h('strong', {}, String(n)), ` ${s}`)),
      h('li', {}, h('strong', {}, String(state.workspaces.size)), ' in all'),
    ),
    h('h3', {}, 'Restart decisions'),
    table(
      state.decisions.slice(0, 100),
      ['When', 'Workspace', 'Decision', 'Reason'],
      (d) => [when(d.timestamp), name(d.workspace_id), h('span', { class: `decision ${d.decision}` }, d.decision), d.reason || ''],
      'No restart decision yet.',
    ),
  );
}

/** The create-workspace form. */
export async function create() {
  const templates = await api('GET', '/templates').catch(() => []);
  const parents = [...state.workspaces.values()].sort((a, b) => a.name.localeCompare(b.name));
  const created = await form(
    'New workspace',
    [
      { name: 'name', label: 'Name', required: true },
      { name: 'role', label: 'Role', placeholder: 'what this agent does' },
      {
        name: 'parent_id',
        label: 'Parent',
        options: [{ value: '', label: '(none: a root)' }, ...parents.map((p) => ({ value: p.id, label: p.name }))],
        value: '',
      },
      {
        name: 'tier',
        label: 'Tier',
        options: [
          { value: '1', label: '1: only its config mounted' },
          { value: '2', label: '2: resource limits' },
          { value: '3', label: '3: privileged' },
          { value: '4', label: '4: host network' },
        ],
        value: '1',
      },
      {
        name: 'template',
        label: 'Template',
        options: [{ value: '', label: '(none)' }, ...(templates || []).map((/** @type {any} */ t) => ({ value: t.id, label: t.name || t.id }))],
        value: '',
      },
    ],
    async (v) => {
      /** @type {any} */
      const body = { name: v.name, tier: Number(v.tier) || 1 };
      if (v.role) body.role = v.role;
      if (v.parent_id) body.parent_id = v.parent_id;
      if (v.template) body.template = v.template;
      return { ...(await api('POST', '/workspaces', body)), name: v.name };
    },
    'Create',
  );
  if (created && created.id) {
    toast(`${created.name}: ${created.status}`);
    refresh(created.id);
  }
}

/** The import-an-org form. */
export async function importOrg() {
  const orgs = (await api('GET', '/org/templates').catch((e) => toast(e.message, true))) || [];
  if (orgs.length === 0) return toast('No org templates in the templates directory.', true);
  const done = await form(
    'Import an org',
    [
      {
        name: 'dir',
        label: 'Org template',
        options: orgs.map((/** @type {any} */ o) => ({ value: o.dir, label: `${o.name || o.dir} (${o.workspaces} workspaces)` })),
        value: orgs[0].dir,
      },
    ],
    (v) => api('POST', '/org/import', { dir: v.dir }),
    'Import',
  );
  if (done) toast(`imported ${done.org}: ${done.count} workspaces`);
}

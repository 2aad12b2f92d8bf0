// @ts-check
// The side panel's tabs about one workspace's resources: activity, events,
// config, secrets, schedules, memories, delegations. Each loads when shown
// and again when a live event concerns it.

import { api, wsApi, wsPath } from './api.js';
import { form, confirm } from './dialogs.js';
import { state } from './store.js';
import { h, when, pretty, toast } from './util.js';

/**
 * @param {any[]} rows
 * @param {string[]} heads
 * @param {(r: any) => any[]} cells
 * @param {string} empty
 */
function table(rows, heads, cells, empty) {
  if (!rows || rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cells(r).map((c) => h('td', {}, c))))),
  );
}

/**
 * @param {string} label
 * @param {() => Promise<any>} act
 * @param {string} [cls]
 */
function button(label, act, cls = '') {
  const b = h('button', { type: 'button', class: cls }, label);
  b.addEventListener('click', async () => {
    b.setAttribute('disabled', '');
    try {
      await act();
    } catch (e) {
      toast(/** @type {Error} */ (e).message, true);
    } finally {
      b.removeAttribute('disabled');
    }
  });
  return b;
}

/** @typedef {(id: string, reload: () => void) => Promise<HTMLElement>} Tab */

/** @type {Tab} */
async function activity(id) {
  const rows = await wsApi(id, 'GET', `${wsPath(id)}/activity?limit=50`);
  return table(
    rows,
    ['When', 'Type', 'Summary', 'Status', 'ms'],
    (r) => [when(r.created_at), r.activity_type, r.summary || r.method || '', r.status || '', r.duration_ms ?? ''],
    'No activity yet.',
  );
}

/** @type {Tab} */
async function events(id) {
  const rows = state.events.filter((e) => e.workspace_id === id).slice(0, 100);
  return table(
    rows,
    ['When', 'Event', 'Details'],
    (e) => [when(e.timestamp), e.event, h('code', {}, summary(e.payload))],
    'No events for this workspace since the page loaded.',
  );
}

/** @param {any} p */
function summary(p) {
  if (!p || typeof p !== 'object') return '';
  const s = JSON.stringify(p);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}

/** @type {Tab} */
async function config(id, reload) {
  const cfg = await wsApi(id, 'GET', `${wsPath(id)}/config`);
  const area = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'code', rows: '14', 'aria-label': 'Config (JSON)' }, pretty(cfg?.data ?? {})));
  return h(
    'div',
    {},
    area,
    h(
      'div',
      { class: 'actions' },
      button(
        'Save config',
        async () => {
          let data;
          try {
            data = JSON.parse(area.value);
          } catch (e) {
            throw new Error(`not JSON: ${/** @type {Error} */ (e).message}`);
          }
          await wsApi(id, 'PATCH', `${wsPath(id)}/config`, data);
          toast('config saved');
          reload();
        },
        'primary',
      ),
    ),
  );
}

/** @type {Tab} */
async function secrets(id, reload) {
  const rows = await wsApi(id, 'GET', `${wsPath(id)}/secrets`);
  const add = button('Add secret', () =>
    form(
      'Set a secret',
      [
        { name: 'key', label: 'Name', required: true, placeholder: 'OPENAI_API_KEY' },
        { name: 'value', label: 'Value (never shown again)', type: 'password', required: true },
      ],
      async (v) => {
        await wsApi(id, 'POST', `${wsPath(id)}/secrets`, { key: v.key, value: v.value });
        reload();
      },
    ),
  );
  return h(
    'div',
    {},
    table(
      rows,
      ['Name', 'Scope', 'Updated', ''],
      (r) => [
        r.key,
        r.scope,
        when(r.updated_at),
        r.scope === 'workspace'
          ? button('Delete', async () => {
              if (!(await confirm(`Delete ${r.key}?`, 'The workspace restarts without it.'))) return;
              await wsApi(id, 'DELETE', `${wsPath(id)}/secrets/${encodeURIComponent(r.key)}`);
              reload();
            })
          : '',
      ],
      'No secrets.',
    ),
    h('div', { class: 'actions' }, add),
  );
}

/** @type {Tab} */
async function schedules(id, reload) {
  const rows = await wsApi(id, 'GET', `${wsPath(id)}/schedules`);
  const base = `${wsPath(id)}/schedules`;
  const history = h('div', { class: 'history' });
  const add = button('New schedule', () =>
    form(
      'New schedule',
      [
        { name: 'name', label: 'Name', required: true },
        { name: 'cron_expr', label: 'Cron (min hour day month weekday)', required: true, placeholder: '0 9 * * 1-5' },
        { name: 'timezone', label: 'Time zone', value: 'UTC' },
        { name: 'prompt', label: 'Prompt', type: 'textarea', required: true },
      ],
      async (v) => {
        await wsApi(id, 'POST', base, { ...v, enabled: true });
        reload();
      },
      'Create',
    ),
  );
  return h(
    'div',
    {},
    table(
      rows,
      ['Name', 'Cron', 'Next run', 'Last', 'Enabled', ''],
      (s) => [
        s.name,
        h('code', {}, `${s.cron_expr} ${s.timezone}`),
        when(s.next_run_at),
        s.last_status ? `${s.last_status} ${when(s.last_run_at)}` : '',
        h('input', {
          type: 'checkbox',
          checked: s.enabled,
          'aria-label': `enable ${s.name}`,
          onchange: async (/** @type {Event} */ ev) => {
            const on = /** @type {HTMLInputElement} */ (ev.target).checked;
            await wsApi(id, 'PATCH', `${base}/${s.id}`, { enabled: on }).catch((e) => toast(e.message, true));
            reload();
          },
        }),
        h(
          'span',
          { class: 'row-actions' },
          button('Run now', async () => {
            await wsApi(id, 'POST', `${base}/${s.id}/run`);
            toast(`${s.name}: fired`);
            reload();
          }),
          button('History', async () => {
            const runs = await wsApi(id, 'GET', `${base}/${s.id}/history`);
            history.replaceChildren(
              h('h3', {}, `History of ${s.name}`),
              table(runs, ['When', 'Status', 'ms', 'Error'], (r) => [when(r.timestamp), r.status, r.duration_ms ?? '', r.error_detail || ''], 'Never ran.'),
            );
          }),
          button('Delete', async () => {
            if (!(await confirm(`Delete schedule ${s.name}?`, 'Its history goes with it.'))) return;
            await wsApi(id, 'DELETE', `${base}/${s.id}`);
            reload();
          }),
        ),
      ],
      'No schedules.',
    ),
    h('div', { class: 'actions' }, add),
    history,
  );
}

/** @type {Tab} */
async function memories(id, reload) {
  const rows = await wsApi(id, 'GET', `${wsPath(id)}/memories`);
  const add = button('Add memory', () =>
    form(
      'Commit a memory',
      [
        { name: 'content', label: 'Content', type: 'textarea', required: true },
        {
          name: 'scope',
          label: 'Scope',
          options: ['LOCAL', 'TEAM', 'GLOBAL'].map((s) => ({ value: s, label: s })),
          value: 'LOCAL',
        },
        { name: 'namespace', label: 'Namespace', value: 'general' },
      ],
      async (v) => {
        await wsApi(id, 'POST', `${wsPath(id)}/memories`, v);
        reload();
      },
    ),
  );
  return h(
    'div',
    {},
    table(
      rows,
      ['Scope', 'Namespace', 'Content', 'When', ''],
      (m) => [
        m.scope,
        m.namespace,
        m.content,
        when(m.created_at),
        m.workspace_id === id
          ? button('Delete', async () => {
              await wsApi(id, 'DELETE', `${wsPath(id)}/memories/${m.id}`);
              reload();
            })
          : '',
      ],
      'No memories.',
    ),
    h('div', { class: 'actions' }, add),
  );
}

/** @type {Tab} */
async function delegations(id) {
  const rows = await wsApi(id, 'GET', `${wsPath(id)}/delegations`);
  const name = (/** @type {string} */ w) => state.workspaces.get(w)?.name || w || '';
  return table(
    rows,
    ['When', 'To', 'Status', 'Summary'],
    (d) => [when(d.created_at), name(d.target_id), d.status, d.response_preview || d.error || d.summary || ''],
    'No delegations.',
  );
}

/** Tabs by name, and the events that make each reload. */
export const TABS = /** @type {Record<string, {label: string, load: Tab, on: RegExp}>} */ ({
  activity: { label: 'Activity', load: activity, on: /^(ACTIVITY_LOGGED|A2A_RESPONSE)$/ },
  events: { label: 'Events', load: events, on: /./ },
  config: { label: 'Config', load: config, on: /^$/ },
  secrets: { label: 'Secrets', load: secrets, on: /^$/ },
  schedules: { label: 'Schedules', load: schedules, on: /^CRON_/ },
  memories: { label: 'Memories', load: memories, on: /^$/ },
  delegations: { label: 'Delegations', load: delegations, on: /^DELEGATION_/ },
});

export { api, button, table };

// @ts-check
// Boot: sign in when the platform asks for it, load the org, then keep it
// live from /ws. Views subscribe to the store; nothing polls.

import { api, auth, whenUnauthorized, ApiError } from './api.js';
import * as chart from './chart.js';
import { connect } from './live.js';
import * as ops from './ops.js';
import * as panel from './panel.js';
import { state, subscribe, reload, apply, setLive } from './store.js';
import { h, fill, toast } from './util.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
let firstRender = true;

subscribe((c) => {
  switch (c.kind) {
    case 'reset':
      performance.mark('molecule:render-start');
      chart.render();
      performance.measure('molecule:render', 'molecule:render-start');
      if (firstRender && state.workspaces.size > 0) {
        // Marked once the browser has painted the chart (a task queued
        // from the frame callback runs after that frame).
        firstRender = false;
        const workspaces = state.workspaces.size;
        requestAnimationFrame(() =>
          setTimeout(() => performance.mark('molecule:first-render', { detail: { workspaces } }), 0),
        );
      }
      $('empty').hidden = state.workspaces.size > 0;
      ops.onReset();
      if (panel.shown()) panel.onWorkspace(/** @type {string} */ (panel.shown()));
      break;
    case 'workspace':
      chart.update(c.id);
      $('empty').hidden = true;
      panel.onWorkspace(c.id);
      ops.onWorkspace();
      break;
    case 'removed':
      chart.render();
      panel.onWorkspace(c.id);
      ops.onWorkspace();
      break;
    case 'event':
      panel.onEvent(c.event);
      ops.onEvent(c.event);
      break;
    case 'live': {
      const el = $('live');
      el.dataset.state = state.live;
      el.textContent = state.live === 'live' ? 'live' : state.live === 'connecting' ? 'connecting…' : 'reconnecting…';
      break;
    }
  }
});

chart.whenSelected((id) => panel.open(id));

/** @type {{stop: () => void} | null} */
let feed = null;

async function start() {
  let saved;
  try {
    [, saved] = await Promise.all([reload(), api('GET', '/canvas/viewport').catch(() => null)]);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signIn(auth.token ? 'That token was refused.' : '');
    fill($('empty'), h('p', { class: 'form-error' }, `${/** @type {Error} */ (e).message}; trying again…`));
    $('empty').hidden = false;
    window.setTimeout(start, 2000);
    return;
  }
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = !auth.token;
  chart.useView(saved);
  // Events between the first load and the socket's opening are not lost:
  // every (re)connect reloads.
  feed = connect({
    onEvent: apply,
    onResync: () => reload().catch((e) => toast(`reload failed: ${e.message}`, true)),
    onState: setLive,
  });
}

/**
 * The sign-in form: the admin token, kept for this tab only.
 * @param {string} message
 */
function signIn(message) {
  feed?.stop();
  feed = null;
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  /** @type {HTMLInputElement} */ ($('token')).focus();
}

whenUnauthorized(() => {
  if (!$('app').hidden) signIn('The platform asked to sign in again.');
});

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('token'));
  auth.set(input.value.trim());
  input.value = '';
  start();
});
$('signout').addEventListener('click', () => {
  auth.set('');
  signIn('Signed out.');
});
$('new').addEventListener('click', () => ops.create().catch((e) => toast(e.message, true)));
$('import').addEventListener('click', () => ops.importOrg().catch((e) => toast(e.message, true)));
$('fit').addEventListener('click', () => chart.fit());
for (const b of document.querySelectorAll('[data-drawer]')) {
  b.addEventListener('click', () => ops.show(/** @type {any} */ (b.getAttribute('data-drawer'))));
}

document.addEventListener('keydown', (ev) => {
  const typing = /** @type {HTMLElement} */ (ev.target).closest('input, textarea, select');
  if (ev.key === '/' && !typing) {
    ev.preventDefault();
    $('search').focus();
  } else if (ev.key === 'Escape' && !typing && panel.shown()) {
    // Close the panel; the selection stays, so Enter opens it again.
    panel.open(null);
    const node = document.querySelector('.node.selected');
    /** @type {HTMLElement} */ (node || $('chart')).focus();
  }
});

start();

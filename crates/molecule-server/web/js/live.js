// @ts-check
// The live feed: one WebSocket to /ws, reconnected with backoff. Browsers
// cannot set headers on a WebSocket, so the admin token (when signed in)
// travels as a subprotocol, `molecule.bearer.<base64url token>`, beside
// `molecule`, which the server selects. Every (re)connect and every RESYNC
// frame asks the page to reload its state: events are never replayed.

import { auth } from './api.js';

/** @param {string} s */
function base64url(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * @param {{
 *   onEvent: (e: any) => void,
 *   onResync: () => void,
 *   onState: (state: 'connecting' | 'live' | 'reconnecting') => void,
 * }} handlers
 */
export function connect(handlers) {
  let backoff = 500;
  /** @type {WebSocket | null} */
  let socket = null;
  let stopped = false;

  function open() {
    handlers.onState(socket ? 'reconnecting' : 'connecting');
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const protocols = ['molecule'];
    if (auth.token) protocols.push(`molecule.bearer.${base64url(auth.token)}`);
    const ws = new WebSocket(`${scheme}//${location.host}/ws`, protocols);
    socket = ws;
    ws.onopen = () => {
      backoff = 500;
      handlers.onState('live');
      handlers.onResync();
    };
    ws.onmessage = (m) => {
      /** @type {any} */
      let e;
      try {
        e = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (e.event === 'RESYNC') handlers.onResync();
      else handlers.onEvent(e);
    };
    ws.onclose = () => {
      if (stopped) return;
      handlers.onState('reconnecting');
      window.setTimeout(open, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  open();
  return {
    /** Close for good (sign-out). */
    stop() {
      stopped = true;
      socket?.close();
    },
  };
}

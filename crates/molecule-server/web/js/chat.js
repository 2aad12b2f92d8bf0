// @ts-check
// A conversation with one agent over A2A through the platform's proxy:
// `message/stream`, the answer drawn as its events arrive (server-sent
// events); an agent that does not stream answers with one JSON-RPC
// response, shown the same way. A conversation keeps its contextId; an
// `input-required` question is answered by the next message.

import { authHeaders, wsPath } from './api.js';
import { h, partsText } from './util.js';

/**
 * One conversation per workspace while the page is open.
 * @type {Map<string, {contextId?: string, taskId?: string, log: HTMLElement}>}
 */
const conversations = new Map();

/** @param {string} id */
export function chatView(id) {
  let conv = conversations.get(id);
  if (!conv) {
    conv = { log: h('div', { class: 'chat-log', role: 'log', 'aria-live': 'polite' }) };
    conversations.set(id, conv);
  }
  const c = conv;
  const text = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { class: 'chat-input', rows: '2', placeholder: 'Message the agent (Enter sends, Shift+Enter breaks the line)', 'aria-label': 'Message' })
  );
  const send = h('button', { type: 'submit', class: 'primary' }, 'Send');
  const formEl = /** @type {HTMLFormElement} */ (h('form', { class: 'chat-form' }, text, send));
  formEl.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const msg = text.value.trim();
    if (!msg) return;
    text.value = '';
    send.setAttribute('disabled', '');
    turn(id, c, msg).finally(() => {
      send.removeAttribute('disabled');
      text.focus();
    });
  });
  text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      formEl.requestSubmit();
    }
  });
  window.setTimeout(() => text.focus(), 0);
  return h('div', { class: 'chat' }, c.log, formEl);
}

/**
 * @param {string} id @param {{contextId?: string, taskId?: string, log: HTMLElement}} c @param {string} msg
 */
async function turn(id, c, msg) {
  c.log.append(h('div', { class: 'msg user' }, msg));
  const answer = h('div', { class: 'msg agent streaming' });
  const state = h('div', { class: 'msg-state' }, 'sending…');
  c.log.append(state, answer);
  c.log.scrollTop = c.log.scrollHeight;
  /** @type {any} */
  const message = { role: 'user', messageId: crypto.randomUUID(), parts: [{ kind: 'text', text: msg }] };
  if (c.contextId) message.contextId = c.contextId;
  if (c.taskId) message.taskId = c.taskId;
  c.taskId = undefined;
  const body = { jsonrpc: '2.0', id: crypto.randomUUID(), method: 'message/stream', params: { message } };
  /** @type {string[]} */
  const seen = [];
  /**
   * @param {any} v
   * @returns {boolean} the turn is over
   */
  const apply = (v) => {
    if (v.error) throw new Error(`the agent answered ${v.error.code}: ${v.error.message}`);
    const r = v.result || {};
    if (r.contextId) c.contextId = r.contextId;
    const said = (/** @type {string} */ t) => {
      if (t) answer.textContent += t;
      c.log.scrollTop = c.log.scrollHeight;
    };
    const status = (/** @type {any} */ s) => {
      if (!s || !s.state) return false;
      // The task's states as they streamed in: submitted → working → completed.
      if (seen[seen.length - 1] !== s.state) seen.push(s.state);
      state.textContent = seen.join(' → ');
      const t = partsText(s.message && s.message.parts);
      if (s.state === 'input-required') {
        c.taskId = r.taskId || r.id;
        if (t) said(t);
        return true;
      }
      if (t) said(t);
      return ['completed', 'failed', 'canceled', 'rejected'].includes(s.state);
    };
    switch (r.kind) {
      case 'message':
        said(partsText(r.parts));
        state.textContent = 'completed';
        return true;
      case 'task':
        for (const a of r.artifacts || []) said(partsText(a.parts));
        return status(r.status);
      case 'status-update':
        return status(r.status) || Boolean(r.final);
      case 'artifact-update':
        said(partsText(r.artifact && r.artifact.parts));
        return false;
      default:
        return false;
    }
  };
  try {
    const res = await fetch(`${wsPath(id)}/a2a`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...authHeaders() },
      body: JSON.stringify(body),
    });
    if (!res.ok) {
      const t = await res.text();
      let m = t;
      try {
        m = JSON.parse(t).error || t;
      } catch {
        /* text */
      }
      throw new Error(typeof m === 'string' ? m : JSON.stringify(m));
    }
    if (!(res.headers.get('content-type') || '').startsWith('text/event-stream') || !res.body) {
      apply(await res.json());
    } else {
      await sse(res.body, apply);
    }
  } catch (e) {
    answer.classList.add('error');
    answer.textContent = /** @type {Error} */ (e).message;
    state.textContent = 'error';
  } finally {
    answer.classList.remove('streaming');
  }
}

/**
 * Read server-sent events; each `data:` block is one JSON-RPC response.
 * @param {ReadableStream<Uint8Array>} body @param {(v: any) => boolean} onData
 */
async function sse(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) continue;
      if (onData(JSON.parse(data))) {
        await reader.cancel().catch(() => {});
        return;
      }
    }
  }
}

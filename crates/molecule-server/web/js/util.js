// @ts-check
// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so
// nothing an agent or a workspace name carries can become markup.

/**
 * Build an element: `h('button', {class: 'x', onclick: f}, 'label')`.
 * Attributes starting with `on` are listeners; `dataset` sets data-*;
 * `false`/`null`/`undefined` attributes and children are skipped.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
    } else if (k === 'value') {
      /** @type {any} */ (el).value = v;
    } else if (k === 'checked' || k === 'disabled' || k === 'selected') {
      /** @type {any} */ (el)[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {any[]} children
 */
function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === false || c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/**
 * Replace an element's children.
 * @param {Element} el
 * @param {...any} children
 */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * A short local time, or '' for a missing value.
 * @param {string|null|undefined} t
 */
export function when(t) {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/**
 * @template {any[]} A
 * @param {(...args: A) => void} fn
 * @param {number} ms
 */
export function debounce(fn, ms) {
  /** @type {number|undefined} */
  let timer;
  return (/** @type {A} */ ...args) => {
    clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), ms);
  };
}

/**
 * Pretty JSON for display.
 * @param {any} v
 */
export function pretty(v) {
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}

/**
 * The text parts of an A2A message or artifact.
 * @param {any} parts
 */
export function partsText(parts) {
  if (!Array.isArray(parts)) return '';
  return parts
    .filter((p) => p && (p.kind === 'text' || p.type === 'text') && typeof p.text === 'string')
    .map((p) => p.text)
    .join('');
}

/**
 * Show a transient message at the bottom of the page.
 * @param {string} text
 * @param {boolean} [error]
 */
export function toast(text, error = false) {
  const box = document.getElementById('toast');
  if (!box) return;
  const item = h('div', { class: error ? 'toast error' : 'toast', role: error ? 'alert' : 'status' }, text);
  box.append(item);
  window.setTimeout(() => item.remove(), error ? 8000 : 4000);
}

// @ts-check
// Modal forms: a confirmation, and a form whose submit runs an action and
// shows the API's error in the form (the form stays open to be corrected).

import { h, fill } from './util.js';

const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('dialog'));

/**
 * @typedef {{
 *   name: string, label: string, type?: string, required?: boolean,
 *   options?: {value: string, label: string}[], value?: string, placeholder?: string,
 *   min?: number, max?: number,
 * }} Field
 */

/** @param {Field} f */
function input(f) {
  const id = `f-${f.name}`;
  let control;
  if (f.options) {
    control = h(
      'select',
      { id, name: f.name, required: f.required },
      f.options.map((o) => h('option', { value: o.value, selected: o.value === f.value }, o.label)),
    );
  } else if (f.type === 'textarea') {
    control = h('textarea', { id, name: f.name, required: f.required, rows: '6', placeholder: f.placeholder }, f.value || '');
  } else {
    control = h('input', {
      id,
      name: f.name,
      type: f.type || 'text',
      required: f.required,
      value: f.value,
      placeholder: f.placeholder,
      min: f.min,
      max: f.max,
      autocomplete: 'off',
    });
  }
  return h('label', { for: id }, h('span', {}, f.label, f.required ? ' *' : ''), control);
}

/**
 * Show a form; `action` gets the values and may throw (its message is shown).
 * Resolves to the action's result, or null when cancelled.
 * @template T
 * @param {string} title @param {Field[]} fields
 * @param {(values: Record<string, string>) => Promise<T>} action
 * @param {string} [submit] @param {string} [intro]
 * @returns {Promise<T|null>}
 */
export function form(title, fields, action, submit = 'Save', intro = '') {
  return new Promise((resolve) => {
    const error = h('p', { class: 'form-error', role: 'alert' });
    const ok = h('button', { type: 'submit', class: 'primary' }, submit);
    const cancel = h('button', { type: 'button', onclick: () => close(null) }, 'Cancel');
    const el = /** @type {HTMLFormElement} */ (
      h('form', { method: 'dialog', class: 'modal-form' }, h('h2', {}, title), intro && h('p', {}, intro), fields.map(input), error, h('div', { class: 'actions' }, cancel, ok))
    );
    /** @param {T|null} v */
    const close = (v) => {
      dialog.close();
      resolve(v);
    };
    el.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      /** @type {Record<string, string>} */
      const values = {};
      for (const [k, v] of new FormData(el).entries()) values[k] = String(v);
      ok.setAttribute('disabled', '');
      error.textContent = '';
      try {
        close(await action(values));
      } catch (e) {
        error.textContent = /** @type {Error} */ (e).message;
        ok.removeAttribute('disabled');
      }
    });
    dialog.onclose = () => resolve(null);
    fill(dialog, el);
    dialog.showModal();
    /** @type {HTMLElement|null} */ (el.querySelector('input, select, textarea'))?.focus();
  });
}

/**
 * Ask before doing something that cannot be undone.
 * @param {string} title
 * @param {string} text
 * @param {string} [yes]
 */
export function confirm(title, text, yes = 'Delete') {
  return form(title, [], async () => true, yes, text).then((v) => v === true);
}


// The console's core: DOM building, the API client (cookie session + CSRF header), forms that
// show the API's problems next to the fields they name, dates in the city's time.
import { t, lang, message } from './i18n.js';

/** The signed-in account (`GET /v1/me`) and the session's CSRF token, or nulls. */
export const session = { me: null, csrf: null };

/** An element: `h('p', {class: 'x', onclick: f}, 'text', child)`. Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

/** An RFC 9457 problem answered by the API. */
export class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.fields = Array.isArray(this.body.errors) ? this.body.errors : [];
  }
  /** The slug of the problem's type (`capacity-exhausted`), if any. */
  get slug() {
    const type = this.body.type || '';
    return type.slice(type.lastIndexOf('/') + 1);
  }
}

/** Calls the API; answers `{data, res}` or throws a Problem. Writes carry the CSRF token. */
export async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && session.csrf) init.headers['X-CSRF-Token'] = session.csrf;
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new Problem(0, { title: t('error.network') });
  }
  const type = res.headers.get('content-type') || '';
  const data = res.status === 204 ? null : type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new Problem(res.status, typeof data === 'object' && data ? data : { detail: data });
  return { data, res };
}

export const get = async (path) => (await api('GET', path)).data;

/** Every item of a list, page after page (a week's sessions or bookings of a busy base). */
export async function getAll(path, pages = 20) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < pages; i += 1) {
    const sep = path.includes('?') ? '&' : '?';
    const data = await get(cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path);
    items.push(...data.items);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return items;
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

const CITY = 'Asia/Shanghai';

/** A date and time in the city's time, in the page's language. */
export function when(iso) {
  return new Intl.DateTimeFormat(lang(), {
    timeZone: CITY, year: 'numeric', month: 'short', day: 'numeric', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).format(new Date(iso));
}

/** A time of day in the city's time, 24-hour. */
export function time(iso) {
  return new Intl.DateTimeFormat(lang(), { timeZone: CITY, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
}

/** Words as a list in the page's language (「、」 in Chinese, commas in English). */
export function listOf(items) {
  return new Intl.ListFormat(lang(), { style: 'narrow', type: 'unit' }).format(items);
}

/** A message shown once, on the next page drawn (after an action that redraws the page). */
export function flash(text) {
  sessionStorage.setItem('kepu.flash', text);
}

export function day(iso) {
  return new Intl.DateTimeFormat(lang(), { timeZone: CITY, year: 'numeric', month: 'short', day: 'numeric' }).format(new Date(iso));
}

/** The city's calendar day (YYYY-MM-DD) of an instant, and the instant a local day starts. */
export function localDay(date = new Date()) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: CITY }).format(date);
}
export function dayStart(ymd) {
  return `${ymd}T00:00:00+08:00`;
}
export function addDays(ymd, n) {
  const d = new Date(`${ymd}T12:00:00+08:00`);
  d.setUTCDate(d.getUTCDate() + n);
  return localDay(d);
}

/** A base's name in the page's language. */
export function baseName(b) {
  if (!b) return '';
  return lang() === 'en' ? b.name_en || b.name_zh : b.name_zh || b.name_en;
}

/** A translated enum value (`status.confirmed`), or the value itself. */
export function label(group, value) {
  const key = `${group}.${value}`;
  const text = t(key);
  return text === key ? value : text;
}

/** A status message region that screen readers announce. */
export function notice(kind, ...kids) {
  return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...kids);
}

/** Explains a problem in the page's language, with the API's own words beside. */
export function explain(p) {
  if (!(p instanceof Problem)) return [t('error.unexpected'), h('small', {}, String(p))];
  const known = t(`problem.${p.slug}`);
  const title = known !== `problem.${p.slug}` ? known : t(`status.http.${p.status}`) !== `status.http.${p.status}` ? t(`status.http.${p.status}`) : p.body.title || t('error.unexpected');
  const detail = p.body.detail && p.body.detail !== title ? h('small', { class: 'detail' }, message(p.body.detail)) : null;
  return [title, detail];
}

let formCount = 0;

/**
 * A form: labelled fields, a submit button, errors next to the fields the API names.
 * `fields`: [{name, label, type='text', value, required, options:[[value,label]], min, max, step, hint, inputmode, autocomplete}]
 * `submit(values)` may throw a Problem; its field errors are shown by name (`contact.phone` → `contact_phone` too).
 */
export function form({ fields, submitLabel, submit, className = '', id, mapField = (f) => f }) {
  const formId = id || `f${++formCount}`;
  const summary = h('div', { class: 'form-summary', 'aria-live': 'polite' });
  const inputs = new Map();
  const errors = new Map();
  const rows = fields.map((f) => {
    const inputId = `${formId}-${f.name}`;
    const errorId = `${inputId}-error`;
    const hintId = f.hint ? `${inputId}-hint` : null;
    const common = {
      id: inputId, name: f.name, required: f.required, 'aria-describedby': [hintId, errorId].filter(Boolean).join(' '),
      autocomplete: f.autocomplete, inputmode: f.inputmode, class: f.big ? 'big' : null, autofocus: f.autofocus,
    };
    let input;
    if (f.type === 'select') {
      input = h('select', common, (f.options || []).map(([v, l]) => h('option', { value: v, selected: String(v) === String(f.value ?? '') }, l)));
    } else if (f.type === 'textarea') {
      input = h('textarea', { ...common, rows: 3, maxlength: f.max }, f.value ?? '');
    } else if (f.type === 'checkbox') {
      input = h('input', { ...common, type: 'checkbox', checked: !!f.value });
    } else {
      input = h('input', { ...common, type: f.type || 'text', value: f.value ?? '', min: f.min, max: f.max, step: f.step, maxlength: f.maxlength, placeholder: f.placeholder });
    }
    inputs.set(f.name, input);
    const err = h('p', { class: 'field-error', id: errorId });
    errors.set(f.name, err);
    const labelEl = h('label', { for: inputId }, f.label, f.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null);
    return h('div', { class: `field ${f.type === 'checkbox' ? 'check' : ''}` },
      f.type === 'checkbox' ? [input, labelEl] : [labelEl, input],
      f.hint ? h('p', { class: 'hint', id: hintId }, f.hint) : null, err);
  });
  const button = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const el = h('form', { class: `form ${className}`, id: formId, novalidate: false }, rows, summary, h('div', { class: 'actions' }, button));
  const clear = () => {
    summary.replaceChildren();
    for (const [name, e] of errors) {
      e.replaceChildren();
      inputs.get(name).removeAttribute('aria-invalid');
    }
  };
  const values = () => {
    const out = {};
    for (const f of fields) {
      const input = inputs.get(f.name);
      if (f.type === 'checkbox') out[f.name] = input.checked;
      else if (f.type === 'number') out[f.name] = input.value === '' ? null : Number(input.value);
      else out[f.name] = input.value.trim() === '' ? null : input.value.trim();
    }
    return out;
  };
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clear();
    // Blank text where something is required: said here, in the page's language.
    const blank = fields.filter((f) => f.required && !['checkbox', 'select', 'number'].includes(f.type) && inputs.get(f.name).value.trim() === '');
    if (blank.length) {
      for (const f of blank) {
        errors.get(f.name).append(t('form.required'));
        inputs.get(f.name).setAttribute('aria-invalid', 'true');
      }
      inputs.get(blank[0].name).focus();
      return;
    }
    button.disabled = true;
    try {
      await submit(values(), el);
    } catch (p) {
      if (p instanceof Problem && p.status === 401 && session.me) {
        // The session ended meanwhile: log in again, then come back here.
        session.me = null;
        session.csrf = null;
        sessionStorage.setItem('kepu.after_login', location.hash);
        location.hash = '#/login';
        return;
      }
      showProblem(p);
    } finally {
      button.disabled = false;
    }
  });
  /** Shows a problem: each field error by its input, the rest above the button. */
  function showProblem(p) {
    const unplaced = [];
    if (p instanceof Problem) {
      for (const fe of p.fields) {
        const name = [mapField(fe.field), fe.field, fe.field.replace(/\./g, '_'), fe.field.split('.').pop(), fe.field.split('[')[0]].find((n) => errors.has(n));
        if (name) {
          errors.get(name).append(message(fe.message));
          inputs.get(name).setAttribute('aria-invalid', 'true');
        } else unplaced.push(`${fe.field}: ${message(fe.message)}`);
      }
    }
    if (!(p instanceof Problem) || p.fields.length === 0 || unplaced.length) {
      summary.append(notice('error', explain(p), unplaced.length ? h('ul', {}, unplaced.map((u) => h('li', {}, u))) : null));
    }
    const first = [...inputs.values()].find((i) => i.getAttribute('aria-invalid') === 'true');
    (first || summary).focus?.();
  }
  return { el, inputs, values, showProblem, summary };
}

/** A page heading and its content, focused for screen readers on navigation. */
export function page(title, ...kids) {
  document.title = `${title} · ${t('app.name')}`;
  const flashed = sessionStorage.getItem('kepu.flash');
  sessionStorage.removeItem('kepu.flash');
  return [h('h1', { tabindex: '-1', id: 'page-title' }, title), flashed ? notice('success', flashed) : null, ...present(kids)];
}

/** Draws the current page again (after an action that changed what it shows). */
export function redraw(message) {
  if (message) flash(message);
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}

/** The nodes of a nested list, without the empty places (`null`, `false`). */
export function present(kids) {
  return kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false);
}

/** Scrolls a list item into view and marks it for a moment (a map's dot was chosen). */
export function showItem(selector) {
  const el = document.querySelector(selector);
  if (!el) return;
  el.scrollIntoView({ behavior: 'smooth', block: 'center' });
  el.classList.add('chosen');
  setTimeout(() => el.classList.remove('chosen'), 1600);
}

/** An empty-list line. */
export const empty = (text) => h('p', { class: 'empty' }, text);

/** A random idempotency key for a booking request. */
export function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

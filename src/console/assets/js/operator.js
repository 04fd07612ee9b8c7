// A base's operator: today's and the week's sessions with their bookings and free places,
// new sessions (one, or a weekly pattern), closing and cancelling, checking groups in at the
// gate, and editing the base's profile and exhibits without overwriting anyone's changes.
import { t } from './i18n.js';
import { h, api, get, getAll, query, form, page, notice, empty, when, day, time, listOf, baseName, label, session, localDay, addDays, dayStart, explain, redraw, Problem } from './core.js';

const AUDIENCES = ['preschool', 'primary_lower', 'primary_upper', 'junior', 'senior', 'adult'];
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const KINDS = ['interactive', 'static', 'multimedia', 'specimen', 'live'];
const EXHIBIT_STATUSES = ['on_display', 'maintenance', 'retired'];

/** The base being worked on: the one chosen, else the account's first. */
function currentBase() {
  const ids = session.me.base_ids || [];
  const chosen = localStorage.getItem('kepu.base');
  return ids.includes(chosen) ? chosen : ids[0];
}

async function basePicker() {
  const ids = session.me.base_ids || [];
  if (ids.length < 2) return null;
  const all = await Promise.all(ids.map((id) => get(`/v1/bases/${id}`)));
  const select = h('select', { id: 'base-picker', onchange: (e) => { localStorage.setItem('kepu.base', e.target.value); window.dispatchEvent(new HashChangeEvent('hashchange')); } },
    all.map((b) => h('option', { value: b.id, selected: b.id === currentBase() }, baseName(b))));
  return h('div', { class: 'field inline-field' }, h('label', { for: 'base-picker' }, t('field.base')), select);
}

/** A week of the base's sessions (this one first, `?week=N` later ones), each with its
 * bookings, whatever their status; new sessions below. */
export async function today() {
  const baseId = currentBase();
  if (!baseId) return page(t('today.title'), empty(t('today.no_base')));
  const b = await get(`/v1/bases/${baseId}`);
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const week = Math.max(0, Math.min(52, Number(params.get('week')) || 0));
  const today = localDay();
  const from = addDays(today, 7 * week);
  const sessions = await getAll(`/v1/sessions${query({ base_id: baseId, any_status: 'true', from: dayStart(from), to: dayStart(addDays(from, 7)), limit: 200 })}`);
  // The week's bookings of the caller's bases, in one request, by session.
  const booked = await getAll(`/v1/bookings${query({ from: dayStart(from), to: dayStart(addDays(from, 7)), limit: 500 })}`);
  const cards = sessions.map((s) => sessionCard(s, booked.filter((b) => b.session_id === s.id)));
  const byDay = new Map();
  sessions.forEach((s, i) => {
    const d = localDay(new Date(s.starts_at));
    if (!byDay.has(d)) byDay.set(d, []);
    byDay.get(d).push(cards[i]);
  });
  const days = [...byDay.entries()].map(([d, list]) => h('section', { class: 'day' },
    h('h2', {}, d === today ? `${t('today.today')} · ${day(dayStart(d))}` : day(dayStart(d))), h('ul', { class: 'cards' }, list)));
  const weeks = h('nav', { class: 'row', 'aria-label': t('today.weeks') },
    week > 0 ? h('a', { href: `#/today?week=${week - 1}` }, t('today.prev_week')) : null,
    h('span', {}, t('today.week_of', { from: day(dayStart(from)), to: day(dayStart(addDays(from, 6))) })),
    h('a', { href: `#/today?week=${week + 1}` }, t('today.next_week')));
  return page(t('today.title'), await basePicker(), h('p', {}, baseName(b)), weeks,
    days.length ? days : empty(t('today.none')),
    h('h2', {}, t('session.new')), newSession(baseId), h('h2', {}, t('session.pattern')), newPattern(baseId));
}

function sessionCard(s, bookings) {
  const out = h('div', { 'aria-live': 'polite' });
  const statusEl = h('span', { class: `status ${s.status}` }, label('session_status', s.status));
  const act = async (path, body, done) => {
    try {
      await api('POST', `/v1/sessions/${s.id}/${path}`, body);
      redraw(done);
    } catch (p) {
      out.replaceChildren(notice('error', explain(p)));
    }
  };
  const started = new Date(s.starts_at) <= new Date();
  const actions = [];
  if (s.status === 'open' && !started) actions.push(h('button', { type: 'button', onclick: () => act('close', {}, t('session.closed_done')) }, t('session.close')));
  if (s.status === 'closed' && !started) actions.push(h('button', { type: 'button', onclick: () => act('reopen', {}, t('session.reopened_done')) }, t('session.reopen')));
  let cancel = null;
  if (s.status !== 'cancelled' && !started) {
    const f = form({
      fields: [{ name: 'reason', label: t('session.cancel_reason'), type: 'textarea', required: true, max: 500 }],
      submitLabel: t('session.cancel_confirm'),
      submit: async (v) => {
        await api('POST', `/v1/sessions/${s.id}/cancel`, { reason: v.reason || '' });
        redraw(t('session.cancelled_done'));
      },
    });
    const active = bookings.filter((b) => ['confirmed', 'waitlisted'].includes(b.status)).length;
    cancel = h('details', { class: 'danger' }, h('summary', {}, t('session.cancel')), active ? notice('warning', t('session.cancel_warning', { n: active })) : null, f.el);
  }
  const rows = bookings.map((b) => h('tr', {},
    h('td', {}, b.contact_name), h('td', {}, `${b.students} + ${b.teachers}`), h('td', {}, label('audience', b.audience)),
    h('td', {}, label('booking_status', b.status)),
    h('td', {}, b.status === 'checked_in' ? `${b.students_present ?? 0} + ${b.teachers_present ?? 0}` : '')));
  return h('li', { class: 'card', 'data-session': s.id },
    h('h3', {}, `${time(s.starts_at)}–${time(s.ends_at)}`, ' ', statusEl),
    h('p', {}, t('find.free', { free: s.free, capacity: s.capacity }), ' · ', listOf(s.audiences.map((a) => label('audience', a)))),
    rows.length
      ? h('div', { class: 'scroll' }, h('table', {}, h('caption', {}, t('today.bookings', { n: rows.length })),
        h('thead', {}, h('tr', {}, [t('field.contact_name'), t('today.group'), t('field.audience'), t('field.status'), t('today.present')].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows)))
      : h('p', { class: 'muted' }, t('today.no_bookings')),
    h('div', { class: 'row' }, actions), cancel, out);
}

function audienceFields(prefix, checked = ['junior']) {
  return AUDIENCES.map((a) => ({ name: `${prefix}${a}`, label: label('audience', a), type: 'checkbox', value: checked.includes(a) }));
}
const audiencesOf = (prefix, v) => AUDIENCES.filter((a) => v[`${prefix}${a}`]);

/** Where the API's fields of a new session are in these forms. */
const SESSION_FIELDS = (prefix) => (f) => ({
  starts_at: 'start', ends_at: 'end', capacity: 'capacity', audiences: `${prefix}preschool`, weekdays: 'wd_mon', times: 'start',
}[f.split('[')[0]] || f);

function newSession(baseId) {
  // Far enough ahead that schools can still book it (bookings close a day before, by default).
  const first = addDays(localDay(), 3);
  const out = h('div', { 'aria-live': 'polite' });
  const f = form({
    mapField: SESSION_FIELDS('aud_'),
    fields: [
      { name: 'date', label: t('session.date'), type: 'date', value: first, required: true },
      { name: 'start', label: t('session.start'), type: 'time', value: '10:00', required: true },
      { name: 'end', label: t('session.end'), type: 'time', value: '11:30', required: true },
      { name: 'capacity', label: t('field.capacity'), type: 'number', value: 120, min: 1, required: true },
      ...audienceFields('aud_'),
    ],
    submitLabel: t('session.create'),
    submit: async (v) => {
      const body = { starts_at: `${v.date}T${v.start}:00+08:00`, ends_at: `${v.date}T${v.end}:00+08:00`, capacity: v.capacity, audiences: audiencesOf('aud_', v) };
      const { data } = await api('POST', `/v1/bases/${baseId}/sessions`, body);
      redraw(t('session.created', { when: when(data.starts_at) }));
    },
  });
  return h('div', {}, f.el, out);
}

function newPattern(baseId) {
  const from = addDays(localDay(), 3);
  const out = h('div', { 'aria-live': 'polite' });
  const f = form({
    mapField: SESSION_FIELDS('paud_'),
    fields: [
      { name: 'from_date', label: t('session.from_date'), type: 'date', value: from, required: true },
      { name: 'to_date', label: t('session.to_date'), type: 'date', value: addDays(from, 27), required: true },
      ...WEEKDAYS.map((d, i) => ({ name: `wd_${d}`, label: label('weekday', d), type: 'checkbox', value: i === 0 || i === 2 })),
      { name: 'start', label: t('session.start'), type: 'time', value: '10:00', required: true },
      { name: 'end', label: t('session.end'), type: 'time', value: '11:30', required: true },
      { name: 'capacity', label: t('field.capacity'), type: 'number', value: 120, min: 1, required: true },
      ...audienceFields('paud_'),
    ],
    submitLabel: t('session.generate'),
    submit: async (v) => {
      const body = {
        from_date: v.from_date, to_date: v.to_date, weekdays: WEEKDAYS.filter((d) => v[`wd_${d}`]),
        times: [{ start: v.start, end: v.end }], capacity: v.capacity, audiences: audiencesOf('paud_', v),
      };
      const { data } = await api('POST', `/v1/bases/${baseId}/sessions/generate`, body);
      redraw(t('session.generated', { created: data.created.length, skipped: data.skipped.length }));
    },
  });
  return h('div', {}, f.el, out);
}

/** Checking a group in at the gate by the code it shows: large, for a phone. */
export async function gate() {
  const baseId = currentBase();
  if (!baseId) return page(t('gate.title'), empty(t('today.no_base')));
  const out = h('div', { 'aria-live': 'assertive' });
  const f = form({
    className: 'gate',
    fields: [
      { name: 'code', label: t('gate.code'), required: true, big: true, autocomplete: 'off', inputmode: 'text', autofocus: true, hint: t('gate.code_hint') },
      { name: 'students_present', label: t('gate.students'), type: 'number', min: 0, required: true, big: true, inputmode: 'numeric' },
      { name: 'teachers_present', label: t('gate.teachers'), type: 'number', min: 0, required: true, big: true, inputmode: 'numeric' },
    ],
    submitLabel: t('gate.check_in'),
    submit: async (v, el) => {
      out.replaceChildren();
      const code = (v.code || '').toUpperCase();
      const { data } = await api('POST', `/v1/bases/${baseId}/check-in`, { code, students_present: v.students_present ?? 0, teachers_present: v.teachers_present ?? 0 });
      out.replaceChildren(notice('success', h('strong', {}, t('gate.done', { code })),
        h('p', {}, t('gate.counted', { students: data.students_present, teachers: data.teachers_present, booked_s: data.students, booked_t: data.teachers })),
        h('p', {}, data.contact_name, ' · ', when(data.starts_at))));
      el.reset();
      el.querySelector('input').focus();
    },
  });
  return page(t('gate.title'), await basePicker(), f.el, out);
}

/**
 * Edits a record under If-Match. When someone else saved it meanwhile (412), shows what they
 * changed beside what this page would save; the user then saves their own changes on top of
 * the other person's, keeps editing on their version, or drops their own — never a silent
 * overwrite of what the other person saved.
 */
function editor({ url, fields, toForm, toBody, describe }) {
  const box = h('div', {});
  const norm = (v) => (v === '' || v === undefined ? null : v);
  const differ = (a, b) => JSON.stringify(norm(a)) !== JSON.stringify(norm(b));
  async function load(overrides = {}, message = null) {
    const { data, res } = await api('GET', url);
    const etag = res.headers.get('ETag');
    const before = toForm(data);
    const f = form({
      fields: fields.map((fd) => ({ ...fd, value: fd.name in overrides ? overrides[fd.name] : before[fd.name] })),
      submitLabel: t('common.save'),
      submit: async (mine) => {
        try {
          await api('PATCH', url, toBody(mine), { 'If-Match': etag });
          await load({}, notice('success', t('edit.saved')));
        } catch (p) {
          if (p instanceof Problem && p.status === 412) return conflict(mine, before);
          throw p;
        }
      },
    });
    box.replaceChildren(...[message, f.el].filter(Boolean));
    if (message) {
      message.tabIndex = -1;
      message.focus();
    }
  }
  async function conflict(mine, before) {
    const { data, res } = await api('GET', url);
    const theirs = toForm(data);
    const etag = res.headers.get('ETag');
    const myChanges = Object.fromEntries(fields.filter((fd) => differ(mine[fd.name], before[fd.name])).map((fd) => [fd.name, mine[fd.name]]));
    const changed = fields.filter((fd) => differ(theirs[fd.name], before[fd.name]) || fd.name in myChanges);
    const show = (fd, value) => (fd.type === 'checkbox' ? (value ? t('common.yes') : t('common.no'))
      : fd.options ? (fd.options.find(([k]) => k === value) || [value, value])[1] : norm(value) ?? '—');
    const table = h('table', { class: 'diff' },
      h('caption', {}, t('edit.conflict_table')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('edit.field')), h('th', { scope: 'col' }, t('edit.theirs')), h('th', { scope: 'col' }, t('edit.yours')))),
      h('tbody', {}, changed.map((fd) => h('tr', { class: fd.name in myChanges && differ(mine[fd.name], theirs[fd.name]) ? 'clash' : '' },
        h('th', { scope: 'row' }, fd.label),
        h('td', {}, differ(theirs[fd.name], before[fd.name]) ? String(show(fd, theirs[fd.name])) : t('edit.unchanged')),
        h('td', {}, fd.name in myChanges ? String(show(fd, mine[fd.name])) : t('edit.unchanged'))))));
    const merged = { ...theirs, ...myChanges };
    const saveMine = h('button', { type: 'button', class: 'primary', onclick: async () => {
      try {
        await api('PATCH', url, toBody(merged), { 'If-Match': etag });
        await load({}, notice('success', t('edit.saved_merged')));
      } catch (p) {
        if (p instanceof Problem && p.status === 412) return conflict(mine, theirs);
        box.append(notice('error', explain(p)));
      }
    } }, t('edit.keep_mine'));
    const takeTheirs = h('button', { type: 'button', onclick: () => load() }, t('edit.take_theirs'));
    // Their version as it is now (fetched again), with only this user's own changes on it.
    const editMore = h('button', { type: 'button', onclick: () => load(myChanges) }, t('edit.edit_again'));
    const warning = notice('warning', h('strong', {}, t('edit.conflict', { what: describe(data) })), h('p', {}, t('edit.conflict_help')));
    warning.tabIndex = -1;
    box.replaceChildren(warning, table, h('div', { class: 'row' }, saveMine, editMore, takeTheirs));
    warning.focus();
  }
  load();
  return box;
}

/** The base's exhibits, each editable in place. */
export async function exhibits() {
  const baseId = currentBase();
  if (!baseId) return page(t('exhibits.title'), empty(t('today.no_base')));
  const list = (await get(`/v1/bases/${baseId}/exhibits?limit=200`)).items;
  const fields = [
    { name: 'name', label: t('exhibit.name'), required: true },
    { name: 'description', label: t('exhibit.description'), type: 'textarea', max: 2000 },
    { name: 'hall', label: t('exhibit.hall') },
    { name: 'kind', label: t('exhibit.kind'), type: 'select', options: KINDS.map((k) => [k, label('exhibit_kind', k)]) },
    { name: 'status', label: t('field.status'), type: 'select', options: EXHIBIT_STATUSES.map((k) => [k, label('exhibit_status', k)]) },
    { name: 'shareable', label: t('exhibit.shareable'), type: 'checkbox' },
  ];
  const cards = list.map((e) => {
    const own = e.base_id === baseId;
    return h('li', { class: 'card', 'data-exhibit': e.id },
      h('h2', {}, e.name), h('p', {}, label('exhibit_kind', e.kind), ' · ', label('exhibit_status', e.status), e.on_loan ? ` · ${t('exhibit.on_loan_from', { base: e.on_loan.owner_base_name })}` : ''),
      own && e.status !== 'on_loan'
        ? h('details', {}, h('summary', {}, t('common.edit')), editor({
          url: `/v1/exhibits/${e.id}`, fields,
          toForm: (x) => ({ name: x.name, description: x.description, hall: x.hall, kind: x.kind, status: x.status, shareable: x.shareable }),
          toBody: (v) => ({ name: v.name, description: v.description, hall: v.hall, kind: v.kind, status: v.status, shareable: v.shareable }),
          describe: (x) => x.name,
        }))
        : null);
  });
  return page(t('exhibits.title'), await basePicker(), cards.length ? h('ul', { class: 'cards' }, cards) : empty(t('exhibits.none')));
}

/** The base's profile. */
export async function profile() {
  const baseId = currentBase();
  if (!baseId) return page(t('profile.title'), empty(t('today.no_base')));
  const fields = [
    { name: 'name_zh', label: t('profile.name_zh'), required: true },
    { name: 'name_en', label: t('profile.name_en'), required: true },
    { name: 'address', label: t('profile.address'), required: true },
    { name: 'opening_hours', label: t('field.opening_hours') },
    { name: 'phone', label: t('field.contact_phone'), type: 'tel' },
    { name: 'email', label: t('profile.email'), type: 'email' },
    { name: 'themes', label: t('profile.themes'), hint: t('profile.themes_hint') },
    { name: 'accessibility', label: t('profile.accessibility'), type: 'textarea', max: 1000 },
  ];
  return page(t('profile.title'), await basePicker(), editor({
    url: `/v1/bases/${baseId}`, fields,
    toForm: (b) => ({ name_zh: b.name_zh, name_en: b.name_en, address: b.address, opening_hours: b.opening_hours, phone: b.contact?.phone, email: b.contact?.email, themes: (b.themes || []).join(', '), accessibility: b.accessibility }),
    toBody: (v) => ({ name_zh: v.name_zh, name_en: v.name_en, address: v.address, opening_hours: v.opening_hours, contact: { phone: v.phone, email: v.email }, themes: (v.themes || '').split(/[,，、]/).map((s) => s.trim()).filter(Boolean), accessibility: v.accessibility }),
    describe: (b) => baseName(b),
  }));
}

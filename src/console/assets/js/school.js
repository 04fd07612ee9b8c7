// A school's coordinator: finds sessions near the school, books (or waits), sees and cancels
// its bookings, subscribes to its calendar, signs up for tour campaigns and sees the result.
import { t } from './i18n.js';
import { h, api, get, query, form, page, notice, empty, when, time, listOf, baseName, label, session, localDay, addDays, dayStart, idempotencyKey, explain, showItem } from './core.js';
import { cityMap } from './map.js';
import { districts } from './public.js';

const AUDIENCES = ['preschool', 'primary_lower', 'primary_upper', 'junior', 'senior', 'adult'];
/** The grade band a school of each kind most often books for. */
const BAND_OF_KIND = { primary: 'primary_upper', middle: 'junior', high: 'senior', combined: 'junior' };
const isDay = (s) => /^\d{4}-\d{2}-\d{2}$/.test(s || '') && !Number.isNaN(Date.parse(`${s}T00:00:00+08:00`));
const number = (s, fallback, min, max) => {
  const n = Number(s);
  return s !== null && Number.isFinite(n) && n >= min && n <= max ? n : fallback;
};
const LATE_HOURS = 24;

async function mySchool() {
  return get(`/v1/schools/${session.me.school_id}`);
}

const bases = new Map();
/** A base's record, read once per page load. */
async function base(id) {
  if (!bases.has(id)) bases.set(id, get(`/v1/bases/${id}`).catch(() => ({ id, name_zh: '—', name_en: '—' })));
  return bases.get(id);
}

/** "Where can I take 45 pupils next week, within 15 km?" — a list and a map, then booking. */
export async function find() {
  const school = await mySchool();
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const monday = (() => {
    const today = localDay();
    const dow = new Date(`${today}T12:00:00+08:00`).getUTCDay();
    return addDays(today, ((8 - dow) % 7) || 7);
  })();
  const v = {
    from: isDay(params.get('from')) ? params.get('from') : monday,
    days: number(params.get('days'), 7, 1, 90),
    audience: AUDIENCES.includes(params.get('audience')) ? params.get('audience') : BAND_OF_KIND[school.kind] || 'junior',
    students: number(params.get('students'), 45, 1, 10000),
    teachers: number(params.get('teachers'), 3, 1, 1000),
    radius_km: number(params.get('radius_km'), 15, 1, 100),
    waitlist: params.get('waitlist') === 'true',
  };
  const f = form({
    id: 'find',
    className: 'inline',
    fields: [
      { name: 'from', label: t('find.from'), type: 'date', value: v.from, required: true },
      { name: 'days', label: t('find.days'), type: 'number', value: v.days, min: 1, max: 90, required: true },
      { name: 'audience', label: t('field.audience'), type: 'select', value: v.audience, options: AUDIENCES.map((a) => [a, label('audience', a)]) },
      { name: 'students', label: t('field.students'), type: 'number', value: v.students, min: 1, max: 10000, required: true },
      { name: 'teachers', label: t('field.teachers'), type: 'number', value: v.teachers, min: 1, max: 1000, required: true, hint: t('find.teachers_hint') },
      { name: 'radius_km', label: t('find.radius'), type: 'number', value: v.radius_km, min: 1, max: 100, step: 'any', required: true },
      { name: 'waitlist', label: t('find.include_full'), type: 'checkbox', value: v.waitlist },
    ],
    submitLabel: t('find.search'),
    submit: async (nv) => { location.hash = `#/find${query({ ...nv, waitlist: nv.waitlist ? 'true' : '' })}`; },
  });
  const group = v.students + v.teachers;
  const from = dayStart(v.from);
  const to = dayStart(addDays(v.from, v.days));
  const search = (cursor) => get(`/v1/sessions${query({
    near: `${school.location.lat},${school.location.lon}`, radius_km: v.radius_km, from, to, audience: v.audience,
    min_free: v.waitlist ? '' : group, bookable: 'true', limit: 50, cursor,
  })}`);
  const found = await search();
  const ds = await districts();
  const list = h('ul', { class: 'cards', 'aria-labelledby': 'results' }, found.items.map((s) => sessionCard(s, school, v)));
  const heading = h('h2', { id: 'results' }, found.next_cursor ? t('find.results_more', { n: found.items.length }) : t('find.results', { n: found.items.length }));
  let cursor = found.next_cursor;
  let shown = found.items.length;
  const more = h('button', { type: 'button', hidden: !cursor, onclick: async () => {
    more.disabled = true;
    const next = await search(cursor);
    list.append(...next.items.map((s) => sessionCard(s, school, v)));
    shown += next.items.length;
    cursor = next.next_cursor;
    heading.textContent = cursor ? t('find.results_more', { n: shown }) : t('find.results', { n: shown });
    more.hidden = !cursor;
    more.disabled = false;
  } }, t('find.more'));
  const map = cityMap({
    districts: ds, centre: school.location, fit: true,
    points: found.items.map((s) => ({ lat: s.base.location.lat, lon: s.base.location.lon, label: `${baseName(s.base)} · ${when(s.starts_at)}`, select: () => showItem(`li[data-session='${s.id}']`) })),
    label: t('find.map_label', { n: found.items.length, km: v.radius_km }),
  });
  return page(t('find.title'),
    h('p', {}, t('find.intro', { school: school.name })), f.el, heading,
    h('div', { class: 'split' }, h('div', { class: 'map-box' }, map),
      found.items.length ? h('div', {}, list, more) : empty(t('find.none'))));
}

function sessionCard(s, school, v) {
  const result = h('div', { 'aria-live': 'polite' });
  const full = s.free < v.students + v.teachers;
  const free = h('span', {}, t('find.free', { free: s.free, capacity: s.capacity }));
  // One key per booking attempt: a retry after a lost answer replays it instead of booking twice.
  let key = idempotencyKey();
  const f = form({
    fields: [
      { name: 'students', label: t('field.students'), type: 'number', value: v.students, min: 1, required: true },
      { name: 'teachers', label: t('field.teachers'), type: 'number', value: v.teachers, min: 1, required: true },
      { name: 'audience', label: t('field.audience'), type: 'select', value: s.audiences.includes(v.audience) ? v.audience : s.audiences[0], options: s.audiences.map((a) => [a, label('audience', a)]) },
      { name: 'contact_name', label: t('field.contact_name'), required: true, autocomplete: 'name', value: localStorage.getItem('kepu.contact_name') || '' },
      { name: 'contact_phone', label: t('field.contact_phone'), required: true, type: 'tel', autocomplete: 'tel', value: localStorage.getItem('kepu.contact_phone') || '' },
      { name: 'needs', label: t('field.needs'), type: 'textarea', max: 500 },
      { name: 'waitlist', label: t('book.waitlist'), type: 'checkbox', value: full, hint: t('book.waitlist_hint') },
    ],
    submitLabel: t('book.submit'),
    submit: async (b) => {
      localStorage.setItem('kepu.contact_name', b.contact_name || '');
      localStorage.setItem('kepu.contact_phone', b.contact_phone || '');
      const { data, res } = await api('POST', '/v1/bookings', { session_id: s.id, school_id: school.id, ...b }, { 'Idempotency-Key': key });
      key = idempotencyKey();
      f.el.hidden = true;
      const now = await get(`/v1/sessions/${s.id}`).catch(() => null);
      if (now) free.textContent = t('find.free', { free: now.free, capacity: now.capacity });
      result.replaceChildren(res.status === 202
        ? notice('info', h('strong', {}, t('book.waitlisted', { n: data.waitlist_position })), ' ', h('a', { href: '#/bookings' }, t('nav.bookings')))
        : notice('success', h('strong', {}, t('book.confirmed')), h('p', {}, t('book.code'), ' ', h('span', { class: 'code' }, data.code)), h('a', { href: '#/bookings' }, t('nav.bookings'))));
    },
  });
  return h('li', { class: 'card', 'data-session': s.id },
    h('h3', {}, baseName(s.base)),
    h('p', {}, h('strong', {}, when(s.starts_at)), ` – ${time(s.ends_at)}`),
    h('p', {}, free, s.distance_km != null ? ` · ${t('find.distance', { km: s.distance_km.toFixed(1) })}` : ''),
    h('p', { class: 'muted' }, listOf(s.audiences.map((a) => label('audience', a)))),
    h('details', {}, h('summary', {}, full ? t('book.open_full') : t('book.open')), f.el), result);
}

/** The school's bookings with their codes; cancelling warns when it is late. */
export async function bookings() {
  const since = dayStart(addDays(localDay(), -30));
  const list = (await get(`/v1/bookings${query({ school_id: session.me.school_id, from: since, limit: 200 })}`)).items;
  list.sort((a, b) => a.starts_at.localeCompare(b.starts_at));
  const rows = await Promise.all(list.map(async (b) => bookingCard(b, await base(b.base_id))));
  const feed = h('div', { class: 'feed' });
  const feedButton = h('button', { type: 'button', onclick: async () => {
    try {
      const { data } = await api('POST', `/v1/schools/${session.me.school_id}/calendar-token`);
      const url = `${location.origin}${data.path}`;
      const input = h('input', { type: 'text', readonly: true, value: url, id: 'feed-url', 'aria-label': t('feed.url') });
      const copy = h('button', { type: 'button', onclick: async () => {
        input.select();
        try { await navigator.clipboard.writeText(url); copied.textContent = t('feed.copied'); } catch { document.execCommand('copy'); copied.textContent = t('feed.copied'); }
      } }, t('feed.copy'));
      const copied = h('span', { role: 'status' });
      feed.replaceChildren(h('label', { for: 'feed-url' }, t('feed.url')), h('div', { class: 'row' }, input, copy), copied, h('p', { class: 'hint' }, t('feed.hint')));
    } catch (p) {
      feed.replaceChildren(notice('error', explain(p)));
    }
  } }, t('feed.make'));
  return page(t('bookings.title'),
    rows.length ? h('ul', { class: 'cards' }, rows) : empty(t('bookings.none')),
    h('h2', {}, t('feed.title')), h('p', {}, t('feed.intro')), h('p', { class: 'hint' }, t('feed.before')), feedButton, feed);
}

function bookingCard(b, bs) {
  const out = h('div', { 'aria-live': 'polite' });
  const active = ['confirmed', 'waitlisted'].includes(b.status);
  const started = new Date(b.starts_at) <= new Date();
  let cancel = null;
  if (active && !started) {
    const late = new Date(b.starts_at) - new Date() < LATE_HOURS * 3600 * 1000;
    const f = form({
      fields: [{ name: 'reason', label: t('bookings.reason'), type: 'textarea', max: 500 }],
      submitLabel: t('bookings.cancel_confirm'),
      submit: async (v) => {
        await api('POST', `/v1/bookings/${b.id}/cancel`, { reason: v.reason });
        cancel.hidden = true;
        statusEl.textContent = label('booking_status', 'cancelled');
        out.replaceChildren(notice('success', t('bookings.cancelled')));
      },
    });
    cancel = h('details', { class: 'danger' }, h('summary', {}, t('bookings.cancel')),
      late ? notice('warning', t('bookings.late_warning', { hours: LATE_HOURS })) : null, f.el);
  }
  const statusEl = h('span', { class: `status ${b.status}` }, label('booking_status', b.status));
  return h('li', { class: 'card', 'data-booking': b.id },
    h('h3', {}, baseName(bs)),
    h('p', {}, h('strong', {}, when(b.starts_at)), ' · ', statusEl,
      b.status === 'waitlisted' && b.waitlist_position ? ` (${t('bookings.position', { n: b.waitlist_position })})` : ''),
    h('p', {}, t('bookings.group', { students: b.students, teachers: b.teachers }), ' · ', label('audience', b.audience)),
    ['confirmed', 'checked_in'].includes(b.status) ? h('p', {}, t('book.code'), ' ', h('span', { class: 'code' }, b.code)) : null,
    b.late_cancellation ? h('p', { class: 'muted' }, t('bookings.was_late')) : null,
    cancel, out);
}

/** Tour campaigns open to schools: sign up, then the result after the draw. */
export async function campaigns() {
  const list = (await get('/v1/campaigns?limit=50')).items.filter((c) => c.for_schools);
  const cards = await Promise.all(list.map(campaignCard));
  return page(t('campaigns.title'), h('p', {}, t('campaigns.intro')), cards.length ? h('ul', { class: 'cards' }, cards) : empty(t('campaigns.none')));
}

async function campaignCard(c) {
  const tours = await Promise.all(c.tours.map((id) => get(`/v1/tours/${id}`).catch(() => null)));
  const known = tours.filter(Boolean);
  // The school's application, found again from any browser.
  const mine = (await get(`/v1/campaigns/${c.id}/applications`)).items[0];
  const out = h('div', { 'aria-live': 'polite' });
  const now = new Date();
  const open = new Date(c.opens_at) <= now && now < new Date(c.closes_at);
  const state = c.status === 'open' && now < new Date(c.opens_at) ? 'upcoming' : c.status === 'open' && !open ? 'closed' : c.status;
  let body = null;
  if (mine) {
    body = resultOf(mine, known);
  } else if (open) {
    const f = form({
      fields: [
        ...known.map((tour, i) => ({ name: `pref_${tour.id}`, label: `${tour.title} · ${when(tour.starts_at)} · ${label('audience', tour.audience)}`, type: 'checkbox', value: i === 0 })),
        { name: 'students', label: t('field.students'), type: 'number', min: 1, value: 40, required: true },
        { name: 'teachers', label: t('field.teachers'), type: 'number', min: 1, value: 2, required: true },
        { name: 'contact_name', label: t('field.contact_name'), required: true, value: localStorage.getItem('kepu.contact_name') || '' },
        { name: 'contact_phone', label: t('field.contact_phone'), type: 'tel', required: true, value: localStorage.getItem('kepu.contact_phone') || '' },
      ],
      submitLabel: t('campaigns.apply'),
      submit: async (v) => {
        const preferences = known.filter((tour) => v[`pref_${tour.id}`]).map((tour) => tour.id);
        await api('POST', `/v1/campaigns/${c.id}/applications`, {
          kind: 'school', school_id: session.me.school_id, preferences, students: v.students, teachers: v.teachers,
          contact_name: v.contact_name, contact_phone: v.contact_phone,
        });
        f.el.hidden = true;
        out.replaceChildren(notice('success', t('campaigns.applied')));
      },
    });
    body = h('div', {}, h('p', { class: 'hint' }, t('campaigns.prefs_hint')), f.el);
  } else {
    body = h('p', { class: 'muted' }, t('campaigns.closed'));
  }
  return h('li', { class: 'card' },
    h('h3', {}, c.title),
    h('p', {}, t('campaigns.window', { from: when(c.opens_at), to: when(c.closes_at) })),
    h('p', { class: 'muted' }, t('campaigns.applicants', { n: c.applicants }), ' · ', label('campaign_status', state)),
    body, out);
}

function resultOf(a, tours) {
  const title = (id) => (tours.find((x) => x.id === id) || {}).title || id;
  if (!a.wins || a.wins.length === 0) {
    return notice('info', a.status === 'applied' ? t('campaigns.waiting_draw') : t('campaigns.not_won'));
  }
  return notice('success', h('strong', {}, t('campaigns.won')), h('ul', {}, a.wins.map((w) => h('li', {}, `${title(w.tour_id)} · ${label('win_status', w.status)}`))));
}

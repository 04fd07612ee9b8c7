// A district officer and the bureau: work lists (applications to recommend, public notices
// and their objections, signs to approve or inspect, overdue first), a map of signs, and the
// statistics with their CSV downloads.
import { t } from './i18n.js';
import { h, api, get, query, form, page, empty, when, day, baseName, label, session, localDay, redraw } from './core.js';
import { cityMap } from './map.js';
import { districts, districtName } from './public.js';

/** The name of a listed thing's base: lists carry it; otherwise read once. */
const bases = new Map();
async function baseOf(x) {
  if (x.base_name_zh) return baseName({ name_zh: x.base_name_zh, name_en: x.base_name_en });
  if (!bases.has(x.base_id)) bases.set(x.base_id, get(`/v1/bases/${x.base_id}`).catch(() => ({ name_zh: x.base_id, name_en: x.base_id })));
  return baseName(await bases.get(x.base_id));
}

/** A small form that posts `body(values)` to `url`, then redraws the list saying `done`. */
function action(url, fields, submitLabel, done, body = (v) => v) {
  const f = form({
    fields, submitLabel,
    submit: async (v) => {
      await api('POST', url, body(v));
      redraw(done);
    },
  });
  return f.el;
}

const comment = (name = 'comment') => ({ name, label: t('work.comment'), type: 'textarea', required: true, max: 2000 });

/** Everything waiting on the caller, oldest first within each list. */
export async function work() {
  const admin = session.me.role === 'admin';
  // An officer's own district; the bureau's, every one.
  const district = admin ? '' : session.me.district_code;
  const [submitted, notices, requested, overdue] = await Promise.all([
    get('/v1/accreditations?status=submitted&limit=100').then((r) => r.items),
    get('/v1/accreditations?status=public_notice&limit=100').then((r) => r.items),
    get(`/v1/signs${query({ status: 'requested', district, limit: 100 })}`).then((r) => r.items),
    get(`/v1/signs${query({ status: 'installed', district, inspection_due_before: new Date().toISOString(), limit: 100 })}`).then((r) => r.items),
  ]);
  const recommend = await Promise.all(submitted.map(async (a) => h('li', { class: 'card' },
    h('h3', {}, await baseOf(a)),
    h('p', {}, t('work.submitted', { day: day(a.updated_at) }), a.unmet?.length ? ` · ${t('reviews.unmet', { n: a.unmet.length })}` : ''),
    h('details', {}, h('summary', {}, t('work.recommend')), action(`/v1/accreditations/${a.id}/recommend`, [comment()], t('work.recommend'), t('work.recommended'))),
    h('details', { class: 'danger' }, h('summary', {}, t('work.reject')), action(`/v1/accreditations/${a.id}/reject`, [comment()], t('work.reject'), t('work.rejected'))))));
  const onNotice = await Promise.all(notices.map(async (a) => h('li', { class: 'card' },
    h('h3', {}, await baseOf(a)),
    h('p', {}, t('notice.period', { from: a.notice_starts_at ? day(a.notice_starts_at) : '—', to: a.notice_ends_at ? day(a.notice_ends_at) : '—' })),
    a.objections.length
      ? h('ul', {}, a.objections.map((o) => h('li', {},
        h('p', {}, h('strong', {}, label('objection_status', o.status)), ' · ', when(o.created_at)), h('p', {}, o.reason),
        o.name || o.contact ? h('p', { class: 'muted' }, [o.name, o.contact].filter(Boolean).join(' · ')) : null,
        o.status === 'open' && admin
          ? h('details', {}, h('summary', {}, t('work.resolve')), action(`/v1/accreditations/${a.id}/objections/${o.id}/resolve`, [
            { name: 'outcome', label: t('work.outcome'), type: 'select', options: [['dismissed', label('outcome', 'dismissed')], ['upheld', label('outcome', 'upheld')]] },
            comment('resolution')], t('work.resolve'), t('work.resolved')))
          : null)))
      : h('p', { class: 'muted' }, t('work.no_objections')))));
  const approve = await Promise.all(requested.map(async (s) => h('li', { class: 'card', 'data-sign': s.id },
    h('h3', {}, `${label('sign_kind', s.type)} · ${await baseOf(s)}`),
    s.road_name ? h('p', {}, s.road_name) : null,
    h('details', {}, h('summary', {}, t('work.approve')), action(`/v1/signs/${s.id}/approve`,
      s.type === 'road_guide' ? [{ name: 'traffic_police_ref', label: t('work.police_ref'), required: true }] : [], t('work.approve'), t('work.approved'))),
    h('details', { class: 'danger' }, h('summary', {}, t('work.reject')), action(`/v1/signs/${s.id}/reject`, [comment()], t('work.reject'), t('work.rejected'))))));
  overdue.sort((a, b) => (a.next_inspection_due || '').localeCompare(b.next_inspection_due || ''));
  const inspect = await Promise.all(overdue.map(async (s) => h('li', { class: 'card overdue', 'data-sign': s.id },
    h('h3', {}, `${label('sign_kind', s.type)} · ${await baseOf(s)}`),
    h('p', {}, t('work.overdue_since', { day: day(s.next_inspection_due) })),
    h('details', {}, h('summary', {}, t('work.inspect')), action(`/v1/signs/${s.id}/inspections`, [
      { name: 'condition', label: t('work.condition'), type: 'select', options: ['good', 'damaged', 'missing', 'obstructed'].map((c) => [c, label('sign_condition', c)]) },
      { name: 'notes', label: t('work.notes'), type: 'textarea', max: 2000 }], t('work.inspect'), t('work.inspected'))))));
  const section = (title, items, none) => [h('h2', {}, `${title} (${items.length})`), items.length ? h('ul', { class: 'cards' }, items) : empty(none)];
  return page(t('work.title'),
    section(t('work.to_recommend'), recommend, t('work.none')),
    section(t('work.on_notice'), onNotice, t('work.none')),
    section(t('work.signs_overdue'), inspect, t('work.none')),
    section(t('work.signs_requested'), approve, t('work.none')));
}

/** The signs of the district (or the city) on a map, overdue ones marked. */
export async function signs() {
  const ds = await districts();
  const district = session.me.role === 'district_officer' ? session.me.district_code : '';
  const list = (await get(`/v1/signs${query({ district, limit: 500 })}`)).items;
  const now = new Date();
  const overdue = (s) => s.status === 'installed' && s.next_inspection_due && new Date(s.next_inspection_due) < now;
  list.sort((a, b) => Number(overdue(b)) - Number(overdue(a)));
  const rows = await Promise.all(list.map(async (s) => h('tr', { class: overdue(s) ? 'overdue' : '' },
    h('td', {}, label('sign_kind', s.type)), h('td', {}, await baseOf(s)), h('td', {}, label('sign_status', s.status)),
    h('td', {}, s.next_inspection_due ? day(s.next_inspection_due) : '—', overdue(s) ? ` (${t('signs.overdue')})` : ''))));
  const map = cityMap({
    districts: ds,
    fit: list.length > 0,
    points: list.map((s) => ({ lat: s.location.lat, lon: s.location.lon, label: `${label('sign_kind', s.type)} · ${label('sign_status', s.status)}`, kind: overdue(s) ? 'overdue' : '' })),
    label: t('signs.map_label', { n: list.length }),
  });
  return page(t('signs.title'), h('div', { class: 'split' }, h('div', { class: 'map-box' }, map),
    rows.length ? h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, h('tr', {}, [t('signs.type'), t('field.base'), t('field.status'), t('signs.next_due')].map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows))) : empty(t('signs.none'))));
}

const FIGURES = ['sessions_held', 'places_offered', 'bookings', 'visitors_booked', 'visitors_checked_in', 'school_groups', 'distinct_schools', 'late_cancellations', 'no_shows', 'utilisation', 'tour_departures', 'tour_fill', 'campaign_applicants', 'campaign_winners', 'exhibit_loans_lent', 'exhibit_loans_borrowed'];

/** The statistics of the district (or every district), with CSV downloads. */
export async function statistics() {
  const ds = await districts();
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const year = Number(params.get('year')) || Number(localDay().slice(0, 4));
  const period = ['year', 'quarter', 'month'].includes(params.get('period')) ? params.get('period') : 'quarter';
  const own = session.me.role === 'district_officer' ? session.me.district_code : '';
  // `all`: every district; nothing chosen yet: the officer's own.
  const chosen = params.get('id') ?? own;
  const id = chosen === 'all' ? '' : chosen;
  const f = form({
    className: 'inline',
    fields: [
      { name: 'year', label: t('stats.year'), type: 'number', value: year, min: 2000, max: 2100, required: true },
      { name: 'period', label: t('stats.period'), type: 'select', value: period, options: ['year', 'quarter', 'month'].map((p) => [p, label('period', p)]) },
      { name: 'id', label: t('field.district'), type: 'select', value: id || 'all', options: [['all', t('common.all')], ...ds.map((d) => [d.code, districtName(ds, d.code)])] },
    ],
    submitLabel: t('common.show'),
    submit: async (v) => { location.hash = `#/statistics${query({ year: v.year, period: v.period, id: v.id || 'all' })}`; },
  });
  const q = { scope: 'district', id, year, period };
  const data = await get(`/v1/statistics${query(q)}`);
  const table = h('div', { class: 'scroll' }, h('table', { class: 'stats' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('field.district')), h('th', { scope: 'col' }, t('stats.period')), FIGURES.map((k) => h('th', { scope: 'col' }, label('stat', k))))),
    h('tbody', {}, data.rows.map((r) => h('tr', {}, h('th', { scope: 'row' }, districtName(ds, r.id)), h('td', {}, r.period),
      FIGURES.map((k) => h('td', { class: 'num' }, r[k] == null ? '—' : k.endsWith('fill') || k === 'utilisation' ? `${(r[k] * 100).toFixed(1)}%` : r[k])))))));
  const downloads = [h('a', { href: `/v1/statistics${query({ ...q, format: 'csv' })}`, download: `kepu-statistics-${id || 'districts'}-${year}.csv` }, t('stats.csv'))];
  // The annual report is the district's own (the bureau reads every one).
  if (id && (session.me.role === 'admin' || id === own)) {
    downloads.push(' · ', h('a', { href: `/v1/districts/${encodeURIComponent(id)}/report${query({ year, format: 'csv' })}`, download: `kepu-report-${id}-${year}.csv` }, t('stats.report_csv')));
  }
  return page(t('stats.title'), f.el, h('p', {}, downloads), table);
}

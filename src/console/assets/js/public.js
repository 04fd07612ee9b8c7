// What anyone may read without signing in: accredited bases on a map, certificate
// verification, public notices and objections to them.
import { t } from './i18n.js';
import { h, api, get, query, form, page, notice, empty, day, baseName, label, showItem } from './core.js';
import { cityMap } from './map.js';

let districtsCache = null;
/** The city's districts (reference data, read once). */
export async function districts() {
  if (!districtsCache) districtsCache = (await get('/v1/districts')).items;
  return districtsCache;
}

export function districtName(list, code) {
  const d = list.find((x) => x.code === code);
  return d ? baseName({ name_zh: d.name_zh, name_en: d.name_en }) : code;
}

/** Accredited bases on a map and in a list, filtered by district and name. */
export async function home() {
  const ds = await districts();
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const filters = { district: params.get('district') || '', q: params.get('q') || '' };
  const bases = (await get(`/v1/bases${query({ status: 'accredited', limit: 500, ...filters })}`)).items;
  const f = form({
    className: 'inline',
    fields: [
      { name: 'district', label: t('field.district'), type: 'select', value: filters.district, options: [['', t('common.all')], ...ds.map((d) => [d.code, districtName(ds, d.code)])] },
      { name: 'q', label: t('field.name_contains'), value: filters.q, type: 'search' },
    ],
    submitLabel: t('common.filter'),
    submit: async (v) => { location.hash = `#/${query({ district: v.district, q: v.q })}`; },
  });
  const map = cityMap({
    districts: ds,
    points: bases.map((b) => ({ lat: b.location.lat, lon: b.location.lon, label: baseName(b), select: () => showItem(`li[data-base='${b.id}']`) })),
    label: t('home.map_label', { n: bases.length }),
  });
  const list = bases.length
    ? h('ul', { class: 'cards' }, bases.map((b) => h('li', { class: 'card', 'data-base': b.id },
      h('h2', {}, baseName(b)),
      h('p', {}, `${districtName(ds, b.district_code)} · ${label('subcategory', b.subcategory)}`),
      h('p', { class: 'muted' }, b.address),
      b.opening_hours ? h('p', { class: 'muted' }, `${t('field.opening_hours')}: ${b.opening_hours}`) : null)))
    : empty(t('home.none'));
  return page(t('home.title'), h('p', {}, t('home.intro')), f.el, h('div', { class: 'split' }, h('div', { class: 'map-box' }, map), list));
}

/** Verifying a plaque's certificate number; the valid certificates. */
export async function certificates() {
  const result = h('div', { 'aria-live': 'polite' });
  const f = form({
    className: 'inline',
    fields: [{ name: 'number', label: t('cert.number'), required: true, placeholder: 'GZKP-2026-0001', hint: t('cert.hint') }],
    submitLabel: t('cert.verify'),
    submit: async (v) => {
      result.replaceChildren();
      const c = await get(`/v1/certificates/${encodeURIComponent(v.number || '')}`);
      const valid = c.status === 'valid';
      result.append(notice(valid ? 'success' : 'error',
        h('strong', {}, valid ? t('cert.valid') : t('cert.not_valid', { status: label('cert_status', c.status) })),
        h('p', {}, `${c.number} · ${baseName({ name_zh: c.base_name_zh, name_en: c.base_name_en })}`),
        c.valid_until ? h('p', {}, t('cert.until', { day: day(c.valid_until) })) : null));
    },
  });
  const list = (await get('/v1/certificates?limit=100')).items;
  return page(t('cert.title'), f.el, result,
    h('h2', {}, t('cert.list')),
    list.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('cert.number')), h('th', { scope: 'col' }, t('field.base')), h('th', { scope: 'col' }, t('cert.valid_until')))),
      h('tbody', {}, list.map((c) => h('tr', {}, h('td', {}, c.number), h('td', {}, baseName({ name_zh: c.base_name_zh, name_en: c.base_name_en })), h('td', {}, c.valid_until ? day(c.valid_until) : '—')))))
      : empty(t('cert.none')));
}

/** Accreditations on public notice, each with the form to object to it. */
export async function notices() {
  const ds = await districts();
  const items = (await get('/v1/public-notices?limit=100')).items;
  const cards = items.map((n) => {
    const done = h('div', { 'aria-live': 'polite' });
    let objection = null;
    if (n.open_for_objections) {
      const f = form({
        fields: [
          { name: 'reason', label: t('notice.reason'), type: 'textarea', required: true, max: 2000 },
          { name: 'name', label: t('notice.name'), autocomplete: 'name' },
          { name: 'contact', label: t('notice.contact'), hint: t('notice.contact_hint') },
        ],
        submitLabel: t('notice.object'),
        submit: async (v, el) => {
          await api('POST', n.object_at, { reason: v.reason || '', name: v.name, contact: v.contact });
          el.reset();
          done.replaceChildren(notice('success', t('notice.filed')));
        },
      });
      objection = h('details', {}, h('summary', {}, t('notice.object_open')), f.el, done);
    }
    return h('li', { class: 'card', 'data-accreditation': n.accreditation_id },
      h('h2', {}, baseName(n.base)),
      h('p', {}, `${districtName(ds, n.base.district_code)} · ${label('category', n.base.category)} / ${label('subcategory', n.base.subcategory)}`),
      h('p', { class: 'muted' }, `${n.base.host_org} · ${n.base.address}`),
      h('p', {}, t('notice.period', { from: n.notice_starts_at ? day(n.notice_starts_at) : '—', to: n.notice_ends_at ? day(n.notice_ends_at) : '—' })),
      n.open_for_objections ? objection : h('p', { class: 'muted' }, t('notice.closed')));
  });
  return page(t('notice.title'), h('p', {}, t('notice.intro')), cards.length ? h('ul', { class: 'cards' }, cards) : empty(t('notice.none')));
}

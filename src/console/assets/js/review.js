// An expert evaluator: the accreditations and annual evaluations assigned to it, the figures
// kepu measured beside what the base reported, and points with comments per criterion.
import { t } from './i18n.js';
import { h, api, get, form, page, notice, empty, day, baseName, label, session } from './core.js';

async function baseOf(id) {
  return get(`/v1/bases/${id}`).catch(() => ({ name_zh: id, name_en: id }));
}

/** Both work lists: accreditations in expert review, evaluations of open cycles. */
export async function assigned() {
  const [accreditations, evaluations, standards, cycles] = await Promise.all([
    get('/v1/accreditations?status=expert_review&limit=100').then((r) => r.items),
    // The list says little; each open evaluation is read whole (figures, report, reviews).
    get('/v1/evaluations?limit=100').then((r) => Promise.all(r.items.filter((e) => !e.finalized_at).map((e) => get(`/v1/evaluations/${e.id}`)))),
    get('/v1/accreditation-standards?limit=100').then((r) => r.items),
    get('/v1/evaluation-cycles?limit=100').then((r) => r.items),
  ]);
  const accCards = await Promise.all(accreditations.map(async (a) => accreditationCard(a, await baseOf(a.base_id), standards.find((s) => s.id === a.standard_id))));
  const evCards = await Promise.all(evaluations.map(async (e) => evaluationCard(e, await baseOf(e.base_id), cycles.find((c) => c.id === e.cycle_id))));
  return page(t('reviews.title'),
    h('h2', {}, t('reviews.accreditations')), accCards.length ? h('ul', { class: 'cards' }, accCards) : empty(t('reviews.none')),
    h('h2', {}, t('reviews.evaluations')), evCards.length ? h('ul', { class: 'cards' }, evCards) : empty(t('reviews.none')));
}

function mine(reviews) {
  return (reviews || []).find((r) => r.evaluator_id === session.me.id) || {};
}

/** A points form: one number and one comment per criterion, and an overall comment. */
function scoring(criteria, previous, url, out) {
  const fields = [];
  for (const c of criteria) {
    fields.push({ name: `p_${c.key}`, label: t('reviews.points_of', { name: c.name, max: c.max_points }), type: 'number', min: 0, max: c.max_points, step: 'any', required: true, value: previous.points?.[c.key] ?? c.suggested ?? '', hint: c.hint });
    fields.push({ name: `c_${c.key}`, label: t('reviews.comment_on', { name: c.name }), type: 'textarea', max: 1000, value: previous.comments?.[c.key] ?? '' });
  }
  fields.push({ name: 'comment', label: t('reviews.comment'), type: 'textarea', max: 2000, value: previous.comment ?? '' });
  const f = form({
    fields,
    // The API names a criterion's fields `points.<key>` and `comments.<key>`.
    mapField: (name) => name.replace(/^points\.(.+)$/, 'p_$1').replace(/^comments\.(.+)$/, 'c_$1'),
    submitLabel: t('reviews.save'),
    submit: async (v) => {
      const points = {};
      const comments = {};
      for (const c of criteria) {
        points[c.key] = v[`p_${c.key}`];
        if (v[`c_${c.key}`]) comments[c.key] = v[`c_${c.key}`];
      }
      await api('PUT', url, { points, comments, comment: v.comment });
      out.replaceChildren(notice('success', t('reviews.saved')));
    },
  });
  return f.el;
}

function figuresTable(rows, caption) {
  return h('table', {}, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('reviews.figure')), h('th', { scope: 'col' }, t('reviews.reported')), h('th', { scope: 'col' }, t('reviews.measured_or_required')))),
    h('tbody', {}, rows.map(([name, a, b]) => h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, a ?? '—'), h('td', {}, b ?? '—')))));
}

function accreditationCard(a, base, standard) {
  const out = h('div', { 'aria-live': 'polite' });
  const req = standard?.requirements || {};
  const required = req[base.subcategory] || {};
  const figures = Object.entries(a.figures || {}).map(([k, v]) => [label('figure', k), v, required[`min_${k}`] ?? required[`min_${k.replace('_per_year', '')}`]]);
  const criteria = (standard?.scoring_sheet || []).map((c) => ({ key: c.key, name: c.name, max_points: c.max_points }));
  return h('li', { class: 'card', 'data-accreditation': a.id },
    h('h3', {}, baseName(base)),
    h('p', {}, label('accreditation_status', a.status), a.unmet?.length ? ` · ${t('reviews.unmet', { n: a.unmet.length })}` : ''),
    figuresTable(figures, t('reviews.self_reported')),
    h('details', { open: true }, h('summary', {}, t('reviews.score')), scoring(criteria, mine(a.reviews), `/v1/accreditations/${a.id}/scores`, out)), out);
}

function evaluationCard(e, base, cycle) {
  const out = h('div', { 'aria-live': 'polite' });
  const report = e.self_report || {};
  const measured = e.measured || {};
  const rows = Object.keys(measured).map((k) => [label('measure', k), report[k], measured[k]]);
  const criteria = (cycle?.rubric?.sections || []).flatMap((s) => s.indicators.map((i) => ({
    key: i.key, name: `${s.name} · ${i.name}`, max_points: i.max_points, suggested: e.suggested_points?.[i.key],
    hint: e.suggested_points?.[i.key] != null ? t('reviews.suggested', { n: e.suggested_points[i.key] }) : null,
  })));
  return h('li', { class: 'card', 'data-evaluation': e.id },
    h('h3', {}, `${baseName(base)} · ${e.year}`),
    h('p', {}, label('evaluation_status', e.status), e.due_at ? ` · ${t('reviews.due', { day: day(e.due_at) })}` : ''),
    figuresTable(rows, t('reviews.report_vs_measured')),
    h('details', { open: true }, h('summary', {}, t('reviews.score')), scoring(criteria, mine(e.reviews), `/v1/evaluations/${e.id}/scores`, out)), out);
}

// The console's shell: restores the session, draws the navigation for the caller's role and
// shows the page the address names (`#/find`, `#/gate`, …).
import { t, lang, setLang } from './i18n.js';
import { h, api, get, session, form, page, notice, explain, present, Problem } from './core.js';
import * as pub from './public.js';
import * as school from './school.js';
import * as operator from './operator.js';
import * as review from './review.js';
import * as district from './district.js';

/** Pages by path: who may open each (null: anyone), and its view. */
const ROUTES = {
  '': { roles: null, view: pub.home, nav: 'nav.bases' },
  certificates: { roles: null, view: pub.certificates, nav: 'nav.certificates' },
  notices: { roles: null, view: pub.notices, nav: 'nav.notices' },
  find: { roles: ['school'], view: school.find, nav: 'nav.find' },
  bookings: { roles: ['school'], view: school.bookings, nav: 'nav.bookings' },
  campaigns: { roles: ['school'], view: school.campaigns, nav: 'nav.campaigns' },
  today: { roles: ['operator'], view: operator.today, nav: 'nav.today' },
  gate: { roles: ['operator'], view: operator.gate, nav: 'nav.gate' },
  exhibits: { roles: ['operator'], view: operator.exhibits, nav: 'nav.exhibits' },
  profile: { roles: ['operator'], view: operator.profile, nav: 'nav.profile' },
  reviews: { roles: ['evaluator'], view: review.assigned, nav: 'nav.reviews' },
  work: { roles: ['district_officer', 'admin'], view: district.work, nav: 'nav.work' },
  signs: { roles: ['district_officer', 'admin'], view: district.signs, nav: 'nav.signs' },
  statistics: { roles: ['district_officer', 'admin'], view: district.statistics, nav: 'nav.statistics' },
  login: { roles: null, view: login, nav: null },
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const account = document.getElementById('account');

function path() {
  return (location.hash.replace(/^#\/?/, '').split('?')[0] || '').split('/');
}

function allowed(route) {
  return route.roles === null || (session.me && route.roles.includes(session.me.role));
}

function drawNav() {
  const here = path()[0];
  const links = Object.entries(ROUTES)
    .filter(([, r]) => r.nav && allowed(r))
    .map(([p, r]) => h('li', {}, h('a', { href: `#/${p}`, 'aria-current': p === here ? 'page' : null }, t(r.nav))));
  nav.replaceChildren(h('ul', {}, links));
  const switcher = h('button', { type: 'button', class: 'link', lang: lang() === 'en' ? 'zh-CN' : 'en', onclick: () => { setLang(lang() === 'en' ? 'zh-CN' : 'en'); render(); } },
    lang() === 'en' ? '中文' : 'English');
  const who = session.me
    ? [h('span', { class: 'who' }, `${session.me.username} · ${t(`role.${session.me.role}`)}`),
      h('button', { type: 'button', class: 'link', onclick: logout }, t('nav.logout'))]
    : [h('a', { href: '#/login' }, t('nav.login'))];
  account.replaceChildren(switcher, ...who);
  document.documentElement.lang = lang();
  document.getElementById('brand').textContent = t('app.name');
  document.getElementById('skip').textContent = t('app.skip');
}

let rendering = 0;

/** Draws the page the address names. A page still loading when the address changes is dropped. */
export async function render() {
  const mine = ++rendering;
  drawNav();
  const [name, ...rest] = path();
  const route = ROUTES[name];
  if (!route) {
    main.replaceChildren(...page(t('error.not_found')));
    return;
  }
  if (!allowed(route)) {
    if (!session.me) {
      sessionStorage.setItem('kepu.after_login', location.hash);
      location.hash = '#/login';
    } else main.replaceChildren(...page(t('error.forbidden_page')));
    return;
  }
  main.replaceChildren(h('p', { class: 'loading', role: 'status' }, t('app.loading')));
  try {
    const content = await route.view(...rest);
    if (mine !== rendering) return;
    main.replaceChildren(...present([content]));
  } catch (p) {
    if (mine !== rendering) return;
    if (p instanceof Problem && p.status === 401) {
      session.me = null;
      session.csrf = null;
      location.hash = '#/login';
      return;
    }
    main.replaceChildren(...page(t('error.title')), notice('error', explain(p)));
  }
  // The field a page is for (the gate's code, the log-in's name), else its heading.
  const target = main.querySelector('[autofocus]') || document.getElementById('page-title');
  target?.focus({ preventScroll: true });
}

function home() {
  if (!session.me) return '#/';
  return {
    school: '#/find', operator: '#/today', evaluator: '#/reviews', district_officer: '#/work', admin: '#/work',
  }[session.me.role] || '#/';
}

async function login() {
  if (session.me) {
    location.hash = home();
    return [];
  }
  const f = form({
    fields: [
      { name: 'username', label: t('login.username'), required: true, autocomplete: 'username', autofocus: true },
      { name: 'password', label: t('login.password'), type: 'password', required: true, autocomplete: 'current-password' },
    ],
    submitLabel: t('login.submit'),
    submit: async (v) => {
      let data;
      try {
        ({ data } = await api('POST', '/v1/auth/session', { username: v.username || '', password: v.password || '' }));
      } catch (p) {
        throw p instanceof Problem && p.status === 401 ? new Problem(401, { type: 'login-failed', title: t('login.failed') }) : p;
      }
      session.csrf = data.csrf_token;
      session.me = await get('/v1/me');
      const next = sessionStorage.getItem('kepu.after_login');
      sessionStorage.removeItem('kepu.after_login');
      location.hash = next || home();
    },
  });
  return page(t('login.title'), h('p', {}, t('login.intro')), f.el);
}

async function logout() {
  try {
    await api('DELETE', '/v1/auth/session');
  } catch (p) {
    // Signed out only once the server ended the session (or it had ended already).
    if (!(p instanceof Problem && p.status === 401)) {
      main.prepend(notice('error', t('error.logout'), ' ', explain(p)));
      return;
    }
  }
  session.me = null;
  session.csrf = null;
  location.hash = '#/';
  render();
}

async function boot() {
  try {
    const { data } = await api('GET', '/v1/auth/session');
    session.csrf = data.csrf_token;
    session.me = await get('/v1/me');
  } catch {
    session.me = null;
  }
  window.addEventListener('hashchange', render);
  render();
}

boot();

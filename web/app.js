// The console's router: each path a person can bookmark maps to a view; links inside
// the app navigate with history.pushState, without reloading. One EventSource
// (/api/events) feeds every view its live samples.

import { h } from './dom.js';
import { navigate } from './nav.js';
import { overviewView } from './view-overview.js';
import { topicView, recordsView } from './view-topic.js';
import { groupsView, groupView } from './view-groups.js';

const routes = [
  [/^\/$/, () => overviewView()],
  [/^\/topics\/([^/]+)\/records\/?$/, (m, q) => recordsView(decodeURIComponent(m[1]), q)],
  [/^\/topics\/([^/]+)\/?$/, (m) => topicView(decodeURIComponent(m[1]))],
  [/^\/groups\/?$/, () => groupsView()],
  [/^\/groups\/([^/]+)\/?$/, (m) => groupView(decodeURIComponent(m[1]))],
];

let current = null;
const main = document.getElementById('main');

async function show() {
  current?.unmount?.();
  current = null;
  const { pathname, search } = window.location;
  let view = null;
  for (const [re, make] of routes) {
    const m = re.exec(pathname);
    if (m) {
      view = make(m, new URLSearchParams(search));
      break;
    }
  }
  view ??= { title: 'Not found', mount: (el) => el.append(h('h1', {}, 'Not found'), h('p', {}, `No page at ${pathname}.`)) };
  current = view;
  document.title = `${view.title} · commitlog console`;
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.nav === view.nav);
  main.replaceChildren();
  main.dataset.view = view.name ?? '';
  main.dataset.ready = 'false';
  await view.mount(main);
  if (current === view) main.dataset.ready = 'true';
}

window.addEventListener('console:navigate', () => show());

document.addEventListener('click', (e) => {
  const a = e.target.closest?.('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname === '/metrics') return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => show());

const live = document.getElementById('live');
const events = new EventSource('/api/events');
events.addEventListener('open', () => {
  live.textContent = 'live';
  live.className = 'live on';
});
events.addEventListener('error', () => {
  live.textContent = 'reconnecting…';
  live.className = 'live off';
});
events.addEventListener('sample', (e) => {
  const sample = JSON.parse(e.data);
  live.dataset.samples = String(Number(live.dataset.samples ?? 0) + 1);
  current?.onSample?.(sample);
});

show();

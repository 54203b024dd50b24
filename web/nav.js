// In-app navigation: a history entry (bookmarkable path) and an event the router (app.js) shows.
export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  window.dispatchEvent(new Event('console:navigate'));
}

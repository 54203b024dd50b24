// Tiny SVG charts (no library): a line chart of a few series over time and a bar chart.
// Each chart element carries data-points (points per series) so tests and scripts can
// see its data grow; the newest value of each series is shown in its legend.

import { h, fmtRate, fmtInt } from './dom.js';

const W = 560;
const H = 140;
const PAD = { left: 44, right: 8, top: 10, bottom: 20 };
const COLORS = ['#2b6cb0', '#c05621', '#2f855a', '#6b46c1'];

/**
 * series: [{ name, points: [[timeMs, value|null], ...] }]; options: { id, title, unit, windowMs, minWindowMs, dots }
 */
export function lineChart(series, options = {}) {
  // The window grows with the data (from minWindowMs) up to windowMs: a fresh page is not a flat line at the right edge.
  const all = series.flatMap((s) => s.points);
  const tMax = all.length ? Math.max(...all.map((p) => p[0])) : Date.now();
  const span = all.length ? tMax - Math.min(...all.map((p) => p[0])) : 0;
  const windowMs = Math.min(options.windowMs ?? 5 * 60 * 1000, Math.max(options.minWindowMs ?? 30_000, span));
  const tMin = tMax - windowMs;
  const values = all.filter((p) => p[0] >= tMin && p[1] !== null).map((p) => p[1]);
  const vMax = niceMax(values.length ? Math.max(...values) : 0);
  const x = (t) => PAD.left + ((t - tMin) / windowMs) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / vMax) * (H - PAD.top - PAD.bottom);
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': options.title ?? 'chart' });
  for (const f of [0, 0.5, 1]) {
    const yy = y(vMax * f);
    svg.append(h('svg:line', { x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy, class: 'grid' }));
    svg.append(h('svg:text', { x: PAD.left - 4, y: yy + 4, class: 'axis', 'text-anchor': 'end' }, short(vMax * f)));
  }
  svg.append(h('svg:text', { x: PAD.left, y: H - 4, class: 'axis' }, windowMs < 120_000 ? `−${Math.round(windowMs / 1000)} s` : `−${Math.round(windowMs / 60000)} min`));
  svg.append(h('svg:text', { x: W - PAD.right, y: H - 4, class: 'axis', 'text-anchor': 'end' }, 'now'));
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p[0] >= tMin && p[1] !== null);
    if (pts.length === 0) return;
    const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    svg.append(h('svg:path', { d, class: 'line', stroke: COLORS[i % COLORS.length] }));
    // Sparse series (flush latency has no value in an interval without flushes) show their points.
    if (options.dots || pts.length === 1) for (const p of pts) svg.append(h('svg:circle', { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2.5, fill: COLORS[i % COLORS.length] }));
  });
  const legend = h('div', { class: 'legend' }, series.map((s, i) => {
    let last = null;
    for (let j = s.points.length - 1; j >= 0 && last === null; j--) last = s.points[j][1];
    return h('span', { class: 'legend-item' }, h('span', { class: 'swatch', dataset: { color: String(i) } }), `${s.name}: `, h('b', { class: 'legend-value' }, last === null ? '–' : fmtRate(last)), options.unit ? ` ${options.unit}` : '');
  }));
  return h('figure', { class: 'chart', id: options.id, dataset: { points: String(series[0]?.points.length ?? 0) } },
    h('figcaption', {}, options.title ?? ''), svg, legend);
}

/** bars: [{ label, value }]; options: { id, title } */
export function barChart(bars, options = {}) {
  const bw = 40;
  const gap = 14;
  const width = Math.max(W, PAD.left + bars.length * (bw + gap));
  const vMax = niceMax(bars.length ? Math.max(...bars.map((b) => b.value)) : 0);
  const y = (v) => H - PAD.bottom - (v / vMax) * (H - PAD.top - PAD.bottom);
  const svg = h('svg:svg', { viewBox: `0 0 ${width} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': options.title ?? 'chart' });
  for (const f of [0, 0.5, 1]) {
    const yy = y(vMax * f);
    svg.append(h('svg:line', { x1: PAD.left, x2: width - PAD.right, y1: yy, y2: yy, class: 'grid' }));
    svg.append(h('svg:text', { x: PAD.left - 4, y: yy + 4, class: 'axis', 'text-anchor': 'end' }, short(vMax * f)));
  }
  bars.forEach((b, i) => {
    const x0 = PAD.left + gap + i * (bw + gap);
    svg.append(h('svg:rect', { x: x0, y: y(b.value), width: bw, height: Math.max(0, y(0) - y(b.value)), class: 'bar' }, h('svg:title', {}, `${b.label}: ${fmtInt(b.value)}`)));
    svg.append(h('svg:text', { x: x0 + bw / 2, y: H - 6, class: 'axis', 'text-anchor': 'middle' }, b.label));
  });
  return h('figure', { class: 'chart', id: options.id, dataset: { points: String(bars.length) } }, h('figcaption', {}, options.title ?? ''), svg);
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function short(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(1));
}

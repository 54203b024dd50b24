// Overview (/): broker facts, topics, live charts of records in/out per second,
// connections and flush latency over the last minutes, and the create-topic form.

import { api, errorBox, fmtBytes, fmtInt, fmtRate, h, link, stat, table } from './dom.js';
import { lineChart } from './chart.js';

const HISTORY = 300;

export function overviewView() {
  let data = null;
  let samples = [];
  let summary;
  let charts;
  let topics;
  let refreshing = false;

  function renderCharts() {
    const pts = (f) => samples.map((s) => [s.time, f(s)]);
    const windowMs = (data?.intervalMs ?? 1000) * HISTORY;
    const minWindowMs = (data?.intervalMs ?? 1000) * 30;
    charts.replaceChildren(
      lineChart([
        { name: 'in', points: pts((s) => s.recordsInPerSec) },
        { name: 'out', points: pts((s) => s.recordsOutPerSec) },
      ], { id: 'chart-records', title: 'Records per second', unit: 'rec/s', windowMs, minWindowMs }),
      lineChart([{ name: 'connections', points: pts((s) => s.connections) }], { id: 'chart-connections', title: 'Connections', windowMs, minWindowMs }),
      lineChart([
        { name: 'mean', points: pts((s) => s.flushMeanMs) },
        { name: 'max', points: pts((s) => s.flushMaxMs) },
      ], { id: 'chart-flush', title: 'Flush latency (msync)', unit: 'ms', windowMs, minWindowMs, dots: true }),
    );
  }

  let shown = '';
  function renderData() {
    const b = data.broker;
    const last = samples.at(-1);
    summary.replaceChildren(
      stat('topics', fmtInt(data.topics.length), 'stat-topics'),
      stat('partitions', fmtInt(data.partitions), 'stat-partitions'),
      stat('size on disk', fmtBytes(data.diskBytes), 'stat-disk'),
      stat('records in/s', fmtRate(last?.recordsInPerSec ?? 0), 'stat-in'),
      stat('records out/s', fmtRate(last?.recordsOutPerSec ?? 0), 'stat-out'),
      stat('connections', fmtInt(data.connections), 'stat-connections'),
      stat('flush latency', last?.flushMeanMs == null ? '–' : `${last.flushMeanMs.toFixed(2)} ms`, 'stat-flush'),
      stat('consumer groups', fmtInt(data.groups), 'stat-groups'),
    );
    summary.append(h('p', { class: 'muted broker-line' }, `broker ${b.host}:${b.port} · data ${b.dir}${b.flush ? ` · flush ${b.flush}` : ''}`));
    // An unchanged table is left alone (a click or a selection in progress survives).
    const key = JSON.stringify(data.topics);
    if (key === shown) return;
    shown = key;
    topics.replaceChildren(table(
      ['topic', 'partitions', 'records', 'size', 'on disk', 'segments', 'in/s', 'out/s'],
      data.topics.map((t) => h('tr', { dataset: { topic: t.name } },
        h('td', {}, link(`/topics/${encodeURIComponent(t.name)}`, t.name)),
        h('td', { class: 'num' }, fmtInt(t.partitions)),
        h('td', { class: 'num' }, fmtInt(t.records)),
        h('td', { class: 'num' }, fmtBytes(t.sizeBytes)),
        h('td', { class: 'num' }, fmtBytes(t.diskBytes)),
        h('td', { class: 'num' }, fmtInt(t.segments)),
        h('td', { class: 'num' }, fmtRate(t.recordsInPerSec)),
        h('td', { class: 'num' }, fmtRate(t.recordsOutPerSec)))),
      { id: 'topics-table' }));
  }

  function createForm() {
    const name = h('input', { name: 'name', id: 'create-name', required: true, placeholder: 'orders', pattern: '[A-Za-z0-9_][A-Za-z0-9._\\-]*', maxlength: 249 });
    const partitions = h('input', { name: 'partitions', id: 'create-partitions', type: 'number', min: 1, max: 10000, value: 1 });
    const retention = h('input', { name: 'retentionHours', id: 'create-retention', type: 'number', min: 1, placeholder: '168 (7 days)' });
    const result = h('div', { id: 'create-result' });
    const form = h('form', { id: 'create-topic', class: 'inline-form' },
      h('label', {}, 'name ', name), h('label', {}, 'partitions ', partitions), h('label', {}, 'retention (hours) ', retention),
      h('button', { type: 'submit', id: 'create-submit' }, 'Create topic'), result);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      result.replaceChildren();
      const body = { name: name.value.trim(), partitions: Number(partitions.value || 1) };
      if (retention.value !== '') body.retentionMs = Math.round(Number(retention.value) * 3600_000);
      try {
        const created = await api('/api/topics', { method: 'POST', body });
        result.replaceChildren(h('p', { class: 'ok' }, 'Created ', link(`/topics/${encodeURIComponent(created.name)}`, created.name), ` with ${created.partitions.length} partition(s).`));
        name.value = '';
        await refresh();
      } catch (err) {
        result.replaceChildren(errorBox(err));
      }
    });
    return form;
  }

  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      data = await api('/api/overview');
      renderData();
    } catch (err) {
      topics.replaceChildren(errorBox(err));
    } finally {
      refreshing = false;
    }
  }

  return {
    name: 'overview',
    nav: 'overview',
    title: 'Overview',
    async mount(el) {
      summary = h('section', { class: 'stats', id: 'summary' });
      charts = h('section', { class: 'charts', id: 'charts' });
      topics = h('section', { id: 'topics' });
      const deleted = new URLSearchParams(location.search).get('deleted');
      el.append(h('div', {}, h('h1', {}, 'Overview'), deleted ? h('p', { class: 'ok', id: 'notice' }, `Deleted topic ${deleted}.`) : null), summary, charts, h('h2', {}, 'Topics'), topics, h('h2', {}, 'Create a topic'), createForm());
      try {
        data = await api('/api/overview');
      } catch (err) {
        el.replaceChildren(h('h1', {}, 'Overview'), errorBox(err));
        return;
      }
      samples = data.samples.slice(-HISTORY);
      renderData();
      renderCharts();
    },
    onSample(s) {
      if (data === null) return;
      samples.push(s);
      if (samples.length > HISTORY) samples.shift();
      renderCharts();
      refresh();
    },
  };
}

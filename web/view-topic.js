// A topic (/topics/NAME): partitions with their offsets, segments and rates, the
// topic's settings, its rate chart, and deleting it (after typing its name). The
// record browser (/topics/NAME/records?partition=P&offset=O or &time=ISO-8601).

import { api, errorBox, fmtBytes, fmtInt, fmtMs, fmtRate, h, link, table } from './dom.js';
import { lineChart } from './chart.js';
import { navigate } from './nav.js';

const enc = encodeURIComponent;

export function topicView(name) {
  let body;
  let refreshing = false;
  let data = null;

  function render() {
    const c = data.config;
    body.replaceChildren(
      h('section', { class: 'stats' },
        h('p', {}, `${fmtInt(data.partitions)} partition(s) · ${fmtInt(data.records)} records · ${fmtBytes(data.sizeBytes)} of data · ${fmtBytes(data.diskBytes)} on disk · ${fmtInt(data.segments)} segment(s)`)),
      h('h2', {}, 'Partitions'),
      table(['partition', 'earliest offset', 'latest offset', 'high watermark', 'log end offset', 'records', 'segments', 'size', 'on disk', 'in/s', ''],
        data.partitionList.map((p) => h('tr', { dataset: { partition: String(p.partition) } },
          h('td', { class: 'num' }, String(p.partition)),
          h('td', { class: 'num' }, fmtInt(p.earliestOffset)),
          h('td', { class: 'num' }, fmtInt(p.latestOffset)),
          h('td', { class: 'num' }, fmtInt(p.highWatermark)),
          h('td', { class: 'num' }, fmtInt(p.logEndOffset)),
          h('td', { class: 'num' }, fmtInt(p.records)),
          h('td', { class: 'num' }, fmtInt(p.segments)),
          h('td', { class: 'num' }, fmtBytes(p.sizeBytes)),
          h('td', { class: 'num' }, fmtBytes(p.diskBytes)),
          h('td', { class: 'num' }, fmtRate(p.recordsInPerSec)),
          h('td', {}, link(`/topics/${enc(name)}/records?partition=${p.partition}&offset=${p.earliestOffset}`, 'browse')))),
        { id: 'partitions-table' }),
      lineChart([
        { name: 'in', points: data.history.map((s) => [s.time, s.in]) },
        { name: 'out', points: data.history.map((s) => [s.time, s.out]) },
      ], { id: 'chart-topic', title: 'Records per second', unit: 'rec/s', windowMs: data.intervalMs * 300, minWindowMs: data.intervalMs * 30 }),
      h('h2', {}, 'Settings'),
      table(['setting', 'value'], [
        ['retention.ms', c.retentionMs < 0 ? 'unlimited' : `${fmtInt(c.retentionMs)} (${fmtMs(c.retentionMs)})`],
        ['retention.bytes', c.retentionBytes < 0 ? 'unlimited' : `${fmtInt(c.retentionBytes)} (${fmtBytes(c.retentionBytes)})`],
        ['segment.bytes', `${fmtInt(c.segmentBytes)} (${fmtBytes(c.segmentBytes)})`],
        ['index.interval.bytes', fmtInt(c.indexIntervalBytes)],
        ['max.message.bytes', fmtInt(c.maxBatchBytes)],
      ].map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))), { id: 'settings-table' }),
    );
  }

  function deleteSection() {
    const box = h('div', { id: 'delete-confirm', class: 'confirm', hidden: true });
    const typed = h('input', { id: 'delete-name', placeholder: name, autocomplete: 'off' });
    const confirmButton = h('button', { id: 'delete-confirm-button', class: 'danger', disabled: true }, 'Delete for good');
    const result = h('div', { id: 'delete-result' });
    typed.addEventListener('input', () => (confirmButton.disabled = typed.value !== name));
    confirmButton.addEventListener('click', async () => {
      result.replaceChildren();
      try {
        await api(`/api/topics/${enc(name)}`, { method: 'DELETE' });
        navigate(`/?deleted=${enc(name)}`);
      } catch (err) {
        result.replaceChildren(errorBox(err));
      }
    });
    box.append(h('p', {}, 'This deletes every partition, every record and the committed offsets of every group for ', h('b', {}, name), '. Type the topic name to confirm.'), typed, ' ', confirmButton, ' ',
      h('button', { id: 'delete-cancel', onclick: () => (box.hidden = true) }, 'Cancel'), result);
    const open = h('button', { id: 'delete-topic', class: 'danger', onclick: () => { box.hidden = false; typed.focus(); } }, 'Delete topic…');
    return h('section', { class: 'danger-zone' }, h('h2', {}, 'Delete'), open, box);
  }

  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      data = await api(`/api/topics/${enc(name)}`);
      render();
    } catch (err) {
      body.replaceChildren(errorBox(err));
    } finally {
      refreshing = false;
    }
  }

  return {
    name: 'topic',
    title: `Topic ${name}`,
    async mount(el) {
      body = h('div', { id: 'topic-body' });
      el.append(h('p', { class: 'crumbs' }, link('/', 'Overview'), ' / topic'), h('h1', {}, name),
        h('p', {}, link(`/topics/${enc(name)}/records`, 'Browse records')), body);
      await refresh();
      if (data !== null) el.append(deleteSection());
    },
    onSample() {
      if (data !== null) refresh();
    },
  };
}

export function recordsView(topic, query) {
  return {
    name: 'records',
    title: `Records of ${topic}`,
    async mount(el) {
      const partition = query.get('partition') ?? '0';
      const time = query.get('time');
      const offset = query.get('offset');
      const limit = query.get('limit');
      el.append(h('p', { class: 'crumbs' }, link('/', 'Overview'), ' / ', link(`/topics/${enc(topic)}`, topic), ' / records'), h('h1', {}, `Records of ${topic}`));
      let info = null;
      try {
        info = await api(`/api/topics/${enc(topic)}`);
      } catch (err) {
        el.append(errorBox(err));
        return;
      }
      const partSelect = h('select', { id: 'rb-partition', name: 'partition' }, info.partitionList.map((p) => h('option', { value: String(p.partition), selected: String(p.partition) === partition }, `partition ${p.partition}`)));
      const mode = h('select', { id: 'rb-mode' }, h('option', { value: 'offset', selected: time === null }, 'from offset'), h('option', { value: 'time', selected: time !== null }, 'from time (ISO-8601)'));
      const from = h('input', { id: 'rb-from', value: time ?? offset ?? '', placeholder: time !== null ? '2026-01-31T12:00:00Z' : 'offset (empty: the last records)' });
      mode.addEventListener('change', () => (from.placeholder = mode.value === 'time' ? '2026-01-31T12:00:00Z' : 'offset (empty: the last records)'));
      const size = h('input', { id: 'rb-limit', type: 'number', min: 1, max: 500, value: limit ?? '20' });
      const form = h('form', { id: 'rb-form', class: 'inline-form' }, h('label', {}, partSelect), h('label', {}, mode), h('label', {}, from), h('label', {}, 'page size ', size), h('button', { type: 'submit', id: 'rb-go' }, 'Show'));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const q = new URLSearchParams({ partition: partSelect.value });
        if (from.value.trim() !== '') q.set(mode.value, from.value.trim());
        if (size.value !== '' && size.value !== '20') q.set('limit', size.value);
        navigate(`/topics/${enc(topic)}/records?${q}`);
      });
      el.append(form);
      const q = new URLSearchParams({ partition });
      if (time !== null) q.set('time', time);
      else if (offset !== null && offset !== '') q.set('offset', offset);
      if (limit !== null) q.set('limit', limit);
      let page;
      try {
        page = await api(`/api/topics/${enc(topic)}/records?${q}`);
      } catch (err) {
        el.append(errorBox(err));
        return;
      }
      const pageHref = (o) => `/topics/${enc(topic)}/records?partition=${page.partition}&offset=${o}${limit !== null ? `&limit=${enc(limit)}` : ''}`;
      const pager = () => h('div', { class: 'pager' },
        h('button', { class: 'rb-prev', disabled: page.prevOffset === null, onclick: () => navigate(pageHref(page.prevOffset)) }, '← previous'),
        h('span', { class: 'rb-range' }, page.records.length === 0 ? `no records from offset ${fmtInt(page.offset)}` : `offsets ${fmtInt(page.records[0].offset)}–${fmtInt(page.records.at(-1).offset)}`,
          ` of [${fmtInt(page.earliestOffset)}, ${fmtInt(page.latestOffset)})`),
        h('button', { class: 'rb-next', disabled: page.nextOffset >= page.latestOffset, onclick: () => navigate(pageHref(page.nextOffset)) }, 'next →'));
      el.append(pager(), h('div', { id: 'records' }, page.records.length === 0 ? h('p', { class: 'muted' }, 'No records here yet.') : page.records.map(renderRecord)));
      if (page.records.length > 3) el.append(pager());
    },
  };
}

function renderBytes(b, cls) {
  if (b.encoding === 'null') return h('span', { class: `muted ${cls}` }, 'null');
  return h('pre', { class: `bytes ${cls}`, dataset: { encoding: b.encoding } }, b.text, b.truncated ? h('span', { class: 'muted' }, `\n… (${fmtInt(b.sizeBytes)} bytes in all)`) : null);
}

function renderRecord(r) {
  return h('article', { class: 'record', dataset: { offset: String(r.offset) } },
    h('header', {}, h('b', { class: 'record-offset' }, `offset ${r.offset}`), ' · ', h('time', { datetime: r.time }, r.time),
      ` · key ${r.key.encoding} · value ${r.value.encoding}, ${fmtInt(r.value.sizeBytes)} B`),
    h('div', { class: 'kv' }, h('span', { class: 'label' }, 'key'), renderBytes(r.key, 'record-key')),
    h('div', { class: 'kv' }, h('span', { class: 'label' }, 'value'), renderBytes(r.value, 'record-value')),
    r.headers.length === 0 ? null : h('div', { class: 'kv' }, h('span', { class: 'label' }, 'headers'),
      h('dl', { class: 'headers' }, r.headers.map((x) => [h('dt', {}, x.key), h('dd', {}, renderBytes(x.value, 'record-header'))]))));
}

// Consumer groups (/groups) and one group (/groups/NAME): members and their
// assignments (when the broker's coordinator tracks members), committed offsets, lag
// per partition as a table and a bar chart, and the group's total lag over time.

import { api, errorBox, fmtInt, h, link, table } from './dom.js';
import { barChart, lineChart } from './chart.js';

const enc = encodeURIComponent;

export function groupsView() {
  let body;
  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const data = await api('/api/groups');
      body.replaceChildren(
        data.membersTracked ? null : h('p', { class: 'muted' }, 'This broker does not track group members; groups are listed from their committed offsets.'),
        table(['group', 'state', 'members', 'topics', 'total lag'], data.groups.map((g) => h('tr', { dataset: { group: g.name } },
          h('td', {}, link(`/groups/${enc(g.name)}`, g.name)),
          h('td', {}, g.state ?? '–'),
          h('td', { class: 'num' }, g.members === null ? '–' : fmtInt(g.members)),
          h('td', {}, g.topics.join(', ')),
          h('td', { class: 'num' }, fmtInt(g.totalLag)))), { id: 'groups-table' }));
    } catch (err) {
      body.replaceChildren(errorBox(err));
    } finally {
      refreshing = false;
    }
  }
  return {
    name: 'groups',
    nav: 'groups',
    title: 'Consumer groups',
    async mount(el) {
      body = h('div', { id: 'groups-body' });
      el.append(h('h1', {}, 'Consumer groups'), body);
      await refresh();
    },
    onSample: () => refresh(),
  };
}

export function groupView(name) {
  let body;
  let refreshing = false;
  const lagHistory = [];
  let intervalMs = 1000;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      render(await api(`/api/groups/${enc(name)}`));
    } catch (err) {
      body.replaceChildren(errorBox(err));
    } finally {
      refreshing = false;
    }
  }
  function render(g) {
    const oneTopic = new Set(g.partitions.map((p) => p.topic)).size <= 1;
    const members = g.membersTracked
      ? table(['member', 'client', 'host', 'assigned partitions'], g.members.map((m) => h('tr', {},
        h('td', { class: 'mono' }, m.memberId, m.groupInstanceId ? ` (static: ${m.groupInstanceId})` : ''),
        h('td', {}, m.clientId),
        h('td', {}, m.clientHost),
        h('td', {}, m.assignment === null ? `${fmtInt(m.assignmentBytes)} bytes (not the consumer protocol)` : m.assignment.map((a) => `${a.topic} [${a.partitions.join(', ')}]`).join('; ') || 'none'))), { id: 'members-table' })
      : h('p', { class: 'muted', id: 'members-untracked' }, 'Members are not tracked by this broker: committed offsets and lag only.');
    body.replaceChildren(
      h('p', {}, g.state === null ? 'No live members.' : `state ${g.state} · generation ${g.generationId} · protocol ${g.protocolName || '–'}`, ` · total lag `, h('b', { id: 'total-lag' }, fmtInt(g.totalLag))),
      h('h2', {}, 'Members'), members,
      h('h2', {}, 'Offsets and lag'),
      table(['topic', 'partition', 'committed offset', 'latest offset', 'lag', 'member'], g.partitions.map((p) => h('tr', { dataset: { topic: p.topic, partition: String(p.partition) } },
        h('td', {}, link(`/topics/${enc(p.topic)}`, p.topic)),
        h('td', { class: 'num' }, String(p.partition)),
        h('td', { class: 'num' }, p.committedOffset < 0 ? 'none' : fmtInt(p.committedOffset)),
        h('td', { class: 'num' }, p.latestOffset === null ? 'topic deleted' : fmtInt(p.latestOffset)),
        h('td', { class: 'num lag' }, p.lag === null ? '–' : fmtInt(p.lag)),
        h('td', { class: 'mono' }, p.memberId ?? '–'))), { id: 'offsets-table' }),
      barChart(g.partitions.map((p) => ({ label: oneTopic ? `p${p.partition}` : `${p.topic.slice(0, 5)}/${p.partition}`, value: p.lag ?? 0 })), { id: 'chart-lag', title: 'Lag per partition' }),
      lineChart([{ name: 'total lag', points: lagHistory }], { id: 'chart-lag-history', title: 'Total lag over time', windowMs: intervalMs * 300, minWindowMs: intervalMs * 30 }));
  }
  return {
    name: 'group',
    nav: 'groups',
    title: `Group ${name}`,
    async mount(el) {
      body = h('div', { id: 'group-body' });
      el.append(h('p', { class: 'crumbs' }, link('/groups', 'Consumer groups'), ' / group'), h('h1', {}, name), body);
      try {
        const overview = await api('/api/overview');
        intervalMs = overview.intervalMs;
        for (const s of overview.samples) if (s.lag[name] !== undefined) lagHistory.push([s.time, s.lag[name]]);
      } catch {
        // the chart starts empty; the table below reports the error if the broker is gone
      }
      await refresh();
    },
    onSample(s) {
      if (s.lag[name] !== undefined) lagHistory.push([s.time, s.lag[name]]);
      if (lagHistory.length > 300) lagHistory.shift();
      refresh();
    },
  };
}

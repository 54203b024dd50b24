/**
 * Turns the figures the reliability suite published (RELIABILITY_FIGURES, one JSON line
 * per test and per recovery-speed row; see helpers.ts publish()) into the markdown
 * tables of docs/reliability.md.
 *
 *   npx tsx test/reliability/report.ts /tmp/commitlog-reliability.jsonl
 *
 * Figures of the same test are summed where they are counts (several runs of one
 * file), and listed as they are otherwise.
 */
import fs from 'node:fs';
import os from 'node:os';

type Line = Record<string, unknown> & { test: string; size?: string; date?: string };

const file = process.argv[2] ?? process.env.RELIABILITY_FIGURES;
if (file === undefined || file === '') {
  process.stderr.write('usage: report.ts FIGURES.jsonl\n');
  process.exit(2);
}
const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Line);
const by = (re: RegExp): Line[] => lines.filter((l) => re.test(l.test));
const n = (x: unknown): number => (typeof x === 'number' ? x : 0);
const fmt = (x: number): string => x.toLocaleString('en-US');
const out: string[] = [];
const dates = lines.map((l) => l.date).filter((d): d is string => typeof d === 'string').sort();
out.push(`Run: ${dates[0] ?? '?'} to ${dates[dates.length - 1] ?? '?'}, size ${[...new Set(lines.map((l) => l.size).filter(Boolean))].join('/')}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}.`);
out.push('');

const kills = by(/SIGKILLs of the broker|a broker kill loses/);
if (kills.length > 0) {
  out.push('| flush | generations | kills (at startup / in shutdown) | acknowledged | lost | present unacknowledged | consumer resumes | recovery dropped (batches / bytes) | max recovery |');
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const k of kills) {
    out.push(`| ${k.flush} | ${k.generations} | ${k.kills} (${k.startupKills} / ${k.shutdownKills}) | ${fmt(n(k.acknowledged))} | ${k.lost} | ${fmt(n(k.unacknowledgedPresent))} | ${k.consumerResumes} | ${k.recoveryDroppedBatches} / ${fmt(n(k.recoveryDroppedBytes))} | ${k.recoveryMsMax} ms |`);
  }
  out.push('');
}

const order = by(/produce response|msync covering/);
for (const o of order) out.push(`- durability order (${o.check}): ${fmt(n(o.responses))} produce responses checked, ${o.violations} sent before their msync${o.flushes !== undefined ? `, ${fmt(n(o.flushes))} flushes` : ''}${o.msyncs !== undefined ? `, ${fmt(n(o.msyncs))} msyncs traced; control under 'os': ${o.controlViolations} violations found` : ''}`);
if (order.length > 0) out.push('');

const matrix = by(/randomized matrix of damage/);
if (matrix.length > 0) {
  const outcomes = new Map<string, number>();
  let cases = 0;
  let skewed = 0;
  for (const m of matrix) {
    cases += n(m.cases);
    skewed += n(m.timeLookupsSkewedByTixDamage);
    for (const [k, v] of Object.entries((m.outcomes ?? {}) as Record<string, number>)) outcomes.set(k, (outcomes.get(k) ?? 0) + v);
  }
  out.push(`Corruption matrix: ${fmt(cases)} cases (seeds ${matrix.map((m) => m.seed).join(', ')}).`);
  out.push('');
  out.push('| outcome | cases |');
  out.push('|---|---|');
  for (const [k, v] of [...outcomes].sort((a, b) => b[1] - a[1])) out.push(`| ${k} | ${fmt(v)} |`);
  out.push(`| timestamp lookups answered late by undetectable .tix damage | ${fmt(skewed)} |`);
  out.push('');
}

const fuzz = by(/fuzzed frames/);
for (const f of fuzz) {
  out.push(`- fuzzing: ${fmt(n(f.cases))} cases (${Object.entries((f.kinds ?? {}) as Record<string, number>).map(([k, v]) => `${fmt(v)} ${k}`).join(', ')}), ${fmt(n(f.responses))} responses, ${fmt(n(f.badFramesMetric))} connections closed for a bad frame; broker RSS ${f.rssBeforeMiB} MiB before, peak ${f.rssHighWaterMiB} MiB (seed ${f.seed})`);
}
const hostile = by(/many connections/);
for (const h of hostile) {
  out.push(`- ${h.idle} idle connections, ${h.hogs} clients flooding fetches without reading, ${h.stalledMaxFrames} stalled inside 16 MiB frames: broker RSS ${h.rssBeforeMiB} MiB before, peak ${h.rssPeakSampledMiB} MiB (bound ${h.boundMiB} MiB); a well-behaved client made ${h.servedRoundTrips} round trips meanwhile, slowest ${h.maxRoundTripMs} ms`);
}
if (fuzz.length + hostile.length > 0) out.push('');

for (const d of by(/tmpfs full|injected ENOSPC/)) {
  out.push(`- disk full (${d.variant}): ${fmt(n(d.acknowledged))} batches acknowledged, ${fmt(n(d.diskFullAnswers))} produces answered ERR_DISK_FULL${d.resumedAfterSpaceReturned !== undefined ? `, ${d.resumedAfterSpaceReturned} acknowledged after space returned` : ''}`);
}
for (const c of by(/racing retention/)) {
  out.push(`- races (${c.seconds} s): ${fmt(n(c.recordsRead))} records read at random offsets, ${fmt(n(c.tailRecords))} tailed, ${fmt(n(c.fetches))} fetches (${fmt(n(c.longPolls))} long polls), ${fmt(n(c.sliceHolds))} zero-copy ranges held, ${fmt(n(c.keptViewsChecked))} checks of views whose segment was deleted; ${fmt(n(c.retentionSegments))} segments deleted by retention, ${c.topicsDeleted} topics deleted; ${fmt(n(c.typedErrors))} typed errors, 0 others`);
}
out.push('');

const speed = by(/recovery time per GiB/);
if (speed.length > 0) {
  out.push('| batch | page cache | tail | batches | scan + index | open, incl. flush | s per GiB | GiB/s |');
  out.push('|---|---|---|---|---|---|---|---|');
  for (const r of speed) {
    out.push(`| ${fmt(n(r.batchBytes))} B | ${r.cache} | ${(n(r.tailBytes) / 2 ** 20).toFixed(0)} MiB | ${fmt(n(r.batches))} | ${r.scanMs} ms | ${r.openMs} ms | ${r.secondsPerGiB} | ${r.gibPerSecond} |`);
  }
}
process.stdout.write(`${out.join('\n')}\n`);

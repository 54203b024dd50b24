/**
 * Question: how fast can the embedded log append, next to what a Node developer would
 * write by hand for the same bytes?
 *
 * For 100 B and 1 KiB values in batches of 1, 100 and 1000 records (keys null, no
 * headers), one run puts side by side:
 *   baselines  fs.writeSync of the same encoded batches in 1 MiB writes (accumulate,
 *              then write; never fsynced); Buffer.set of them into a preallocated
 *              64 MiB buffer (wrapping); for 'sync', fs.writeSync + fs.fdatasyncSync
 *              per append.
 *   async      CommitLog flush 'async': prebuilt batches through appendBatch (which
 *              verifies the CRC), plain record objects through append (encode + append).
 *   sync       CommitLog flush 'sync' (an append resolves after msync): one appender
 *              awaiting each append, and 64 concurrent single-record appenders (group
 *              commit).
 * The contenders of one workload run interleaved (lib.ts interleave(): a warm-up each,
 * then ROUNDS round-robin slices), so drift in the machine's speed hits them alike.
 * The log rows run on a partition that has rolled once (the steady state).
 *
 * MB = 1e6 bytes of record keys + values (keys are null: value bytes). A ratio is
 * records/s over the baseline's records/s for the same encoded bytes.
 *
 * Run: npm run bench:append [-- --json] [-- --only=<row ids>]. --json prints one JSON
 * object on the last line (keys in docs/benchmarks.md). Never gates CI.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommitLog, encodeBatch, type Logger, type ProducerRecord } from '../src/index.js';
import {
  formatNumber, formatRatio, interleave, machineInfo, randomValues, renderTable, round, sleep, tempRoot, timeAsync, timeConcurrent, timeSync,
  type Budget, type Contender, type Timing,
} from './lib.js';

const VALUE_BYTES = [100, 1024];
const BATCH_RECORDS = [1, 100, 1000];
const SEGMENT_BYTES = 256 * 1024 * 1024;
const MEASURE_SECONDS = 1.2;
const WARMUP_SECONDS = 0.25;
const ROUNDS = 4;
/** Distinct payload per workload, so appends do not keep re-reading one cached buffer. */
const POOL_BYTES = 16 * 1024 * 1024;
const MEMCPY_BUFFER_BYTES = 64 * 1024 * 1024;
const WRITE_CHUNK_BYTES = 1024 * 1024;
const GROUP_APPENDERS = 64;
const TOPIC = 'bench';
/** Before a baseline slice: time for the log's background msync and segment work to finish. */
const QUIET_MS = 100;

const TARGETS = {
  asyncPrebuiltVsWriteSync: {
    row: 'async.prebuilt.v100.b1000', field: 'xWriteSync', threshold: 1.0, unit: 'x',
    description: "prebuilt batches of 1000 x 100 B, 'async', >= 1.0x batched fs.writeSync",
  },
  asyncObjectsRecordsPerSec: {
    row: 'async.objects.v100.b1000', field: 'recordsPerSec', threshold: 5_000_000, unit: 'records/s',
    description: "the same built from plain record objects (append), 'async', >= 5,000,000 records/s",
  },
  syncGroup64AppendsPerSec: {
    row: 'sync.group64.objects.v100.b1', field: 'appendsPerSec', threshold: 20_000, unit: 'appends/s',
    description: "'sync', 64 concurrent single-record appenders, >= 20,000 appends/s",
  },
} as const;

interface Workload {
  valueBytes: number;
  batchRecords: number;
  /** Record arrays, one per append (the "objects" input). */
  records: ProducerRecord[][];
  /** The same records encoded beforehand (the "prebuilt" input and the baselines' bytes). */
  batches: Buffer[];
  wireBytesPerBatch: number;
  payloadBytesPerBatch: number;
}

interface Measured extends Timing {
  /** msync rounds of the log during the slice, and their total duration. */
  flushes: number;
  flushMs: number;
}

interface Row {
  id: string;
  label: string;
  valueBytes: number;
  batchRecords: number;
  concurrency: number;
  records: number;
  appends: number;
  seconds: number;
  recordsPerSec: number;
  appendsPerSec: number;
  payloadMBps: number;
  wireMBps: number;
  xWriteSync: number | null;
  xMemcpy: number | null;
  xFdatasync: number | null;
  /** 'sync' rows only: msync rounds during the measurement, their mean duration, appends per round. */
  flushes: number | null;
  flushMsMean: number | null;
  appendsPerFlush: number | null;
}

/** A contender with the row it reports as. */
interface Entry {
  id: string;
  label: string;
  concurrency: number;
  contender: Contender<Measured>;
}

const json = process.argv.includes('--json');
/** --only=<ids>: only these log rows (comma-separated; a trailing * matches a prefix) and their workloads' baselines. */
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',') ?? null;
const rows = new Map<string, Row>();
const warnings: string[] = [];
const logger: Logger = {
  info: () => undefined,
  warn: (fields, message) => warnings.push(`${message} ${JSON.stringify(fields)}`),
};

/** Every msync round of the logs, seen through the public flush hooks (one partition: rounds never overlap). */
const flushStats = { count: 0, ms: 0, startedAt: 0 };
const hooks = {
  beforeFlush: () => {
    flushStats.startedAt = performance.now();
  },
  afterFlush: () => {
    flushStats.count++;
    flushStats.ms += performance.now() - flushStats.startedAt;
  },
};

function key(w: Workload): string {
  return `v${w.valueBytes}.b${w.batchRecords}`;
}

function wanted(id: string): boolean {
  return only === null || only.some((p) => (p.endsWith('*') ? id.startsWith(p.slice(0, -1)) : id === p));
}

function makeWorkload(valueBytes: number, batchRecords: number): Workload {
  const poolBatches = Math.min(16384, Math.max(4, Math.round(POOL_BYTES / (valueBytes * batchRecords))));
  const values = randomValues(poolBatches * batchRecords, valueBytes);
  const records: ProducerRecord[][] = [];
  for (let b = 0; b < poolBatches; b++) {
    const batch: ProducerRecord[] = new Array(batchRecords);
    for (let r = 0; r < batchRecords; r++) batch[r] = { value: values[b * batchRecords + r] };
    records.push(batch);
  }
  const batches = records.map((rs) => encodeBatch(rs));
  const wire = batches.reduce((sum, b) => sum + b.length, 0) / batches.length;
  return { valueBytes, batchRecords, records, batches, wireBytesPerBatch: wire, payloadBytesPerBatch: valueBytes * batchRecords };
}

/** MEASURE_SECONDS or maxRecords, whichever comes first; the clock is read every 16 single-record steps. */
function budget(w: Workload, maxRecords: number): Budget {
  return { seconds: MEASURE_SECONDS, maxSteps: Math.max(1, Math.floor(maxRecords / w.batchRecords)), checkMask: w.batchRecords === 1 ? 15 : 0 };
}

/** Record caps; the time budget normally ends a measurement first. 'sync' one record at a time: fewer. */
function maxRecords(w: Workload, flush: 'async' | 'sync'): number {
  if (flush === 'sync' && w.batchRecords === 1) return 20_000;
  return w.valueBytes <= 100 ? 20_000_000 : 4_000_000;
}

// ---------------------------------------------------------------- contenders

function untimedFlushes(t: Timing): Measured {
  return { ...t, flushes: 0, flushMs: 0 };
}

function addMeasured(a: Measured, b: Measured): Measured {
  return { steps: a.steps + b.steps, seconds: a.seconds + b.seconds, flushes: a.flushes + b.flushes, flushMs: a.flushMs + b.flushMs };
}

/** Lets the log's background work (msync, segment allocation and warm-up, sealing) finish. */
async function quiesce(log: CommitLog): Promise<void> {
  await log.flush();
  await sleep(QUIET_MS);
}

/** Batched fs.writeSync to a new file. The last partial chunk (< 1 MiB) is never written. */
function writeSyncBaseline(w: Workload, file: string, log: CommitLog): Contender<Measured> & { close(): void } {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(WRITE_CHUNK_BYTES);
  let used = 0;
  let k = 0;
  const step = () => {
    const batch = w.batches[k++ % w.batches.length];
    for (let from = 0; from < batch.length;) {
      const n = Math.min(batch.length - from, WRITE_CHUNK_BYTES - used);
      chunk.set(n === batch.length ? batch : batch.subarray(from, from + n), used);
      used += n;
      from += n;
      if (used === WRITE_CHUNK_BYTES) {
        fs.writeSync(fd, chunk, 0, used);
        used = 0;
      }
    }
  };
  return {
    budget: budget(w, maxRecords(w, 'async')),
    before: () => quiesce(log),
    run: (b) => untimedFlushes(timeSync(step, b)),
    add: addMeasured,
    close: () => {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
    },
  };
}

function memcpyBaseline(w: Workload, target: Buffer): Contender<Measured> {
  let position = 0;
  let k = 0;
  const step = () => {
    const batch = w.batches[k++ % w.batches.length];
    if (position + batch.length > target.length) position = 0;
    target.set(batch, position);
    position += batch.length;
  };
  return { budget: budget(w, maxRecords(w, 'async')), run: (b) => untimedFlushes(timeSync(step, b)), add: addMeasured };
}

/** What a Node developer writes for durable appends: write, then fdatasync, each time. */
function fdatasyncBaseline(w: Workload, file: string, log: CommitLog): Contender<Measured> & { close(): void } {
  const fd = fs.openSync(file, 'w');
  let k = 0;
  const step = () => {
    fs.writeSync(fd, w.batches[k++ % w.batches.length]);
    fs.fdatasyncSync(fd);
  };
  return {
    budget: budget(w, maxRecords(w, 'sync')),
    before: () => quiesce(log),
    run: (b) => untimedFlushes(timeSync(step, b)),
    add: addMeasured,
    close: () => {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
    },
  };
}

async function countingFlushes(measure: () => Promise<Timing>): Promise<Measured> {
  const count = flushStats.count;
  const ms = flushStats.ms;
  const t = await measure();
  return { ...t, flushes: flushStats.count - count, flushMs: flushStats.ms - ms };
}

/** One appender awaiting each append. */
function appender(b: Budget, step: () => Promise<unknown>): Contender<Measured> {
  return { budget: b, run: (slice) => countingFlushes(() => timeAsync(step, slice)), add: addMeasured };
}

/** GROUP_APPENDERS appenders at once, each awaiting its own appends. */
function appenders(step: () => Promise<unknown>): Contender<Measured> {
  const b: Budget = { seconds: MEASURE_SECONDS, maxSteps: 1_000_000, checkMask: 0 };
  return { budget: b, run: (slice) => countingFlushes(() => timeConcurrent(GROUP_APPENDERS, step, slice)), add: addMeasured };
}

/** Runs a workload's contenders interleaved and records a row for each. Skipped when --only wants none of its log rows. */
async function compare(w: Workload, entries: Entry[]): Promise<void> {
  const chosen = entries.filter((e) => e.id.startsWith('baseline.') || wanted(e.id));
  if (!chosen.some((e) => !e.id.startsWith('baseline.'))) return;
  const totals = await interleave(chosen.map((e) => e.contender), ROUNDS, WARMUP_SECONDS);
  chosen.forEach((e, i) => record(e, w, totals[i]));
}

function record(e: Entry, w: Workload, t: Measured): void {
  const appends = t.steps;
  const sync = e.id.startsWith('sync.');
  const row: Row = {
    id: e.id, label: e.label, valueBytes: w.valueBytes, batchRecords: w.batchRecords, concurrency: e.concurrency,
    records: appends * w.batchRecords,
    appends,
    seconds: t.seconds,
    recordsPerSec: (appends * w.batchRecords) / t.seconds,
    appendsPerSec: appends / t.seconds,
    payloadMBps: (appends * w.payloadBytesPerBatch) / t.seconds / 1e6,
    wireMBps: (appends * w.wireBytesPerBatch) / t.seconds / 1e6,
    xWriteSync: null, xMemcpy: null, xFdatasync: null,
    flushes: sync ? t.flushes : null,
    flushMsMean: sync && t.flushes > 0 ? t.flushMs / t.flushes : null,
    appendsPerFlush: sync && t.flushes > 0 ? appends / t.flushes : null,
  };
  rows.set(e.id, row);
  process.stderr.write(`  ${e.id.padEnd(34)} ${formatNumber(row.recordsPerSec).padStart(12)} records/s\n`);
}

// ---------------------------------------------------------------- the log

async function openLog(dir: string, flush: 'async' | 'sync'): Promise<CommitLog> {
  const log = await CommitLog.open({
    dir, flush, logger, hooks, retentionCheckIntervalMs: 0,
    topicDefaults: { segmentBytes: SEGMENT_BYTES, retentionBytes: 2 * SEGMENT_BYTES },
  });
  await log.createTopic(TOPIC);
  // Roll once, so the rows append to allocated-ahead segments, not the one createTopic made.
  const batch = encodeBatch(randomValues(1024, 1024).map((value) => ({ value })));
  while (log.describeTopic(TOPIC).partitions[0].segments < 2) {
    await Promise.all(Array.from({ length: 16 }, () => log.appendBatch(TOPIC, 0, batch)));
  }
  return log;
}

async function asyncPass(dir: string, memcpyTarget: Buffer): Promise<void> {
  if (![...rowsOf('async')].some(wanted)) return;
  const log = await openLog(path.join(dir, 'async'), 'async');
  try {
    for (const w of workloads()) {
      const k = key(w);
      const b = budget(w, maxRecords(w, 'async'));
      const writeSync = writeSyncBaseline(w, path.join(dir, `writesync-${k}.dat`), log);
      const partition = log.partition(TOPIC, 0);
      let i = 0;
      const entries: Entry[] = [
        { id: `baseline.writesync.${k}`, label: 'baseline  fs.writeSync, 1 MiB writes', concurrency: 1, contender: writeSync },
        { id: `baseline.memcpy.${k}`, label: 'baseline  Buffer.set into a 64 MiB buffer', concurrency: 1, contender: memcpyBaseline(w, memcpyTarget) },
        {
          id: `async.prebuilt.${k}`, label: 'async     prebuilt  appendBatch', concurrency: 1,
          contender: appender(b, () => log.appendBatch(TOPIC, 0, w.batches[i++ % w.batches.length])),
        },
      ];
      if (w.batchRecords === 1) {
        entries.push({
          id: `async.prebuilt-partition.${k}`, label: 'async     prebuilt  partition().appendBatch', concurrency: 1,
          contender: appender(b, () => partition.appendBatch(w.batches[i++ % w.batches.length])),
        });
      }
      entries.push({
        id: `async.objects.${k}`, label: 'async     objects   append', concurrency: 1,
        contender: appender(b, () => log.append(TOPIC, 0, w.records[i++ % w.records.length])),
      });
      try {
        await compare(w, entries);
      } finally {
        writeSync.close();
      }
      await log.enforceRetention();
    }
  } finally {
    await log.close();
  }
}

async function syncPass(dir: string): Promise<void> {
  if (![...rowsOf('sync')].some(wanted)) return;
  const log = await openLog(path.join(dir, 'sync'), 'sync');
  try {
    for (const w of workloads()) {
      const k = key(w);
      const b = budget(w, maxRecords(w, 'sync'));
      const fdatasync = fdatasyncBaseline(w, path.join(dir, `fdatasync-${k}.dat`), log);
      let i = 0;
      const prebuilt = () => log.appendBatch(TOPIC, 0, w.batches[i++ % w.batches.length]);
      const objects = () => log.append(TOPIC, 0, w.records[i++ % w.records.length]);
      const entries: Entry[] = [
        { id: `baseline.fdatasync.${k}`, label: 'baseline  fs.writeSync + fdatasyncSync each', concurrency: 1, contender: fdatasync },
        { id: `sync.prebuilt.${k}`, label: 'sync      prebuilt  appendBatch, 1 appender', concurrency: 1, contender: appender(b, prebuilt) },
        { id: `sync.objects.${k}`, label: 'sync      objects   append, 1 appender', concurrency: 1, contender: appender(b, objects) },
      ];
      if (w.batchRecords === 1) {
        const n = GROUP_APPENDERS;
        entries.push(
          { id: `sync.group64.prebuilt.${k}`, label: `sync      prebuilt  appendBatch, ${n} appenders`, concurrency: n, contender: appenders(prebuilt) },
          { id: `sync.group64.objects.${k}`, label: `sync      objects   append, ${n} appenders`, concurrency: n, contender: appenders(objects) },
        );
      }
      try {
        await compare(w, entries);
      } finally {
        fdatasync.close();
      }
      await log.enforceRetention();
    }
  } finally {
    await log.close();
  }
}

/**
 * The workloads, built one at a time as the loop asks: only the current one's pools are
 * on the heap, so its garbage collections do not mark the others'. Skips those --only
 * leaves without rows.
 */
function* workloads(): Iterable<Workload> {
  for (const v of VALUE_BYTES) {
    for (const b of BATCH_RECORDS) {
      if ([...rowsOf('async', v, b), ...rowsOf('sync', v, b)].some(wanted)) yield makeWorkload(v, b);
    }
  }
}

/** The log row ids a pass can produce, for all workloads or one (for --only). */
function* rowsOf(flush: 'async' | 'sync', valueBytes?: number, batchRecords?: number): Iterable<string> {
  for (const v of valueBytes === undefined ? VALUE_BYTES : [valueBytes]) {
    for (const b of batchRecords === undefined ? BATCH_RECORDS : [batchRecords]) {
      const k = `v${v}.b${b}`;
      yield `${flush}.prebuilt.${k}`;
      yield `${flush}.objects.${k}`;
      if (b === 1) yield* flush === 'async' ? [`async.prebuilt-partition.${k}`] : [`sync.group64.prebuilt.${k}`, `sync.group64.objects.${k}`];
    }
  }
}

// ---------------------------------------------------------------- report

function fillRatios(): void {
  for (const row of rows.values()) {
    const k = `v${row.valueBytes}.b${row.batchRecords}`;
    const per = (id: string) => rows.get(id)?.recordsPerSec ?? null;
    const ws = per(`baseline.writesync.${k}`);
    const mc = per(`baseline.memcpy.${k}`);
    const fd = per(`baseline.fdatasync.${k}`);
    if (!row.id.startsWith('baseline.writesync') && ws !== null) row.xWriteSync = row.recordsPerSec / ws;
    if (!row.id.startsWith('baseline.memcpy') && mc !== null) row.xMemcpy = row.recordsPerSec / mc;
    if (row.id.startsWith('sync.') && fd !== null) row.xFdatasync = row.recordsPerSec / fd;
  }
}

function printTable(): void {
  const headers = ['variant', 'records/s', 'MB/s', 'appends/s', 'vs writeSync', 'vs memcpy', 'vs fdatasync', 'ms/flush', 'appends/flush'];
  const body: (string[] | null)[] = [];
  for (const v of VALUE_BYTES) {
    for (const b of BATCH_RECORDS) {
      const group = [...rows.values()].filter((r) => r.valueBytes === v && r.batchRecords === b);
      if (group.length === 0) continue;
      if (body.length > 0) body.push(null);
      body.push([`${v} B values x ${b} record${b === 1 ? '' : 's'} per append`, ...headers.slice(1).map(() => '')]);
      for (const r of group) {
        body.push([
          `  ${r.label}`, formatNumber(r.recordsPerSec), formatNumber(r.payloadMBps), formatNumber(r.appendsPerSec),
          formatRatio(r.xWriteSync), formatRatio(r.xMemcpy), formatRatio(r.xFdatasync), formatNumber(r.flushMsMean), formatNumber(r.appendsPerFlush),
        ]);
      }
    }
  }
  console.log(renderTable(headers, body));
}

interface TargetResult {
  description: string;
  row: string;
  field: string;
  measured: number | null;
  threshold: number;
  unit: string;
  pass: boolean;
  /** NOT_RUN when --only left its row out. */
  status: 'PASS' | 'MISS' | 'NOT_RUN';
}

function evaluateTargets(): Record<keyof typeof TARGETS, TargetResult> {
  const out = {} as Record<keyof typeof TARGETS, TargetResult>;
  for (const name of Object.keys(TARGETS) as (keyof typeof TARGETS)[]) {
    const t = TARGETS[name];
    const row = rows.get(t.row);
    const measured = row === undefined ? null : row[t.field];
    const pass = measured !== null && measured >= t.threshold;
    out[name] = {
      description: t.description, row: t.row, field: t.field, measured: measured === null ? null : round(measured),
      threshold: t.threshold, unit: t.unit, pass, status: measured === null ? 'NOT_RUN' : pass ? 'PASS' : 'MISS',
    };
  }
  return out;
}

function printTargets(targets: Record<string, TargetResult>): void {
  console.log('\nTargets');
  Object.values(targets).forEach((t, i) => {
    const value = t.measured === null ? '-' : t.unit === 'x' ? formatRatio(t.measured) : `${formatNumber(t.measured)} ${t.unit}`;
    console.log(`  (${i + 1}) ${t.status.padEnd(7)} ${value.padEnd(22)} ${t.description}`);
  });
}

function jsonRows(): Record<string, Omit<Row, 'id'>> {
  const out: Record<string, Omit<Row, 'id'>> = {};
  for (const { id, ...rest } of rows.values()) {
    const row: Record<string, unknown> = { ...rest, label: rest.label.replace(/\s+/g, ' ') };
    for (const [field, v] of Object.entries(rest)) if (typeof v === 'number' && !Number.isInteger(v)) row[field] = round(v);
    out[id] = row as Omit<Row, 'id'>;
  }
  return out;
}

async function main(): Promise<void> {
  const started = performance.now();
  const machine = machineInfo();
  const loadBefore = os.loadavg()[0];
  const { dir, cleanup } = tempRoot('commitlog-bench-append-');
  try {
    process.stderr.write(`commitlog append bench: ${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, temp dir ${dir}\n`);
    await asyncPass(dir, Buffer.alloc(MEMCPY_BUFFER_BYTES));
    await syncPass(dir);
  } finally {
    cleanup();
  }
  const loadAverage = { start: round(loadBefore, 3), end: round(os.loadavg()[0], 3) };
  const date = new Date().toISOString();
  fillRatios();
  console.log(`commitlog append: ${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.platform} ${machine.kernel}, node ${machine.node}, ${date}`);
  console.log(`load average (1 min) ${loadAverage.start} at start, ${loadAverage.end} at end; segmentBytes ${SEGMENT_BYTES / 2 ** 20} MiB`);
  console.log(`each row: ${WARMUP_SECONDS} s warm-up, then ${MEASURE_SECONDS} s or its record cap in ${ROUNDS} slices interleaved with the rest of its group; MB = 1e6 bytes of keys + values (keys null)\n`);
  printTable();
  const targets = evaluateTargets();
  printTargets(targets);
  if (warnings.length > 0) {
    console.log('\nEngine warnings during the run:');
    for (const w of warnings) console.log(`  ${w}`);
  }
  const totalSeconds = (performance.now() - started) / 1000;
  console.log(`\nfinished in ${totalSeconds.toFixed(1)} s`);
  if (json) {
    console.log(JSON.stringify({
      bench: 'append', schema: 1, date, machine, loadAverage,
      settings: {
        segmentBytes: SEGMENT_BYTES, measureSeconds: MEASURE_SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS, poolBytes: POOL_BYTES,
        writeChunkBytes: WRITE_CHUNK_BYTES, memcpyBufferBytes: MEMCPY_BUFFER_BYTES, groupAppenders: GROUP_APPENDERS,
        megabyte: '1e6 bytes of record keys + values (keys are null)',
      },
      rows: jsonRows(), targets, warnings, totalSeconds: round(totalSeconds),
    }));
  }
}

await main();

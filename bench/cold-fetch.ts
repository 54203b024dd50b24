/**
 * Question (issue 9, benchmark (a)): does a consumer catching up on data that is not
 * in the page cache slow down a light producer's acknowledgements, and how much of
 * that does the broker's prefetch (cold pages read in on the thread pool before the
 * sendfile, src/net/broker/zero-copy.ts) take away?
 *
 * Setup, once: a writer child fills topic `cold` (COLD_PARTITIONS partitions) with
 * --cold-mib MiB (default 2048) of 64 KiB batches in sealed 256 MiB segments and
 * creates topic `light`, then exits, so no process maps the pages. Then for each variant, flush
 * policy 'async' and 'sync' (--flush to run one) x prefetch on and off
 * (BrokerOptions.prefetch):
 *   1. as root, `sync; echo 1 > /proc/sys/vm/drop_caches` (every clean page of the
 *      machine leaves the page cache; not as root: the cold case is skipped, said so);
 *   2. a broker child (startBroker) opens the directory. Under 'sync' an ack waits for
 *      its msync on the thread pool (the `commitlog broker` default), so it also
 *      measures the disk's write latency under the catch-up's reads, which no change
 *      to the read path can remove; 'async' acks once the batch is in the page cache,
 *      so what it measures is the event loop;
 *   3. alone: this process produces 1 record (100 B value) per ms to `light` over raw
 *      frames (acks WRITTEN), ALONE_SECONDS after a WARMUP_SECONDS warm-up, and takes
 *      each ack's latency;
 *   4. cold catch-up: the same producer goes on while a consumer child reads all of
 *      `cold` from offset 0 over one connection per partition, 1 MiB fetches, one in
 *      flight each (what the Consumer does), until every partition is read to its end;
 *   5. warm catch-up: the same again, now from the page cache: what the catch-up costs
 *      the machine without any disk read (loopback copies, the consumer's CPU).
 * Reported per variant and phase: ack latency p50/p99/p99.9/max, the ratio catch-up /
 * alone (same broker, same run; target: cold p99 ratio <= 1.5x with prefetch), the
 * broker's event-loop delay (a 1 ms timer's lateness, perf_hooks) and major page faults
 * (each one a disk read on the event loop: `perf trace -F maj -p PID` names the file),
 * the catch-up's MB/s, and the fetches that found pages not resident and the bytes
 * prefetched (BrokerStats coldFetches, prefetchedBytes).
 *
 * Run: npx tsx bench/cold-fetch.ts [--json] [--cold-mib N]   (npm run bench:cold).
 * --json: one JSON object on the last line; --flush async|sync runs one policy.
 * Never gates CI. Takes ~2-3 minutes with both policies on a disk of ~360 MB/s; the
 * data (--cold-mib plus a little) lives in a temp directory removed at the end.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { encodeBatch } from '../src/log/batch.js';
import { CommitLog } from '../src/log/commit-log.js';
import { encodeFrame, FRAME_PREFIX_BYTES, FrameDecoder } from '../src/net/protocol/frame.js';
import { API_VERSION, decodeResponse, encodeRequest, type RequestBody } from '../src/net/protocol/messages.js';
import { startBroker } from '../src/net/broker/server.js';
import { formatNumber, formatRatio, machineInfo, renderTable, round, sleep, tempRoot } from './lib.js';

const COLD_TOPIC = 'cold';
const LIGHT_TOPIC = 'light';
const DEFAULT_COLD_MIB = 2048;
const COLD_PARTITIONS = 4;
const COLD_SEGMENT_BYTES = 256 * 1024 * 1024;
const RECORDS_PER_BATCH = 16;
const COLD_VALUE_BYTES = 4000;
const LIGHT_VALUE_BYTES = 100;
const ALONE_SECONDS = 10;
const WARMUP_SECONDS = 2;
const FETCH_MAX_BYTES = 1024 * 1024;
/** The catch-up is abandoned (reported as such) after this long. */
const CATCH_UP_LIMIT_SECONDS = 120;
const TARGET_RATIO = 1.5;

// ---- wire helpers -------------------------------------------------------------------

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function requestFrame(correlationId: number, body: RequestBody, payloadLength = 0): Buffer {
  return encodeFrame(encodeRequest({ apiVersion: API_VERSION, correlationId, clientId: 'bench-cold', body }), payloadLength, 0xffffffff);
}


// ---- children -----------------------------------------------------------------------

/** Fills the data directory, then exits (its mappings go with it). */
async function writerChild(dir: string, coldMib: number): Promise<void> {
  const log = await CommitLog.open({ dir, flush: 'os' });
  await log.createTopic(COLD_TOPIC, { partitions: COLD_PARTITIONS, segmentBytes: COLD_SEGMENT_BYTES });
  await log.createTopic(LIGHT_TOPIC, { partitions: 1, segmentBytes: 64 * 1024 * 1024 });
  const value = Buffer.alloc(COLD_VALUE_BYTES);
  for (let i = 0; i < value.length; i++) value[i] = (i * 131) & 0xff;
  const batch = encodeBatch(Array.from({ length: RECORDS_PER_BATCH }, () => ({ value })));
  // Whole segments, and one batch more: a clean open reads the active segment's data
  // (recovery of its tail), so everything to catch up on lies in sealed segments.
  const segments = Math.max(1, Math.round((coldMib * 1024 * 1024) / COLD_PARTITIONS / COLD_SEGMENT_BYTES));
  const perPartition = segments * Math.floor(COLD_SEGMENT_BYTES / batch.length) + 1;
  const ends: number[] = [];
  for (let p = 0; p < COLD_PARTITIONS; p++) {
    for (let i = 0; i < perPartition; i++) await log.appendBatch(COLD_TOPIC, p, batch);
    ends.push(log.latestOffset(COLD_TOPIC, p));
  }
  await log.close();
  process.send!({ ends, bytes: COLD_PARTITIONS * perPartition * batch.length, batchBytes: batch.length }, () => process.disconnect());
}

interface BrokerPhase {
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  majorFaults: number;
  coldFetches: number;
  prefetchedBytes: number;
  sendfileBytes: number;
}

/** Serves the directory; 'mark' starts a phase, 'phase' reports it, 'stop' closes. */
async function brokerChild(dir: string, prefetch: boolean, flush: Flush): Promise<void> {
  const log = await CommitLog.open({ dir, flush });
  const broker = await startBroker({ log, prefetch });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let mark = { faults: 0, stats: broker.stats() };
  const snapshot = () => ({ faults: process.resourceUsage().majorPageFault, stats: broker.stats() });
  process.on('message', (m: { id: number; type: 'mark' | 'phase' | 'stop' }) => {
    if (m.type === 'mark') {
      delay.reset();
      mark = snapshot();
      process.send!({ id: m.id });
    } else if (m.type === 'phase') {
      const now = snapshot();
      const phase: BrokerPhase = {
        loopDelayP99Ms: delay.percentile(99) / 1e6,
        loopDelayMaxMs: delay.max / 1e6,
        majorFaults: now.faults - mark.faults,
        coldFetches: now.stats.coldFetches - mark.stats.coldFetches,
        prefetchedBytes: now.stats.prefetchedBytes - mark.stats.prefetchedBytes,
        sendfileBytes: now.stats.sendfileBytes - mark.stats.sendfileBytes,
      };
      process.send!({ id: m.id, phase });
    } else {
      void (async () => {
        await broker.close();
        await log.close();
        process.send!({ id: m.id });
        process.disconnect();
      })();
    }
  });
  process.once('disconnect', () => process.exit(0));
  process.send!({ id: 0, port: broker.port });
}

/**
 * Reads every partition of `cold` from offset 0 to its end, one connection per
 * partition, one 1 MiB fetch in flight each; reports the bytes and seconds.
 */
async function consumerChild(port: number, ends: number[], batchBytes: number): Promise<void> {
  const started = performance.now();
  const bytes = await Promise.all(ends.map((end, partition) => readPartition(port, partition, end, batchBytes)));
  process.send!({ bytes: bytes.reduce((a, b) => a + b, 0), seconds: (performance.now() - started) / 1000 }, () => process.disconnect());
}

/**
 * One partition's catch-up over its own connection. The client stays cheap so the
 * broker is what is measured: reads land in one reused buffer and the payload is
 * skipped, never gathered; every batch of `cold` is RECORDS_PER_BATCH records of the
 * same size, so a response's payload length says where the next fetch starts.
 */
async function readPartition(port: number, partition: number, end: number, batchBytes: number): Promise<number> {
  let offset = 0;
  let bytes = 0;
  let id = 0;
  // Per frame: the 8-byte prefix, the header (decoded), then the payload (skipped).
  const prefix = Buffer.alloc(FRAME_PREFIX_BYTES);
  let prefixFilled = 0;
  let header: Buffer | null = null;
  let headerFilled = 0;
  let payloadLeft = 0;
  let payloadBytes = 0;
  let settle: (err?: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err === undefined ? resolve() : reject(err));
  });
  const onFrame = (): void => {
    const h = decodeResponse(header!);
    header = null;
    if (h.errorCode !== '') return settle(new Error(`fetch of ${partition} at ${offset} failed: ${h.errorCode} ${h.errorMessage}`));
    if (payloadBytes % batchBytes !== 0 || payloadBytes === 0) return settle(new Error(`fetch of ${partition} at ${offset}: ${payloadBytes} bytes is not whole batches of ${batchBytes}`));
    bytes += payloadBytes;
    offset += (payloadBytes / batchBytes) * RECORDS_PER_BATCH;
    if (offset >= end) settle();
    else ask();
  };
  const onRead = (n: number, chunk: Buffer): boolean => {
    for (let p = 0; p < n;) {
      if (header === null) {
        const take = Math.min(FRAME_PREFIX_BYTES - prefixFilled, n - p);
        chunk.copy(prefix, prefixFilled, p, p + take);
        prefixFilled += take;
        p += take;
        if (prefixFilled < FRAME_PREFIX_BYTES) break;
        prefixFilled = 0;
        const length = prefix.readUInt32BE(0);
        header = Buffer.alloc(prefix.readUInt32BE(4));
        headerFilled = 0;
        payloadLeft = payloadBytes = length - 4 - header.length;
        continue;
      }
      if (headerFilled < header.length) {
        const take = Math.min(header.length - headerFilled, n - p);
        chunk.copy(header, headerFilled, p, p + take);
        headerFilled += take;
        p += take;
      } else {
        const take = Math.min(payloadLeft, n - p);
        payloadLeft -= take;
        p += take;
      }
      if (headerFilled === header.length && payloadLeft === 0) onFrame();
    }
    return true;
  };
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true, onread: { buffer: Buffer.allocUnsafe(1024 * 1024), callback: onRead } });
  socket.on('error', (err) => settle(err));
  const ask = (): void => {
    socket.write(requestFrame(++id, { case: 'fetch', value: { topic: COLD_TOPIC, partition, offset, maxBytes: FETCH_MAX_BYTES, maxWaitMs: 0, minBytes: 0 } }));
  };
  ask();
  await done;
  socket.destroy();
  return bytes;
}

class Child {
  private nextId = 1;
  private readonly replies = new Map<number, (m: unknown) => void>();
  constructor(readonly process: ChildProcess) {
    process.on('message', (m: { id?: number }) => {
      if (m.id === undefined) return;
      this.replies.get(m.id)?.(m);
      this.replies.delete(m.id);
    });
  }

  static fork(args: string[]): Child {
    const child = fork(fileURLToPath(import.meta.url), args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Child(child);
  }

  /** The child's first message without an id (its result), or with id 0 (its readiness). */
  first<T>(): Promise<T> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`child ${this.process.spawnargs.slice(-3).join(' ')} exited with ${code}`));
      this.process.once('exit', onExit);
      this.process.once('message', (m: T) => {
        this.process.removeListener('exit', onExit);
        resolve(m);
      });
    });
  }

  ask<T>(type: string): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.replies.set(id, resolve as (m: unknown) => void);
      this.process.send({ id, type });
    });
  }
}

// ---- the producer and its latencies ---------------------------------------------------

interface Latency {
  acks: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

function summarise(samples: number[]): Latency {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { acks: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), p999Ms: at(0.999), maxMs: sorted[sorted.length - 1] ?? Number.NaN };
}

/**
 * One record per ms to `light` until `stop` resolves (a 1 ms timer sends the records
 * due, so a late tick catches up), each ack timed from when its request was written;
 * resolves with the ack latencies in ms.
 */
async function producePhase(port: number, stop: Promise<unknown>): Promise<number[]> {
  const socket = await connect(port);
  const decoder = new FrameDecoder();
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const batch = encodeBatch([{ value: Buffer.alloc(LIGHT_VALUE_BYTES, 7) }]);
  let id = 0;
  let failure: Error | null = null;
  socket.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (const frame of decoder) {
      const now = performance.now();
      const header = decodeResponse(frame.header);
      if (header.errorCode !== '') failure ??= new Error(`produce failed: ${header.errorCode} ${header.errorMessage}`);
      const at = sentAt.get(header.correlationId);
      if (at !== undefined) latencies.push(now - at);
      sentAt.delete(header.correlationId);
    }
  });
  let stopped = false;
  void stop.then(() => (stopped = true));
  const started = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.floor(performance.now() - started) + 1;
      while (sent < due) {
        const cid = ++id;
        socket.write(Buffer.concat([requestFrame(cid, { case: 'produce', value: { topic: LIGHT_TOPIC, partition: 0, acks: 'WRITTEN' } }, batch.length), batch]));
        sentAt.set(cid, performance.now());
        sent++;
      }
      if (stopped) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  for (const deadline = performance.now() + 10_000; sentAt.size > 0 && performance.now() < deadline;) await sleep(5);
  socket.destroy();
  if (failure !== null) throw failure;
  if (sentAt.size > 0) throw new Error(`${sentAt.size} produce requests were never answered`);
  return latencies;
}

// ---- page cache -------------------------------------------------------------------------

/** Why the cold case cannot run here, or null when it can. */
function coldUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root: emptying the page cache needs `sync; echo 1 > /proc/sys/vm/drop_caches`';
  try {
    fs.accessSync('/proc/sys/vm/drop_caches', fs.constants.W_OK);
  } catch (err) {
    return `/proc/sys/vm/drop_caches is not writable (${(err as NodeJS.ErrnoException).code ?? String(err)}; a container without CAP_SYS_ADMIN?)`;
  }
  return null;
}

function dropCaches(): void {
  // sync first: only clean pages can be dropped.
  execFileSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '1');
}

// ---- main -----------------------------------------------------------------------------

type Flush = 'sync' | 'async';

interface Phase {
  latency: Latency;
  broker: BrokerPhase;
  /** Catch-up phases: how long the consumer took, and whether it finished. */
  seconds?: number;
  mbPerSec?: number;
  completed?: boolean;
}

interface Variant {
  flush: Flush;
  prefetch: boolean;
  alone: Phase;
  /** The consumer's first read of `cold`: from disk when the page cache was emptied. */
  first: Phase;
  /** The same read again, from the page cache: what the catch-up costs without the disk. */
  warm: Phase;
  /** first / alone and warm / alone, of p99 and p99.9. */
  ratios: { firstP99: number; firstP999: number; warmP99: number; warmP999: number };
}

async function runVariant(dir: string, written: Written, flush: Flush, prefetch: boolean, cold: boolean): Promise<Variant> {
  if (cold) dropCaches();
  const broker = Child.fork(['--broker', dir, prefetch ? 'on' : 'off', flush]);
  const { port } = await broker.first<{ port: number }>();
  try {
    // Untimed: JIT, the first segment of `light`, the broker's first pool jobs.
    await producePhase(port, sleep(WARMUP_SECONDS * 1000));
    await broker.ask('mark');
    const aloneLatencies = await producePhase(port, sleep(ALONE_SECONDS * 1000));
    const alone: Phase = { latency: summarise(aloneLatencies), broker: (await broker.ask<{ phase: BrokerPhase }>('phase')).phase };
    const first = await catchUpPhase(broker, port, written);
    const warm = await catchUpPhase(broker, port, written);
    const a = alone.latency;
    return {
      flush,
      prefetch,
      alone,
      first,
      warm,
      ratios: {
        firstP99: first.latency.p99Ms / a.p99Ms,
        firstP999: first.latency.p999Ms / a.p999Ms,
        warmP99: warm.latency.p99Ms / a.p99Ms,
        warmP999: warm.latency.p999Ms / a.p999Ms,
      },
    };
  } finally {
    await broker.ask('stop');
  }
}

/** The producer goes on while a consumer child reads all of `cold` once. */
async function catchUpPhase(broker: Child, port: number, written: Written): Promise<Phase> {
  await broker.ask('mark');
  const consumer = Child.fork(['--consumer', String(port), JSON.stringify(written.ends), String(written.batchBytes)]);
  const consumed = consumer.first<{ bytes: number; seconds: number }>();
  let completed = true;
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      completed = false;
      resolve();
    }, CATCH_UP_LIMIT_SECONDS * 1000);
  });
  const latencies = await producePhase(port, Promise.race([consumed.catch(() => undefined), limit]));
  clearTimeout(timer);
  const phase = (await broker.ask<{ phase: BrokerPhase }>('phase')).phase;
  let result = { bytes: 0, seconds: CATCH_UP_LIMIT_SECONDS };
  if (completed) result = await consumed;
  else consumer.process.kill();
  return { latency: summarise(latencies), broker: phase, seconds: result.seconds, mbPerSec: result.bytes / 1e6 / result.seconds, completed };
}

interface Written {
  ends: number[];
  bytes: number;
  batchBytes: number;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const mibArg = process.argv.indexOf('--cold-mib');
  const coldMib = mibArg >= 0 ? Number(process.argv[mibArg + 1]) : DEFAULT_COLD_MIB;
  if (!Number.isSafeInteger(coldMib) || coldMib < 1) throw new Error(`--cold-mib must be a positive integer, got ${process.argv[mibArg + 1]}`);
  const flushArg = process.argv.indexOf('--flush');
  const flushes: Flush[] = flushArg < 0 ? ['async', 'sync'] : [process.argv[flushArg + 1] as Flush];
  if (flushes.some((f) => f !== 'async' && f !== 'sync')) throw new Error(`--flush must be async or sync, got ${process.argv[flushArg + 1]}`);
  const out = process.stdout;
  const info = machineInfo();
  const skipped = coldUnavailable();
  const cold = skipped === null;
  const temp = tempRoot('commitlog-bench-cold-');
  const started = performance.now();
  try {
    const dir = path.join(temp.dir, 'log');
    const writer = Child.fork(['--writer', dir, String(coldMib)]);
    const written = await writer.first<Written>();
    const loadBefore = os.loadavg()[0]!;
    out.write(`commitlog cold-fetch bench: ack latency of 1 record/ms while a consumer catches up on ${formatNumber(written.bytes / 2 ** 20)} MiB in ${COLD_PARTITIONS} partitions\n`);
    out.write(`${info.cpus} x ${info.cpuModel}, ${info.platform} ${info.kernel}, node ${info.node}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}\n`);
    if (!cold) out.write(`cold case skipped: ${skipped}; the first catch-up below reads whatever the page cache holds (warm)\n`);
    out.write('\n');

    const variants: Variant[] = [];
    for (const flush of flushes) {
      for (const prefetch of [true, false]) variants.push(await runVariant(dir, written, flush, prefetch, cold));
    }
    const loadAfter = os.loadavg()[0]!;

    const ms = (n: number): string => formatNumber(n);
    const firstName = cold ? 'cold catch-up' : 'first catch-up';
    const rows: (string[] | null)[] = [];
    for (const v of variants) {
      const name = `${v.flush}, prefetch ${v.prefetch ? 'on' : 'off'}`;
      for (const [phase, p] of [['alone', v.alone], [firstName, v.first], ['warm catch-up', v.warm]] as const) {
        const l = p.latency;
        const b = p.broker;
        const rate = p.mbPerSec === undefined ? '' : p.completed ? formatNumber(p.mbPerSec) : 'unfinished';
        rows.push([name, phase, String(l.acks), ms(l.p50Ms), ms(l.p99Ms), ms(l.p999Ms), ms(l.maxMs), ms(b.loopDelayP99Ms), ms(b.loopDelayMaxMs), String(b.majorFaults), String(b.coldFetches), formatNumber(b.prefetchedBytes / 2 ** 20), rate]);
      }
      rows.push([name, `${firstName} / alone`, '', '', formatRatio(v.ratios.firstP99), formatRatio(v.ratios.firstP999), '', '', '', '', '', '', '']);
      rows.push([name, 'warm catch-up / alone', '', '', formatRatio(v.ratios.warmP99), formatRatio(v.ratios.warmP999), '', '', '', '', '', '', '']);
      rows.push(null);
    }
    out.write(`${renderTable(['variant', 'phase', 'acks', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'loop p99 ms', 'loop max ms', 'maj faults', 'cold fetches', 'prefetched MiB', 'catch-up MB/s'], rows)}\n`);
    if (Math.max(loadBefore, loadAfter) > info.cpus) out.write(`note: the machine was busy (1-min load ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)} on ${info.cpus} CPUs; I/O waits count too): tail latencies include its noise\n`);
    const pass: Partial<Record<Flush, boolean>> = {};
    for (const v of variants) {
      if (!v.prefetch) continue;
      pass[v.flush] = v.first.completed === true && v.ratios.firstP99 <= TARGET_RATIO;
      const off = variants.find((o) => o.flush === v.flush && !o.prefetch);
      const vs = off === undefined ? '' : ` (${formatRatio(v.ratios.firstP99)} with prefetch, ${formatRatio(off.ratios.firstP99)} without)`;
      out.write(`${cold ? (pass[v.flush] ? 'PASS' : 'MISS') : 'SKIP'}  flush ${v.flush}: p99 ack latency during a cold catch-up <= ${TARGET_RATIO}x alone${vs}\n`);
    }
    out.write(`(${formatNumber((performance.now() - started) / 1000)} s in all)\n`);
    if (json) {
      const r = (l: Latency) => ({ acks: l.acks, p50Ms: round(l.p50Ms), p99Ms: round(l.p99Ms), p999Ms: round(l.p999Ms), maxMs: round(l.maxMs) });
      const b = (p: BrokerPhase) => ({ loopDelayP99Ms: round(p.loopDelayP99Ms), loopDelayMaxMs: round(p.loopDelayMaxMs), majorFaults: p.majorFaults, coldFetches: p.coldFetches, prefetchedBytes: p.prefetchedBytes, sendfileBytes: p.sendfileBytes });
      const phase = (p: Phase) => ({ latency: r(p.latency), broker: b(p.broker), seconds: p.seconds === undefined ? undefined : round(p.seconds), mbPerSec: p.mbPerSec === undefined ? undefined : round(p.mbPerSec), completed: p.completed });
      const result = {
        machine: info,
        loadAverage: { before: round(loadBefore), after: round(loadAfter) },
        threadPoolSize: process.env.UV_THREADPOOL_SIZE ?? null,
        cold,
        coldSkippedBecause: skipped,
        catchUpBytes: written.bytes,
        partitions: COLD_PARTITIONS,
        variants: variants.map((v) => ({
          flush: v.flush,
          prefetch: v.prefetch,
          alone: phase(v.alone),
          first: phase(v.first),
          warm: phase(v.warm),
          ratios: { firstP99: round(v.ratios.firstP99), firstP999: round(v.ratios.firstP999), warmP99: round(v.ratios.warmP99), warmP999: round(v.ratios.warmP999) },
        })),
        target: { text: `p99 cold catch-up/alone <= ${TARGET_RATIO}x with prefetch`, pass: cold ? pass : null },
      };
      out.write(`${JSON.stringify(result)}\n`);
    }
  } finally {
    temp.cleanup();
  }
}

const role = process.argv[2];
if (role === '--writer') await writerChild(process.argv[3]!, Number(process.argv[4]));
else if (role === '--broker') await brokerChild(process.argv[3]!, process.argv[4] === 'on', process.argv[5] as Flush);
else if (role === '--consumer') await consumerChild(Number(process.argv[3]), JSON.parse(process.argv[4]!) as number[], Number(process.argv[5]));
else await main();

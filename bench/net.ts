/**
 * Question: what do the network clients and the broker deliver on loopback, and does
 * the sendfile fetch path beat copying the same bytes through JavaScript?
 *
 * One run, the broker in a child process (so its CPU time is its own, reported over
 * IPC from process.cpuUsage()); this process is the one client process:
 *   produce   one Producer, 100-byte values, no keys, batching on (defaults: lingerMs
 *             5, batchBytes 1 MiB, acks 'written'), send() per record, at most ~32 Ki
 *             sends unanswered (the loop awaits the send 32 Ki records back).
 *   consume   one Consumer from the earliest offset over everything produced, a
 *             for-await loop per record.
 *   fetch     raw pipelined Fetch requests over the produced data (no record
 *             decoding: frames are only counted), against (a) a broker with
 *             fetchPath 'sendfile' (the default) and (b) one with fetchPath 'copy'
 *             (the same ranges read into a Buffer and socket.write()n), both serving
 *             the same CommitLog in the child. GB/s, the broker CPU seconds per GB,
 *             and (a)/(b).
 *   latency   produce-to-consume at 10,000 records/s (a 1 ms timer sends the records
 *             due, ~10 a tick, each stamped with its send time) with lingerMs 0, the
 *             consumer in this process; p50/p99/max in ms.
 * Each row shows the CPU seconds the broker and this process spent on it, and the
 * header the machine's load: on a busy machine the rates are lower bounds.
 *
 * MB = 1e6 bytes of record values; GB = 1e9 bytes of fetch payload.
 *
 * Needs `startBroker({ ..., fetchPath: 'sendfile' | 'copy' })` for (b); a broker
 * without the option serves (b) by sendfile too, which the child detects from the
 * brokers' sendfileBytes and reports as "copy path unavailable".
 *
 * Run: npm run bench:net [-- --json] [-- --records N]   (--json: one JSON object on the
 * last line). Never gates CI.
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommitLog } from '../src/log/commit-log.js';
import { Admin } from '../src/net/client/admin.js';
import { Consumer } from '../src/net/client/consumer.js';
import { encodeFrame } from '../src/net/protocol/frame.js';
import { API_VERSION, encodeRequest } from '../src/net/protocol/messages.js';
import { Producer } from '../src/net/client/producer.js';
import { startBroker, type Broker, type BrokerOptions } from '../src/net/broker/server.js';
import { formatNumber, formatRatio, machineInfo, renderTable, round, sleep, tempRoot } from './lib.js';

const TOPIC = 'bench';
const LATENCY_TOPIC = 'latency';
const VALUE_BYTES = 100;
const DEFAULT_RECORDS = 3_000_000;
const SEGMENT_BYTES = 512 * 1024 * 1024;
/** The producer loop keeps at most about this many sends unanswered (a sliding window). */
const SEND_WINDOW = 32 * 1024;
const WINDOW_STEP = 1024;
const FETCH_MAX_BYTES = 4 * 1024 * 1024;
const FETCH_DEPTH = 8;
const FETCH_SECONDS = 3;
const LATENCY_RATE = 10_000;
const LATENCY_SECONDS = 3;

const TARGETS = {
  produce: '>= 1,000,000 records/s produced (one producer process, 100 B)',
  consume: '>= 1,500,000 records/s consumed (one consumer process, 100 B)',
  sendfile: 'sendfile >= 1.0x copy throughput at <= 0.75x its broker CPU per byte',
  latency: 'produce-to-consume p99 <= 5 ms at 10,000 records/s',
};

type FetchPath = 'sendfile' | 'copy';

// ---- the broker child ------------------------------------------------------------------

interface CpuReply {
  cpuSeconds: number;
  sendfileBytes: Record<FetchPath, number>;
}

type ChildMessage = { id: number; type: 'cpu' } | { id: number; type: 'stop' };

async function brokerChild(): Promise<void> {
  const temp = tempRoot('commitlog-bench-net-');
  const log = await CommitLog.open({ dir: path.join(temp.dir, 'log'), flush: 'async', topicDefaults: { segmentBytes: SEGMENT_BYTES } });
  const open = (fetchPath: FetchPath, offsetsDir: string): Promise<Broker> => {
    // fetchPath is the option this bench asks of server.ts; see the head comment.
    const options: BrokerOptions & { fetchPath: FetchPath } = { log, dir: offsetsDir, fetchPath };
    return startBroker(options);
  };
  const brokers: Record<FetchPath, Broker> = {
    sendfile: await open('sendfile', path.join(temp.dir, 'log')),
    copy: await open('copy', path.join(temp.dir, 'offsets-copy')),
  };
  const send = (message: object): void => {
    process.send!(message);
  };
  process.on('message', (message: ChildMessage) => {
    if (message.type === 'cpu') {
      const usage = process.cpuUsage();
      const reply: CpuReply = {
        cpuSeconds: (usage.user + usage.system) / 1e6,
        sendfileBytes: { sendfile: brokers.sendfile.stats().sendfileBytes, copy: brokers.copy.stats().sendfileBytes },
      };
      send({ id: message.id, ...reply });
    } else if (message.type === 'stop') {
      void (async () => {
        await brokers.sendfile.close();
        await brokers.copy.close();
        await log.close();
        temp.cleanup();
        send({ id: message.id });
        process.disconnect();
      })();
    }
  });
  // The parent gone (killed, crashed): exit, which removes the temp directory.
  process.once('disconnect', () => process.exit(0));
  send({ id: 0, ports: { sendfile: brokers.sendfile.port, copy: brokers.copy.port } });
}

class ChildBroker {
  private nextId = 1;
  private readonly replies = new Map<number, (reply: unknown) => void>();
  private constructor(private readonly child: ChildProcess, readonly ports: Record<FetchPath, number>) {
    child.on('message', (message: { id: number }) => {
      this.replies.get(message.id)?.(message);
      this.replies.delete(message.id);
    });
  }

  static start(): Promise<ChildBroker> {
    const child = fork(fileURLToPath(import.meta.url), ['--broker-child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`broker child exited with ${code}`)));
      child.once('message', (message: { ports: Record<FetchPath, number> }) => resolve(new ChildBroker(child, message.ports)));
    });
  }

  private ask<T>(type: ChildMessage['type']): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.replies.set(id, resolve as (reply: unknown) => void);
      this.child.send({ id, type });
    });
  }

  cpu(): Promise<CpuReply> {
    return this.ask<CpuReply>('cpu');
  }

  async stop(): Promise<void> {
    this.child.removeAllListeners('exit');
    await this.ask('stop');
  }
}

// ---- measurements ------------------------------------------------------------------------

interface Phase {
  seconds: number;
  brokerCpuSeconds: number;
  clientCpuSeconds: number;
}

async function measured(child: ChildBroker, run: () => Promise<void>): Promise<Phase> {
  const before = await child.cpu();
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  const client = process.cpuUsage(clientBefore);
  const after = await child.cpu();
  return { seconds, brokerCpuSeconds: after.cpuSeconds - before.cpuSeconds, clientCpuSeconds: (client.user + client.system) / 1e6 };
}

/** Produces `records` values through one Producer, send() per record. */
async function produce(broker: string, records: number): Promise<void> {
  const producer = new Producer({ broker });
  const values = Array.from({ length: 1024 }, (_, i) => Buffer.alloc(VALUE_BYTES, i));
  // Waiting on a send WINDOW records back (not on the newest one) keeps batches full:
  // the loop never stalls on a half-full batch's linger.
  const marks: Promise<unknown>[] = [];
  for (let i = 0; i < records; i++) {
    const sent = producer.send(TOPIC, { value: values[i & 1023]! });
    if (i % WINDOW_STEP === 0) {
      marks.push(sent);
      if (marks.length > SEND_WINDOW / WINDOW_STEP) await marks.shift();
    }
  }
  await producer.close();
}

async function consume(broker: string, records: number): Promise<void> {
  const consumer = new Consumer({ broker, topic: TOPIC, from: 'earliest' });
  let n = 0;
  let bytes = 0;
  for await (const r of consumer) {
    bytes += r.value!.length;
    if (++n === records) break;
  }
  await consumer.close();
  if (bytes !== records * VALUE_BYTES) throw new Error(`consumed ${bytes} value bytes, expected ${records * VALUE_BYTES}`);
}

/**
 * Pipelined fetches over [0, endOffset) (FETCH_DEPTH in flight, FETCH_MAX_BYTES each),
 * wrapping around, for FETCH_SECONDS. Frames are counted, not decoded: the client
 * stays cheap so the broker's path is what is measured. Offsets step by an estimate
 * of the records per fetch; responses overlap a little where batches straddle it.
 */
async function rawFetch(port: number, endOffset: number, recordsPerFetch: number): Promise<{ bytes: number; seconds: number }> {
  let correlationId = 0;
  let nextOffset = 0;
  let bytes = 0;
  let frames = 0;
  let inFrame = 0; // bytes of the current frame still to skip
  const prefix = Buffer.alloc(4);
  let prefixFilled = 0;
  let stopping = false;
  let outstanding = 0;
  let deadline = Infinity;
  let finish: () => void = () => undefined;
  // Reads land in one reused 1 MiB buffer (no allocation per read): the client's cost
  // is the kernel's copy and this loop, so the broker's path dominates what is measured.
  const onRead = (n: number, chunk: Buffer): boolean => {
    let p = 0;
    while (p < n) {
      if (inFrame === 0) {
        const take = Math.min(4 - prefixFilled, n - p);
        chunk.copy(prefix, prefixFilled, p, p + take);
        prefixFilled += take;
        p += take;
        if (prefixFilled < 4) break;
        prefixFilled = 0;
        inFrame = prefix.readUInt32BE(0);
        bytes += inFrame + 4;
        continue;
      }
      const take = Math.min(inFrame, n - p);
      inFrame -= take;
      p += take;
      if (inFrame === 0) {
        frames++;
        outstanding--;
        if (!stopping && performance.now() >= deadline) stopping = true;
        if (!stopping) sendFetch();
        else if (outstanding === 0) finish();
      }
    }
    return true;
  };
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true, onread: { buffer: Buffer.allocUnsafe(1024 * 1024), callback: onRead } });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  function sendFetch(): void {
    const header = encodeRequest({
      apiVersion: API_VERSION,
      correlationId: correlationId++,
      clientId: 'bench',
      body: { case: 'fetch', value: { topic: TOPIC, partition: 0, offset: nextOffset, maxBytes: FETCH_MAX_BYTES, maxWaitMs: 0, minBytes: 0 } },
    });
    socket.write(encodeFrame(header, 0));
    outstanding++;
    nextOffset += recordsPerFetch;
    if (nextOffset >= endOffset) nextOffset = 0;
  }
  const started = performance.now();
  deadline = started + FETCH_SECONDS * 1000;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    socket.on('error', reject);
  });
  for (let i = 0; i < FETCH_DEPTH; i++) sendFetch();
  await done;
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  if (frames === 0) throw new Error('no fetch response');
  return { bytes, seconds };
}

interface LatencyResult {
  records: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

async function latency(broker: string): Promise<LatencyResult> {
  const admin = new Admin({ broker });
  await admin.createTopic(LATENCY_TOPIC, { partitions: 1 });
  await admin.close();
  const consumer = new Consumer({ broker, topic: LATENCY_TOPIC, from: 'latest', maxWaitMs: 1000 });
  await consumer.connect();
  const producer = new Producer({ broker, lingerMs: 0 });
  const total = LATENCY_RATE * LATENCY_SECONDS;
  const samples = new Float64Array(total);
  const consumed = (async () => {
    let n = 0;
    for await (const r of consumer) {
      samples[n++] = performance.timeOrigin + performance.now() - r.value!.readDoubleLE(0);
      if (n === total) break;
    }
  })();
  const intervalMs = 1000 / LATENCY_RATE;
  const started = performance.now();
  let sent = 0;
  const pending: Promise<unknown>[] = [];
  // Paced by the clock on a 1 ms timer: each tick sends the records whose time has come
  // (about 10), each stamped when it is sent. A busier loop (setImmediate) would spin a
  // core the broker needs on a small machine.
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - started) / intervalMs) + 1);
      while (sent < due) {
        const value = Buffer.alloc(VALUE_BYTES);
        value.writeDoubleLE(performance.timeOrigin + performance.now(), 0);
        pending.push(producer.send(LATENCY_TOPIC, { value }));
        sent++;
      }
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(pending);
  await consumed;
  await producer.close();
  await consumer.close();
  samples.sort();
  const at = (q: number): number => samples[Math.min(total - 1, Math.floor(q * total))]!;
  return { records: total, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: samples[total - 1]! };
}

// ---- main ----------------------------------------------------------------------------

interface FetchResult {
  gbPerSec: number;
  brokerCpuSeconds: number;
  brokerCpuSecondsPerGB: number;
  clientCpuSeconds: number;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const recordsArg = process.argv.indexOf('--records');
  const records = recordsArg >= 0 ? Number(process.argv[recordsArg + 1]) : DEFAULT_RECORDS;
  if (!Number.isSafeInteger(records) || records < 1) throw new Error(`--records must be a positive integer, got ${process.argv[recordsArg + 1]}`);
  const loadBefore = os.loadavg()[0]!;
  const child = await ChildBroker.start();
  try {
    const broker = `127.0.0.1:${child.ports.sendfile}`;
    const admin = new Admin({ broker });
    await admin.createTopic(TOPIC, { partitions: 1 });

    const produced = await measured(child, () => produce(broker, records));
    const end = (await admin.describeTopic(TOPIC)).partitions[0]!.nextOffset;
    await admin.close();
    if (end !== records) throw new Error(`the topic holds ${end} records, ${records} were produced`);
    const consumed = await measured(child, () => consume(broker, records));

    // Both paths read the same ranges: ~FETCH_MAX_BYTES of records per request.
    const recordsPerFetch = Math.max(1, Math.floor(FETCH_MAX_BYTES / (VALUE_BYTES + 13)));
    const fetched = {} as Record<FetchPath, FetchResult>;
    const sendfileBefore = await child.cpu();
    for (const fetchPath of ['sendfile', 'copy'] as const) {
      await sleep(200);
      let result = { bytes: 0, seconds: 0 };
      const phase = await measured(child, async () => {
        result = await rawFetch(child.ports[fetchPath], end, recordsPerFetch);
      });
      const gb = result.bytes / 1e9;
      fetched[fetchPath] = {
        gbPerSec: gb / result.seconds,
        brokerCpuSeconds: phase.brokerCpuSeconds,
        brokerCpuSecondsPerGB: phase.brokerCpuSeconds / gb,
        clientCpuSeconds: phase.clientCpuSeconds,
      };
    }
    const sendfileAfter = await child.cpu();
    const copyPathAvailable = sendfileAfter.sendfileBytes.copy === sendfileBefore.sendfileBytes.copy;

    let lat: LatencyResult = { records: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
    const latencyPhase = await measured(child, async () => {
      lat = await latency(broker);
    });
    const loadAfter = os.loadavg()[0]!;

    const produceRate = records / produced.seconds;
    const consumeRate = records / consumed.seconds;
    const throughputRatio = fetched.sendfile.gbPerSec / fetched.copy.gbPerSec;
    const cpuRatio = fetched.sendfile.brokerCpuSecondsPerGB / fetched.copy.brokerCpuSecondsPerGB;
    const pass = {
      produce: produceRate >= 1_000_000,
      consume: consumeRate >= 1_500_000,
      sendfile: copyPathAvailable && throughputRatio >= 1.0 && cpuRatio <= 0.75,
      latency: lat.p99Ms <= 5,
    };

    const cpu = (seconds: number): string => `${formatNumber(seconds)} s`;
    const rows: string[][] = [
      ['produce', `${formatNumber(produceRate)} records/s`, `${formatNumber((produceRate * VALUE_BYTES) / 1e6)} MB/s`, cpu(produced.brokerCpuSeconds), cpu(produced.clientCpuSeconds)],
      ['consume', `${formatNumber(consumeRate)} records/s`, `${formatNumber((consumeRate * VALUE_BYTES) / 1e6)} MB/s`, cpu(consumed.brokerCpuSeconds), cpu(consumed.clientCpuSeconds)],
      ['fetch (a) sendfile', `${formatNumber(fetched.sendfile.gbPerSec)} GB/s`, `${formatNumber(fetched.sendfile.brokerCpuSecondsPerGB)} broker cpu-s/GB`, cpu(fetched.sendfile.brokerCpuSeconds), cpu(fetched.sendfile.clientCpuSeconds)],
      ['fetch (b) copy', `${formatNumber(fetched.copy.gbPerSec)} GB/s`, `${formatNumber(fetched.copy.brokerCpuSecondsPerGB)} broker cpu-s/GB`, cpu(fetched.copy.brokerCpuSeconds), cpu(fetched.copy.clientCpuSeconds)],
      ['fetch a/b', formatRatio(throughputRatio), `${formatRatio(cpuRatio)} cpu/GB${copyPathAvailable ? '' : ' (copy path unavailable)'}`, '', ''],
      ['latency 10k/s', `p50 ${formatNumber(lat.p50Ms)} ms`, `p99 ${formatNumber(lat.p99Ms)} ms, max ${formatNumber(lat.maxMs)} ms`, cpu(latencyPhase.brokerCpuSeconds), cpu(latencyPhase.clientCpuSeconds)],
    ];
    const info = machineInfo();
    const out = process.stdout;
    out.write(`commitlog network bench: ${records.toLocaleString('en-US')} records of ${VALUE_BYTES} B, loopback, broker in a child process\n`);
    out.write(`${info.cpus} x ${info.cpuModel}, ${info.platform} ${info.kernel}, node ${info.node}; 1-min load ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}\n\n`);
    out.write(`${renderTable(['what', 'rate', 'per unit', 'broker cpu', 'client cpu'], rows)}\n\n`);
    if (!copyPathAvailable) out.write('note: the broker ignored fetchPath \'copy\' (it sent by sendfile), so (b) is sendfile too; see the head of bench/net.ts\n');
    if (Math.max(loadBefore, loadAfter) > info.cpus) out.write(`note: the machine was busy (load above ${info.cpus} CPUs): rates and tail latency are lower bounds\n`);
    for (const key of Object.keys(TARGETS) as (keyof typeof TARGETS)[]) out.write(`${pass[key] ? 'PASS' : 'MISS'}  ${TARGETS[key]}\n`);
    if (json) {
      const phase = (p: Phase, rate: number) => ({
        recordsPerSec: round(rate),
        mbPerSec: round((rate * VALUE_BYTES) / 1e6),
        brokerCpuSeconds: round(p.brokerCpuSeconds),
        clientCpuSeconds: round(p.clientCpuSeconds),
      });
      const fetchJson = (f: FetchResult) => ({
        gbPerSec: round(f.gbPerSec),
        brokerCpuSeconds: round(f.brokerCpuSeconds),
        brokerCpuSecondsPerGB: round(f.brokerCpuSecondsPerGB),
        clientCpuSeconds: round(f.clientCpuSeconds),
      });
      const result = {
        machine: info,
        loadAverage: { before: round(loadBefore), after: round(loadAfter) },
        records,
        valueBytes: VALUE_BYTES,
        produce: phase(produced, produceRate),
        consume: phase(consumed, consumeRate),
        fetch: {
          sendfile: fetchJson(fetched.sendfile),
          copy: fetchJson(fetched.copy),
          throughputRatio: round(throughputRatio),
          cpuPerByteRatio: round(cpuRatio),
          copyPathAvailable,
        },
        latency: {
          ratePerSec: LATENCY_RATE,
          records: lat.records,
          p50Ms: round(lat.p50Ms),
          p99Ms: round(lat.p99Ms),
          maxMs: round(lat.maxMs),
          brokerCpuSeconds: round(latencyPhase.brokerCpuSeconds),
          clientCpuSeconds: round(latencyPhase.clientCpuSeconds),
        },
        targets: Object.fromEntries((Object.keys(TARGETS) as (keyof typeof TARGETS)[]).map((k) => [k, { text: TARGETS[k], pass: pass[k] }])),
      };
      out.write(`${JSON.stringify(result)}\n`);
    }
  } finally {
    await child.stop();
  }
}

if (process.argv.includes('--broker-child')) await brokerChild();
else await main();

/**
 * kafkajs driver of the client matrix: `node --import tsx kafkajs.ts MODE SPEC_JSON`,
 * the same modes and JSON lines as confluent.py (produce, consume, group). consume
 * reads one partition from an offset as a member of a fresh group (kafkajs has no
 * group-less consumer) and commits nothing.
 */
import { CompressionTypes, Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';

interface SpecRecord {
  key: string | null;
  value: string | null;
  headers?: [string, string][];
  timestamp?: number;
  partition?: number;
  pause_ms?: number;
}

interface Spec {
  bootstrap: string;
  topic: string;
  records?: SpecRecord[];
  compression?: string;
  idempotent?: boolean;
  reads?: { topic: string; partition: number; offset: number; count: number }[];
  timeout_ms?: number;
  group?: string;
  session_timeout_ms?: number;
  heartbeat_interval_ms?: number;
}

const CODECS: Record<string, CompressionTypes> = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD };

function out(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function text(b: Buffer | string | null | undefined): string | null {
  if (b === null || b === undefined) return null;
  return typeof b === 'string' ? b : b.toString('utf8');
}

function recordJson(topic: string, partition: number, m: KafkaMessage): unknown {
  const headers: [string, string | null][] = [];
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    for (const one of Array.isArray(v) ? v : [v]) headers.push([k, text(one)]);
  }
  return { topic, partition, offset: Number(m.offset), timestamp: Number(m.timestamp), key: text(m.key), value: text(m.value), headers };
}

function headersObject(list: [string, string][] | undefined): Record<string, string | string[]> | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const o: Record<string, string | string[]> = {};
  for (const [k, v] of list) {
    const had = o[k];
    o[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return o;
}

function client(spec: Spec): Kafka {
  return new Kafka({ clientId: 'matrix-kafkajs', brokers: [spec.bootstrap], logLevel: logLevel.ERROR, retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 } });
}

async function produce(spec: Spec): Promise<void> {
  const producer = client(spec).producer({ idempotent: spec.idempotent ?? false, maxInFlightRequests: spec.idempotent ? 1 : undefined, allowAutoTopicCreation: true });
  await producer.connect();
  const records = spec.records ?? [];
  // One send per record when they name partitions, so each gets its own offset back.
  const delivered: unknown[] = [];
  for (const r of records) {
    if (r.pause_ms !== undefined) await new Promise((resolve) => setTimeout(resolve, r.pause_ms));
    const [meta] = await producer.send({
      topic: spec.topic,
      acks: -1,
      compression: CODECS[spec.compression ?? 'none'],
      messages: [{ key: r.key, value: r.value, headers: headersObject(r.headers), timestamp: r.timestamp === undefined ? undefined : String(r.timestamp), partition: r.partition }],
    });
    delivered.push({ partition: meta!.partition, offset: Number(meta!.baseOffset) });
    out({ acked: delivered.length - 1 });
  }
  await producer.disconnect();
  for (const d of delivered) out({ delivered: d });
  out({ done: true });
}

async function consume(spec: Spec): Promise<void> {
  const kafka = client(spec);
  const consumer = kafka.consumer({ groupId: `matrix-kafkajs-${process.pid}-${Date.now()}`, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 200 });
  await consumer.connect();
  const reads = spec.reads ?? [];
  const want = new Map(reads.map((r) => [`${r.topic}:${r.partition}`, { ...r }]));
  for (const topic of new Set(reads.map((r) => r.topic))) await consumer.subscribe({ topic, fromBeginning: true });
  const finished = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kafkajs consume: timed out, still wanted ${JSON.stringify([...want.values()])}`)), spec.timeout_ms ?? 20000);
    void consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        const w = want.get(`${topic}:${partition}`);
        if (w === undefined || w.count === 0 || Number(message.offset) < w.offset) return;
        out({ record: recordJson(topic, partition, message) });
        w.count--;
        if ([...want.values()].every((x) => x.count === 0)) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await finished;
  await consumer.disconnect();
  out({ done: true });
}

async function group(spec: Spec): Promise<void> {
  const consumer: Consumer = client(spec).consumer({ groupId: spec.group!, sessionTimeout: spec.session_timeout_ms ?? 6000, heartbeatInterval: spec.heartbeat_interval_ms ?? 500, maxWaitTimeInMs: 200, rebalanceTimeout: 10000 });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    out({ assigned: [...(e.payload.memberAssignment[spec.topic] ?? [])].sort((a, b) => a - b) });
  });
  await consumer.connect();
  await consumer.subscribe({ topic: spec.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      out({ record: recordJson(topic, partition, message) });
      await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
    },
  });
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  await consumer.disconnect();
  out({ closed: true });
}

const [mode, specText] = process.argv.slice(2);
const spec = JSON.parse(specText!) as Spec;
const run = mode === 'produce' ? produce : mode === 'consume' ? consume : group;
run(spec).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`kafkajs ${mode}: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);

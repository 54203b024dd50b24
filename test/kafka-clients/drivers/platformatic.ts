/**
 * @platformatic/kafka driver of the client matrix: `node --import tsx platformatic.ts
 * MODE SPEC_JSON`, the same modes and JSON lines as confluent.py (produce, consume,
 * group). platformatic's consumer is always a group member: consume joins a fresh group
 * and reads the partition from the offset (MANUAL mode), committing nothing.
 */
import { Consumer, Producer, type Message } from '@platformatic/kafka';

interface SpecRecord {
  key: string | null;
  value: string | null;
  headers?: [string, string][];
  timestamp?: number;
  partition?: number;
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

function out(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function text(b: Buffer | null | undefined): string | null {
  return b === null || b === undefined ? null : b.toString('utf8');
}

function recordJson(m: Message<Buffer, Buffer, Buffer, Buffer>): unknown {
  const headers: [string, string | null][] = [];
  for (const [k, v] of m.headers) headers.push([k.toString('utf8'), text(v)]);
  return { topic: m.topic, partition: m.partition, offset: Number(m.offset), timestamp: Number(m.timestamp), key: text(m.key), value: text(m.value), headers };
}

const base = (spec: Spec) => ({ clientId: 'matrix-platformatic', bootstrapBrokers: [spec.bootstrap], retries: 20, retryDelay: 200 });

async function produce(spec: Spec): Promise<void> {
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    ...base(spec),
    idempotent: spec.idempotent ?? false,
    acks: -1,
    autocreateTopics: true,
    ...(spec.compression !== undefined && spec.compression !== 'none' ? { compression: spec.compression as 'gzip' } : {}),
  });
  const delivered: unknown[] = [];
  for (const r of spec.records ?? []) {
    const headers = new Map<Buffer, Buffer>();
    for (const [k, v] of r.headers ?? []) headers.set(Buffer.from(k), Buffer.from(v));
    const result = await producer.send({
      messages: [{
        topic: spec.topic,
        ...(r.key === null ? {} : { key: Buffer.from(r.key) }),
        ...(r.value === null ? {} : { value: Buffer.from(r.value) }),
        headers,
        ...(r.timestamp === undefined ? {} : { timestamp: BigInt(r.timestamp) }),
        ...(r.partition === undefined ? {} : { partition: r.partition }),
      }],
    });
    const o = result.offsets?.[0];
    delivered.push(o === undefined ? null : { partition: o.partition, offset: Number(o.offset) });
  }
  await producer.close();
  for (const d of delivered) out({ delivered: d });
  out({ done: true });
}

async function consume(spec: Spec): Promise<void> {
  const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({ ...base(spec), groupId: `matrix-platformatic-${process.pid}-${Date.now()}`, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTime: 200 });
  const reads = spec.reads ?? [];
  const want = new Map(reads.map((r) => [`${r.topic}:${r.partition}`, { ...r }]));
  const stream = await consumer.consume({
    topics: [...new Set(reads.map((r) => r.topic))],
    mode: 'manual',
    offsets: reads.map((r) => ({ topic: r.topic, partition: r.partition, offset: BigInt(r.offset) })),
    autocommit: false,
  });
  const timer = setTimeout(() => {
    process.stderr.write(`platformatic consume: timed out, still wanted ${JSON.stringify([...want.values()])}\n`);
    process.exit(1);
  }, spec.timeout_ms ?? 20000);
  for await (const m of stream) {
    const w = want.get(`${m.topic}:${m.partition}`);
    if (w === undefined || w.count === 0 || Number(m.offset) < w.offset) continue;
    out({ record: recordJson(m) });
    w.count--;
    if ([...want.values()].every((x) => x.count === 0)) break;
  }
  clearTimeout(timer);
  await stream.close();
  await consumer.close(true);
  out({ done: true });
}

async function group(spec: Spec): Promise<void> {
  const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({ ...base(spec), groupId: spec.group!, sessionTimeout: spec.session_timeout_ms ?? 6000, heartbeatInterval: spec.heartbeat_interval_ms ?? 500, rebalanceTimeout: 10000, maxWaitTime: 200 });
  consumer.on('consumer:group:join', (p) => {
    const mine = p.assignments?.find((a) => a.topic === spec.topic)?.partitions ?? [];
    out({ assigned: [...mine].sort((a, b) => a - b) });
  });
  const stream = await consumer.consume({ topics: [spec.topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false });
  let stopping = false;
  const closed = new Promise<void>((resolve, reject) => {
    process.once('SIGTERM', () => {
      stopping = true;
      stream.close().then(() => consumer.close(true)).then(resolve, reject);
    });
  });
  for await (const m of stream) {
    if (stopping) break;
    // The stream hands out what a Fetch sent before a rebalance returns, for partitions
    // the member may no longer own (platformatic/kafka 1.x; a Kafka broker does not check
    // assignments on Fetch). An application of this client must drop those itself.
    const mine = consumer.assignments?.find((a) => a.topic === m.topic)?.partitions ?? [];
    if (!mine.includes(m.partition)) {
      out({ dropped: { partition: m.partition, offset: Number(m.offset) } });
      continue;
    }
    out({ record: recordJson(m) });
    await m.commit();
  }
  await closed;
  out({ closed: true });
}

const [mode, specText] = process.argv.slice(2);
const spec = JSON.parse(specText!) as Spec;
const run = mode === 'produce' ? produce : mode === 'consume' ? consume : group;
run(spec).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`platformatic ${mode}: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);

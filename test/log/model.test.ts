/**
 * Model-based test: a seeded PRNG drives random operations against CommitLog and an
 * in-memory model of what it must hold (records, batch sizes, segment boundaries), and
 * every read, lookup and reopen is compared with the model exactly. Replay a failure
 * with SEED=<the printed seed> npx ava test/log/model.test.ts.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { CommitLog, CommitLogError, ErrorCode, encodeBatch } from '../../src/index.js';
import type { FlushPolicy, LogRecord, ProducerRecord, RecordHeader } from '../../src/index.js';
import { CRC_POS } from '../../src/log/batch.js';
import { rng, testSeed, tmpDir } from '../helpers/tmp.js';

const OPERATIONS = Number(process.env.MODEL_OPS ?? 3000);
const TS = 1_700_000_000_000;

interface Plain {
  offset: number;
  timestamp: number;
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
}

interface ModelBatch {
  baseOffset: number;
  count: number;
  position: number;
  size: number;
}

interface ModelSegment {
  baseOffset: number;
  used: number;
  batches: ModelBatch[];
}

interface ModelPartition {
  segmentBytes: number;
  records: Plain[];
  segments: ModelSegment[];
}

const TOPICS: { name: string; partitions: number; segmentBytes: number }[] = [
  { name: 'alpha', partitions: 2, segmentBytes: 65536 },
  { name: 'beta', partitions: 3, segmentBytes: 2 * 65536 },
];

const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));

function plain(r: LogRecord): Plain {
  return { offset: r.offset, timestamp: r.timestamp, key: hex(r.key), value: hex(r.value), headers: r.headers.map((h) => [h.key, hex(h.value)]) };
}

function bytesOf(v: Buffer | string | null | undefined): string | null {
  return v == null ? null : Buffer.from(v).toString('hex');
}

class Model {
  readonly partitions = new Map<string, ModelPartition>();

  constructor() {
    for (const topic of TOPICS) {
      for (let p = 0; p < topic.partitions; p++) {
        this.partitions.set(`${topic.name}/${p}`, { segmentBytes: topic.segmentBytes, records: [], segments: [{ baseOffset: 0, used: 0, batches: [] }] });
      }
    }
  }

  get(topic: string, partition: number): ModelPartition {
    return this.partitions.get(`${topic}/${partition}`)!;
  }

  /** Applies an accepted append of `records` encoded in `size` bytes; returns its offsets. */
  append(m: ModelPartition, records: ProducerRecord[], size: number): { baseOffset: number; lastOffset: number } {
    const baseOffset = m.records.length;
    let active = m.segments[m.segments.length - 1];
    if (size > m.segmentBytes - active.used) {
      active = { baseOffset, used: 0, batches: [] };
      m.segments.push(active);
    }
    active.batches.push({ baseOffset, count: records.length, position: active.used, size });
    active.used += size;
    records.forEach((r, i) => {
      const headers: [string, string | null][] = r.headers === undefined
        ? []
        : Array.isArray(r.headers)
          ? (r.headers as RecordHeader[]).map((h) => [h.key, bytesOf(h.value)])
          : Object.entries(r.headers).map(([k, v]) => [k, bytesOf(v)]);
      m.records.push({ offset: baseOffset + i, timestamp: r.timestamp!, key: bytesOf(r.key), value: bytesOf(r.value), headers });
    });
    return { baseOffset, lastOffset: baseOffset + records.length - 1 };
  }

  /** The batch range a read from `offset` with `maxBytes` must return. */
  slice(m: ModelPartition, offset: number, maxBytes: number): { position: number; length: number; firstOffset: number; lastOffset: number } | null {
    if (offset === m.records.length) return null;
    let s = m.segments.length - 1;
    while (m.segments[s].baseOffset > offset) s--;
    const batches = m.segments[s].batches;
    let i = batches.length - 1;
    while (batches[i].baseOffset > offset) i--;
    const first = batches[i];
    let length = first.size;
    let j = i + 1;
    while (j < batches.length && length + batches[j].size <= maxBytes) length += batches[j++].size;
    const last = batches[j - 1];
    return { position: first.position, length, firstOffset: first.baseOffset, lastOffset: last.baseOffset + last.count - 1 };
  }

  read(m: ModelPartition, offset: number, maxBytes: number): Plain[] {
    const s = this.slice(m, offset, maxBytes);
    return s === null ? [] : m.records.slice(offset, s.lastOffset + 1);
  }

  offsetForTimestamp(m: ModelPartition, timestamp: number): number | null {
    const r = m.records.find((x) => x.timestamp >= timestamp);
    return r === undefined ? null : r.offset;
  }

  describe(m: ModelPartition): { logStartOffset: number; nextOffset: number; highWatermark: number; sizeBytes: number; segments: number } {
    // Every append was awaited, so under any policy the high watermark is the log end.
    return { logStartOffset: 0, nextOffset: m.records.length, highWatermark: m.records.length, sizeBytes: m.segments.reduce((a, s) => a + s.used, 0), segments: m.segments.length };
  }
}

// Whole code points (no lone surrogates): 1- to 4-byte UTF-8.
const TEXT_CHARS = Array.from('abcdefghijklmnopqrstuvwxyz0123456789-_ éß€🙂');

/** Random record generation. */
class Gen {
  constructor(readonly random: () => number) {}

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.random() * xs.length)];
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.random() * 256);
    return b;
  }

  text(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += TEXT_CHARS[Math.floor(this.random() * TEXT_CHARS.length)];
    return s;
  }

  size(): number {
    const r = this.random();
    if (r < 0.6) return this.int(0, 64);
    if (r < 0.92) return this.int(64, 1000);
    if (r < 0.99) return this.int(1000, 8000);
    return this.int(8000, 40_000);
  }

  data(): Buffer | string | null {
    const r = this.random();
    if (r < 0.08) return null;
    if (r < 0.4) return this.text(this.int(0, 40));
    return this.bytes(this.size());
  }

  headers(): ProducerRecord['headers'] {
    const r = this.random();
    if (r < 0.5) return undefined;
    const n = this.int(0, 4);
    if (r < 0.75) {
      const o: Record<string, Buffer | string | null> = {};
      for (let i = 0; i < n; i++) o[`h${i}${this.text(this.int(0, 3))}`] = this.data();
      return o;
    }
    const list: RecordHeader[] = [];
    for (let i = 0; i < n; i++) {
      const v = this.data();
      list.push({ key: this.chance(0.3) ? 'dup' : this.text(this.int(0, 6)), value: typeof v === 'string' ? Buffer.from(v) : v });
    }
    return list;
  }

  records(): ProducerRecord[] {
    const n = this.chance(0.08) ? this.int(10, 50) : this.int(1, 6);
    const out: ProducerRecord[] = [];
    for (let i = 0; i < n; i++) {
      const key = this.chance(0.2) ? null : this.chance(0.5) ? this.text(this.int(0, 12)) : this.bytes(this.int(0, 16));
      out.push({ key, value: this.data(), headers: this.headers(), timestamp: TS + this.int(0, 1_000_000) });
    }
    return out;
  }
}

function batchSize(records: ProducerRecord[]): number {
  return encodeBatch(records).length;
}

test('random appends, reads, lookups and reopens match an in-memory model exactly', async (t: ExecutionContext) => {
  const seed = testSeed();
  t.log(`seed ${seed} (replay with SEED=${seed})`);
  const gen = new Gen(rng(seed));
  const dir = tmpDir(t);
  const model = new Model();
  let policy: FlushPolicy = 'os';
  const open = () => CommitLog.open({ dir, flush: policy, flushIntervalMs: 5, warmSegments: false, retentionCheckIntervalMs: 0, maxOpenSegments: gen.int(2, 8), topicDefaults: { segmentBytes: 65536, retentionMs: -1 } });
  let log = await open();
  t.teardown(() => log.close());
  for (const topic of TOPICS) await log.createTopic(topic.name, { partitions: topic.partitions, segmentBytes: topic.segmentBytes, indexIntervalBytes: gen.int(100, 8000) });

  const counts: Record<string, number> = {};
  let failure: string | null = null;
  const expect = (ok: boolean, what: () => string) => {
    if (!ok && failure === null) failure = what();
  };
  const equal = (actual: unknown, expected: unknown, what: string) => {
    const a = JSON.stringify(actual);
    const e = JSON.stringify(expected);
    expect(a === e, () => `${what}\n  actual:   ${a.slice(0, 600)}\n  expected: ${e.slice(0, 600)}`);
  };

  const target = () => {
    const topic = gen.pick(TOPICS);
    const partition = gen.int(0, topic.partitions - 1);
    return { topic: topic.name, partition, m: model.get(topic.name, partition) };
  };

  const compareAll = (when: string) => {
    for (const topic of TOPICS) {
      for (let p = 0; p < topic.partitions; p++) {
        const m = model.get(topic.name, p);
        const got: Plain[] = [];
        let next = 0;
        for (;;) {
          const records = log.read(topic.name, p, next, { maxBytes: 300_000 });
          if (records.length === 0) break;
          for (const r of records) got.push(plain(r));
          next = records[records.length - 1].offset + 1;
        }
        equal(got, m.records, `${when}: every record of ${topic.name}/${p}`);
        equal(withoutDisk(log.describeTopic(topic.name).partitions[p]), { partition: p, ...model.describe(m) }, `${when}: describe ${topic.name}/${p}`);
      }
    }
  };

  for (let step = 0; step < OPERATIONS && failure === null; step++) {
    const r = gen.random();
    const where = `step ${step}`;
    if (r < 0.42) {
      // One append, awaited; sometimes as a batch built elsewhere with a random base offset.
      counts.append = (counts.append ?? 0) + 1;
      const { topic, partition, m } = target();
      const records = gen.records();
      const encoded = encodeBatch(records, { baseOffset: gen.int(0, 1_000_000) });
      const size = encoded.length;
      if (size > m.segmentBytes) {
        const err = await (gen.chance(0.5) ? log.append(topic, partition, records) : log.appendBatch(topic, partition, encoded)).then(() => null, (e: CommitLogError) => e);
        equal(err?.code, ErrorCode.RECORD_TOO_LARGE, `${where}: append of ${size} bytes`);
        continue;
      }
      const result = gen.chance(0.3) ? await log.appendBatch(topic, partition, encoded) : await log.append(topic, partition, records);
      equal(result, model.append(m, records, size), `${where}: append result ${topic}/${partition}`);
    } else if (r < 0.5) {
      // A burst of concurrent appends: offsets follow call order.
      counts.burst = (counts.burst ?? 0) + 1;
      const pending: Promise<unknown>[] = [];
      const expected: unknown[] = [];
      for (let i = gen.int(2, 8); i > 0; i--) {
        const { topic, partition, m } = target();
        const records = gen.records();
        const size = batchSize(records);
        if (size > m.segmentBytes) continue;
        pending.push(log.append(topic, partition, records));
        expected.push(model.append(m, records, size));
      }
      equal(await Promise.all(pending), expected, `${where}: burst results`);
    } else if (r < 0.75) {
      counts.read = (counts.read ?? 0) + 1;
      const { topic, partition, m } = target();
      const end = m.records.length;
      const offset = gen.chance(0.1) ? end : gen.int(0, end);
      const maxBytes = gen.chance(0.2) ? 1 : Math.floor(Math.exp(gen.random() * Math.log(400_000)));
      const records = log.read(topic, partition, offset, { maxBytes });
      equal(records.map(plain), model.read(m, offset, maxBytes), `${where}: read ${topic}/${partition} from ${offset} maxBytes ${maxBytes}`);
    } else if (r < 0.8) {
      counts.slice = (counts.slice ?? 0) + 1;
      const { topic, partition, m } = target();
      const offset = gen.int(0, m.records.length);
      const maxBytes = gen.int(1, 200_000);
      const s = log.readSlice(topic, partition, offset, maxBytes);
      const want = model.slice(m, offset, maxBytes);
      equal(s === null ? null : { position: s.position, length: s.length, firstOffset: s.firstOffset },
        want === null ? null : { position: want.position, length: want.length, firstOffset: want.firstOffset }, `${where}: readSlice ${topic}/${partition} from ${offset}`);
      s?.release();
    } else if (r < 0.86) {
      counts.time = (counts.time ?? 0) + 1;
      const { topic, partition, m } = target();
      const ts = gen.chance(0.05) ? TS + 2_000_000 : TS + gen.int(-1000, 1_001_000);
      equal(log.offsetForTimestamp(topic, partition, ts), model.offsetForTimestamp(m, ts), `${where}: offsetForTimestamp ${topic}/${partition} ${ts}`);
    } else if (r < 0.9) {
      counts.outOfRange = (counts.outOfRange ?? 0) + 1;
      const { topic, partition, m } = target();
      const offset = gen.chance(0.5) ? -gen.int(1, 10) : m.records.length + gen.int(1, 10);
      const err = (() => {
        try {
          log.read(topic, partition, offset);
          return null;
        } catch (e) {
          return (e as CommitLogError).code;
        }
      })();
      equal(err, ErrorCode.OFFSET_OUT_OF_RANGE, `${where}: read ${topic}/${partition} at ${offset}`);
    } else if (r < 0.93) {
      counts.corrupt = (counts.corrupt ?? 0) + 1;
      const { topic, partition } = target();
      const batch = encodeBatch(gen.records().slice(0, 3));
      batch[gen.int(CRC_POS, batch.length - 1)] ^= 1 << gen.int(0, 7);
      const err = await log.appendBatch(topic, partition, batch).then(() => null, (e: CommitLogError) => e.code);
      equal(err, ErrorCode.CORRUPT_BATCH, `${where}: corrupt appendBatch`);
    } else if (r < 0.985) {
      counts.ends = (counts.ends ?? 0) + 1;
      const { topic, partition, m } = target();
      equal([log.earliestOffset(topic, partition), log.latestOffset(topic, partition)], [0, m.records.length], `${where}: ends of ${topic}/${partition}`);
      equal(withoutDisk(log.describeTopic(topic).partitions[partition]), { partition, ...model.describe(m) }, `${where}: describe ${topic}/${partition}`);
    } else {
      counts.reopen = (counts.reopen ?? 0) + 1;
      await log.close();
      policy = gen.pick(['os', 'os', 'async', 'sync'] as const);
      log = await open();
      expect(log.recovery.clean, () => `${where}: reopen was not clean: ${JSON.stringify(log.recovery)}`);
      equal(log.listTopics(), TOPICS.map((x) => x.name).sort(), `${where}: topics after reopen`);
      compareAll(`${where}: after reopen (${policy})`);
    }
  }
  if (failure === null) {
    await log.close();
    log = await open();
    t.true(log.recovery.clean);
    compareAll('final reopen');
  }
  t.log(`operations: ${JSON.stringify(counts)}; records: ${[...model.partitions.entries()].map(([k, m]) => `${k}=${m.records.length} in ${m.segments.length} segments`).join(', ')}`);
  if (failure !== null) t.fail(`seed ${seed}: ${failure}`);
  else t.pass();
});

/** The model has no notion of allocation: diskBytes (allocation.test.ts checks it) is left out. */
function withoutDisk<T extends { diskBytes: number }>(d: T): Omit<T, 'diskBytes'> {
  const { diskBytes: _, ...rest } = d;
  return rest;
}

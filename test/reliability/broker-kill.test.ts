/**
 * Kill torture of the real broker (`bin/commitlog.js broker`, a child process). Each
 * generation starts the broker on the same directory, verifies what the previous ones
 * left, then drives produce traffic from several Producers (retries off, so a record is
 * sent once and its acknowledgement names its offset) while a group Consumer tails the
 * topic, and SIGKILLs the broker at a seeded random instant: mostly under load, now and
 * then during startup or recovery, and now and then in the middle of a clean shutdown
 * (SIGTERM, then SIGKILL a few ms later).
 *
 * After every restart, per partition:
 *   - every acknowledged record is present at its acknowledged offset, byte for byte
 *     (key, value, timestamp, headers);
 *   - offsets are dense from 0 to the high watermark;
 *   - no unacknowledged garbage is visible: every record is exactly a record some
 *     producer sent, each producer's records form a gap-free prefix of what it sent,
 *     in order (a record sent but not acknowledged may be there: its response was lost
 *     with the broker);
 *   - what earlier restarts verified is unchanged;
 *   - the consumer group resumes exactly at its committed offset, which never moves
 *     back and never points past the log.
 * The same loop runs under `async` and `os`, where it measures what a process kill
 * loses (the page cache survives it, so it must be nothing: asserted, and published).
 *
 * Seeded (SEED=<n> replays the kill schedule; timing still varies). Size: TORTURE=1 or
 * RELIABILITY_KILLS_SYNC / RELIABILITY_KILLS_OTHER.
 */
import test, { type ExecutionContext } from 'ava';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { decodeBatches } from '../../src/log/batch.js';
import { Admin } from '../../src/net/client/admin.js';
import { isConnectionError } from '../../src/net/client/client-types.js';
import { Connection } from '../../src/net/client/connection.js';
import { Consumer } from '../../src/net/client/consumer.js';
import { Producer } from '../../src/net/client/producer.js';
import { killBroker, logEvents, spawnBroker, startBroker, type BrokerProcess, type RunningBroker } from './broker-process.js';
import { isExact, keyOf, publish, randInt, recordOf, resolveSeed, rng, size, sleep, tempDir, within, type RecordId, type Rng } from './helpers.js';

const TOPIC = 't';
const PARTITIONS = 2;
const PRODUCERS = 4;
const GROUP = 'torture';
const SEGMENT_BYTES = 256 * 1024;
/** Sends each producer keeps unanswered. */
const WINDOW = 48;
const MAX_VALUE_BYTES = 1500;

type Flush = 'sync' | 'async' | 'os';

interface Ack {
  id: RecordId;
  partition: number;
  offset: number;
}

interface State {
  /** Verified contents per partition, by offset. */
  known: RecordId[][];
  /** Per partition, per stream ("gen/producer"): the next seq expected in the log (what is verified so far). */
  nextSeq: Map<string, number>[];
  /** Per stream: how many records were handed to send() (nothing beyond may appear). */
  sent: Map<string, number>;
  /** Acknowledgements of generations not verified since (checked at every restart until then). */
  acks: Ack[];
  committed: number[];
  lastTrafficGen: number;
}

interface Totals {
  kills: number;
  startupKills: number;
  shutdownKills: number;
  restarts: number;
  acked: number;
  lost: number;
  unackedPresent: number;
  consumed: number;
  consumerResumes: number;
  droppedBatches: number;
  droppedBytes: number;
  recoveryMsMax: number;
}

const streamOf = (id: RecordId): string => `${id.gen}/${id.producer}`;
const fmt = (id: RecordId | undefined): string => (id === undefined ? 'nothing' : keyOf(id));
const sameId = (a: RecordId | undefined, b: RecordId): boolean => a !== undefined && a.gen === b.gen && a.producer === b.producer && a.seq === b.seq;

/** Every record of a partition from `from` to its high watermark, through fetch requests. */
async function fetchRange(conn: Connection, partition: number, from: number): Promise<{ records: ReturnType<typeof decodeBatches>; highWatermark: number }> {
  const out: ReturnType<typeof decodeBatches> = [];
  let offset = from;
  for (let i = 0; i < 1_000_000; i++) {
    const res = await conn.request({ case: 'fetch', value: { topic: TOPIC, partition, offset, maxBytes: 1024 * 1024, maxWaitMs: 0, minBytes: 0 } });
    const body = res.header.body;
    const highWatermark = body?.case === 'fetch' ? body.value.highWatermark : -1;
    if (res.payload.length === 0) return { records: out, highWatermark };
    const records = decodeBatches(Buffer.from(res.payload), 0, res.payload.length, offset);
    if (records.length === 0) throw new Error(`fetch at ${offset} returned batches with no record at or after it`);
    out.push(...records);
    offset = records[records.length - 1]!.offset + 1;
  }
  throw new Error('fetchRange did not reach the end');
}

/** Verifies the log after a restart; returns problems (empty when everything holds). */
async function verify(port: number, s: State, totals: Totals, full: boolean): Promise<string[]> {
  const problems: string[] = [];
  const conn = await Connection.connect({ host: '127.0.0.1', port, clientId: 'verifier', requestTimeoutMs: 60_000 });
  try {
    for (let p = 0; p < PARTITIONS && problems.length < 20; p++) {
      const known = s.known[p]!;
      // Full re-read now and then (and whenever the log is small); else the new part plus samples.
      const from = full ? 0 : known.length;
      const { records, highWatermark } = await fetchRange(conn, p, from);
      if (highWatermark < known.length) problems.push(`partition ${p}: high watermark ${highWatermark} below the ${known.length} records verified before`);
      let expected = from;
      // A full re-read recomputes every producer's position from scratch.
      const seen = full ? new Map<string, number>() : new Map(s.nextSeq[p]!);
      const fresh: RecordId[] = [];
      for (const rec of records) {
        if (problems.length >= 20) break;
        if (rec.offset !== expected) {
          problems.push(`partition ${p}: record at offset ${rec.offset} where ${expected} was expected (offsets must be dense)`);
          break;
        }
        expected++;
        const id = isExact(rec, MAX_VALUE_BYTES);
        if (id === null) {
          problems.push(`partition ${p}: record ${rec.offset} is not exactly any record a producer sent (garbage or a partial record)`);
          continue;
        }
        if (id.gen > s.lastTrafficGen) problems.push(`partition ${p}: record ${rec.offset} is ${fmt(id)}, from a generation that never ran`);
        if (id.producer % PARTITIONS !== p) problems.push(`partition ${p}: record ${rec.offset} is ${fmt(id)}, sent to another partition`);
        if (rec.offset < known.length && !sameId(known[rec.offset], id)) problems.push(`partition ${p}: offset ${rec.offset} was ${fmt(known[rec.offset])}, now ${fmt(id)}`);
        const stream = streamOf(id);
        const want = seen.get(stream) ?? 0;
        if (id.seq !== want) problems.push(`partition ${p}: record ${rec.offset} is ${fmt(id)}, but producer ${stream} was at seq ${want} (gap, duplicate or reorder)`);
        seen.set(stream, id.seq + 1);
        if (id.seq >= (s.sent.get(stream) ?? 0)) problems.push(`partition ${p}: record ${rec.offset} is ${fmt(id)}, which was never sent`);
        if (rec.offset >= known.length) fresh.push(id);
      }
      if (expected !== highWatermark && problems.length < 20) problems.push(`partition ${p}: read ended at ${expected}, high watermark ${highWatermark}`);
      if (!full && known.length > 0) {
        // Spot checks of what was verified before: the first, the last and random ones.
        const sample = new Set<number>([0, known.length - 1]);
        for (let i = 0; i < 64; i++) sample.add(Math.floor(Math.random() * known.length));
        for (const offset of sample) {
          const { records: one } = await fetchRangeOne(conn, p, offset);
          const id = one === undefined ? null : isExact(one, MAX_VALUE_BYTES);
          if (one === undefined || one.offset !== offset || id === null || !sameId(known[offset], id)) {
            problems.push(`partition ${p}: offset ${offset} was ${fmt(known[offset])}, now ${one === undefined ? 'nothing' : `offset ${one.offset} ${id === null ? 'garbage' : fmt(id)}`}`);
          }
        }
      }
      if (problems.length > 0) break;
      known.push(...fresh);
      s.nextSeq[p] = seen;
    }
    // Every acknowledged record at its acknowledged offset (exact bytes were checked above).
    let lost = 0;
    for (const a of s.acks) {
      const got = s.known[a.partition]![a.offset];
      if (!sameId(got, a.id)) {
        lost++;
        if (problems.length < 20) problems.push(`acknowledged ${fmt(a.id)} at ${a.partition}:${a.offset}, found ${fmt(got)}`);
      }
    }
    totals.lost += lost;
    return problems;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function fetchRangeOne(conn: Connection, partition: number, offset: number): Promise<{ records: ReturnType<typeof decodeBatches>[number] | undefined }> {
  const res = await conn.request({ case: 'fetch', value: { topic: TOPIC, partition, offset, maxBytes: 1, maxWaitMs: 0, minBytes: 0 } });
  const records = decodeBatches(Buffer.from(res.payload), 0, res.payload.length, offset);
  return { records: records[0] };
}

/** The group's committed offsets: never back, never past the log; returns them. */
async function checkCommitted(port: number, s: State, highWatermarks: number[], problems: string[]): Promise<number[]> {
  const admin = new Admin({ broker: { host: '127.0.0.1', port }, retries: 0 });
  try {
    const g = await admin.describeGroup(GROUP, TOPIC);
    const out: number[] = [];
    for (const p of g.partitions) {
      const c = p.committedOffset ?? -1;
      if (c < s.committed[p.partition]!) problems.push(`partition ${p.partition}: committed offset went back from ${s.committed[p.partition]} to ${c}`);
      if (c > highWatermarks[p.partition]!) problems.push(`partition ${p.partition}: committed offset ${c} is past the log end ${highWatermarks[p.partition]}`);
      out[p.partition] = c;
    }
    return out;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

interface Traffic {
  acks: Ack[];
  consumed: number;
  unexpected: string[];
  stop(): Promise<void>;
}

/** Producers and a group consumer against the broker until stop(); never throws. */
async function startTraffic(port: number, gen: number, s: State, r: Rng): Promise<Traffic> {
  const acks: Ack[] = [];
  const unexpected: string[] = [];
  const expectedError = (err: unknown): boolean =>
    isConnectionError(err) || (err instanceof CommitLogError && (err.code === ErrorCode.LOG_CLOSED || err.code === ErrorCode.IO));
  let stopped = false;

  // The consumer resumes at the committed offsets, then checks everything it reads.
  const consumer = new Consumer({
    broker: { host: '127.0.0.1', port }, topic: TOPIC, group: GROUP, autoCommitIntervalMs: randInt(r, 5, 50),
    maxWaitMs: 50, retries: 0, connectTimeoutMs: 5000, clientId: `consumer-${gen}`,
  });
  let consumed = 0;
  await consumer.connect();
  for (let p = 0; p < PARTITIONS; p++) {
    const want = s.committed[p]! >= 0 ? s.committed[p]! : 0;
    if (consumer.position(p) !== want) unexpected.push(`consumer of generation ${gen} starts partition ${p} at ${consumer.position(p)}, committed offset ${s.committed[p]}`);
  }
  const consuming = (async () => {
    const next = [0, 1].map((p) => consumer.position(p));
    try {
      for await (const rec of consumer) {
        if (rec.offset !== next[rec.partition]) unexpected.push(`consumer got ${rec.partition}:${rec.offset}, expected ${next[rec.partition]}`);
        next[rec.partition] = rec.offset + 1;
        if (isExact(rec, MAX_VALUE_BYTES) === null) unexpected.push(`consumer got garbage at ${rec.partition}:${rec.offset}`);
        consumed++;
        if (stopped) break;
      }
    } catch (err) {
      if (!expectedError(err)) unexpected.push(`consumer failed: ${String(err)}`);
    }
  })();

  const producing = Array.from({ length: PRODUCERS }, async (_, producerId) => {
    const partition = producerId % PARTITIONS;
    const producer = new Producer({
      broker: { host: '127.0.0.1', port }, retries: 0, lingerMs: randInt(r, 0, 3), batchBytes: pickBatchBytes(r),
      maxInFlight: randInt(r, 1, 6), connectTimeoutMs: 5000, requestTimeoutMs: 30_000, clientId: `producer-${gen}-${producerId}`,
    });
    const stream = `${gen}/${producerId}`;
    const inflight = new Set<Promise<void>>();
    let dead = false;
    let seq = 0;
    while (!stopped && !dead) {
      while (inflight.size < WINDOW && !stopped && !dead) {
        const id = { gen, producer: producerId, seq: seq++ };
        s.sent.set(stream, seq);
        const p = producer.send(TOPIC, recordOf(id, MAX_VALUE_BYTES), { partition }).then(
          (meta) => void acks.push({ id, partition: meta.partition, offset: meta.offset }),
          (err: unknown) => {
            dead = true;
            if (!expectedError(err)) unexpected.push(`producer ${producerId}: ${String(err)}`);
          },
        );
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      if (inflight.size > 0) await Promise.race(inflight);
    }
    await Promise.allSettled([...inflight]);
    await within(producer.close().catch(() => undefined), 20_000, 'closing a producer');
  });

  return {
    acks,
    get consumed() {
      return consumed;
    },
    unexpected,
    stop: async () => {
      stopped = true;
      await within(Promise.all(producing), 30_000, 'producers to settle after the kill');
      await within(consumer.close().catch(() => undefined), 20_000, 'closing the consumer');
      await within(consuming, 20_000, 'the consumer loop to end');
    },
  };
}

function pickBatchBytes(r: Rng): number {
  return [2 * 1024, 16 * 1024, 64 * 1024][randInt(r, 0, 2)]!;
}

function recoveryFigures(b: BrokerProcess, totals: Totals): void {
  for (const e of logEvents(b, /^opened data directory/)) {
    totals.droppedBatches += Number(e.droppedBatches ?? 0);
    totals.droppedBytes += Number(e.droppedBytes ?? 0);
    totals.recoveryMsMax = Math.max(totals.recoveryMsMax, Number(e.durationMs ?? 0));
  }
}

async function torture(t: ExecutionContext, flush: Flush, generations: number): Promise<void> {
  const seed = resolveSeed();
  t.log(`seed ${seed} (replay with SEED=${seed}), ${generations} generations, flush '${flush}'`);
  const r = rng(seed);
  const dir = tempDir(t);
  const s: State = { known: Array.from({ length: PARTITIONS }, () => []), nextSeq: Array.from({ length: PARTITIONS }, () => new Map<string, number>()), sent: new Map(), acks: [], committed: Array(PARTITIONS).fill(-1), lastTrafficGen: -1 };
  const totals: Totals = { kills: 0, startupKills: 0, shutdownKills: 0, restarts: 0, acked: 0, lost: 0, unackedPresent: 0, consumed: 0, consumerResumes: 0, droppedBatches: 0, droppedBytes: 0, recoveryMsMax: 0 };
  const brokerOptions = { dir, flush, flushIntervalMs: 50 };
  const started = performance.now();

  for (let gen = 0; gen <= generations; gen++) {
    const last = gen === generations;
    const where = `seed ${seed}, flush ${flush}, generation ${gen}`;
    // Now and then, kill the broker while it starts (recovery of the previous kill runs then).
    if (gen > 0 && !last && r() < 0.12) {
      const b = spawnBroker(t, brokerOptions);
      await sleep(randInt(r, 0, 700));
      await killBroker(b);
      recoveryFigures(b, totals);
      totals.kills++;
      totals.startupKills++;
      continue;
    }
    let broker: RunningBroker;
    try {
      broker = await startBroker(t, brokerOptions, 60_000);
    } catch (err) {
      t.fail(`${where}: the broker did not start after a kill: ${String(err)}`);
      return;
    }
    totals.restarts++;
    if (gen === 0) {
      const admin = new Admin({ broker: { host: '127.0.0.1', port: broker.port } });
      await admin.createTopic(TOPIC, { partitions: PARTITIONS, segmentBytes: SEGMENT_BYTES });
      await admin.close();
    }
    // Verify what the kills left.
    const full = last || gen % 5 === 0 || s.known.reduce((n, k) => n + k.length, 0) < 200_000;
    const ackedBefore = new Set(s.acks.map((a) => `${a.partition}:${a.offset}`));
    const lengthsBefore = s.known.map((k) => k.length);
    const problems = await verify(broker.port, s, totals, full);
    if (problems.length === 0) {
      const highWatermarks = s.known.map((k) => k.length);
      s.committed = await checkCommitted(broker.port, s, highWatermarks, problems);
      // Records of the last traffic that are there but were never acknowledged.
      let fresh = 0;
      for (let p = 0; p < PARTITIONS; p++) {
        for (let o = lengthsBefore[p]!; o < s.known[p]!.length; o++) if (!ackedBefore.has(`${p}:${o}`)) fresh++;
      }
      totals.unackedPresent += fresh;
      s.acks = [];
    }
    t.deepEqual(problems, [], `${where}: after the restart`);
    if (problems.length > 0) {
      await killBroker(broker);
      return;
    }
    recoveryFigures(broker, totals);
    if (last) {
      // A clean shutdown at the end: exit 0, and the marker makes the next open clean.
      broker.child.kill('SIGTERM');
      const exit = await within(broker.exited, 30_000, 'the final clean shutdown');
      t.deepEqual(exit, { code: 0, signal: null }, broker.stderr().slice(-2000));
      break;
    }

    // Traffic, then the kill.
    s.lastTrafficGen = gen;
    const traffic = await startTraffic(broker.port, gen, s, r);
    totals.consumerResumes++;
    const duringShutdown = r() < 0.1;
    await sleep(randInt(r, 30, 900));
    if (duringShutdown) {
      broker.child.kill('SIGTERM');
      await sleep(randInt(r, 0, 40));
      totals.shutdownKills++;
    }
    await killBroker(broker);
    totals.kills++;
    await traffic.stop();
    t.deepEqual(traffic.unexpected, [], `${where}: unexpected client errors`);
    s.acks.push(...traffic.acks);
    totals.acked += traffic.acks.length;
    totals.consumed += traffic.consumed;
  }
  const records = s.known.reduce((n, k) => n + k.length, 0);
  t.is(totals.lost, 0, 'acknowledged records lost');
  t.true(records > 0);
  publish(t, {
    flush, seed, generations, kills: totals.kills, startupKills: totals.startupKills, shutdownKills: totals.shutdownKills, restarts: totals.restarts,
    acknowledged: totals.acked, lost: totals.lost, unacknowledgedPresent: totals.unackedPresent, records, consumed: totals.consumed,
    consumerResumes: totals.consumerResumes, recoveryDroppedBatches: totals.droppedBatches, recoveryDroppedBytes: totals.droppedBytes,
    recoveryMsMax: Math.round(totals.recoveryMsMax), seconds: Math.round((performance.now() - started) / 1000),
  });
}

test.serial('flush sync: every acknowledged record survives SIGKILLs of the broker at random instants; offsets dense; consumers resume', async (t) => {
  await torture(t, 'sync', size('kills_sync', 8, 120));
});

test.serial('flush async: a broker kill loses no acknowledged record (measured: the page cache survives the process)', async (t) => {
  await torture(t, 'async', size('kills_other', 4, 40));
});

test.serial('flush os: a broker kill loses no acknowledged record (measured: the page cache survives the process)', async (t) => {
  await torture(t, 'os', size('kills_other', 4, 40));
});

/**
 * Readers racing retention and topic deletion, in one process (a read of unmapped memory
 * would kill it: SIGSEGV or SIGBUS ends the test run). For a seeded while:
 *   - a writer appends to a few topics (every record's key names its topic generation
 *     and its offset, so any reader can check it exactly);
 *   - embedded readers read at random offsets around both ends (some out of range),
 *     keep the records they got (views of the mappings) and check them again later,
 *     after their segments were deleted;
 *   - tail() iterators follow each topic;
 *   - holders take byte ranges (readSlice, the zero-copy path), keep them a while,
 *     read them through the file descriptor and check every batch;
 *   - network clients long-poll fetches at the end and fetch near the start (through
 *     the broker's sendfile path);
 *   - retention runs every few milliseconds, topics are deleted and new ones created.
 * Every read either succeeds with exact records or fails with a typed error
 * (ERR_OFFSET_OUT_OF_RANGE, ERR_UNKNOWN_TOPIC, ERR_LOG_CLOSED); nothing else. Afterwards
 * the log closes cleanly and reopens with what survived, exact.
 *
 * Seeded: SEED=<n>; length: TORTURE=1 or RELIABILITY_RACE_SECONDS.
 */
import test from 'ava';
import fs from 'node:fs';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { decodeBatches, verifyBatch } from '../../src/log/batch.js';
import { CommitLog } from '../../src/log/commit-log.js';
import type { LogRecord } from '../../src/log/record.js';
import { startBroker } from '../../src/net/broker/server.js';
import { isExact, keyOf, pick, publish, randInt, recordOf, resolveSeed, rng, size, sleep, tempDir, within } from './helpers.js';
import { fetchBody, WireClient } from './wire.js';

const ALLOWED = new Set<string>([ErrorCode.OFFSET_OUT_OF_RANGE, ErrorCode.UNKNOWN_TOPIC, ErrorCode.LOG_CLOSED, ErrorCode.UNKNOWN_PARTITION]);
const MAX_VALUE_BYTES = 3000;

interface TopicState {
  name: string;
  gen: number;
  next: number;
  deleted: boolean;
}

/** The record at `offset` of topic generation `gen`: its key and value name both. */
const recordAt = (gen: number, offset: number) => recordOf({ gen, producer: 0, seq: offset }, MAX_VALUE_BYTES);

function checkRecord(rec: LogRecord, gen: number): string | null {
  const id = isExact(rec, MAX_VALUE_BYTES);
  if (id === null) return `record at ${rec.offset} is not exactly a record that was appended`;
  if (id.gen !== gen) return `record at ${rec.offset} belongs to topic generation ${id.gen}, read from generation ${gen}`;
  if (id.seq !== rec.offset) return `record ${keyOf(id)} read at offset ${rec.offset}`;
  return null;
}

test('readers, zero-copy holders, tails and long-poll fetches racing retention and topic deletion: exact records or typed errors, never a crash', async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed} (replay with SEED=${seed})`);
  const r = rng(seed);
  const dir = tempDir(t);
  const quiet = { info: () => undefined, warn: () => undefined };
  const log = await CommitLog.open({
    dir, flush: 'async', flushIntervalMs: 20, logger: quiet, retentionCheckIntervalMs: 0, maxOpenSegments: 4,
    topicDefaults: { segmentBytes: 64 * 1024, retentionBytes: 256 * 1024, indexIntervalBytes: 1024 },
  });
  const broker = await startBroker({ log, logger: quiet });
  let closed = false;
  t.teardown(async () => {
    if (!closed) {
      await broker.close();
      await log.close();
    }
  });

  const problems: string[] = [];
  const counts = { appended: 0, reads: 0, recordsRead: 0, typedErrors: 0, sliceHolds: 0, tailRecords: 0, fetches: 0, longPolls: 0, retentionSegments: 0, topicsDeleted: 0, keptViewsChecked: 0 };
  const note = (what: string): void => {
    if (problems.length < 20) problems.push(what);
  };
  const typed = (err: unknown, where: string): void => {
    if (err instanceof CommitLogError && ALLOWED.has(err.code)) counts.typedErrors++;
    else note(`${where}: ${err instanceof CommitLogError ? `${err.code} ${err.message}` : String(err)}`);
  };

  const topics: TopicState[] = [];
  let gen = 0;
  const createTopic = async (): Promise<void> => {
    const state: TopicState = { name: `race-${gen}`, gen, next: 0, deleted: false };
    gen++;
    await log.createTopic(state.name);
    topics.push(state);
  };
  for (let i = 0; i < 3; i++) await createTopic();
  const live = (): TopicState[] => topics.filter((s) => !s.deleted);
  /** Mostly a live topic, now and then one deleted already (or being deleted). */
  const anyTopic = (): TopicState => (r() < 0.8 && live().length > 0 ? pick(r, live()) : pick(r, topics));

  const runMs = size('race_seconds', 8, 120) * 1000;
  const until = Date.now() + runMs;
  const running = (): boolean => Date.now() < until && problems.length === 0;
  const kept: { rec: LogRecord; gen: number }[] = [];

  const writer = (async () => {
    while (running()) {
      for (const s of live()) {
        const n = randInt(r, 1, 4);
        const records = Array.from({ length: n }, (_, k) => recordAt(s.gen, s.next + k));
        try {
          const res = await log.append(s.name, 0, records);
          if (res.baseOffset !== s.next) note(`append to ${s.name} got offset ${res.baseOffset}, expected ${s.next}`);
          s.next += n;
          counts.appended += n;
        } catch (err) {
          if (!s.deleted) typed(err, `append to ${s.name}`);
        }
      }
      await sleep(0);
    }
  })();

  const reader = (async () => {
    while (running()) {
      const s = anyTopic();
      try {
        const lo = log.earliestOffset(s.name, 0);
        const hi = log.latestOffset(s.name, 0);
        const offset = randInt(r, Math.max(0, lo - 3), hi + 3);
        const records = log.read(s.name, 0, offset, { maxBytes: randInt(r, 1, 64 * 1024) });
        counts.reads++;
        for (const rec of records) {
          const bad = checkRecord(rec, s.gen);
          if (bad !== null) note(`read of ${s.name} at ${offset}: ${bad}`);
          counts.recordsRead++;
        }
        // Keep some views: their segments will be deleted under them.
        if (records.length > 0 && r() < 0.3) {
          kept.push({ rec: records[0]!, gen: s.gen });
          if (kept.length > 2000) kept.splice(0, 500);
        }
      } catch (err) {
        typed(err, `read of ${s.name}`);
      }
      if (r() < 0.05) {
        for (const k of kept.slice(-200)) {
          const bad = checkRecord(k.rec, k.gen);
          if (bad !== null) note(`a kept view changed: ${bad}`);
          counts.keptViewsChecked++;
        }
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();

  const holder = (async () => {
    while (running()) {
      const s = anyTopic();
      let slice;
      try {
        slice = log.readSlice(s.name, 0, log.earliestOffset(s.name, 0) + randInt(r, 0, 3), randInt(r, 1, 128 * 1024));
      } catch (err) {
        typed(err, `readSlice of ${s.name}`);
        await sleep(1);
        continue;
      }
      if (slice === null) {
        await sleep(1);
        continue;
      }
      try {
        counts.sliceHolds++;
        await sleep(randInt(r, 0, 30)); // retention and deletion run meanwhile
        const bytes = Buffer.alloc(slice.length);
        fs.readSync(slice.fd, bytes, 0, slice.length, slice.position);
        for (let p = 0; p < bytes.length;) {
          const h = verifyBatch(bytes, p, bytes.length);
          p += h.size;
        }
        for (const rec of decodeBatches(bytes, 0, bytes.length, 0)) {
          const bad = checkRecord(rec, s.gen);
          if (bad !== null) note(`held slice of ${s.name}: ${bad}`);
        }
      } catch (err) {
        note(`held slice of ${s.name}: ${String(err)}`);
      } finally {
        slice.release();
      }
    }
  })();

  const tails = Array.from({ length: 2 }, async () => {
    while (running()) {
      const s = pick(r, live().length > 0 ? live() : topics);
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), randInt(r, 50, 500));
      let expected = -1;
      try {
        for await (const rec of log.tail(s.name, 0, { from: 'earliest', signal: abort.signal })) {
          if (expected >= 0 && rec.offset !== expected) note(`tail of ${s.name}: offset ${rec.offset} after ${expected - 1}`);
          expected = rec.offset + 1;
          const bad = checkRecord(rec, s.gen);
          if (bad !== null) note(`tail of ${s.name}: ${bad}`);
          counts.tailRecords++;
          if (!running()) break;
        }
      } catch (err) {
        typed(err, `tail of ${s.name}`);
      } finally {
        clearTimeout(timer);
      }
    }
  });

  const fetchers = Array.from({ length: 3 }, async (_, k) => {
    const c = await WireClient.connect(broker.port);
    try {
      while (running()) {
        const s = anyTopic();
        let offset: number;
        let maxWaitMs = 0;
        try {
          const atEnd = k === 0 || r() < 0.3;
          offset = atEnd ? log.latestOffset(s.name, 0) : log.earliestOffset(s.name, 0) + randInt(r, 0, 2);
          if (atEnd) maxWaitMs = randInt(r, 10, 300);
        } catch {
          offset = 0;
        }
        const reply = await within(c.call(fetchBody(s.name, 0, offset, randInt(r, 1, 256 * 1024), maxWaitMs, 1)), 30_000, 'a fetch');
        counts.fetches++;
        if (maxWaitMs > 0) counts.longPolls++;
        if (reply.header.errorCode !== '') {
          if (ALLOWED.has(reply.header.errorCode)) counts.typedErrors++;
          else note(`fetch of ${s.name} at ${offset}: ${reply.header.errorCode} ${reply.header.errorMessage}`);
          continue;
        }
        try {
          for (const rec of decodeBatches(reply.payload, 0, reply.payload.length, offset)) {
            const bad = checkRecord(rec, s.gen);
            if (bad !== null) note(`fetch of ${s.name} at ${offset}: ${bad}`);
          }
        } catch (err) {
          note(`fetch of ${s.name} at ${offset} returned bytes that do not decode: ${String(err)}`);
        }
      }
    } finally {
      c.destroy();
    }
  });

  const mutator = (async () => {
    let lastDelete = Date.now();
    while (running()) {
      try {
        const res = await log.enforceRetention();
        counts.retentionSegments += res.segments;
      } catch (err) {
        typed(err, 'retention');
      }
      if (Date.now() - lastDelete > randInt(r, 100, 600)) {
        lastDelete = Date.now();
        const victim = live()[0];
        if (victim !== undefined) {
          victim.deleted = true;
          try {
            await log.deleteTopic(victim.name);
            counts.topicsDeleted++;
          } catch (err) {
            note(`deleteTopic ${victim.name}: ${String(err)}`);
          }
        }
        await createTopic();
      }
      await sleep(randInt(r, 1, 10));
    }
  })();

  await within(Promise.all([writer, reader, holder, mutator, ...tails, ...fetchers]), runMs + 60_000, 'the race to end');
  // Every kept view, its segment long gone by now, still reads as it did.
  for (const k of kept) {
    const bad = checkRecord(k.rec, k.gen);
    if (bad !== null) note(`a kept view changed: ${bad}`);
    counts.keptViewsChecked++;
  }
  t.deepEqual(problems, [], `seed ${seed}`);
  for (const key of ['reads', 'recordsRead', 'sliceHolds', 'tailRecords', 'fetches', 'longPolls', 'retentionSegments', 'topicsDeleted', 'typedErrors'] as const) {
    t.true(counts[key] > 0, `nothing of ${key} happened`);
  }

  // Close, reopen: what survived is exact and dense from its start.
  await broker.close();
  await log.close();
  closed = true;
  const again = await CommitLog.open({ dir, logger: quiet });
  t.true(again.recovery.clean);
  const left = live();
  t.deepEqual(again.listTopics(), left.map((s) => s.name).sort());
  for (const s of left) {
    let next = again.earliestOffset(s.name, 0);
    t.is(again.latestOffset(s.name, 0), s.next);
    for (let i = 0; i < 100_000 && next < s.next; i++) {
      const records = again.read(s.name, 0, next, { maxBytes: 256 * 1024 });
      if (records.length === 0) break;
      for (const rec of records) {
        if (rec.offset !== next || checkRecord(rec, s.gen) !== null) note(`after reopening, ${s.name} at ${next}`);
        next = rec.offset + 1;
      }
    }
    t.is(next, s.next, `${s.name} reads to its end after reopening`);
  }
  await again.close();
  t.deepEqual(problems, []);
  publish(t, { seed, seconds: runMs / 1000, ...counts });
});



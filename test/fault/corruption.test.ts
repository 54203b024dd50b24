/**
 * Hand-made damage to the log files of closed logs: garbage and torn tails, truncated
 * segments, flipped bytes in old segments, and the Kafka recovery test (random damage
 * past a random recovery point, many times). Each case states its exact outcome: which
 * records survive (byte for byte), what the recovery report says, what is on disk
 * afterwards, and that the log stays appendable across reopens. Damaged indexes are
 * index-damage.test.ts.
 *
 * Expected outcomes come from an independent model: the tests walk the segment files
 * themselves (helpers.ts) and decide which batches a damage leaves intact, rather than
 * asking the code under test. Seeded: SEED=<n> replays, FAULT_RECOVERY_RUNS=<n> sets
 * the number of random recovery runs (default 200).
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog } from '../../src/log/commit-log.js';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { readRecoveryPoint, type RecoveryPoint } from '../../src/index/checkpoint.js';
import type { PartitionRecoveryReport } from '../../src/log/recovery.js';
import {
  SEGMENT_BYTES, appendAndReopen, appendRandom, boundaries, checkLog, createLog, isZero, options, prepareOpen, type OpenMode,
} from './fixture.js';
import {
  TOPIC, checkpointPath, dataExtent, nextEpoch, logPath, partitionDir, randBytes, randInt, readAt, readSegments,
  resolveSeed, rng, segmentBases, simulateCrash, tempDir, writeAt, type DiskBatch, type DiskSegment, type Rng,
} from './helpers.js';

const RECOVERY_RUNS = Number(process.env.FAULT_RECOVERY_RUNS ?? 200);

interface ExpectedRecovery {
  nextOffset: number;
  fromSegment: number;
  fromPosition: number;
  droppedBytes: number;
  droppedSegments: number;
  /** Batches in the segments dropped whole (every one is intact: they follow the damage). */
  laterBatches: number;
  /** Whether non-zero bytes past the valid prefix were found (so droppedBatches >= 1). */
  torn: boolean;
  /** Segment (base) and byte range recovery must zero. */
  zeroed: { segment: number; from: number; to: number } | null;
  /** Every segment before recovery; the last droppedSegments of them are deleted. */
  segments: number[];
  /** Damage in a sealed segment with later segments: opening fails there (ERR_LOG_CORRUPT) unless in repair mode. */
  sealedCorrupt: { segment: number; position: number } | null;
}

/** A batch survives recovery when every byte it is checked by is unchanged (the leader epoch at 12..15 is checked by nothing). */
function intact(original: Buffer, now: Buffer, b: DiskBatch): boolean {
  if (b.position + b.size > now.length) return false;
  for (let q = b.position; q < b.position + b.size; q++) {
    if (q - b.position >= 12 && q - b.position < 16) continue;
    if (original[q] !== now[q]) return false;
  }
  return true;
}

/**
 * The model of recovery: from the recovery point, batches survive while intact; the
 * first damaged one ends the log; non-zero bytes from there up to the extent of data
 * are dropped (and zeroed), and later segments are deleted.
 */
function expectRecovery(original: DiskSegment[], pdir: string, point: RecoveryPoint | null): ExpectedRecovery {
  let startIdx = point === null ? -1 : original.findIndex((s) => s.base === point.segmentBaseOffset);
  const from = startIdx < 0 ? 0 : point!.position;
  if (startIdx < 0) startIdx = 0;
  const e: ExpectedRecovery = {
    nextOffset: 0, fromSegment: original[startIdx].base, fromPosition: from, droppedBytes: 0, droppedSegments: 0, laterBatches: 0, torn: false, zeroed: null,
    segments: original.map((s) => s.base), sealedCorrupt: null,
  };
  let epoch = startIdx >= 0 && point !== null ? point.epoch ?? -1 : -1;
  let last: DiskBatch | undefined;
  for (let i = 0; i < startIdx; i++) last = original[i].batches[original[i].batches.length - 1] ?? last;
  for (const b of original[startIdx].batches) if (b.position < from) last = b;
  for (let i = 0; i < original.length; i++) {
    const seg = original[i];
    if (i < startIdx) continue;
    let now = fs.readFileSync(logPath(pdir, seg.base));
    // The active segment is extended back to its full size with zeros when reopened.
    if (i === original.length - 1 && now.length < SEGMENT_BYTES) now = Buffer.concat([now, Buffer.alloc(SEGMENT_BYTES - now.length)]);
    const start = i === startIdx ? from : 0;
    let end = start;
    let cut = false;
    for (const b of seg.batches) {
      if (b.position < start) continue;
      const after = intact(seg.bytes, now, b) ? nextEpoch(now, b.position, epoch) : null;
      if (after === null) {
        cut = true;
        break;
      }
      epoch = after;
      end = b.position + b.size;
      last = b;
    }
    // A sealed segment (trimmed to its data) with later segments: damage is corruption.
    if (i < original.length - 1 && now.length < SEGMENT_BYTES && (cut || end !== now.length) && e.sealedCorrupt === null) {
      e.sealedCorrupt = { segment: seg.base, position: end };
    }
    const extent = dataExtent(now, end, now.length);
    if (extent > end) {
      e.torn = true;
      e.droppedBytes += extent - end;
      e.zeroed = { segment: seg.base, from: end, to: extent };
    }
    if (cut || extent > end) {
      for (let j = i + 1; j < original.length; j++) {
        const later = fs.readFileSync(logPath(pdir, original[j].base));
        const extent = dataExtent(later, 0, later.length);
        e.droppedSegments++;
        e.droppedBytes += extent;
        e.laterBatches += batchesIn(later, extent);
      }
      break;
    }
  }
  e.nextOffset = last === undefined ? 0 : last.baseOffset + last.records;
  return e;
}

/** Batches in data[0, extent) of an intact segment, walking their length fields. */
function batchesIn(data: Buffer, extent: number): number {
  let count = 0;
  for (let pos = 0; pos + 12 <= extent; count++) {
    const length = data.readInt32BE(pos + 8);
    if (length <= 0) break;
    pos += 12 + length;
  }
  return count;
}

/** Asserts the report against the model, field by field. */
function checkReport(t: ExecutionContext, log: CommitLog, e: ExpectedRecovery, where: string): PartitionRecoveryReport {
  const rec = log.recovery;
  const r = rec.partitions[0];
  t.false(rec.clean, where);
  t.like(r, {
    topic: TOPIC, partition: 0, clean: false, fromSegment: e.fromSegment, fromPosition: e.fromPosition,
    droppedBytes: e.droppedBytes, droppedSegments: e.droppedSegments,
  }, `${where}: recovery report`);
  // Whole dropped segments count their batches; a torn tail counts at least one more.
  if (e.torn) t.true(r.droppedBatches >= 1 + e.laterBatches, `${where}: droppedBatches ${r.droppedBatches} for a torn tail and ${e.laterBatches} later batches`);
  else t.is(r.droppedBatches, e.laterBatches, `${where}: droppedBatches`);
  if (!e.torn && e.droppedSegments === 0) t.is(r.stopReason, 'end of data', `${where}: stopReason`);
  t.is(rec.droppedBytes, r.droppedBytes);
  t.is(rec.droppedBatches, r.droppedBatches);
  t.deepEqual(segmentBases(partitionDir(log.dir)), e.segments.slice(0, e.segments.length - e.droppedSegments), `${where}: segments left on disk`);
  return r;
}


// ---------------------------------------------------------------- garbage and torn tails

const garbagePoints = [
  { name: 'the start of the active segment', pick: (segs: DiskSegment[]) => boundaries([segs[segs.length - 1]])[0] },
  { name: 'a batch inside the active segment', pick: (segs: DiskSegment[]) => { const b = boundaries([segs[segs.length - 1]]); return b[b.length >> 1]; } },
  { name: 'an older segment', pick: (segs: DiskSegment[]) => boundaries([segs[0]])[2] },
  { name: 'nowhere (checkpoint deleted)', pick: () => null },
];

for (const where of garbagePoints) {
  test(`garbage past the last batch is dropped exactly, zeroed on disk, and appends continue (recovery from ${where.name})`, async (t) => {
    const seed = resolveSeed();
    t.log(`seed ${seed}`);
    const r = rng(seed);
    const dir = tempDir(t);
    const model = await createLog(dir, r, 150, 1500, (s) => s.length >= 3 && s[s.length - 1].dataEnd + 500 <= SEGMENT_BYTES);
    const pdir = partitionDir(dir);
    const segs = readSegments(pdir);
    const active = segs[segs.length - 1];
    const garbage = randBytes(r, 500);
    garbage[16] = 0x7f; // not magic 2: the dropped run counts as exactly one unparseable batch
    garbage[garbage.length - 1] |= 1;
    writeAt(logPath(pdir, active.base), active.dataEnd, garbage);
    const point = where.pick(segs);
    simulateCrash(dir, point);

    const log = await CommitLog.open(options(dir));
    const report = log.recovery.partitions[0];
    t.like(report, {
      clean: false, fromSegment: point?.segmentBaseOffset ?? 0, fromPosition: point?.position ?? 0,
      droppedBytes: garbage.length, droppedBatches: 1, droppedSegments: 0,
    });
    t.not(report.stopReason, 'end of data');
    t.like(log.recovery, { clean: false, droppedBytes: garbage.length, droppedBatches: 1 });
    checkLog(t, log, model, 'after recovery');
    t.true(isZero(readAt(logPath(pdir, active.base), active.dataEnd, garbage.length)), 'the garbage is zeroed on disk');
    t.is(fs.statSync(logPath(pdir, active.base)).size, SEGMENT_BYTES);
    await appendAndReopen(t, log, model, r, 'after garbage');
  });
}

test('garbage after a gap of zeros is dropped up to its last non-zero byte', async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed}`);
  const r = rng(seed);
  const dir = tempDir(t);
  const model = await createLog(dir, r, 20, 500); // at most 40 KB: one segment with room to spare
  const pdir = partitionDir(dir);
  const [seg] = readSegments(pdir);
  const garbage = Buffer.concat([randBytes(r, 300), Buffer.alloc(40)]);
  garbage[299] = 0x55;
  const gap = 100;
  writeAt(logPath(pdir, seg.base), seg.dataEnd + gap, garbage);
  simulateCrash(dir, boundaries([seg])[3]);
  const log = await CommitLog.open(options(dir));
  t.like(log.recovery.partitions[0], { clean: false, droppedBytes: gap + 300, droppedBatches: 1, droppedSegments: 0 });
  checkLog(t, log, model, 'after recovery');
  t.true(isZero(readAt(logPath(pdir, seg.base), seg.dataEnd, gap + garbage.length)));
  await appendAndReopen(t, log, model, r, 'after gap and garbage');
});

test('a torn last batch (its second half never copied) is dropped with an exact report; the prefix is intact', async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed}`);
  const r = rng(seed);
  const dir = tempDir(t);
  const model = await createLog(dir, r, 60, 3000);
  const pdir = partitionDir(dir);
  const segs = readSegments(pdir);
  const active = segs[segs.length - 1];
  const torn = active.batches[active.batches.length - 1];
  // At least the header and the first record's length byte (never zero) survive the tear,
  // also for a batch so small that its first half is only header.
  const half = Math.max(Math.floor(torn.size / 2), 62);
  writeAt(logPath(pdir, active.base), torn.position + half, Buffer.alloc(torn.size - half));
  const point = boundaries([active])[0];
  simulateCrash(dir, point);
  const now = fs.readFileSync(logPath(pdir, active.base));
  const extent = dataExtent(now, torn.position, now.length);
  t.true(extent > torn.position + 61, 'the header of the torn batch is still there');

  const log = await CommitLog.open(options(dir));
  t.like(log.recovery.partitions[0], {
    clean: false, fromSegment: active.base, fromPosition: 0, scannedBytes: torn.position,
    droppedBatches: 1, droppedBytes: extent - torn.position, droppedSegments: 0, rebuiltIndexes: 0, stopReason: 'CRC mismatch',
  });
  model.length = torn.baseOffset;
  checkLog(t, log, model, 'after dropping the torn batch');
  t.true(isZero(readAt(logPath(pdir, active.base), torn.position, torn.size)));
  await appendAndReopen(t, log, model, r, 'after a torn batch');
});

test('a batch torn at any byte is dropped (or never was, when only zeros were lost), never half-read', async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed}`);
  const r = rng(seed);
  const dir = tempDir(t);
  const model = await createLog(dir, r, 8, 800);
  const pdir = partitionDir(dir);
  const [seg] = readSegments(pdir);
  const torn = seg.batches[seg.batches.length - 1];
  const file = logPath(pdir, seg.base);
  const pristine = fs.readFileSync(file);
  const checkpoint = fs.readFileSync(checkpointPath(dir));
  const cuts = [1, 7, 8, 11, 12, 15, 16, 17, 20, 21, 40, 61, 62, Math.floor(torn.size / 2), torn.size - 2, torn.size - 1];
  for (const cut of cuts) {
    fs.writeFileSync(file, pristine);
    fs.writeFileSync(checkpointPath(dir), checkpoint);
    writeAt(file, torn.position + cut, Buffer.alloc(torn.size - cut));
    simulateCrash(dir, { segmentBaseOffset: seg.base, position: seg.batches[2].position, nextOffset: seg.batches[2].baseOffset });
    const e = expectRecovery([seg], pdir, { segmentBaseOffset: seg.base, position: seg.batches[2].position, nextOffset: seg.batches[2].baseOffset });
    const log = await CommitLog.open(options(dir));
    const report = checkReport(t, log, e, `cut at byte ${cut} of ${torn.size}`);
    if (cut >= 17 && e.torn) t.is(report.stopReason, 'CRC mismatch', `cut at ${cut}`);
    else if (cut >= 12 && e.torn) t.is(report.stopReason, 'bad magic', `cut at ${cut}`);
    checkLog(t, log, model.slice(0, e.nextOffset), `cut at byte ${cut}`);
    await log.close();
  }
});

// ---------------------------------------------------------------- truncated segment files

test('a truncated active segment loses exactly the cut batches and is extended to full size again', async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed}`);
  const r = rng(seed);
  const dir = tempDir(t);
  const model = await createLog(dir, r, 120, 1500, (s) => s[s.length - 1].batches.length >= 6);
  const pdir = partitionDir(dir);
  const segs = readSegments(pdir);
  const active = segs[segs.length - 1];
  const victim = active.batches[active.batches.length - 3];
  const cutAt = victim.position + Math.floor(victim.size / 3);
  fs.truncateSync(logPath(pdir, active.base), cutAt);
  const point = boundaries([active])[1];
  simulateCrash(dir, point);
  const e = expectRecovery(segs, pdir, point);
  t.is(e.nextOffset, victim.baseOffset);

  const log = await CommitLog.open(options(dir));
  const report = checkReport(t, log, e, 'truncated active segment');
  // The file is extended with zeros before the scan, so the cut batch fails its CRC.
  t.like(report, { droppedBatches: 1, stopReason: 'CRC mismatch' });
  t.is(fs.statSync(logPath(pdir, active.base)).size, SEGMENT_BYTES, 'the active segment is full size again');
  model.length = victim.baseOffset;
  checkLog(t, log, model, 'after truncation');
  await appendAndReopen(t, log, model, r, 'after truncation');
});

for (const point of ['after the sealed segment', 'lost (no checkpoint)'] as const) {
  test(`a truncated sealed segment with later segments is ERR_LOG_CORRUPT naming file and position, and nothing is deleted (recovery point ${point})`, async (t) => {
    const seed = resolveSeed();
    t.log(`seed ${seed}`);
    const r = rng(seed);
    const dir = tempDir(t);
    await createLog(dir, r, 200, 1500, (s) => s.length >= 4);
    const pdir = partitionDir(dir);
    const segs = readSegments(pdir);
    const victimSeg = segs[1];
    const victim = victimSeg.batches[Math.floor(victimSeg.batches.length / 2)];
    fs.truncateSync(logPath(pdir, victimSeg.base), victim.position + 30);
    simulateCrash(dir, point === 'lost (no checkpoint)' ? null : boundaries([victimSeg])[1]);
    const before = fs.readdirSync(pdir).sort().map((name) => [name, fs.statSync(path.join(pdir, name)).size]);
    const err = await t.throwsAsync(CommitLog.open(options(dir)), { instanceOf: CommitLogError, code: ErrorCode.LOG_CORRUPT });
    t.is(err?.path, logPath(pdir, victimSeg.base));
    t.is(err?.position, victim.position);
    t.regex(err?.message ?? '', /sealed segment with later segments; nothing was deleted/);
    // Every file is still there, at its size: one bad sector never deletes the rest of the log.
    t.deepEqual(fs.readdirSync(pdir).sort().map((name) => [name, fs.statSync(path.join(pdir, name)).size]), before);
  });
}

test('repair mode cuts the log at a truncated sealed segment and deletes the later segments', async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed}`);
  const r = rng(seed);
  const dir = tempDir(t);
  const model = await createLog(dir, r, 200, 1500, (s) => s.length >= 4);
  const pdir = partitionDir(dir);
  const segs = readSegments(pdir);
  const victimSeg = segs[1];
  const victim = victimSeg.batches[Math.floor(victimSeg.batches.length / 2)];
  fs.truncateSync(logPath(pdir, victimSeg.base), victim.position + 30);
  const point = boundaries([victimSeg])[1];
  simulateCrash(dir, point);
  const e = expectRecovery(segs, pdir, point);
  t.is(e.droppedSegments, segs.length - 2);

  const log = await CommitLog.open({ ...options(dir), repair: true });
  checkReport(t, log, e, 'truncated sealed segment');
  t.is(fs.statSync(logPath(pdir, victimSeg.base)).size, SEGMENT_BYTES, 'the truncated segment became the active one, at full size');
  model.length = victim.baseOffset;
  checkLog(t, log, model, 'after truncation');
  await appendAndReopen(t, log, model, r, 'after truncating a sealed segment');
});

test('a segment truncated below the recovery point is ERR_LOG_CORRUPT naming the file, and nothing is truncated', async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed}`);
  const r = rng(seed);
  const dir = tempDir(t);
  await createLog(dir, r, 20, 500);
  const pdir = partitionDir(dir);
  const segs = readSegments(pdir);
  t.is(segs.length, 1);
  const active = segs[0];
  const point = boundaries([active]).at(-2)!; // the start of the last batch
  fs.truncateSync(logPath(pdir, active.base), point.position - 10);
  simulateCrash(dir, point);
  const err = await t.throwsAsync(CommitLog.open(options(dir)), { instanceOf: CommitLogError, code: ErrorCode.LOG_CORRUPT });
  t.is(err?.path, logPath(pdir, active.base));
  t.is(fs.statSync(logPath(pdir, active.base)).size, point.position - 10);
  // The failed open released the lock: a second attempt fails the same way, not with ERR_LOCKED.
  await t.throwsAsync(CommitLog.open(options(dir)), { code: ErrorCode.LOG_CORRUPT });
});

// ---------------------------------------------------------------- damage before the recovery point

const flipRegions = [
  { name: 'the records', at: (b: DiskBatch, r: Rng) => randInt(r, 80, b.size - 2) },
  { name: 'the record count', at: () => 60 },
  { name: 'the timestamps', at: () => 34 },
  { name: 'the attributes', at: () => 22 },
  { name: 'the CRC', at: () => 19 },
  { name: 'the magic byte', at: () => 16 },
  { name: 'the batch length', at: () => 10 },
  { name: 'the base offset', at: () => 7 },
];

for (const region of flipRegions) {
  for (const mode of ['clean', 'unclean at the end'] as OpenMode[]) {
    test(`a flipped byte in ${region.name} of an old sealed segment reads as ERR_LOG_CORRUPT naming the file, never as wrong data (open: ${mode})`, async (t) => {
      const seed = resolveSeed();
      t.log(`seed ${seed}`);
      const r = rng(seed);
      const dir = tempDir(t);
      const model = await createLog(dir, r, 130, 1500, (s) => s.length >= 3);
      const pdir = partitionDir(dir);
      const segs = readSegments(pdir);
      const seg = segs[0];
      // Neither the first nor the last batch of the segment, and big enough to have records past byte 80.
      const candidates = seg.batches.slice(1, -1).filter((b) => b.size >= 150);
      const victim = candidates[randInt(r, 0, candidates.length - 1)];
      const pos = victim.position + region.at(victim, r);
      const file = logPath(pdir, seg.base);
      writeAt(file, pos, Buffer.from([readAt(file, pos, 1)[0] ^ (1 << randInt(r, 0, 7))]));
      prepareOpen(dir, segs, mode);

      const log = await CommitLog.open(options(dir));
      t.like(log.recovery.partitions[0], { droppedBytes: 0, droppedBatches: 0, droppedSegments: 0 });
      // Every offset of the damaged batch: an error naming the file, never records.
      for (let o = victim.baseOffset; o < victim.baseOffset + victim.records; o++) {
        const err = t.throws(() => log.read(TOPIC, 0, o, { maxBytes: 1 }), { instanceOf: CommitLogError, code: ErrorCode.LOG_CORRUPT }, `read at ${o}`);
        t.is(err?.path, file);
      }
      // Every other batch reads exactly.
      const problems: string[] = [];
      for (const s of segs) {
        for (const b of s.batches) {
          if (b === victim) continue;
          const got = log.read(TOPIC, 0, b.baseOffset, { maxBytes: 1 });
          const want = model.slice(b.baseOffset, b.baseOffset + b.records);
          if (got.length !== want.length || got.some((g, i) => g.offset !== b.baseOffset + i || !g.value?.equals(want[i].value) || g.key?.toString() !== want[i].key)) {
            problems.push(`batch at ${b.baseOffset} does not read back exactly`);
          }
        }
      }
      t.deepEqual(problems, []);
      // A read spanning the damaged batch either stops with the error or returns only exact records.
      try {
        const got = log.read(TOPIC, 0, 0, { maxBytes: 1 << 20 });
        t.true(got.every((g) => g.offset < victim.baseOffset && g.value!.equals(model[g.offset].value)), 'a spanning read returned damaged data');
      } catch (err) {
        t.like(err, { code: ErrorCode.LOG_CORRUPT, path: file });
      }
      // Appends are unaffected.
      const next = model.length;
      await appendRandom(log, model, r, 2);
      t.is(log.read(TOPIC, 0, next)[0].offset, next);
      await log.close();
    });
  }
}

// ---------------------------------------------------------------- the Kafka recovery test

type Damage = 'garbage' | 'zeros' | 'truncate';

/** Applies one random damage past the recovery point; returns a description. */
function damageTail(r: Rng, pdir: string, segs: DiskSegment[], point: RecoveryPoint | null): string {
  const found = point === null ? -1 : segs.findIndex((s) => s.base === point.segmentBaseOffset);
  const startIdx = found < 0 ? 0 : found;
  const from = found < 0 ? 0 : point!.position;
  const active = segs[segs.length - 1];
  let kind: Damage = r() < 0.5 ? 'garbage' : r() < 0.8 ? 'zeros' : 'truncate';
  const room = SEGMENT_BYTES - active.dataEnd;
  if (kind === 'garbage' && room < 2) kind = 'zeros';
  if (kind === 'garbage') {
    const at = active.dataEnd + randInt(r, 0, Math.min(2000, room - 2));
    const len = randInt(r, 1, Math.min(1000, SEGMENT_BYTES - at));
    writeAt(logPath(pdir, active.base), at, randBytes(r, len));
    return `garbage of ${len} bytes at ${active.base}:${at} (data ends at ${active.dataEnd})`;
  }
  // A segment at or after the recovery point, and a position in it at or after the point.
  const i = randInt(r, startIdx, segs.length - 1);
  const seg = segs[i];
  const lo = i === startIdx ? from : 0;
  const hi = Math.max(lo, seg.dataEnd + (i === segs.length - 1 ? 100 : 0));
  const at = randInt(r, lo, hi);
  const file = logPath(pdir, seg.base);
  if (kind === 'truncate') {
    const size = fs.statSync(file).size;
    if (at >= size) return 'nothing (truncation point past the end)';
    fs.truncateSync(file, at);
    return `truncated ${seg.base} to ${at} bytes (data ends at ${seg.dataEnd})`;
  }
  const size = fs.statSync(file).size;
  const len = Math.min(randInt(r, 1, 3000), size - at);
  if (len <= 0) return 'nothing (zero range past the end)';
  writeAt(file, at, Buffer.alloc(len));
  return `zeroed ${seg.base}:[${at}, ${at + len}) (data ends at ${seg.dataEnd})`;
}

test(`recovery keeps exactly the valid prefix after random tail damage from a random recovery point (${RECOVERY_RUNS} runs)`, async (t) => {
  const seed = resolveSeed();
  t.log(`seed ${seed} (replay with SEED=${seed})`);
  const r = rng(seed);
  const root = tempDir(t);
  const stats = { torn: 0, droppedSegments: 0, intact: 0, sealedCorrupt: 0 };
  for (let run = 0; run < RECOVERY_RUNS; run++) {
    const dir = path.join(root, String(run));
    const model = await createLog(dir, r, randInt(r, 1, 70), randInt(r, 1, 3000));
    const pdir = partitionDir(dir);
    const segs = readSegments(pdir);
    const choice = r();
    const point = choice < 0.2 ? null : choice < 0.3 ? readRecoveryPoint(checkpointPath(dir)) : (() => {
      const all = boundaries(segs);
      return all[randInt(r, 0, all.length - 1)];
    })();
    const damage = damageTail(r, pdir, segs, point);
    simulateCrash(dir, point ?? null);
    const e = expectRecovery(segs, pdir, point);
    const where = `seed ${seed}, run ${run}: ${segs.length} segments, recovery point ${JSON.stringify(point)}, ${damage}`;
    let log: CommitLog;
    if (e.sealedCorrupt !== null) {
      // Opening refuses (nothing deleted); repair mode then cuts the log as modelled.
      const err = await t.throwsAsync(CommitLog.open(options(dir)), { instanceOf: CommitLogError, code: ErrorCode.LOG_CORRUPT }, where);
      t.is(err?.path, logPath(pdir, e.sealedCorrupt.segment), where);
      t.is(err?.position, e.sealedCorrupt.position, where);
      t.deepEqual(segmentBases(pdir), e.segments, `${where}: nothing deleted`);
      stats.sealedCorrupt++;
    }
    try {
      log = await CommitLog.open({ ...options(dir), repair: e.sealedCorrupt !== null });
    } catch (err) {
      t.fail(`${where}: open threw ${err instanceof Error ? err.stack : String(err)}`);
      return;
    }
    checkReport(t, log, e, where);
    checkLog(t, log, model.slice(0, e.nextOffset), where);
    if (e.zeroed !== null) {
      t.true(isZero(readAt(logPath(pdir, e.zeroed.segment), e.zeroed.from, e.zeroed.to - e.zeroed.from)), `${where}: the dropped tail is zeroed`);
    }
    if (e.torn) stats.torn++;
    else if (e.droppedSegments === 0 && e.nextOffset === model.length) stats.intact++;
    stats.droppedSegments += e.droppedSegments;
    model.length = e.nextOffset;
    await appendAndReopen(t, log, model, r, where);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.log(`${stats.torn} runs dropped a torn tail, ${stats.intact} lost nothing, ${stats.droppedSegments} segments dropped in all, ${stats.sealedCorrupt} refused as corruption of a sealed segment (then repaired)`);
});

/**
 * The log the corruption tests damage: random batches appended through the public API
 * and mirrored in an in-memory model, exact checks of a reopened log against it, and
 * the ways of (re)opening a closed log that the tests vary (clean, or unclean from
 * various recovery points).
 */
import type { ExecutionContext } from 'ava';
import type { RecoveryPoint } from '../../src/index/checkpoint.js';
import { CommitLog, type CommitLogOptions } from '../../src/log/commit-log.js';
import { TOPIC, partitionDir, randBytes, randInt, readSegments, simulateCrash, type DiskSegment, type Rng } from './helpers.js';

export const SEGMENT_BYTES = 65536;

export const T0 = 1_700_000_000_000;
/** Warnings the library logged (recovery findings, failed closes), kept for failure messages. */
export const warnings: string[] = [];
export const quiet = {
  info: () => undefined,
  warn: (fields: object, message: string) => {
    warnings.push(`${message} ${JSON.stringify(fields)}`);
    if (warnings.length > 50) warnings.shift();
  },
};

export interface StoredRecord {
  key: string;
  value: Buffer;
  timestamp: number;
}

export function options(dir: string, extra: Partial<CommitLogOptions> = {}): CommitLogOptions {
  return { dir, flush: 'os', logger: quiet, topicDefaults: { segmentBytes: SEGMENT_BYTES, indexIntervalBytes: 1024 }, ...extra };
}

/** Timestamps mostly rise with the offset, with an occasional step back (time indexes must cope). */
export function timestampFor(offset: number, r: Rng): number {
  return T0 + offset * 10 - (r() < 0.1 ? randInt(r, 0, 60) : 0);
}

/** Appends `batches` random batches (1..4 records, values of 1..maxValueBytes random bytes) and mirrors them in `model`. */
export async function appendRandom(log: CommitLog, model: StoredRecord[], r: Rng, batches: number, maxValueBytes = 1500): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const n = randInt(r, 1, 4);
    const records: StoredRecord[] = [];
    for (let i = 0; i < n; i++) {
      const offset = model.length + i;
      records.push({ key: `k${offset}`, value: randBytes(r, randInt(r, 1, maxValueBytes)), timestamp: timestampFor(offset, r) });
    }
    const { baseOffset, lastOffset } = await log.append(TOPIC, 0, records);
    if (baseOffset !== model.length || lastOffset !== model.length + n - 1) {
      throw new Error(`append got offsets ${baseOffset}..${lastOffset}, expected ${model.length}..${model.length + n - 1}`);
    }
    model.push(...records);
  }
}

/**
 * A new log with `batches` random batches, closed cleanly; then, when `until` is given,
 * one more batch at a time until the segment files on disk satisfy it (a shape a test
 * needs, e.g. room after the last batch), so no seed yields a log the test cannot use.
 */
export async function createLog(dir: string, r: Rng, batches: number, maxValueBytes = 1500, until?: (segs: DiskSegment[]) => boolean): Promise<StoredRecord[]> {
  const model: StoredRecord[] = [];
  const log = await CommitLog.open(options(dir));
  await log.createTopic(TOPIC);
  await appendRandom(log, model, r, batches, maxValueBytes);
  for (let extra = 0; until !== undefined && !until(readSegments(partitionDir(dir))); extra++) {
    if (extra === 1000) throw new Error('createLog: the log never took the wanted shape');
    await appendRandom(log, model, r, 1, maxValueBytes);
  }
  await log.close();
  return model;
}

/** Every record exact, read sequentially and at each offset; offsets dense; nothing past the end. */
export function checkLog(t: ExecutionContext, log: CommitLog, model: StoredRecord[], where: string): void {
  const problems: string[] = [];
  const latest = log.latestOffset(TOPIC, 0);
  if (latest !== model.length) problems.push(`latestOffset ${latest}, expected ${model.length}`);
  const same = (offset: number, rec: { offset: number; key: Buffer | null; value: Buffer | null; timestamp: number }) => {
    const m = model[offset];
    return m !== undefined && rec.offset === offset && rec.key?.toString() === m.key && rec.value !== null && rec.value.equals(m.value) && rec.timestamp === m.timestamp;
  };
  let next = 0;
  while (next < latest && problems.length < 10) {
    const records = log.read(TOPIC, 0, next, { maxBytes: 64 * 1024 });
    if (records.length === 0) {
      problems.push(`sequential read at ${next} returned nothing`);
      break;
    }
    for (const rec of records) {
      if (rec.offset !== next) problems.push(`sequential read: offset ${rec.offset} where ${next} was expected`);
      else if (!same(next, rec)) problems.push(`sequential read: record ${next} differs from what was appended`);
      next = rec.offset + 1;
    }
  }
  if (next !== model.length && problems.length < 10) problems.push(`sequential read ended at ${next}, expected ${model.length}`);
  for (let offset = 0; offset < Math.min(latest, model.length) && problems.length < 10; offset++) {
    const [rec] = log.read(TOPIC, 0, offset, { maxBytes: 1 });
    if (rec === undefined || !same(offset, rec)) problems.push(`read at ${offset} returned ${rec === undefined ? 'nothing' : `offset ${rec.offset}, not the appended record`}`);
  }
  if (log.read(TOPIC, 0, latest).length !== 0) problems.push(`read at latestOffset ${latest} returned records`);
  t.deepEqual(problems, [], `${where}: the log does not hold exactly the expected records`);
}

/** The batches of a partition in offset order, with the recovery point at each batch start and segment end. */
export function boundaries(segs: DiskSegment[]): RecoveryPoint[] {
  const out: RecoveryPoint[] = [];
  for (const s of segs) {
    for (const b of s.batches) out.push({ segmentBaseOffset: s.base, position: b.position, nextOffset: b.baseOffset });
    const last = s.batches[s.batches.length - 1];
    out.push({ segmentBaseOffset: s.base, position: s.dataEnd, nextOffset: last === undefined ? s.base : last.baseOffset + last.records });
  }
  return out;
}

export function isZero(b: Buffer): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/** Appends, closes, reopens cleanly and after a simulated crash at the exact end: still exact. */
export async function appendAndReopen(t: ExecutionContext, log: CommitLog, model: StoredRecord[], r: Rng, where: string): Promise<void> {
  await appendRandom(log, model, r, randInt(r, 1, 3));
  checkLog(t, log, model, `${where}, after appending`);
  await log.close();
  const clean = await CommitLog.open(options(log.dir));
  t.true(clean.recovery.clean, `${where}: reopen after a clean close (library warnings: ${warnings.filter((w) => !w.startsWith('recovered') && !w.startsWith('rebuilt')).join('; ')})`);
  checkLog(t, clean, model, `${where}, after a clean reopen`);
  await clean.close();
  simulateCrash(log.dir, 'keep');
  const again = await CommitLog.open(options(log.dir));
  t.like(again.recovery, { clean: false, droppedBytes: 0, droppedBatches: 0 }, `${where}: recovery from the last close's point`);
  checkLog(t, again, model, `${where}, after an unclean reopen`);
  await again.close();
}

export type OpenMode = 'clean' | 'unclean at the end' | 'unclean mid-segment' | 'unclean, no checkpoint';
export const openModes: OpenMode[] = ['clean', 'unclean at the end', 'unclean mid-segment', 'unclean, no checkpoint'];

/** Puts a cleanly closed log in `mode` before an open (mid-segment: a batch boundary halfway through the active segment). */
export function prepareOpen(dir: string, segs: DiskSegment[], mode: OpenMode): void {
  if (mode === 'clean') return;
  if (mode === 'unclean at the end') simulateCrash(dir, 'keep');
  else if (mode === 'unclean mid-segment') {
    const b = boundaries([segs[segs.length - 1]]);
    simulateCrash(dir, b[b.length >> 1]);
  } else simulateCrash(dir, null);
}

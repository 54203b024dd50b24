/**
 * Idempotent producers: per partition, what Kafka's ProducerStateManager keeps. For
 * each producer id, its epoch and the last 5 batches it appended (first and last
 * sequence, base offset, last offset delta), so that a batch a producer resends after a
 * lost answer or a broker kill is recognised and answered with its original offsets
 * instead of being stored twice.
 *
 * The rules, applied to a batch whose producer id is >= 0 (batches with -1, or any
 * negative id, are not looked at beyond one int32 read), before it is copied:
 *   - same epoch, first sequence = last sequence + 1 (wrapping at 2^31 - 1 -> 0): append;
 *   - same epoch, first and last sequence equal to one of the last 5 batches: a
 *     DUPLICATE, not appended; the append resolves with the original's offsets (Kafka
 *     answers the original base offset and no error);
 *   - same epoch, any other sequence: ERR_OUT_OF_ORDER_SEQUENCE (Kafka 45);
 *   - an older epoch: ERR_INVALID_PRODUCER_EPOCH (Kafka 47);
 *   - a newer epoch: must start at sequence 0 (else ERR_OUT_OF_ORDER_SEQUENCE); its
 *     batches replace the old epoch's;
 *   - a producer id with no state here (new, evicted, expired): accepted at any
 *     sequence, as Kafka does since 2.5 (KIP-360), rather than UNKNOWN_PRODUCER_ID;
 *   - a producer id above 2^53 - 1 (no id this broker hands out): ERR_UNKNOWN_PRODUCER_ID;
 *   - a producer id >= 0 with a negative base sequence: ERR_CORRUPT_BATCH (Kafka's
 *     LogValidator refuses it too).
 * The state changes only after the bytes were copied (record()), so a failed copy
 * leaves it as it was.
 *
 * Bounds: at most `maxProducers` ids per partition (default 1000); recording one more
 * evicts the least recently written. An id not written for `expirationMs` (default
 * 7 days, Kafka's producer.id.expiration.ms) is dropped when a new id is recorded or a
 * snapshot is written. "Written" is this process's clock at the append; for batches
 * found by a rebuild scan, the clock at the rebuild.
 *
 * Persistence: the log is the truth. On open, the state is loaded from the snapshot
 * file `producer.snapshot` (docs/format.md) and the batches after the snapshot's
 * offset are scanned (their headers only, through the consume queue). A snapshot that
 * is damaged, or whose offset is past the recovered end or not a batch boundary, is
 * ignored, unlinked, and the state rebuilt from the log start. Snapshots are written
 * with the recovery point (PartitionLog.writeCheckpoint) when the state changed since
 * the last one, or when the last one is older than the active segment.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, ErrorCode } from '../errors.js';
import { fsyncDirAsync, readGuardedJson, writeGuardedJsonAsync } from '../index/checkpoint.js';
import { BASE_SEQUENCE_POS, LAST_OFFSET_DELTA_POS, PRODUCER_EPOCH_POS, PRODUCER_ID_POS } from './batch.js';
import type { Segment } from './segment.js';

export const PRODUCER_SNAPSHOT_FILE = 'producer.snapshot';
/** Batches remembered per producer (Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN). */
export const BATCHES_PER_PRODUCER = 5;
export const DEFAULT_MAX_PRODUCERS = 1000;
export const DEFAULT_PRODUCER_EXPIRATION_MS = 7 * 24 * 60 * 60 * 1000;
const INT32_MAX = 0x7fffffff;

export interface ProducerStateOptions {
  maxProducers?: number;
  expirationMs?: number;
  /** The clock (tests). Default Date.now. */
  now?: () => number;
}

/** Offsets of a batch already in the log (what a duplicate is answered with). */
export interface DuplicateAppend {
  baseOffset: number;
  lastOffset: number;
  duplicate: true;
}

interface ProducerEntry {
  epoch: number;
  lastWriteMs: number;
  /** Flat: firstSeq, lastSeq, baseOffset, lastOffsetDelta per batch, oldest first; at most 5 batches. */
  batches: number[];
}

/** How the state was loaded at open (for tests and logs). */
export interface ProducerStateLoad {
  /** The snapshot's offset, -1 when none was used. */
  snapshotOffset: number;
  /** Why a snapshot file present was not used; null when none was ignored. */
  snapshotIgnored: string | null;
  /** Batch headers read after the snapshot (or from the log start). */
  scannedBatches: number;
  producers: number;
}

/** Kafka's DefaultRecordBatch.incrementSequence: sequences wrap from 2^31 - 1 to 0. */
export function incrementSequence(sequence: number, increment: number): number {
  return sequence > INT32_MAX - increment ? increment - (INT32_MAX - sequence) - 1 : sequence + increment;
}

function nextSequence(last: number): number {
  return last === INT32_MAX ? 0 : last + 1;
}

export class ProducerState {
  private readonly producers = new Map<number, ProducerEntry>();
  private readonly maxProducers: number;
  private readonly expirationMs: number;
  private readonly now: () => number;
  private readonly file: string;
  /** Fields of the batch check() passed, for record(). */
  private pending: Buffer | null = null;
  private pendingId = -1;
  private pendingEpoch = 0;
  private pendingFirst = 0;
  private pendingLast = 0;
  /** Changed since the last snapshot. */
  private dirty = false;
  /** Offset a rebuild would scan from: the last snapshot's, or the log start without one. */
  private coveredFrom = 0;
  private writes: Promise<void> = Promise.resolve();
  load: ProducerStateLoad = { snapshotOffset: -1, snapshotIgnored: null, scannedBatches: 0, producers: 0 };

  constructor(dir: string, options: ProducerStateOptions = {}) {
    this.file = path.join(dir, PRODUCER_SNAPSHOT_FILE);
    this.maxProducers = options.maxProducers ?? DEFAULT_MAX_PRODUCERS;
    this.expirationMs = options.expirationMs ?? DEFAULT_PRODUCER_EXPIRATION_MS;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.producers.size;
  }

  /** The largest producer id with state here, -1 when none. */
  get maxProducerId(): number {
    let max = -1;
    for (const id of this.producers.keys()) if (id > max) max = id;
    return max;
  }

  /** A producer's epoch and remembered batches (tests, tools); undefined when unknown. */
  entry(producerId: number): { epoch: number; batches: Array<{ firstSeq: number; lastSeq: number; baseOffset: number; lastOffset: number }> } | undefined {
    const e = this.producers.get(producerId);
    if (e === undefined) return undefined;
    const batches = [];
    for (let i = 0; i < e.batches.length; i += 4) batches.push({ firstSeq: e.batches[i], lastSeq: e.batches[i + 1], baseOffset: e.batches[i + 2], lastOffset: e.batches[i + 2] + e.batches[i + 3] });
    return { epoch: e.epoch, batches };
  }

  /**
   * Before the copy of a verified batch: null to append it, the original's offsets for
   * a duplicate; throws ERR_OUT_OF_ORDER_SEQUENCE, ERR_INVALID_PRODUCER_EPOCH,
   * ERR_UNKNOWN_PRODUCER_ID or ERR_CORRUPT_BATCH (see the head comment).
   */
  check(batch: Buffer): DuplicateAppend | null {
    const hi = batch.readInt32BE(PRODUCER_ID_POS);
    if (hi < 0) return null;
    if (hi >= 0x200000) throw new CommitLogError(ErrorCode.UNKNOWN_PRODUCER_ID, `producer id ${batch.readBigInt64BE(PRODUCER_ID_POS)} is above 2^53 - 1: no id this broker assigns`);
    const id = hi * 4294967296 + batch.readUInt32BE(PRODUCER_ID_POS + 4);
    const epoch = batch.readInt16BE(PRODUCER_EPOCH_POS);
    const first = batch.readInt32BE(BASE_SEQUENCE_POS);
    if (first < 0) throw new CommitLogError(ErrorCode.CORRUPT_BATCH, `batch of producer ${id} has base sequence ${first}: an idempotent batch needs a sequence >= 0`);
    const last = incrementSequence(first, batch.readInt32BE(LAST_OFFSET_DELTA_POS));
    const e = this.producers.get(id);
    if (e !== undefined) {
      if (epoch < e.epoch) {
        throw new CommitLogError(ErrorCode.INVALID_PRODUCER_EPOCH, `producer ${id} sent epoch ${epoch}, older than its current epoch ${e.epoch}`);
      }
      if (epoch === e.epoch) {
        const b = e.batches;
        for (let i = 0; i < b.length; i += 4) {
          if (b[i] === first && b[i + 1] === last) return { baseOffset: b[i + 2], lastOffset: b[i + 2] + b[i + 3], duplicate: true };
        }
        const expected = nextSequence(b[b.length - 3]);
        if (first !== expected) {
          throw new CommitLogError(ErrorCode.OUT_OF_ORDER_SEQUENCE, `producer ${id} epoch ${epoch}: sequence ${first}, expected ${expected}`);
        }
      } else if (first !== 0 && e.epoch >= 0) {
        throw new CommitLogError(ErrorCode.OUT_OF_ORDER_SEQUENCE, `producer ${id}: a new epoch ${epoch} (was ${e.epoch}) must start at sequence 0, got ${first}`);
      }
    }
    this.pending = batch;
    this.pendingId = id;
    this.pendingEpoch = epoch;
    this.pendingFirst = first;
    this.pendingLast = last;
    return null;
  }

  /** After the batch check() passed was copied at `baseOffset`. No-op for other batches. */
  record(batch: Buffer, baseOffset: number): void {
    if (this.pending !== batch) return;
    this.pending = null;
    this.put(this.pendingId, this.pendingEpoch, this.pendingFirst, this.pendingLast, baseOffset, batch.readInt32BE(LAST_OFFSET_DELTA_POS), this.now());
  }

  private put(id: number, epoch: number, first: number, last: number, baseOffset: number, lastOffsetDelta: number, nowMs: number): void {
    let e = this.producers.get(id);
    if (e === undefined) {
      this.expire(nowMs, false);
      // Map order is write order: the first key is the least recently written.
      while (this.producers.size >= this.maxProducers) this.producers.delete(this.producers.keys().next().value as number);
      e = { epoch, lastWriteMs: nowMs, batches: [] };
    } else {
      this.producers.delete(id);
      if (epoch !== e.epoch) {
        e.epoch = epoch;
        e.batches = [];
      }
    }
    e.lastWriteMs = nowMs;
    e.batches.push(first, last, baseOffset, lastOffsetDelta);
    if (e.batches.length > BATCHES_PER_PRODUCER * 4) e.batches.splice(0, 4);
    this.producers.set(id, e);
    this.dirty = true;
  }

  /** Drops ids not written for expirationMs: from the front (write order), or all of them. */
  private expire(nowMs: number, all: boolean): void {
    const limit = nowMs - this.expirationMs;
    for (const [id, e] of this.producers) {
      if (e.lastWriteMs > limit) {
        if (all) continue;
        break;
      }
      this.producers.delete(id);
      this.dirty = true;
    }
  }

  // ---- open: snapshot + scan ----

  /**
   * Loads the state at open: the snapshot if it fits the recovered log, then the batch
   * headers after it. `segments` oldest first; `use` opens a sealed one.
   */
  async rebuild(segments: readonly Segment[], use: (s: Segment) => Segment): Promise<ProducerStateLoad> {
    const logStart = segments[0].baseOffset;
    const logEnd = segments[segments.length - 1].nextOffset;
    let from = logStart;
    const load: ProducerStateLoad = { snapshotOffset: -1, snapshotIgnored: null, scannedBatches: 0, producers: 0 };
    const stored = readGuardedJson(this.file);
    if (stored === null && fs.existsSync(this.file)) load.snapshotIgnored = 'damaged (checksum or JSON)';
    else if (stored !== null) {
      const parsed = parseSnapshot(stored);
      let why = typeof parsed === 'string' ? parsed : null;
      if (typeof parsed !== 'string') {
        if (parsed.offset > logEnd) why = `its offset ${parsed.offset} is past the log end ${logEnd}`;
        else if (parsed.offset > logStart && !isBatchBoundary(segments, use, parsed.offset)) why = `its offset ${parsed.offset} is not a batch boundary`;
      }
      if (why !== null || typeof parsed === 'string') load.snapshotIgnored = why;
      else {
        for (const [id, e] of parsed.producers) this.producers.set(id, e);
        load.snapshotOffset = parsed.offset;
        from = Math.max(logStart, parsed.offset);
      }
    }
    if (load.snapshotIgnored !== null) {
      // Never found again by a later open, whatever this life appends.
      fs.rmSync(this.file, { force: true });
      await fsyncDirAsync(path.dirname(this.file));
      this.producers.clear();
    }
    this.coveredFrom = load.snapshotOffset >= 0 ? load.snapshotOffset : logStart;
    const nowMs = this.now();
    for (const s of segments) {
      if (s.nextOffset <= from || s.nextOffset === s.baseOffset) continue;
      const seg = use(s);
      const cq = seg.cq;
      const data = seg.data;
      for (let i = Math.max(0, cq.lookup(from - seg.baseOffset)); i < cq.entries; i++) {
        const base = seg.baseOffset + cq.relativeOffsetAt(i);
        if (base < from) continue;
        load.scannedBatches++;
        const p = cq.positionAt(i);
        const hi = data.readInt32BE(p + PRODUCER_ID_POS);
        if (hi < 0 || hi >= 0x200000) continue;
        const first = data.readInt32BE(p + BASE_SEQUENCE_POS);
        if (first < 0) continue;
        const delta = data.readInt32BE(p + LAST_OFFSET_DELTA_POS);
        this.put(hi * 4294967296 + data.readUInt32BE(p + PRODUCER_ID_POS + 4), data.readInt16BE(p + PRODUCER_EPOCH_POS), first, incrementSequence(first, delta), base, delta, nowMs);
      }
    }
    // Only what the scan added makes a new snapshot worth writing.
    this.dirty = load.scannedBatches > 0 && this.producers.size > 0;
    load.producers = this.producers.size;
    this.load = load;
    return load;
  }

  /**
   * Writes a snapshot of the state at `end` (the log end now) when it changed since the
   * last one, or when the last one is older than the active segment (`activeBase`).
   * Never rejects: the snapshot is a cache; a failed write is tried again next time.
   */
  snapshotIfNeeded(activeBase: number, end: number): Promise<void> {
    if (!this.dirty && this.coveredFrom >= activeBase) return this.writes;
    this.expire(this.now(), true);
    const value = { v: 1, offset: end, producers: [...this.producers].map(([id, e]) => [id, e.epoch, e.lastWriteMs, e.batches]) };
    this.dirty = false;
    const write = this.writes.then(() => writeGuardedJsonAsync(this.file, value, 'writing the producer snapshot failed')).then(
      () => {
        this.coveredFrom = Math.max(this.coveredFrom, end);
      },
      () => {
        this.dirty = true;
      },
    );
    this.writes = write;
    return write;
  }

  /** Resolves once every snapshot write started has finished. */
  idle(): Promise<void> {
    return this.writes;
  }
}

interface Snapshot {
  offset: number;
  producers: Array<[number, ProducerEntry]>;
}

const isInt = (n: unknown, min: number, max: number): n is number => typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max;

/** The snapshot's content, or why it cannot be used. */
function parseSnapshot(value: unknown): Snapshot | string {
  const v = value as { v?: unknown; offset?: unknown; producers?: unknown };
  if (typeof v !== 'object' || v === null || v.v !== 1) return 'unknown version';
  if (!isInt(v.offset, 0, Number.MAX_SAFE_INTEGER) || !Array.isArray(v.producers)) return 'malformed';
  const out: Array<[number, ProducerEntry]> = [];
  for (const p of v.producers as unknown[]) {
    if (!Array.isArray(p) || p.length !== 4) return 'malformed producer entry';
    const [id, epoch, lastWriteMs, batches] = p as unknown[];
    if (!isInt(id, 0, Number.MAX_SAFE_INTEGER) || !isInt(epoch, -1, 0x7fff) || typeof lastWriteMs !== 'number' || !Number.isFinite(lastWriteMs)) return 'malformed producer entry';
    if (!Array.isArray(batches) || batches.length === 0 || batches.length % 4 !== 0 || batches.length > BATCHES_PER_PRODUCER * 4) return 'malformed batch list';
    for (let i = 0; i < batches.length; i += 4) {
      if (!isInt(batches[i], 0, INT32_MAX) || !isInt(batches[i + 1], 0, INT32_MAX) || !isInt(batches[i + 3], 0, INT32_MAX)) return 'malformed batch';
      if (!isInt(batches[i + 2], 0, v.offset - 1) || batches[i + 2] + batches[i + 3] >= v.offset) return 'a batch past the snapshot offset';
    }
    out.push([id, { epoch, lastWriteMs, batches: batches as number[] }]);
  }
  return { offset: v.offset, producers: out };
}

/** Whether a batch of the log starts at `offset` (or a segment does). */
function isBatchBoundary(segments: readonly Segment[], use: (s: Segment) => Segment, offset: number): boolean {
  for (let k = segments.length - 1; k >= 0; k--) {
    const s = segments[k];
    if (s.baseOffset > offset) continue;
    if (s.baseOffset === offset || s.nextOffset === offset) return true;
    const cq = use(s).cq;
    const i = cq.lookup(offset - s.baseOffset);
    return i >= 0 && i < cq.entries && s.baseOffset + cq.relativeOffsetAt(i) === offset;
  }
  return false;
}

/**
 * One partition: a queue of segments (oldest first, the last one active), appends with
 * roll and allocate-ahead, flush policies through GroupCommit, reads through the
 * consume queue, retention, and the recovery point checkpoint.
 *
 * Concurrency: everything runs on the JS thread. An append copies its batch into the
 * active mapping synchronously, so concurrent appends get consecutive offsets in call
 * order; only a roll whose next segment is not ready yet makes appends wait, and they
 * then run in the order they were called. msync, fallocate and page warm-up run on the
 * thread pool.
 *
 * Reads (slices, records, long polls, timestamps) live in the base class, PartitionReads.
 *
 * Crash: see recovery.ts. The recovery point (recovery.checkpoint) is advanced after a
 * flush covers it (sync and async policies, periodically), when a rolled segment has
 * been sealed, and at close.
 */
import fs from 'node:fs';
import { CommitLogError, ErrorCode, ioError } from '../errors.js';
import { fsyncDirAsync, readRecoveryPoint, writeRecoveryPointAsync, type RecoveryPoint } from '../index/checkpoint.js';
import { encodeBatch, encodeMeasuredBatch, measureBatch, measuredTimestamps, verifyBatch, readMaxTimestamp, LAST_OFFSET_DELTA_POS } from './batch.js';
import { CHECKPOINT_FILE, CQ_SUFFIX, LOG_SUFFIX, PREPARED_SUFFIX, TIX_SUFFIX, DELETED_SUFFIX, parseBaseOffset } from './file-names.js';
import { validateRecords } from './batch-validate.js';
import { GroupCommit } from './group-commit.js';
import type { ProducerRecord } from './record.js';
import { recoverSegments, type PartitionRecoveryReport } from './recovery.js';
import { ProducerState } from './producer-state.js';
import { PREPARE_AT, activatePrepared, createSegmentSync, discardPrepared, prepareSegment, removeIfExists, type PreparedSegment } from './segment-allocator.js';
import { PartitionReads } from './partition-reads.js';
import type { AppendResult, PartitionConfig, PartitionOptions } from './partition-types.js';
import { Segment, type SegmentLimits } from './segment.js';
import path from 'node:path';

export type { AppendResult, FlushHooks, FlushPolicy, LogSlice, PartitionConfig, PartitionOptions } from './partition-types.js';

export class PartitionLog extends PartitionReads {
  readonly report: PartitionRecoveryReport;
  config: PartitionConfig;

  private readonly limits: SegmentLimits;
  private readonly commit: GroupCommit;
  private failed: CommitLogError | null = null;
  private blocked: Promise<void> | null = null;
  private preparing: Promise<PreparedSegment> | null = null;
  private prepared: PreparedSegment | null = null;
  private sealing: Promise<void> = Promise.resolve();
  private dirSync: Promise<void> | null = null;
  private flushedPoint: RecoveryPoint;
  private checkpointedPoint: RecoveryPoint | null;
  /** Checkpoint writes, one at a time and in order, on the thread pool. */
  private checkpointWrites: Promise<void> = Promise.resolve();
  /** Stamped into every batch this life of the partition appends (Segment.epoch). */
  readonly epoch: number;
  /** Idempotent producers' sequences (producer-state.ts): checked in write(), rebuilt at open. */
  readonly producers: ProducerState;

  private constructor(options: PartitionOptions, segments: Segment[], report: PartitionRecoveryReport, point: RecoveryPoint | null, epoch: number) {
    super(options, segments);
    this.config = options.config;
    this.limits = limitsOf(options);
    this.report = report;
    this.commit = new GroupCommit(() => this.flushWritten(), (err) => this.fail(err, 'flush failed'));
    const a = this.active;
    this.flushedPoint = { segmentBaseOffset: a.baseOffset, position: a.flushPosition, nextOffset: a.flushPosition === a.writePosition ? a.nextOffset : -1 };
    this.checkpointedPoint = point;
    this.epoch = epoch;
    this.producers = new ProducerState(options.dir);
    a.epoch = epoch;
    // The bytes before writePosition hold data; space past it is allocated by steps.
    a.resumeAllocation();
  }

  /** Opens (creating when empty) the partition directory and recovers it. */
  static async open(options: PartitionOptions): Promise<PartitionLog> {
    const { dir, config } = options;
    fs.mkdirSync(dir, { recursive: true });
    const limits = limitsOf(options);
    const bases: number[] = [];
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith(PREPARED_SUFFIX) || name.endsWith(DELETED_SUFFIX) || name.endsWith('.tmp')) {
        removeIfExists(path.join(dir, name));
        continue;
      }
      const base = parseBaseOffset(name, LOG_SUFFIX);
      if (base >= 0) bases.push(base);
    }
    bases.sort((a, b) => a - b);
    // Index files without a log (a deleted segment's leftovers) are removed.
    for (const name of fs.readdirSync(dir)) {
      const base = Math.max(parseBaseOffset(name, CQ_SUFFIX), parseBaseOffset(name, TIX_SUFFIX));
      if (base >= 0 && !bases.includes(base)) removeIfExists(path.join(dir, name));
    }
    const report: PartitionRecoveryReport = {
      topic: options.topic, partition: options.partition, clean: options.clean, fromSegment: 0, fromPosition: 0,
      scannedBytes: 0, droppedBatches: 0, droppedBytes: 0, droppedSegments: 0, rebuiltIndexes: 0, stopReason: 'end of data', durationMs: 0,
    };
    const checkpointFile = path.join(dir, CHECKPOINT_FILE);
    if (bases.length === 0) {
      const first = createSegmentSync(dir, 0, limits);
      const log = new PartitionLog(options, [first], report, null, 0);
      await log.writeCheckpoint({ segmentBaseOffset: 0, position: 0, nextOffset: 0 });
      return log;
    }
    const segments = bases.map((base, i) => {
      const isLast = i === bases.length - 1;
      const size = fs.statSync(path.join(dir, `${String(base).padStart(20, '0')}${LOG_SUFFIX}`)).size;
      return new Segment(dir, base, limits, !isLast, isLast ? base : bases[i + 1], isLast ? config.segmentBytes : size);
    });
    const point = readRecoveryPoint(checkpointFile);
    const recovered = await recoverSegments(segments, point, options.clean, report, { repair: options.repair === true });
    // Every recovery starts a new epoch, so no batch of this life can be mistaken for
    // one an earlier life left past the point where recovery cut the log.
    const epoch = report.clean ? Math.max(0, recovered.epoch) : Math.min(recovered.epoch + 1, 0x7fffffff);
    const log = new PartitionLog(options, recovered.kept, report, point, epoch);
    await log.producers.rebuild(log.segments, (s) => log.use(s));
    if (!report.clean) {
      // Persist what recovery verified so the next crash scans from here.
      const a = log.active;
      await a.flush(a.writePosition);
      await a.flushIndexes();
      log.flushedPoint = { segmentBaseOffset: a.baseOffset, position: a.writePosition, nextOffset: a.nextOffset };
      try {
        await log.writeCheckpoint(log.flushedPoint);
      } catch (err) {
        // A full disk must not keep the data from being read (or a topic from being
        // deleted to free space): the older point stays, and it is still true, since
        // recovery never cuts the log before it. Later checkpoints try again.
        if (!(err instanceof CommitLogError && err.code === ErrorCode.DISK_FULL)) throw err;
        report.checkpointError = err.message;
      }
    }
    return log;
  }

  /**
   * Disk space the partition's segments take: allocated log space (never the logical
   * segment size of a sparse active file) plus index files.
   */
  get diskBytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.diskBytes;
    if (this.prepared !== null) total += this.prepared.allocatedBytes + this.prepared.cq.fileBytes + this.prepared.tix.fileBytes;
    return total;
  }

  /** Bytes of log data (not counting allocated space past it or indexes). */
  get sizeBytes(): number {
    let total = 0;
    // A rolled segment keeps its preallocated fileBytes until sealing (in the background) trims it.
    for (const s of this.segments) total += s === this.active || !s.sealed ? s.writePosition : s.fileBytes;
    return total;
  }

  get isFailed(): boolean {
    return this.failed !== null;
  }

  private ensureWritable(): void {
    if (this.closed) throw new CommitLogError(ErrorCode.LOG_CLOSED, `partition ${this.topic}/${this.partition} is closed`, { topic: this.topic, partition: this.partition });
    if (this.failed !== null) throw this.failed;
  }

  /**
   * Encodes records as one batch and appends it. In the common case (no roll to wait
   * for) the batch is encoded straight into the mapping: no intermediate Buffer, one
   * write of every byte.
   */
  append(records: ProducerRecord[]): Promise<AppendResult> {
    try {
      this.ensureWritable();
      if (this.blocked !== null) return this.appendChecked(encodeBatch(records));
      const size = measureBatch(records);
      const limitError = this.sizeLimitError(size);
      if (limitError !== null) return Promise.reject(limitError);
      if (size > this.active.bytesFree) {
        const rolling = this.roll();
        if (rolling !== null) return rolling.then(() => this.appendAfterWait(encodeBatch(records)));
      }
      if (size > this.active.allocatedFree) return this.allocate(size).then(() => this.appendAfterWait(encodeBatch(records)));
      // Nothing was measured since measureBatch (a synchronous roll encodes nothing).
      return this.writeEncoded(records, size);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Appends one complete batch built elsewhere (a producer): its CRC and structure are
   * verified (ERR_CORRUPT_BATCH), its base offset is assigned in the mapping.
   */
  appendBatch(batch: Buffer): Promise<AppendResult> {
    try {
      this.ensureWritable();
      const header = verifyBatch(batch, 0, batch.length);
      if (header.size !== batch.length) {
        throw new CommitLogError(ErrorCode.CORRUPT_BATCH, `expected exactly one batch of ${header.size} bytes, got ${batch.length} bytes`, { position: header.size });
      }
      validateRecords(batch, 0, header);
      return this.appendChecked(batch);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private sizeLimitError(size: number): CommitLogError | null {
    const limit = Math.min(this.config.maxBatchBytes, this.config.segmentBytes);
    if (size <= limit) return null;
    return new CommitLogError(ErrorCode.RECORD_TOO_LARGE,
      `batch of ${size} bytes exceeds the limit of ${limit} bytes (maxBatchBytes ${this.config.maxBatchBytes}, segmentBytes ${this.config.segmentBytes})`,
      { topic: this.topic, partition: this.partition });
  }

  private appendChecked(batch: Buffer): Promise<AppendResult> {
    const size = batch.length;
    const limitError = this.sizeLimitError(size);
    if (limitError !== null) return Promise.reject(limitError);
    if (this.blocked !== null) return this.blocked.then(() => this.appendAfterWait(batch));
    if (size > this.active.bytesFree) {
      const rolling = this.roll();
      if (rolling !== null) return rolling.then(() => this.appendAfterWait(batch));
    }
    if (size > this.active.allocatedFree) return this.allocate(size).then(() => this.appendAfterWait(batch));
    return this.write(batch);
  }

  /**
   * Waits for an allocation step covering `size` more bytes of the active segment; later
   * appends queue behind it in call order. A full disk rejects them all with
   * ERR_DISK_FULL and leaves the log usable: nothing was written.
   */
  private allocate(size: number): Promise<void> {
    const segment = this.active;
    const blocked = segment.ensureAllocated(segment.writePosition + size)
      .catch((err: unknown) => {
        throw ioError(err, 'allocating segment space failed', { topic: this.topic, partition: this.partition });
      })
      .finally(() => {
        if (this.blocked === blocked) this.blocked = null;
      });
    this.blocked = blocked;
    return blocked;
  }

  private appendAfterWait(batch: Buffer): Promise<AppendResult> {
    this.ensureWritable();
    return this.appendChecked(batch);
  }

  private write(batch: Buffer): Promise<AppendResult> {
    const duplicate = this.producers.check(batch);
    if (duplicate !== null) return this.options.flush === 'sync' ? this.commit.waitFor(this.commit.written).then(() => duplicate) : Promise.resolve(duplicate);
    const segment = this.active;
    const baseOffset = segment.nextOffset;
    const lastOffsetDelta = batch.readInt32BE(LAST_OFFSET_DELTA_POS);
    const maxTimestamp = readMaxTimestamp(batch, 0);
    try {
      segment.appendBatch(batch, baseOffset, lastOffsetDelta, maxTimestamp);
    } catch (err) {
      return Promise.reject(ioError(err, 'append failed', { topic: this.topic, partition: this.partition }));
    }
    this.producers.record(batch, baseOffset);
    return this.afterWrite(segment, batch.length, baseOffset, lastOffsetDelta);
  }

  /** write() for records measured by measureBatch: encoded in place in the mapping. */
  private writeEncoded(records: ProducerRecord[], size: number): Promise<AppendResult> {
    const segment = this.active;
    const baseOffset = segment.nextOffset;
    const lastOffsetDelta = records.length - 1;
    const { maxTimestamp } = measuredTimestamps();
    try {
      segment.appendEncoded(size, (target) => encodeMeasuredBatch(target, records, { baseOffset }), baseOffset, lastOffsetDelta, maxTimestamp);
    } catch (err) {
      return Promise.reject(ioError(err, 'append failed', { topic: this.topic, partition: this.partition }));
    }
    return this.afterWrite(segment, size, baseOffset, lastOffsetDelta);
  }

  /** What follows every write: warm-up, allocate-ahead, waking readers, the flush policy. */
  private afterWrite(segment: Segment, size: number, baseOffset: number, lastOffsetDelta: number): Promise<AppendResult> {
    segment.growAhead();
    if (this.options.warmSegments) segment.maybeWarmAhead();
    // Prepare the next segment only once the active one is close to full: an idle or
    // small partition holds no second segment.
    if (this.preparing === null && this.prepared === null && segment.writePosition >= segment.fileBytes * PREPARE_AT) this.startPreparing();
    const end = (this.commit.written += size);
    // Under sync, readers wake when the flush lands (flushWritten), not at the copy.
    if (this.options.flush !== 'sync') this.wakeWaiters();
    const result: AppendResult = { baseOffset, lastOffset: baseOffset + lastOffsetDelta };
    const policy = this.options.flush;
    if (policy === 'sync') return this.commit.waitFor(end).then(() => result);
    if (policy === 'async' && this.commit.pendingBytes >= this.options.flushBytes) void this.commit.schedule();
    return Promise.resolve(result);
  }

  /** Rolls to the prepared segment now if it is ready; otherwise returns what to wait for. */
  private roll(): Promise<void> | null {
    if (this.prepared !== null) {
      const next = this.prepared;
      this.prepared = null;
      this.preparing = null;
      this.switchTo(next);
      return null;
    }
    const blocked = this.awaitPrepared()
      .then((next) => this.switchTo(next))
      .finally(() => {
        if (this.blocked === blocked) this.blocked = null;
      });
    this.blocked = blocked;
    return blocked;
  }

  private startPreparing(): void {
    const p = prepareSegment(this.dir, this.limits, this.options.warmSegments);
    this.preparing = p;
    p.then(
      (next) => {
        if (this.preparing === p && !this.closed) this.prepared = next;
        else discardPrepared(this.dir, next);
      },
      () => {
        // reported at the roll that needs it (awaitPrepared retries once)
      },
    );
  }

  private async awaitPrepared(): Promise<PreparedSegment> {
    for (let attempt = 0; ; attempt++) {
      if (this.preparing === null) this.startPreparing();
      const p = this.preparing!;
      try {
        const next = await p;
        this.prepared = null;
        this.preparing = null;
        return next;
      } catch (err) {
        if (this.preparing === p) this.preparing = null;
        if (attempt >= 1) throw ioError(err, 'allocating the next segment failed', { topic: this.topic, partition: this.partition });
      }
    }
  }

  private switchTo(next: PreparedSegment): void {
    if (this.closed || next.discarded === true) {
      discardPrepared(this.dir, next);
      throw new CommitLogError(ErrorCode.LOG_CLOSED, `partition ${this.topic}/${this.partition} is closed`);
    }
    const old = this.active;
    const segment = activatePrepared(this.dir, next, old.nextOffset, this.limits);
    segment.epoch = this.epoch;
    this.segments.push(segment);
    this.active = segment;
    // The new name must be durable before anything in it is acknowledged as flushed.
    this.dirSync = fsyncDirAsync(this.dir);
    old.refs++;
    this.sealing = this.sealing.then(() => this.sealOld(old));
  }

  private async sealOld(old: Segment): Promise<void> {
    try {
      // The data goes to disk through group commit, the one flush path (Segment.flush
      // serialises and remembers failures; seal's own flush then finds nothing to do).
      await this.commit.flushAll();
      await old.seal();
      const point = { segmentBaseOffset: this.segments[this.segments.indexOf(old) + 1]?.baseOffset ?? old.nextOffset, position: 0, nextOffset: old.nextOffset };
      if (!this.closed && isAfter(point, this.flushedPoint)) this.flushedPoint = point;
      if (!this.closed) await this.writeCheckpoint(this.flushedPoint.nextOffset >= 0 ? this.flushedPoint : point);
    } catch (err) {
      this.fail(err, 'sealing segment failed');
    } finally {
      old.refs--;
      // Deleted meanwhile (retention, once it was sealed): the last holder finishes the
      // delete, which may be a reader still holding a slice, not this seal.
      if (old.deleted) {
        if (old.refs === 0) void this.finishDelete(old);
      } else if (!this.closed) this.options.cache.adopt(old);
    }
  }

  /** Flushes everything written so far (every segment with unflushed bytes). */
  private async flushWritten(): Promise<void> {
    const hooks = this.options.hooks;
    if (hooks.beforeFlush !== undefined) await hooks.beforeFlush(this.topic, this.partition);
    if (this.dirSync !== null) await this.dirSync;
    // What this flush covers is fixed here, synchronously: appends made while it runs
    // wait for the next one, so the high watermark never passes an unflushed byte.
    const active = this.active;
    const target = { segmentBaseOffset: active.baseOffset, position: active.writePosition, nextOffset: active.nextOffset };
    // Only the newest segments can hold unflushed bytes: walk back to the first clean one.
    const segs = this.segments;
    let first = segs.length - 1;
    while (first > 0 && !(segs[first - 1].sealed && segs[first - 1].flushPosition >= segs[first - 1].writePosition)) first--;
    const ranges: Array<[Segment, number]> = [];
    for (let i = first; i < segs.length; i++) {
      const s = segs[i];
      if (s.isOpen && s.flushPosition < s.writePosition) ranges.push([s, s.writePosition]);
    }
    for (const [s, upTo] of ranges) await s.flush(upTo);
    if (isAfter(target, this.flushedPoint)) this.flushedPoint = target;
    if (hooks.afterFlush !== undefined) await hooks.afterFlush(this.topic, this.partition);
    if (target.nextOffset > this.flushedOffset) {
      this.flushedOffset = target.nextOffset;
      if (this.options.flush === 'sync') this.wakeWaiters();
    }
  }

  /** A background flush if anything is unflushed (the async policy's timer); settles when done, never rejects (a failure fails the log). */
  flushInBackground(): Promise<void> {
    if (this.closed || this.failed !== null || this.commit.pendingBytes === 0) return Promise.resolve();
    return this.commit.schedule().catch(() => undefined);
  }

  /** Whether a background flush or checkpoint has anything to do (cheap: no I/O). */
  get hasUnflushed(): boolean {
    return this.commit.pendingBytes > 0;
  }

  /** Flushes all written data (any policy); rejects if the log failed. */
  async flush(): Promise<void> {
    this.ensureOpen();
    await this.commit.flushAll();
  }

  /** Under sync and async: flushes, then records the recovery point. Called periodically. */
  async checkpoint(): Promise<void> {
    if (this.closed || this.failed !== null) return;
    await this.commit.flushAll();
    const point = this.flushedPoint;
    if (point.nextOffset < 0 || (this.checkpointedPoint !== null && !isAfter(point, this.checkpointedPoint))) return;
    const segment = this.segments.find((s) => s.baseOffset === point.segmentBaseOffset);
    if (segment === undefined || !segment.isOpen) return;
    await segment.flushIndexes();
    if (!this.closed) await this.writeCheckpoint(point);
  }

  /**
   * Writes the recovery point on the thread pool (never an fsync on the event loop);
   * writes run one at a time in call order, so an older point never lands last.
   */
  private writeCheckpoint(point: RecoveryPoint): Promise<void> {
    // Recovery never looks at segments before the point, so it must not pass a rolled
    // segment that is not sealed (trimmed) yet: its sealOld writes the point later.
    if (this.segments.some((s) => !s.sealed && s.baseOffset < point.segmentBaseOffset)) return Promise.resolve();
    const file = path.join(this.dir, CHECKPOINT_FILE);
    const stamped: RecoveryPoint = { segmentBaseOffset: point.segmentBaseOffset, position: point.position, nextOffset: point.nextOffset, epoch: this.epoch };
    const write = this.checkpointWrites.then(async () => {
      await writeRecoveryPointAsync(file, stamped);
      this.checkpointedPoint = stamped;
      await this.producers.snapshotIfNeeded(this.active.baseOffset, this.active.nextOffset);
    });
    this.checkpointWrites = write.catch(() => undefined);
    return write;
  }

  /** Puts the log in the failed state: every later append and flush gets this error. */
  private fail(err: unknown, what: string): CommitLogError {
    if (this.failed === null) {
      const cause = ioError(err, what, { topic: this.topic, partition: this.partition });
      this.failed = new CommitLogError(ErrorCode.LOG_FAILED,
        `partition ${this.topic}/${this.partition} failed and refuses appends until reopened: ${cause.message}`,
        { topic: this.topic, partition: this.partition, errno: cause.errno, syscall: cause.syscall, cause });
      // No append waiting for a flush may resolve after this (its range may be lost).
      this.commit.fail(this.failed);
    }
    return this.failed;
  }

  // ---- retention ----

  /**
   * Deletes the oldest sealed segments while the partition exceeds retentionBytes or
   * their newest record is older than retentionMs. The active segment is never deleted.
   * A segment held by a reader is renamed *.deleted and removed on release.
   */
  async enforceRetention(now = Date.now()): Promise<{ segments: number; bytes: number }> {
    let removed = 0;
    let bytes = 0;
    if (this.closed) return { segments: 0, bytes: 0 };
    const unlinked: Promise<void>[] = [];
    const { retentionBytes, retentionMs } = this.config;
    let total = this.sizeBytes;
    while (this.segments.length > 1) {
      const oldest = this.segments[0];
      if (!oldest.sealed) break;
      const overSize = retentionBytes >= 0 && total > retentionBytes;
      let expired = false;
      if (!overSize && retentionMs >= 0) {
        if (oldest.maxTimestamp < 0) this.use(oldest);
        expired = oldest.maxTimestamp >= 0 && oldest.maxTimestamp < now - retentionMs;
      }
      if (!overSize && !expired) break;
      this.segments.shift();
      total -= oldest.fileBytes;
      bytes += oldest.fileBytes;
      removed++;
      unlinked.push(this.removeSegment(oldest));
    }
    // The segments left the log above, synchronously; only freeing their files (and the
    // checkpoint write) wait.
    if (removed > 0) unlinked.push(this.writeCheckpointIfBehind());
    await Promise.all(unlinked);
    return { segments: removed, bytes };
  }

  private writeCheckpointIfBehind(): Promise<void> {
    const point = this.checkpointedPoint;
    if (point !== null && point.segmentBaseOffset < this.logStartOffset) {
      const first = this.segments[0];
      return this.writeCheckpoint({ segmentBaseOffset: first.baseOffset, position: 0, nextOffset: first.baseOffset });
    }
    return Promise.resolve();
  }

  /** Resolves once the files are gone (or, for a held segment, renamed *.deleted). */
  private removeSegment(segment: Segment): Promise<void> {
    segment.deleted = true;
    this.options.cache.forget(segment);
    if (segment.refs === 0) return this.finishDelete(segment);
    segment.renameDeleted();
    return Promise.resolve();
  }

  // ---- close ----

  /** Waits for in-flight work, flushes, checkpoints the exact end and closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      // Appends queued behind a roll or an allocation step may start another when they run.
      while (this.blocked !== null) await this.blocked.catch(() => undefined);
      await this.sealing;
      if (this.failed === null) {
        await this.commit.flushAll().catch(() => undefined);
      }
      await this.commit.idle();
      const a = this.active;
      if (this.failed === null) {
        await a.flushIndexes();
        await this.writeCheckpoint({ segmentBaseOffset: a.baseOffset, position: a.writePosition, nextOffset: a.nextOffset });
      }
    } finally {
      await this.checkpointWrites;
      this.closed = true;
      this.wakeWaiters();
      // A preparation still running discards its own result once it sees the log closed
      // (startPreparing); one that finished is discarded here. Never both.
      const preparing = this.preparing;
      const prepared = this.prepared;
      this.preparing = null;
      this.prepared = null;
      if (prepared !== null) discardPrepared(this.dir, prepared);
      else if (preparing !== null) await preparing.catch(() => discardPrepared(this.dir, null));
      for (const s of this.segments) {
        this.options.cache.forget(s);
        if (s.refs === 0) s.closeFiles();
        else s.deleted = s.deleted || false;
      }
    }
  }

  /** Closes and removes the partition's directory (topic deletion). */
  async destroy(): Promise<void> {
    await this.close().catch(() => undefined);
    for (const s of this.segments) {
      if (s.refs > 0) s.deleted = true;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

}

function isAfter(a: RecoveryPoint, b: RecoveryPoint): boolean {
  return a.segmentBaseOffset > b.segmentBaseOffset || (a.segmentBaseOffset === b.segmentBaseOffset && a.position > b.position);
}

function limitsOf(options: PartitionOptions): SegmentLimits {
  const { config } = options;
  return { segmentBytes: config.segmentBytes, indexIntervalBytes: config.indexIntervalBytes, onIndexRebuilt: options.onIndexRebuilt, zeroFill: options.flush === 'sync', writeThrough: options.flush === 'sync' };
}

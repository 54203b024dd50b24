/**
 * One segment of a partition: the `.log` file holding record batches back to back from
 * position 0, written through a MAP_SHARED mapping, plus its consume queue and time
 * index. Named by its base offset (file-names.ts).
 *
 * Positions make durability visible (RocketMQ's wrote/committed/flushed):
 *   writePosition   bytes copied into the mapping (visible to readers)
 *   flushPosition   bytes known to be on disk (msync returned)
 *   allocatedBytes  bytes from 0 with disk space reserved (posix_fallocate); no byte at
 *                   or past it is ever written, so a full disk is ERR_DISK_FULL from an
 *                   allocation step, never a SIGBUS in a page fault
 * The active segment's file has the logical size `segmentBytes` (ftruncate: sparse, so
 * it costs no disk) and is mapped at that size; space is allocated ahead of the writer
 * in growing steps on the thread pool (`growAhead`, `ensureAllocated`). Bytes past
 * writePosition read as zeros (holes or allocated zeros) and a batch length of 0 marks
 * the end of data. Under the sync policy:
 *   - batches are written with pwritev on the descriptor (`writeThrough`), not stored
 *     through the mapping: a store through a shared mapping write-protect-faults on
 *     every page the last msync cleaned, and msync must then clean the page tables
 *     again; pwrite dirties just the page-cache pages (the mapping shows the same pages,
 *     so readers are unchanged). The flush is still msync of the range.
 *   - while appends are small, a step is also written with zeros, one page per write,
 *     and fdatasynced (through the flush chain), so its extents are written, not
 *     unwritten: later flushes of data then convert no extents (no journal commit each;
 *     RocketMQ's warm-up, on disk). Large appends skip the zeros (ZERO_FILL_MAX_APPEND_BYTES).
 * A sealed segment is truncated to writePosition and is read-only.
 *
 * Concurrency: the JS thread is the only writer; msync runs on the thread pool over
 * bytes already written. `acquire`/`release` count holders (readers, transfers):
 * retention marks a held segment deleted and it is closed and unlinked on last release.
 * Files of a closed sealed segment are reopened on demand (see SegmentCache).
 *
 * The index side (indexing batches, checking the indexes against the log and
 * rebuilding them from it) lives in the base class, SegmentIndexes (segment-indexes.ts);
 * the warm-up window ahead of the writer in warm-ahead.ts.
 *
 * Crash: batches are written before their index entries; everything past the recovery
 * point is re-verified by recovery (recovery.ts), which may truncate a torn tail.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { CommitLogError, ErrorCode, ioError } from '../errors.js';
import * as native from '../native.js';
import { ConsumeQueue } from '../index/consume-queue.js';
import { TimeIndex } from '../index/time-index.js';
import { DELETED_SUFFIX, segmentPaths } from './file-names.js';
import { LEADER_EPOCH_POS } from './batch.js';
import { SegmentIndexes, maxCqEntries, maxTixEntries } from './segment-indexes.js';
import { WarmAhead } from './warm-ahead.js';

export { corruptError, maxCqEntries, maxTixEntries } from './segment-indexes.js';
export { WARM_AHEAD_BYTES, WARM_CHUNK_BYTES } from './warm-ahead.js';

const ftruncate = promisify(fs.ftruncate);

export interface SegmentLimits {
  segmentBytes: number;
  indexIntervalBytes: number;
  /** Write allocation steps with zeros and fdatasync them (see the head). */
  zeroFill?: boolean;
  /**
   * Write appended batches with pwrite on the descriptor instead of storing them through
   * the mapping (the sync policy: see the head). Readers still read the mapping, which
   * shows the same page-cache pages.
   */
  writeThrough?: boolean;
  /** Told when a sealed segment's indexes had to be rebuilt from its log. */
  onIndexRebuilt?: (path: string) => void;
}

/** The first allocation step of a segment; each later step doubles, up to the maximum. */
export const MIN_STEP_BYTES = 64 * 1024;
export const MAX_STEP_BYTES = 8 * 1024 * 1024;
/** Zero-filled steps are fdatasynced in the flush chain: kept smaller, so no flush waits long behind one. */
export const MAX_ZERO_STEP_BYTES = 2 * 1024 * 1024;
/**
 * Under zeroFill, a step is zero-filled only while the last batch appended was at most
 * this big. For small appends the zeros save each flush a journal commit (an extent
 * conversion); for large ones that commit is spread over many bytes while the zeros
 * double the bytes written, and the writer waits for them (measured, bench:append
 * sync 1 KiB x 1000: 0.3-0.5x of write + fdatasync with zero-filled steps, 0.7-1.0x
 * without).
 */
export const ZERO_FILL_MAX_APPEND_BYTES = 64 * 1024;

function roundUpToPage(n: number): number {
  return Math.ceil(n / native.pageSize) * native.pageSize;
}

export class Segment extends SegmentIndexes {
  flushPosition: number;
  /** Active: bytes from 0 with disk space reserved; no write reaches past it. */
  allocatedBytes = 0;
  deleted = false;
  refs = 0;
  /**
   * Stamped into the partition leader epoch of every batch appended (outside the CRC,
   * like the base offset): the partition's recovery epoch, which grows at every
   * recovery, so the scanner can tell a batch of this life from one left by an earlier.
   */
  epoch = 0;

  private fd = -1;
  private mapping: ArrayBuffer | null = null;
  private buf: Buffer | null = null;
  private lentViews = false;
  /** Pages faulted in ahead of the writer (warm-up). */
  private readonly warm = new WarmAhead();
  /**
   * Every msync and fdatasync of this file runs through this chain, one at a time. A
   * writeback error is reported once per open file, so a second caller could see
   * success for data the first one was told was lost: the first failure is kept here
   * and every later flush of the file rejects with it.
   */
  private flushChain: Promise<void> = Promise.resolve();
  private flushError: unknown = null;
  /** The allocation step in flight (at most one), and the size of the last one. */
  private growing: Promise<void> | null = null;
  private stepBytes = 0;
  /** st_blocks * 512 of the active log at open: space an earlier life allocated past its data. */
  private blocksAtOpen = 0;
  /** Index bytes on disk of a sealed segment whose indexes are closed (diskBytes). */
  private closedIndexBytes = -1;
  private scratchBuf: Buffer | null = null;
  /** Bytes of the last batch appended (0 before the first): decides whether a step is zero-filled. */
  private lastAppendBytes = 0;

  constructor(dir: string, baseOffset: number, limits: SegmentLimits, sealed: boolean, nextOffset: number, fileBytes: number) {
    super(dir, baseOffset, limits, sealed, nextOffset, fileBytes);
    this.flushPosition = this.writePosition;
  }

  get isOpen(): boolean {
    return this.buf !== null;
  }

  /** The mapping as a Buffer (views handed out from it are marked as lent). */
  override get data(): Buffer {
    if (this.buf === null) throw this.closedError();
    return this.buf;
  }

  get fdForTransfer(): number {
    if (this.fd < 0) throw this.closedError();
    return this.fd;
  }

  get segmentBytesLimit(): number {
    return this.limits.segmentBytes;
  }

  get bytesFree(): number {
    return this.fileBytes - this.writePosition;
  }

  /** Bytes that can be written now without an allocation step. */
  get allocatedFree(): number {
    return this.allocatedBytes - this.writePosition;
  }

  /**
   * Disk space the segment's files take (allocation, not the logical size): the log's
   * allocated bytes while active, its data once sealed, plus both indexes.
   */
  get diskBytes(): number {
    const log = this.sealed ? this.fileBytes : Math.max(this.allocatedBytes, this.writePosition, this.blocksAtOpen);
    if (this.cqIndex !== null && this.tixIndex !== null) return log + this.cqIndex.fileBytes + this.tixIndex.fileBytes;
    if (this.closedIndexBytes < 0) {
      const paths = segmentPaths(this.dir, this.baseOffset);
      this.closedIndexBytes = fileSize(paths.cq) + fileSize(paths.tix);
    }
    return log + this.closedIndexBytes;
  }

  /**
   * Opens the files. Active: the log mapped read-write at `fileBytes` (extended with
   * ftruncate if shorter: a sparse tail, no disk space; see allocatedBytes). Sealed:
   * mapped read-only at its size.
   */
  open(writable: boolean): void {
    if (this.isOpen) return;
    const paths = segmentPaths(this.dir, this.baseOffset);
    this.logPath = paths.log;
    try {
      this.fd = fs.openSync(paths.log, writable ? fs.constants.O_RDWR : fs.constants.O_RDONLY);
      const stat = fs.fstatSync(this.fd);
      const size = stat.size;
      if (writable) this.blocksAtOpen = stat.blocks * 512;
      if (writable && size < this.fileBytes) fs.ftruncateSync(this.fd, this.fileBytes);
      if (!writable || size > this.fileBytes) this.fileBytes = Math.max(size, writable ? this.fileBytes : 0);
      if (this.fileBytes > 0) this.mapping = native.mmap(this.fd, this.fileBytes, 0, writable, { path: paths.log });
      this.buf = this.mapping === null ? Buffer.alloc(0) : Buffer.from(this.mapping);
      const { segmentBytes, indexIntervalBytes } = this.limits;
      const cqMax = Math.max(maxCqEntries(Math.max(segmentBytes, this.fileBytes)), 1);
      // A missing index of a sealed segment is created empty here and rebuilt below.
      this.cqIndex = ConsumeQueue.open(paths.cq, cqMax, writable || !fs.existsSync(paths.cq));
      this.tixIndex = TimeIndex.open(paths.tix, maxTixEntries(Math.max(segmentBytes, this.fileBytes), indexIntervalBytes), writable || !fs.existsSync(paths.tix));
    } catch (err) {
      this.closeFiles();
      throw ioError(err, 'opening segment failed', { path: paths.log });
    }
    if (!writable) {
      try {
        this.ensureSealedIndexes();
      } catch (err) {
        this.closeFiles();
        throw err;
      }
    }
  }

  /** Makes an untrimmed or sealed segment the active one again (recovery). */
  reopenActive(): void {
    this.closeFiles();
    this.sealed = false;
    this.fileBytes = Math.max(this.limits.segmentBytes, this.writePosition);
    this.open(true);
  }

  /** Adopts files already open and mapped (an allocated-ahead segment just renamed). */
  adopt(fd: number, mapping: ArrayBuffer, cq: ConsumeQueue, tix: TimeIndex, allocatedBytes: number, stepBytes: number): void {
    this.fd = fd;
    this.mapping = mapping;
    this.buf = Buffer.from(mapping);
    this.fileBytes = mapping.byteLength;
    this.cqIndex = cq;
    this.tixIndex = tix;
    this.allocatedBytes = allocatedBytes;
    this.stepBytes = stepBytes;
  }

  /**
   * After recovery placed writePosition: the bytes before it hold data, so they are
   * allocated; everything past it is allocated by steps from here on.
   */
  resumeAllocation(): void {
    this.allocatedBytes = Math.min(this.fileBytes, this.writePosition);
    this.stepBytes = 0;
  }

  /**
   * Starts the next allocation step on the thread pool when less than half a step is
   * left ahead of the writer (or nothing at all is). Failures only cost the head start:
   * the append that needs the space retries and reports ERR_DISK_FULL.
   */
  growAhead(): void {
    this.cqIndex?.growAhead();
    this.tixIndex?.growAhead();
    if (this.growing !== null || this.sealed || this.fd < 0 || this.allocatedBytes >= this.fileBytes) return;
    if (this.allocatedBytes - this.writePosition >= Math.max(MIN_STEP_BYTES, this.stepBytes) / 2) return;
    this.startStep(this.writePosition + 1).catch(() => undefined);
  }

  /**
   * Resolves once [0, end) is allocated; rejects with ERR_DISK_FULL (or ERR_IO) when a
   * step fails. Nothing is written meanwhile, so a failure leaves the segment as it was.
   */
  async ensureAllocated(end: number): Promise<void> {
    while (end > this.allocatedBytes) {
      if (end > this.fileBytes) throw new CommitLogError(ErrorCode.INVALID_ARGUMENT, `${end} bytes do not fit the segment of ${this.fileBytes} bytes`, { path: this.logPath });
      if (this.fd < 0) throw this.closedError();
      if (this.growing !== null) {
        await this.growing;
        continue;
      }
      try {
        await this.startStep(end);
      } catch (err) {
        // A full disk may still hold what this append needs, if not a whole step.
        if (!(err instanceof CommitLogError && err.code === ErrorCode.DISK_FULL)) throw err;
        await this.startStep(end, true);
      }
    }
  }

  /** One allocation step covering at least [allocatedBytes, end). */
  private startStep(end: number, minimal = false): Promise<void> {
    const from = this.allocatedBytes;
    // Zeros only pay while appends are small (see ZERO_FILL_MAX_APPEND_BYTES).
    const zeroFill = this.limits.zeroFill === true && this.lastAppendBytes <= ZERO_FILL_MAX_APPEND_BYTES;
    const maxStep = zeroFill ? MAX_ZERO_STEP_BYTES : MAX_STEP_BYTES;
    const step = minimal ? 0 : Math.min(maxStep, Math.max(MIN_STEP_BYTES, this.stepBytes * 2));
    const to = Math.min(this.fileBytes, Math.max(roundUpToPage(end), roundUpToPage(from + step)));
    const fd = this.fd;
    const ctx = { path: this.logPath };
    const run = (async () => {
      // Written zeros turn the unwritten extents into written ones once on disk, so the
      // data msyncs that follow change no extent (no journal commit each). They are
      // written one page per write, in the same pool job: a big write would leave large
      // page-cache folios, and every store through the mapping would then dirty (and
      // the next msync write back) a whole folio instead of one page.
      await native.fallocateAsync(fd, from, to - from, ctx, zeroFill);
      // The fdatasync runs in the flush chain: the one path that sees writeback errors.
      if (zeroFill) await this.serialised(() => native.fdatasync(fd, ctx));
    })();
    const growing = run.then(
      () => {
        if (to > this.allocatedBytes) this.allocatedBytes = to;
        if (!minimal) this.stepBytes = to - from;
      },
    ).finally(() => {
      if (this.growing === growing) this.growing = null;
    });
    this.growing = growing;
    return growing;
  }

  /**
   * Copies a complete batch (its base offset already set) to writePosition and indexes
   * it. The caller checked that it fits and computed its header fields.
   */
  appendBatch(batch: Uint8Array, baseOffset: number, lastOffsetDelta: number, maxTimestamp: number): void {
    const buf = this.buf!;
    const position = this.writePosition;
    this.ensureWritableRange(position + batch.byteLength);
    // Index space first: a full disk is an error before any byte is written.
    this.cqIndex!.ensureRoom();
    this.tixIndex!.ensureRoom();
    if (this.limits.writeThrough === true) {
      // The patched fields lie in the first 16 bytes: those from a copy, the rest from
      // the caller's buffer, in one pwritev.
      const head = this.scratch(PATCHED_HEAD_BYTES);
      head.set(batch.subarray(0, PATCHED_HEAD_BYTES));
      patchHead(head, baseOffset, this.epoch);
      this.writeFd([head.subarray(0, PATCHED_HEAD_BYTES), batch.subarray(PATCHED_HEAD_BYTES)], position);
    } else {
      buf.set(batch, position);
      // The base offset lies outside the CRC: assigned here, in the mapping, not in the caller's buffer.
      patchHead(buf, baseOffset, this.epoch, position);
    }
    this.indexBatch(baseOffset, position, batch.byteLength, maxTimestamp);
    this.lastAppendBytes = batch.byteLength;
    this.writePosition = position + batch.byteLength;
    this.nextOffset = baseOffset + lastOffsetDelta + 1;
  }

  /**
   * Like appendBatch, for a batch `encode` writes straight into the mapping at
   * writePosition (`target` is exactly `size` bytes, base offset included).
   */
  appendEncoded(size: number, encode: (target: Buffer) => void, baseOffset: number, lastOffsetDelta: number, maxTimestamp: number): void {
    const position = this.writePosition;
    this.ensureWritableRange(position + size);
    this.cqIndex!.ensureRoom();
    this.tixIndex!.ensureRoom();
    if (this.limits.writeThrough === true) {
      const target = this.scratch(size).subarray(0, size);
      encode(target);
      target.writeInt32BE(this.epoch, LEADER_EPOCH_POS);
      this.writeFd([target], position);
    } else {
      encode(this.buf!.subarray(position, position + size));
      this.buf!.writeInt32BE(this.epoch, position + LEADER_EPOCH_POS);
    }
    this.indexBatch(baseOffset, position, size, maxTimestamp);
    this.lastAppendBytes = size;
    this.writePosition = position + size;
    this.nextOffset = baseOffset + lastOffsetDelta + 1;
  }

  /** A reusable buffer of at least `size` bytes (write-through encoding); kept while at most SCRATCH_KEEP_BYTES. */
  private scratch(size: number): Buffer {
    let s = this.scratchBuf;
    if (s === null || s.length < size) {
      s = Buffer.allocUnsafe(Math.max(size, 4096));
      if (s.length <= SCRATCH_KEEP_BYTES) this.scratchBuf = s;
    }
    return s;
  }

  /**
   * pwritev of `parts` at `position`, on the calling thread like a store into the
   * mapping (the bytes land in the same page-cache pages). The range is allocated, so
   * a short write is an I/O error: the batch is not indexed and writePosition stays.
   */
  private writeFd(parts: Uint8Array[], position: number): void {
    let total = 0;
    for (const p of parts) total += p.byteLength;
    for (let done = 0; ;) {
      const n = fs.writevSync(this.fd, parts, position + done);
      done += n;
      if (done >= total) return;
      if (n <= 0) throw ioError(Object.assign(new Error('short write'), { code: 'EIO', syscall: 'pwritev' }), 'append failed', { path: this.logPath });
      parts = skipBytes(parts, n);
    }
  }

  /** Never a byte past the allocation (the caller waited for ensureAllocated). */
  private ensureWritableRange(end: number): void {
    if (end > this.allocatedBytes) {
      throw new CommitLogError(ErrorCode.INVALID_ARGUMENT, `${this.logPath}: write up to ${end} past the allocated ${this.allocatedBytes} bytes`, { path: this.logPath });
    }
  }

  /** Advances the warm-up window ahead of the writer (warm-ahead.ts); active segments only. */
  maybeWarmAhead(): void {
    if (this.sealed || this.mapping === null) return;
    this.warm.advance(this.mapping, this.writePosition, this.allocatedBytes, this.logPath);
  }

  /** Marks [0, upTo) as already warm (an allocated-ahead segment warmed its start). */
  markWarm(upTo: number): void {
    this.warm.warmedUpTo = upTo;
  }

  /** A view of [position, position + length) of the log; marks the mapping as lent. */
  view(position: number, length: number): Buffer {
    this.lentViews = true;
    return this.data.subarray(position, position + length);
  }

  /**
   * msync of [flushPosition, upTo) on the thread pool; advances flushPosition. The one
   * way data of this file is flushed (group commit and seal alike): serialised, and
   * failing for good after the first failure.
   */
  flush(upTo: number): Promise<void> {
    return this.serialised(async () => {
      const from = this.flushPosition;
      if (upTo <= from || this.mapping === null) return;
      await native.msync(this.mapping, from, upTo - from, { path: this.logPath });
      if (upTo > this.flushPosition) this.flushPosition = upTo;
    });
  }

  /** Runs `step` after every flush before it; rejects with the first flush failure for good. */
  private serialised(step: () => Promise<void>): Promise<void> {
    const run = this.flushChain.then(async () => {
      if (this.flushError !== null) throw this.flushError;
      try {
        await step();
      } catch (err) {
        this.flushError = err;
        throw err;
      }
    });
    this.flushChain = run.catch(() => undefined);
    return run;
  }

  /** msync of the index entries written since their last flush. */
  async flushIndexes(): Promise<void> {
    await this.cq.flush();
    await this.tix.flush();
  }

  /**
   * Seals the segment: a final time-index entry, the log and indexes truncated to the
   * data they hold and fdatasynced. The caller flushed the data first.
   */
  async seal(): Promise<void> {
    if (this.sealed) return;
    const cq = this.cq;
    if (cq.entries > 0) {
      const last = cq.entries - 1;
      this.tix.maybeAppend(this.maxTimestamp, cq.relativeOffsetAt(last), cq.positionAt(last), true);
    }
    await this.flush(this.writePosition);
    // A warm-up still touching pages past writePosition would fault on the truncated file
    // (SIGBUS); an allocation step in flight would extend it again.
    await this.warm.warmed;
    await this.growing?.catch(() => undefined);
    await this.serialised(async () => {
      try {
        await ftruncate(this.fd, this.writePosition);
      } catch (err) {
        throw ioError(err, 'sealing segment failed', { path: this.logPath });
      }
      await native.fdatasync(this.fd, { path: this.logPath });
    });
    await cq.flush();
    await cq.trim();
    await this.tix.flush();
    await this.tix.trim();
    this.fileBytes = this.writePosition;
    this.allocatedBytes = this.writePosition;
    this.sealed = true;
  }

  /** Closes files and mappings. A mapping views were lent from is left to the GC. */
  closeFiles(): void {
    if (this.cqIndex !== null && this.tixIndex !== null) this.closedIndexBytes = this.cqIndex.fileBytes + this.tixIndex.fileBytes;
    if (this.mapping !== null) {
      // munmap refuses (EBUSY) while a warm-up runs over the mapping: then the GC unmaps it.
      if (!this.lentViews && !this.warm.warming) native.munmap(this.mapping, { path: this.logPath });
      this.mapping = null;
    }
    this.buf = null;
    this.lentViews = false;
    if (this.fd >= 0) {
      const fd = this.fd;
      // An allocation step in flight still uses the descriptor: closing it now could let
      // the step write zeros into whatever file reuses the number.
      if (this.growing !== null) void this.growing.catch(() => undefined).then(() => fs.closeSync(fd));
      else fs.closeSync(fd);
      this.fd = -1;
    }
    this.cqIndex?.close();
    this.cqIndex = null;
    this.tixIndex?.close();
    this.tixIndex = null;
  }

  /** Renames the files to *.deleted: retention removed the segment while a reader holds it. */
  renameDeleted(): void {
    const paths = segmentPaths(this.dir, this.baseOffset);
    for (const file of [paths.log, paths.cq, paths.tix]) {
      try {
        fs.renameSync(file, file + DELETED_SUFFIX);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, 'renaming deleted segment failed', { path: file });
      }
    }
  }

  /**
   * unlinkFiles on the thread pool: freeing a large file's blocks can take tens of
   * milliseconds, which retention must not spend on the event loop.
   */
  async unlinkFilesAsync(): Promise<void> {
    await Promise.all(this.allFileNames().map((file) => fs.promises.unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw ioError(err, 'deleting segment failed', { path: file });
    })));
  }

  /** Removes the segment's files, under either name (the segment is closed). */
  unlinkFiles(): void {
    for (const file of this.allFileNames()) {
      try {
        fs.unlinkSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(err, 'deleting segment failed', { path: file });
      }
    }
  }

  /** The .log, .cq and .tix, under their own names and renamed *.deleted. */
  private allFileNames(): string[] {
    const paths = segmentPaths(this.dir, this.baseOffset);
    return [paths.log, paths.cq, paths.tix].flatMap((base) => [base, base + DELETED_SUFFIX]);
  }
}


/** The batch header bytes appendBatch patches (base offset, 0-7; leader epoch, 12-15). */
const PATCHED_HEAD_BYTES = LEADER_EPOCH_POS + 4;
/** A write-through scratch buffer larger than this is not kept between appends. */
const SCRATCH_KEEP_BYTES = 4 * 1024 * 1024;

/** Stamps the base offset and leader epoch into the batch header at `at` of `buf`. */
function patchHead(buf: Buffer, baseOffset: number, epoch: number, at = 0): void {
  buf.writeUInt32BE(Math.floor(baseOffset / 4294967296), at);
  buf.writeUInt32BE(baseOffset >>> 0, at + 4);
  buf.writeInt32BE(epoch, at + LEADER_EPOCH_POS);
}

/** `parts` without their first `n` bytes. */
function skipBytes(parts: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    if (n >= p.byteLength) {
      n -= p.byteLength;
      continue;
    }
    out.push(n > 0 ? p.subarray(n) : p);
    n = 0;
  }
  return out;
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

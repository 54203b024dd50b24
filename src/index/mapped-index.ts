/**
 * A fixed-width index file written through a MAP_SHARED mapping: the base of the
 * consume queue and the time index.
 *
 * Layout: `entryBytes`-wide entries from position 0, host byte order (little-endian
 * on every platform we build for; checked at load). Unused space reads as zeros.
 * The mapping reserves room for `maxEntries` (address space only); the file itself
 * grows by posix_fallocate in doubling steps (one page first, at most GROW_MAX_BYTES),
 * ahead of the writer on the thread pool (`growAhead`) and, if the writer catches up,
 * on the spot (`ensureRoom`), so a write never touches a page past the end of the file
 * (SIGBUS), a full disk is ERR_DISK_FULL at growth, and an index costs disk in
 * proportion to what it holds. No file descriptor is kept open: the file is opened for
 * a growth step or a trim only, so a partition costs one descriptor (its .log).
 * When its segment is sealed the file is truncated to the entries it holds.
 *
 * Concurrency: one writer (the partition's append path) and any number of readers on
 * the JS thread; msync runs on the thread pool over a range already written.
 * Crash: not checksummed; derived from the log and rebuilt by recovery when missing,
 * short or inconsistent. Entries are written after the batch they describe.
 */
import fs from 'node:fs';
import { promisify } from 'node:util';
import os from 'node:os';
import { ioError, invalidArgument } from '../errors.js';
import * as native from '../native.js';

if (os.endianness() !== 'LE') throw new Error('commitlog: index files are little-endian; big-endian hosts are not supported');

const GROW_MAX_BYTES = 256 * 1024;
const ftruncate = promisify(fs.ftruncate);
const fdatasync = promisify(fs.fdatasync);

export class MappedIndex {
  path: string;
  readonly entryBytes: number;
  readonly writable: boolean;
  /** Entries in use. */
  entries = 0;
  protected mapping: ArrayBuffer | null = null;
  private fd = -1;
  private capacityBytes: number;
  private allocatedBytes = 0;
  private flushedEntries = 0;
  /** The growth step in flight on the thread pool, if any. */
  private growing: Promise<void> | null = null;

  /**
   * Opens (creating when writable and missing) the index at `file`, reserving room for
   * `maxEntries`. The caller then sets `entries` (see `countEntries`).
   */
  protected constructor(file: string, entryBytes: number, maxEntries: number, writable: boolean) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw invalidArgument(`maxEntries must be >= 1, got ${maxEntries}`);
    this.path = file;
    this.entryBytes = entryBytes;
    this.writable = writable;
    try {
      this.fd = fs.openSync(file, writable ? fs.constants.O_RDWR | fs.constants.O_CREAT : fs.constants.O_RDONLY, 0o644);
      this.allocatedBytes = fs.fstatSync(this.fd).size;
    } catch (err) {
      if (this.fd >= 0) fs.closeSync(this.fd);
      throw ioError(err, 'opening index failed', { path: file });
    }
    const page = native.pageSize;
    const wanted = writable ? Math.max(maxEntries * entryBytes, this.allocatedBytes) : this.allocatedBytes;
    this.capacityBytes = Math.ceil(wanted / page) * page;
    try {
      if (this.capacityBytes > 0) this.mapping = native.mmap(this.fd, this.capacityBytes, 0, writable, { path: file });
      fs.closeSync(this.fd);
      this.fd = -1;
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Entries the file could hold as mapped now. */
  get capacity(): number {
    return Math.floor(this.capacityBytes / this.entryBytes);
  }

  get fileBytes(): number {
    return this.allocatedBytes;
  }

  /** Makes sure one more entry can be written without touching unallocated space. */
  ensureRoom(): void {
    const end = (this.entries + 1) * this.entryBytes;
    if (end <= this.allocatedBytes) return;
    if (!this.writable) throw invalidArgument(`index ${this.path} is read-only`);
    if (end > this.capacityBytes) throw invalidArgument(`index ${this.path} is full at ${this.entries} entries`);
    // The writer caught up with the step ahead (or none ran): a small step, here.
    const grow = this.nextStep(end);
    const fd = this.openForWrite();
    try {
      native.fallocate(fd, this.allocatedBytes, grow, { path: this.path });
    } finally {
      fs.closeSync(fd);
    }
    this.allocatedBytes += grow;
  }

  /** Bytes of the next growth step: doubling from one page, at least up to `end`. */
  private nextStep(end: number): number {
    const doubled = Math.min(GROW_MAX_BYTES, Math.max(native.pageSize, this.allocatedBytes));
    return Math.min(Math.max(doubled, Math.ceil((end - this.allocatedBytes) / native.pageSize) * native.pageSize), this.capacityBytes - this.allocatedBytes);
  }

  /**
   * Starts a growth step on the thread pool when less than half a step of room is left.
   * A failure only loses the head start (ensureRoom then reports ERR_DISK_FULL).
   */
  growAhead(): void {
    if (!this.writable || this.growing !== null || this.mapping === null) return;
    const used = this.entries * this.entryBytes;
    const room = this.allocatedBytes - used;
    if (this.allocatedBytes >= this.capacityBytes || room * 2 >= Math.min(GROW_MAX_BYTES, Math.max(native.pageSize, this.allocatedBytes))) return;
    const from = this.allocatedBytes;
    const grow = this.nextStep(used + this.entryBytes);
    const file = this.path;
    const growing = (async () => {
      const handle = await fs.promises.open(file, fs.constants.O_RDWR);
      try {
        await native.fallocateAsync(handle.fd, from, grow, { path: file });
      } finally {
        await handle.close();
      }
      // ensureRoom may have grown it meanwhile: allocation only ever moves forward.
      if (from + grow > this.allocatedBytes) this.allocatedBytes = from + grow;
    })().catch(() => undefined).finally(() => {
      if (this.growing === growing) this.growing = null;
    });
    this.growing = growing;
  }

  private openForWrite(): number {
    try {
      return fs.openSync(this.path, fs.constants.O_RDWR);
    } catch (err) {
      throw ioError(err, 'opening index failed', { path: this.path });
    }
  }

  /** Drops entries from `count` on, zeroing them in the file. */
  truncateTo(count: number): void {
    if (count >= this.entries) return;
    if (this.mapping !== null) new Uint8Array(this.mapping, count * this.entryBytes, (this.entries - count) * this.entryBytes).fill(0);
    this.entries = count;
    if (this.flushedEntries > count) this.flushedEntries = count;
  }

  /** Drops every entry. */
  reset(): void {
    if (this.mapping !== null) new Uint8Array(this.mapping, 0, Math.min(this.allocatedBytes, this.capacityBytes)).fill(0);
    this.entries = 0;
    this.flushedEntries = 0;
  }

  /** msync of the entries written since the last flush (thread pool). */
  async flush(): Promise<void> {
    if (this.mapping === null || this.entries <= this.flushedEntries) return;
    const from = this.flushedEntries * this.entryBytes;
    const upTo = this.entries;
    await native.msync(this.mapping, from, upTo * this.entryBytes - from, { path: this.path });
    if (this.flushedEntries < upTo) this.flushedEntries = upTo;
  }

  flushSync(): void {
    if (this.mapping === null || this.entries <= this.flushedEntries) return;
    const from = this.flushedEntries * this.entryBytes;
    native.msyncSync(this.mapping, from, this.entries * this.entryBytes - from, { path: this.path });
    this.flushedEntries = this.entries;
  }

  /**
   * Truncates the file to the entries in use and fdatasyncs it (thread pool), when the
   * segment is sealed. No entry may be appended afterwards.
   */
  async trim(): Promise<void> {
    if (!this.writable) return;
    await this.growing;
    const bytes = this.entries * this.entryBytes;
    try {
      const handle = await fs.promises.open(this.path, fs.constants.O_RDWR);
      try {
        await ftruncate(handle.fd, bytes);
        await fdatasync(handle.fd);
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw ioError(err, 'trimming index failed', { path: this.path });
    }
    this.allocatedBytes = bytes;
  }

  /** trim() on the calling thread: for the rare index rebuild of a sealed segment. */
  trimSync(): void {
    if (!this.writable) return;
    const bytes = this.entries * this.entryBytes;
    try {
      this.flushSync();
      const fd = fs.openSync(this.path, fs.constants.O_RDWR);
      try {
        fs.ftruncateSync(fd, bytes);
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      throw ioError(err, 'trimming index failed', { path: this.path });
    }
    this.allocatedBytes = bytes;
  }

  /** Renames the file (an allocated-ahead index taking its segment's name). */
  rename(to: string): void {
    try {
      fs.renameSync(this.path, to);
    } catch (err) {
      throw ioError(err, 'renaming index failed', { path: this.path });
    }
    this.path = to;
  }

  close(): void {
    if (this.mapping !== null) {
      native.munmap(this.mapping, { path: this.path });
      this.mapping = null;
    }
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }
}

/**
 * A fixed-width index file written through a MAP_SHARED mapping: the base of the
 * consume queue and the time index.
 *
 * Layout: `entryBytes`-wide entries from position 0, host byte order (little-endian
 * on every platform we build for; checked at load). Unused space reads as zeros.
 * The mapping reserves room for `maxEntries` (address space only); the file itself
 * grows by posix_fallocate in chunks ahead of the writer, so a write never touches a
 * page past the end of the file (SIGBUS) and a full disk is ERR_DISK_FULL at growth.
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

const GROW_BYTES = 256 * 1024;
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
      if (!writable) {
        fs.closeSync(this.fd);
        this.fd = -1;
      }
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
    const grow = Math.min(Math.max(GROW_BYTES, end - this.allocatedBytes), this.capacityBytes - this.allocatedBytes);
    native.fallocate(this.fd, this.allocatedBytes, grow, { path: this.path });
    this.allocatedBytes += grow;
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
    if (this.fd < 0) return;
    const bytes = this.entries * this.entryBytes;
    try {
      await ftruncate(this.fd, bytes);
      await fdatasync(this.fd);
    } catch (err) {
      throw ioError(err, 'trimming index failed', { path: this.path });
    }
    this.allocatedBytes = bytes;
  }

  /** trim() on the calling thread: for the rare index rebuild of a sealed segment. */
  trimSync(): void {
    if (this.fd < 0) return;
    const bytes = this.entries * this.entryBytes;
    try {
      this.flushSync();
      fs.ftruncateSync(this.fd, bytes);
      fs.fdatasyncSync(this.fd);
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

import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as native from '../src/native.js';
import { CommitLogError, ErrorCode } from '../src/errors.js';
import { CRC_POS, encodeBatch, setBaseOffset } from '../src/log/batch.js';
import type { ProducerRecord } from '../src/log/record.js';
import { tmpDir } from './helpers/tmp.js';

const invalidArgument = { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT };

/** Reference CRC32C (Castagnoli, reflected polynomial 0x82f63b78), bit by bit through a table. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32cJs(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC32C_TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** A file of `bytes` zeros and an fd open read-write on it (closed after the test). */
function scratchFile(t: import('ava').ExecutionContext, bytes: number, name = 'data.bin'): { file: string; fd: number } {
  const file = path.join(tmpDir(t), name);
  fs.writeFileSync(file, Buffer.alloc(bytes));
  const fd = fs.openSync(file, 'r+');
  t.teardown(() => fs.closeSync(fd));
  return { file, fd };
}

// ---------------------------------------------------------------- crc32c

test('crc32c of "123456789" is the Castagnoli check value 0xe3069283', (t) => {
  t.is(native.crc32c(Buffer.from('123456789')), 0xe3069283);
  t.is(crc32cJs(Buffer.from('123456789')), 0xe3069283);
});

test('crc32c of an empty range is 0', (t) => {
  t.is(native.crc32c(Buffer.alloc(0)), 0);
  t.is(native.crc32c(Buffer.from('abc'), 1, 1), 0);
});

test('crc32c of a 1 MiB random buffer equals a pure-JS table implementation, whole and for sub-ranges', (t) => {
  const data = crypto.randomBytes(1024 * 1024);
  t.is(native.crc32c(data), crc32cJs(data));
  // Unaligned starts and odd lengths exercise the hardware path's head and tail handling.
  for (const [start, end] of [[1, 8], [3, 4099], [7, 65543], [1000, 1000 + 1], [12345, data.length]] as [number, number][]) {
    t.is(native.crc32c(data, start, end), crc32cJs(data.subarray(start, end)), `range [${start}, ${end})`);
  }
  t.is(typeof native.crc32cHardware, 'boolean');
});

test('crc32c equals the pure-JS table for every length around the three-lane blocks (12 KiB) and at every start alignment', (t) => {
  const data = crypto.randomBytes(64 * 1024);
  const lengths = new Set<number>();
  for (const block of [0, 1, 2, 3, 4, 5]) {
    for (let d = -17; d <= 17; d++) lengths.add(block * 12288 + d);
  }
  for (let i = 0; i < 200; i++) lengths.add(crypto.randomInt(0, 60 * 1024));
  const wrong: string[] = [];
  for (const length of lengths) {
    if (length < 0) continue;
    for (const start of [0, 1, 3, 7, 8, 13]) {
      if (start + length > data.length) continue;
      const want = crc32cJs(data.subarray(start, start + length));
      if (native.crc32c(data, start, start + length) !== want) wrong.push(`[${start}, ${start + length})`);
    }
  }
  t.deepEqual(wrong, []);
  // All zeros and all ones over several blocks: no lane's register may be lost.
  for (const fill of [0x00, 0xff]) {
    const b = Buffer.alloc(5 * 12288 + 11, fill);
    t.is(native.crc32c(b), crc32cJs(b), `fill ${fill}`);
  }
});

test('crc32c with a range outside the data throws ERR_INVALID_ARGUMENT', (t) => {
  const data = Buffer.alloc(16);
  t.throws(() => native.crc32c(data, 0, 17), invalidArgument);
  t.throws(() => native.crc32c(data, 8, 4), invalidArgument);
  t.throws(() => native.crc32c(data, -1, 4), invalidArgument);
  t.throws(() => native.crc32c('abc' as unknown as Uint8Array), invalidArgument);
});

// ---------------------------------------------------------------- mappings

test('bytes written through a mapping and msynced are read back by fs', async (t) => {
  const length = native.pageSize * 2;
  const { file, fd } = scratchFile(t, length);
  const mapping = native.mmap(fd, length, 0, true);
  t.is(mapping.byteLength, length);
  const view = Buffer.from(mapping);
  const payload = crypto.randomBytes(5000);
  view.set(payload, 100);
  await native.msync(mapping, 0, length);
  native.msyncSync(mapping, 100, 5000);
  const onDisk = fs.readFileSync(file);
  t.is(onDisk.length, length);
  t.deepEqual(onDisk.subarray(100, 5100), payload);
  t.is(onDisk.subarray(0, 100).every((b) => b === 0), true);
  t.is(onDisk.subarray(5100).every((b) => b === 0), true);
  native.munmap(mapping);
});

test('a mapping at a page-aligned offset sees the file from that offset', (t) => {
  const length = native.pageSize * 3;
  const { fd } = scratchFile(t, length);
  fs.writeSync(fd, Buffer.from('second page'), 0, 11, native.pageSize);
  const mapping = native.mmap(fd, native.pageSize, native.pageSize, false);
  t.is(Buffer.from(mapping).subarray(0, 11).toString(), 'second page');
  native.munmap(mapping);
});

test('after munmap every view of the mapping has length 0 and reading it does not crash', (t) => {
  const { fd } = scratchFile(t, native.pageSize);
  const mapping = native.mmap(fd, native.pageSize, 0, true);
  const buf = Buffer.from(mapping);
  const u32 = new Uint32Array(mapping);
  buf[0] = 42;
  native.munmap(mapping);
  t.is(mapping.byteLength, 0);
  t.is(buf.length, 0);
  t.is(u32.length, 0);
  t.is(buf[0] as number | undefined, undefined);
  t.is(u32[0] as number | undefined, undefined);
});

test('a second munmap of the same mapping throws ERR_IO', (t) => {
  const { fd } = scratchFile(t, native.pageSize);
  const mapping = native.mmap(fd, native.pageSize, 0, true);
  native.munmap(mapping);
  const err = t.throws(() => native.munmap(mapping), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EINVAL');
});

test('msync of an unmapped mapping rejects with ERR_INVALID_ARGUMENT (its length is 0)', async (t) => {
  const { fd } = scratchFile(t, native.pageSize);
  const mapping = native.mmap(fd, native.pageSize, 0, true);
  native.munmap(mapping);
  await t.throwsAsync(native.msync(mapping, 0, 1), invalidArgument);
});

test('msync of an ArrayBuffer that is not a mapping rejects with ERR_IO (EINVAL) and does not crash', async (t) => {
  const err = await t.throwsAsync(native.msync(new ArrayBuffer(8), 0, 4), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EINVAL');
});

test('mmap of a file descriptor that is not open throws ERR_IO with errno EBADF', (t) => {
  const err = t.throws(() => native.mmap(1_000_000, native.pageSize, 0, false), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EBADF');
  t.is(err?.syscall, 'mmap');
});

test('wrong arguments throw ERR_INVALID_ARGUMENT before reaching C++', async (t) => {
  const { fd } = scratchFile(t, native.pageSize * 2);
  // Errors raised in TypeScript carry no errno/syscall: those only come from the addon.
  const noSyscall = (err: CommitLogError | undefined) => {
    t.is(err?.errno, undefined);
    t.is(err?.syscall, undefined);
  };
  noSyscall(t.throws(() => native.mmap(fd, -1, 0, true), invalidArgument));
  noSyscall(t.throws(() => native.mmap(fd, 0, 0, true), invalidArgument));
  noSyscall(t.throws(() => native.mmap(1.5, native.pageSize, 0, true), invalidArgument));
  noSyscall(t.throws(() => native.mmap(-1, native.pageSize, 0, true), invalidArgument));
  noSyscall(t.throws(() => native.mmap('3' as unknown as number, native.pageSize, 0, true), invalidArgument));
  noSyscall(t.throws(() => native.mmap(fd, native.pageSize, 100, true), invalidArgument));
  noSyscall(t.throws(() => native.mmap(fd, native.pageSize, native.pageSize / 2, true), invalidArgument));
  noSyscall(t.throws(() => native.mmap(fd, 1.5, 0, true), invalidArgument));

  const mapping = native.mmap(fd, native.pageSize, 0, true);
  t.teardown(() => {
    if (mapping.byteLength > 0) native.munmap(mapping);
  });
  noSyscall(await t.throwsAsync(native.msync(mapping, 0, native.pageSize + 1), invalidArgument));
  noSyscall(await t.throwsAsync(native.msync(mapping, native.pageSize, 1), invalidArgument));
  noSyscall(await t.throwsAsync(native.msync(mapping, -1, 1), invalidArgument));
  noSyscall(t.throws(() => native.msyncSync(mapping, 1, native.pageSize), invalidArgument));
  noSyscall(t.throws(() => native.madvise(mapping, 0, native.pageSize, 12345), invalidArgument));
  noSyscall(t.throws(() => native.madvise(mapping, 0, native.pageSize * 2, native.Advice.NORMAL), invalidArgument));
  noSyscall(await t.throwsAsync(native.populate(mapping, 0, native.pageSize * 2), invalidArgument));
  noSyscall(t.throws(() => native.munmap(new Uint8Array(4) as unknown as ArrayBuffer), invalidArgument));
  noSyscall(t.throws(() => native.fallocate(fd, -1, 10), invalidArgument));
  noSyscall(t.throws(() => native.fallocate(fd, 0, -10), invalidArgument));
  noSyscall(t.throws(() => native.fallocate(2.5, 0, 10), invalidArgument));
  noSyscall(t.throws(() => native.tryLock(-3), invalidArgument));
  noSyscall(t.throws(() => native.zeroRange(fd, 0, Number.MAX_SAFE_INTEGER + 2), invalidArgument));
  noSyscall(t.throws(() => native.scanBatches(Buffer.alloc(8), 0, 8, -2), invalidArgument));
  noSyscall(t.throws(() => native.scanBatches(Buffer.alloc(8), 0, 9, 0), invalidArgument));
  // The mapping is still intact after all of that.
  native.munmap(mapping);
  t.is(mapping.byteLength, 0);
});

test('madvise and populate accept a valid range of a mapping', async (t) => {
  const { fd } = scratchFile(t, native.pageSize * 4);
  const mapping = native.mmap(fd, native.pageSize * 4, 0, true);
  native.madvise(mapping, 0, native.pageSize * 4, native.Advice.SEQUENTIAL);
  await native.populate(mapping, 10, native.pageSize * 2);
  t.is(Buffer.from(mapping).every((b) => b === 0), true);
  native.munmap(mapping);
});

// ---------------------------------------------------------------- files

test('fallocate on a file descriptor that is not open throws ERR_IO with errno EBADF', async (t) => {
  const err = t.throws(() => native.fallocate(1_000_000, 0, 4096), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EBADF');
  t.is(err?.syscall, 'posix_fallocate');
  const errAsync = await t.throwsAsync(native.fallocateAsync(1_000_000, 0, 4096), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(errAsync?.errno, 'EBADF');
});

test('fallocate extends a file to offset + length and the new space reads as zeros', async (t) => {
  const { file, fd } = scratchFile(t, 10);
  native.fallocate(fd, 0, 100_000);
  t.is(fs.statSync(file).size, 100_000);
  await native.fallocateAsync(fd, 100_000, 50_000);
  t.is(fs.statSync(file).size, 150_000);
  t.is(fs.readFileSync(file).every((b) => b === 0), true);
  native.fallocate(fd, 0, 0);
  t.is(fs.statSync(file).size, 150_000);
});

test('zeroRange makes a range read as zeros and keeps the file size', (t) => {
  const { file, fd } = scratchFile(t, 0);
  fs.writeFileSync(file, Buffer.alloc(10_000, 0xab));
  native.zeroRange(fd, 1000, 5000);
  const data = fs.readFileSync(file);
  t.is(data.length, 10_000);
  t.is(data.subarray(0, 1000).every((b) => b === 0xab), true);
  t.is(data.subarray(1000, 6000).every((b) => b === 0), true);
  t.is(data.subarray(6000).every((b) => b === 0xab), true);
});

test('tryLock on two file descriptors of the same file returns true, then false, and true again after the first closes', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, '.lock');
  const fd1 = fs.openSync(file, 'a+');
  const fd2 = fs.openSync(file, 'a+');
  try {
    t.is(native.tryLock(fd1), true);
    t.is(native.tryLock(fd1), true); // flock on the same open file description is re-entrant
    t.is(native.tryLock(fd2), false);
    fs.closeSync(fd1);
    t.is(native.tryLock(fd2), true);
  } finally {
    try {
      fs.closeSync(fd1);
    } catch {
      // closed above
    }
    fs.closeSync(fd2);
  }
});

test('tryLock on a file descriptor that is not open throws ERR_IO with errno EBADF', (t) => {
  const err = t.throws(() => native.tryLock(1_000_000), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EBADF');
});

// ---------------------------------------------------------------- scanBatches

const TS = 1_700_000_000_000;

function batchOf(n: number, baseOffset: number, tag: string): Buffer {
  const records: ProducerRecord[] = [];
  for (let i = 0; i < n; i++) records.push({ key: `${tag}-k${i}`, value: `${tag}-value-${i}`.repeat(i + 1), timestamp: TS + i });
  const b = encodeBatch(records);
  setBaseOffset(b, 0, baseOffset);
  return b;
}

/** Three batches of 3, 2 and 4 records at offsets 0, 3 and 5, back to back, then `tail` zero bytes. */
function threeBatches(tail = 0): { buf: Buffer; sizes: number[] } {
  const parts = [batchOf(3, 0, 'a'), batchOf(2, 3, 'b'), batchOf(4, 5, 'c')];
  return { buf: Buffer.concat([...parts, Buffer.alloc(tail)]), sizes: parts.map((p) => p.length) };
}

test('scanBatches walks a valid sequence of batches to its end', (t) => {
  const { buf, sizes } = threeBatches();
  const total = sizes[0] + sizes[1] + sizes[2];
  t.deepEqual({ ...native.scanBatches(buf, 0, buf.length, 0) }, { position: total, batches: 3, records: 9, nextOffset: 9, status: native.ScanStatus.END, epoch: -2 });
  // expectedOffset -1 accepts whatever offset the first batch has.
  t.deepEqual({ ...native.scanBatches(buf, 0, buf.length, -1) }, { position: total, batches: 3, records: 9, nextOffset: 9, status: native.ScanStatus.END, epoch: -2 });
  // From the second batch on.
  t.deepEqual({ ...native.scanBatches(buf, sizes[0], buf.length, 3) }, { position: total, batches: 2, records: 6, nextOffset: 9, status: native.ScanStatus.END, epoch: -2 });
  // maxBatches stops early with status END.
  t.deepEqual({ ...native.scanBatches(buf, 0, buf.length, 0, 2) }, { position: sizes[0] + sizes[1], batches: 2, records: 5, nextOffset: 5, status: native.ScanStatus.END, epoch: -2 });
  // An empty range.
  t.deepEqual({ ...native.scanBatches(buf, 0, 0, 7) }, { position: 0, batches: 0, records: 0, nextOffset: 7, status: native.ScanStatus.END, epoch: -2 });
});

test('scanBatches stops at zeroed space (a batch length of 0) with status END', (t) => {
  const { buf, sizes } = threeBatches(4096);
  const total = sizes[0] + sizes[1] + sizes[2];
  t.deepEqual({ ...native.scanBatches(buf, 0, buf.length, 0) }, { position: total, batches: 3, records: 9, nextOffset: 9, status: native.ScanStatus.END, epoch: -2 });
});

test('scanBatches reports a flipped byte anywhere inside the CRC range of a batch as status 3 at that batch', (t) => {
  const { buf, sizes } = threeBatches();
  // Every byte from the attributes to the end of the second batch is covered by its CRC.
  for (let i = sizes[0] + CRC_POS; i < sizes[0] + sizes[1]; i++) {
    const copy = Buffer.from(buf);
    copy[i] ^= 0x01;
    const r = native.scanBatches(copy, 0, copy.length, 0);
    t.deepEqual({ ...r }, { position: sizes[0], batches: 1, records: 3, nextOffset: 3, status: native.ScanStatus.BAD_CRC, epoch: -2 }, `flipped byte ${i}`);
  }
  const copy = Buffer.from(buf);
  copy[sizes[0] + 100] ^= 0xff;
  t.deepEqual({ ...native.scanBatches(copy, 0, copy.length, 0) }, { position: sizes[0], batches: 1, records: 3, nextOffset: 3, status: 3, epoch: -2 });
});

test('scanBatches reports a base offset that does not continue the previous batch as status 4', (t) => {
  const { buf, sizes } = threeBatches();
  setBaseOffset(buf, sizes[0], 4);
  t.deepEqual({ ...native.scanBatches(buf, 0, buf.length, 0) }, { position: sizes[0], batches: 1, records: 3, nextOffset: 3, status: 4, epoch: -2 });
  // A wrong expected offset for the first batch.
  const { buf: fresh } = threeBatches();
  t.deepEqual({ ...native.scanBatches(fresh, 0, fresh.length, 1) }, { position: 0, batches: 0, records: 0, nextOffset: 1, status: 4, epoch: -2 });
});

test('scanBatches reports a last batch cut short as status 5', (t) => {
  const { buf, sizes } = threeBatches();
  const start = sizes[0] + sizes[1];
  for (const cut of [buf.length - 1, start + 61, start + 12]) {
    t.deepEqual({ ...native.scanBatches(buf, 0, cut, 0) }, { position: start, batches: 2, records: 5, nextOffset: 5, status: 5, epoch: -2 }, `end ${cut}`);
  }
  // Fewer than 12 bytes left: not even an offset and a length, so the scan just ends.
  t.deepEqual({ ...native.scanBatches(buf, 0, start + 11, 0) }, { position: start, batches: 2, records: 5, nextOffset: 5, status: 0, epoch: -2 });
});

test('scanBatches reports a bad length, a bad magic and a bad record count', (t) => {
  const { buf, sizes } = threeBatches();
  const second = sizes[0];
  const badLength = Buffer.from(buf);
  badLength.writeInt32BE(10, second + 8);
  t.is(native.scanBatches(badLength, 0, badLength.length, 0).status, native.ScanStatus.BAD_LENGTH);
  const badMagic = Buffer.from(buf);
  badMagic[second + 16] = 1;
  t.deepEqual({ ...native.scanBatches(badMagic, 0, badMagic.length, 0) }, { position: second, batches: 1, records: 3, nextOffset: 3, status: 2, epoch: -2 });
  // A record count that disagrees with lastOffsetDelta, with the CRC fixed up so only the count is wrong.
  const badCount = Buffer.from(buf);
  badCount.writeInt32BE(3, second + 57);
  badCount.writeUInt32BE(native.crc32c(badCount, second + 21, second + sizes[1]), second + CRC_POS);
  t.deepEqual({ ...native.scanBatches(badCount, 0, badCount.length, 0) }, { position: second, batches: 1, records: 3, nextOffset: 3, status: 6, epoch: -2 });
});

test('scanBatches with a starting epoch stops at a batch whose stamped epoch falls (status 7), ignores unstamped ones, and returns the last epoch', (t) => {
  const { buf, sizes } = threeBatches();
  const stamp = (pos: number, epoch: number) => buf.writeInt32BE(epoch, pos + 12);
  stamp(0, 3);
  stamp(sizes[0], -1);
  stamp(sizes[0] + sizes[1], 2);
  t.deepEqual({ ...native.scanBatches(buf, 0, buf.length, 0, Number.MAX_SAFE_INTEGER, -1) }, { position: sizes[0] + sizes[1], batches: 2, records: 5, nextOffset: 5, status: native.ScanStatus.BAD_EPOCH, epoch: 3 });
  stamp(sizes[0] + sizes[1], 4);
  t.deepEqual({ ...native.scanBatches(buf, 0, buf.length, 0, Number.MAX_SAFE_INTEGER, -1) }, { position: buf.length, batches: 3, records: 9, nextOffset: 9, status: native.ScanStatus.END, epoch: 4 });
  // A starting epoch above the first batch's: it is left from an earlier life.
  t.like(native.scanBatches(buf, 0, buf.length, 0, Number.MAX_SAFE_INTEGER, 5), { position: 0, batches: 0, status: native.ScanStatus.BAD_EPOCH, epoch: 5 });
  // NO_EPOCH_CHECK: epochs are not looked at.
  t.like(native.scanBatches(buf, 0, buf.length, 0, Number.MAX_SAFE_INTEGER, native.NO_EPOCH_CHECK), { position: buf.length, status: native.ScanStatus.END, epoch: native.NO_EPOCH_CHECK });
  t.throws(() => native.scanBatches(buf, 0, buf.length, 0, 1, -3), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
});

// ---------------------------------------------------------------- countBatches and lastDataByte

test('countBatches counts the CRC-valid batches behind garbage and holes, and each stretch of other bytes between them once', (t) => {
  const { buf, sizes } = threeBatches();
  const second = batchOf(2, 9, 'd');
  const torn = Buffer.from(buf);
  torn.fill(0, sizes[0] + 20, sizes[0] + 40); // batch 2 torn: a hole inside it
  const data = Buffer.concat([torn, Buffer.alloc(5000), Buffer.from('garbage'), Buffer.alloc(100), second]);
  // Batch 2 (torn) is one run between batches 1 and 3; 'garbage' another between batch 3 and the last.
  t.deepEqual(native.countBatches(data, 0, data.length), { batches: 3, runs: 2 });
  t.deepEqual(native.countBatches(data, 0, sizes[0]), { batches: 1, runs: 0 });
  t.deepEqual(native.countBatches(Buffer.alloc(100), 0, 100), { batches: 0, runs: 0 });
  t.throws(() => native.countBatches(data, 10, 5), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
});

test('lastDataByte finds the last non-zero byte of a file range, skipping holes and unwritten extents', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'sparse');
  const fd = fs.openSync(file, 'w+');
  t.teardown(() => fs.closeSync(fd));
  fs.ftruncateSync(fd, 64 * 1024 * 1024);
  t.is(native.lastDataByte(fd, 0, 64 * 1024 * 1024), 0);
  native.fallocate(fd, 0, 64 * 1024 * 1024);
  t.is(native.lastDataByte(fd, 0, 64 * 1024 * 1024), 0, 'allocated but unwritten space holds no data');
  fs.writeSync(fd, Buffer.from([0, 7, 0]), 0, 3, 1000);
  fs.writeSync(fd, Buffer.from([9, 0, 0, 0]), 0, 4, 40 * 1024 * 1024 + 5);
  t.is(native.lastDataByte(fd, 0, 64 * 1024 * 1024), 40 * 1024 * 1024 + 6);
  t.is(native.lastDataByte(fd, 0, 40 * 1024 * 1024), 1002);
  t.is(native.lastDataByte(fd, 1002, 40 * 1024 * 1024), 1002, 'from when nothing follows');
  t.is(native.lastDataByte(fd, 5, 5), 5);
  t.throws(() => native.lastDataByte(-1, 0, 1), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  const err = t.throws(() => native.lastDataByte(1_000_000, 0, 10), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EBADF');
});

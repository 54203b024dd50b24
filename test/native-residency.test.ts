import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommitLogError, ErrorCode } from '../src/errors.js';
import * as native from '../src/native.js';
import { inMemoryFs } from './helpers/page-cache.js';
import { tmpDir } from './helpers/tmp.js';

const ps = native.pageSize;
const invalidArgument = { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT };

/** A file of `pages` pages of 0x5a written with write(2), its fd (read-only) and a read-only mapping of it. */
function file(t: Parameters<typeof tmpDir>[0], pages: number): { file: string; fd: number; mapping: ArrayBuffer; bytes: number } {
  const dir = tmpDir(t, 'commitlog-residency-');
  const name = path.join(dir, 'f.log');
  const bytes = pages * ps;
  fs.writeFileSync(name, Buffer.alloc(bytes, 0x5a));
  const fd = fs.openSync(name, 'r');
  const mapping = native.mmap(fd, bytes, 0, false);
  t.teardown(() => {
    native.munmap(mapping);
    fs.closeSync(fd);
  });
  return { file: name, fd, mapping, bytes };
}

// Page cache exactness needs a filesystem that can drop pages; tmpfs never does.
const coldTest = inMemoryFs(os.tmpdir()) ? test.skip : test;

test('pages just written with write(2) are all resident', (t) => {
  const f = file(t, 64);
  t.is(native.residentPages(f.mapping, 0, f.bytes), 64);
  t.is(native.firstNonResident(f.mapping, 0, f.bytes), f.bytes);
  t.is(native.firstNonResident(f.mapping, 100, 5000), 5100);
});

test('a range counts every page it touches, partially or wholly; an empty range has none', (t) => {
  const f = file(t, 8);
  t.is(native.residentPages(f.mapping, ps - 1, 2), 2);
  t.is(native.residentPages(f.mapping, ps, ps), 1);
  t.is(native.residentPages(f.mapping, 3 * ps, 0), 0);
  t.is(native.firstNonResident(f.mapping, 3 * ps, 0), 3 * ps);
});

coldTest('after fdatasync and POSIX_FADV_DONTNEED no page of a clean file is resident', (t) => {
  const f = file(t, 64);
  native.dropPageCache(f.fd, 0, 0);
  t.is(native.residentPages(f.mapping, 0, f.bytes), 0);
  t.is(native.firstNonResident(f.mapping, 0, f.bytes), 0);
  t.is(native.firstNonResident(f.mapping, 100, 5000), 100);
});

coldTest('firstNonResident names the start of the first cold page at or after the offset', (t) => {
  const f = file(t, 16);
  native.dropPageCache(f.fd, 0, 0);
  // A one-byte write reads in and dirties exactly page 3.
  const w = fs.openSync(f.file, 'r+');
  fs.writeSync(w, Buffer.from([0x5a]), 0, 1, 3 * ps + 7);
  fs.closeSync(w);
  t.is(native.residentPages(f.mapping, 0, f.bytes), 1);
  t.is(native.firstNonResident(f.mapping, 0, f.bytes), 0);
  t.is(native.firstNonResident(f.mapping, 3 * ps, f.bytes - 3 * ps), 4 * ps);
  t.is(native.firstNonResident(f.mapping, 3 * ps + 100, 200), 3 * ps + 300);
  t.is(native.firstNonResident(f.mapping, 3 * ps + 100, ps), 4 * ps);
});

coldTest('prefetch reads a cold range into the page cache and resolves with its length', async (t) => {
  const f = file(t, 64);
  native.dropPageCache(f.fd, 0, 0);
  t.is(await native.prefetch(f.fd, 5000, 10_000), 10_000);
  // Pages 1..3 hold bytes 5000..14999; page 0 lies before the range.
  t.is(native.residentPages(f.mapping, 5000, 10_000), 3);
  t.is(native.firstNonResident(f.mapping, 5000, 10_000), 15_000);
  t.is(native.firstNonResident(f.mapping, 0, ps), 0);
});

coldTest('prefetch of 4 MiB (many scratch-buffer reads) makes every page resident', async (t) => {
  const f = file(t, (4 * 1024 * 1024) / ps + 3);
  native.dropPageCache(f.fd, 0, 0);
  t.is(native.residentPages(f.mapping, 0, f.bytes), 0);
  t.is(await native.prefetch(f.fd, 0, f.bytes), f.bytes);
  t.is(native.residentPages(f.mapping, 0, f.bytes), f.bytes / ps);
});

test('prefetch stops at the end of the file and resolves with the bytes there', async (t) => {
  const f = file(t, 4);
  t.is(await native.prefetch(f.fd, f.bytes - 100, 4000), 100);
  t.is(await native.prefetch(f.fd, f.bytes + 10, 100), 0);
  t.is(await native.prefetch(f.fd, 0, 0), 0);
});

// Far above any fd this process opens: a closed small fd could be reused by a concurrent test.
const NOT_OPEN_FD = 0x3fffffff;

test('prefetch of a file descriptor that is not open rejects with ERR_IO, errno EBADF, syscall pread', async (t) => {
  const fd = NOT_OPEN_FD;
  const err = await t.throwsAsync(native.prefetch(fd, 0, 4096), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EBADF');
  t.is(err?.syscall, 'pread');
  t.is(err?.position, 0);
});

test('prefetch of a directory rejects with ERR_IO from pread, naming the path', async (t) => {
  const dir = tmpDir(t);
  const fd = fs.openSync(dir, 'r');
  t.teardown(() => fs.closeSync(fd));
  const err = await t.throwsAsync(native.prefetch(fd, 0, 4096, { path: dir }), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.syscall, 'pread');
  t.is(err?.path, dir);
});

test('dropPageCache of a file descriptor that is not open throws ERR_IO with errno EBADF', (t) => {
  const fd = NOT_OPEN_FD;
  const err = t.throws(() => native.dropPageCache(fd, 0, 0), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EBADF');
  t.is(err?.syscall, 'fdatasync');
});

test('residency of an ArrayBuffer that is not a mapping throws ERR_IO (EINVAL) and does not crash', (t) => {
  const err = t.throws(() => native.residentPages(new ArrayBuffer(8192), 0, 4096), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EINVAL');
  t.throws(() => native.firstNonResident(new ArrayBuffer(8192), 0, 4096), { instanceOf: CommitLogError, code: ErrorCode.IO });
});

test('residency of an unmapped mapping throws ERR_INVALID_ARGUMENT (its length is 0)', (t) => {
  const dir = tmpDir(t);
  const name = path.join(dir, 'f');
  fs.writeFileSync(name, Buffer.alloc(ps));
  const fd = fs.openSync(name, 'r');
  t.teardown(() => fs.closeSync(fd));
  const mapping = native.mmap(fd, ps, 0, false);
  native.munmap(mapping);
  t.throws(() => native.residentPages(mapping, 0, ps), invalidArgument);
  t.throws(() => native.firstNonResident(mapping, 0, 1), invalidArgument);
});

test('wrong arguments throw ERR_INVALID_ARGUMENT before reaching C++', async (t) => {
  const f = file(t, 2);
  const bad: unknown[] = [-1, 1.5, Number.NaN, 2 ** 53, '0', undefined];
  for (const v of bad) {
    t.throws(() => native.residentPages(f.mapping, v as number, 1), invalidArgument, `offset ${String(v)}`);
    t.throws(() => native.firstNonResident(f.mapping, 0, v as number), invalidArgument, `length ${String(v)}`);
    await t.throwsAsync(native.prefetch(v as number, 0, 1), invalidArgument, `fd ${String(v)}`);
    await t.throwsAsync(native.prefetch(f.fd, v as number, 1), invalidArgument, `position ${String(v)}`);
    await t.throwsAsync(native.prefetch(f.fd, 0, v as number), invalidArgument, `length ${String(v)}`);
    t.throws(() => native.dropPageCache(f.fd, v as number, 0), invalidArgument, `drop position ${String(v)}`);
  }
  t.throws(() => native.residentPages(new Uint8Array(4096) as unknown as ArrayBuffer, 0, 1), invalidArgument);
  t.throws(() => native.residentPages(f.mapping, f.bytes - 1, 2), invalidArgument);
  t.throws(() => native.firstNonResident(f.mapping, f.bytes + 1, 0), invalidArgument);
  t.throws(() => native.dropPageCache(-1, 0, 0), invalidArgument);
});

/**
 * fallocateAsync with zeroFill (the sync policy's allocation steps, native/file.cc
 * WriteZeroPages): the range is reserved and written with zeros, page by page, and no
 * byte outside it changes.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import * as native from '../src/native.js';
import { CommitLogError, ErrorCode } from '../src/errors.js';
import { tmpDir } from './helpers/tmp.js';

test('fallocateAsync with zeroFill writes zeros over exactly the range, from an unaligned start, and extends the file to its end', async (t) => {
  const file = path.join(tmpDir(t), 'step.bin');
  const page = native.pageSize;
  const before = Buffer.alloc(3 * page + 100, 0xab);
  fs.writeFileSync(file, before);
  const fd = fs.openSync(file, 'r+');
  t.teardown(() => fs.closeSync(fd));
  const from = page + 123;
  const length = 4 * page;
  await native.fallocateAsync(fd, from, length, { path: file }, true);
  const after = fs.readFileSync(file);
  t.is(after.length, from + length);
  t.true(after.subarray(0, from).every((b) => b === 0xab));
  t.true(after.subarray(from).every((b) => b === 0));
  // Written, so allocated: st_blocks covers the whole file.
  t.true(fs.fstatSync(fd).blocks * 512 >= from + length);
});

test('fallocateAsync with zeroFill inside a file leaves the bytes after the range alone', async (t) => {
  const file = path.join(tmpDir(t), 'inner.bin');
  const page = native.pageSize;
  fs.writeFileSync(file, Buffer.alloc(6 * page, 0x5a));
  const fd = fs.openSync(file, 'r+');
  t.teardown(() => fs.closeSync(fd));
  await native.fallocateAsync(fd, 2 * page, 2 * page - 7, undefined, true);
  const after = fs.readFileSync(file);
  t.is(after.length, 6 * page);
  t.true(after.subarray(0, 2 * page).every((b) => b === 0x5a));
  t.true(after.subarray(2 * page, 4 * page - 7).every((b) => b === 0));
  t.true(after.subarray(4 * page - 7).every((b) => b === 0x5a));
});

test('fallocateAsync with zeroFill on a descriptor opened read-only rejects with ERR_IO and changes nothing', async (t) => {
  const file = path.join(tmpDir(t), 'ro.bin');
  fs.writeFileSync(file, Buffer.alloc(10_000, 1));
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const err = await t.throwsAsync(native.fallocateAsync(fd, 0, 8192, { path: file }, true), { instanceOf: CommitLogError });
  t.is(err?.code, ErrorCode.IO);
  t.true(fs.readFileSync(file).every((b) => b === 1));
});

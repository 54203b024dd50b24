/**
 * PartitionLog.prepareRead (src/log/read-warmup.ts): what a read would read through
 * mappings on the calling thread (a closed sealed segment's indexes and last batch
 * header, the batch header of the lookup) is read into the page cache on the thread
 * pool first, and the segment is opened, so the read that follows needs no disk.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommitLog } from '../../src/log/commit-log.js';
import { segmentPaths } from '../../src/log/file-names.js';
import { dropPageCache, mmap, munmap, pageSize, residentPages } from '../../src/native.js';
import { inMemoryFs } from '../helpers/page-cache.js';
import { tmpDir } from '../helpers/tmp.js';

const KiB = 1024;
const quiet = { info: () => undefined, warn: () => undefined };
const coldTest = inMemoryFs(os.tmpdir()) ? test.serial.skip : test.serial;

function openFiles(): string[] {
  return fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

/** Pages of [position, position + length) of `file` in the page cache (a read-only mapping of its own). */
function residentOf(file: string, position: number, length: number): { pages: number; of: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const m = mmap(fd, size, 0, false);
    try {
      const end = Math.min(size, position + length);
      return { pages: residentPages(m, position, end - position), of: Math.ceil(end / pageSize) - Math.floor(position / pageSize) };
    } finally {
      munmap(m);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function dropFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    dropPageCache(fd, 0, 0);
  } finally {
    fs.closeSync(fd);
  }
}

coldTest('prepareRead of an offset in a closed, cold sealed segment reads its indexes and batch headers in and opens it; the read then returns its records', async (t) => {
  const dir = tmpDir(t, 'commitlog-warmup-');
  const values: Buffer[] = [];
  let log = await CommitLog.open({ dir, logger: quiet, flush: 'os', maxOpenSegments: 1, retentionCheckIntervalMs: 0 });
  await log.createTopic('t', { segmentBytes: 256 * KiB });
  for (let i = 0; i < 64; i++) {
    const records = Array.from({ length: 4 }, () => ({ value: randomBytes(4000) }));
    values.push(...records.map((r) => r.value));
    await log.append('t', 0, records);
  }
  t.true(log.describeTopic('t').partitions[0].segments >= 3);
  await log.close();
  // Reopened: sealed segments stay closed until read.
  log = await CommitLog.open({ dir, logger: quiet, flush: 'os', maxOpenSegments: 1, retentionCheckIntervalMs: 0 });
  t.teardown(() => log.close());
  const paths = segmentPaths(path.join(dir, 't', '0'), 0);
  t.false(openFiles().includes(paths.log));
  for (const file of [paths.log, paths.cq, paths.tix]) dropFile(file);
  t.is(residentOf(paths.cq, 0, fs.statSync(paths.cq).size).pages, 0);
  t.is(residentOf(paths.log, 0, 64).pages, 0);

  await log.partition('t', 0).prepareRead(5);

  t.true(openFiles().includes(paths.log));
  const cq = residentOf(paths.cq, 0, fs.statSync(paths.cq).size);
  t.is(cq.pages, cq.of);
  t.is(residentOf(paths.tix, 0, fs.statSync(paths.tix).size).pages, 1);
  // Offset 5 is in the second batch (4 records each): its header, and the last batch's.
  const cqBytes = fs.readFileSync(paths.cq);
  const second = cqBytes.readUInt32LE(12 + 4);
  const last = cqBytes.readUInt32LE(cqBytes.length - 12 + 4);
  t.is(residentOf(paths.log, second, 61).pages, 1);
  t.is(residentOf(paths.log, last, 61).pages, 1);
  const records = log.read('t', 0, 5, { maxBytes: 1 });
  t.is(records[0].offset, 5);
  t.deepEqual(records[0].value, values[5]);
});

test('prepareRead never rejects: offsets outside the log, the end of the log, an open segment, a closed log', async (t) => {
  const log = await CommitLog.open({ dir: tmpDir(t, 'commitlog-warmup-'), logger: quiet, flush: 'sync', retentionCheckIntervalMs: 0 });
  await log.createTopic('t');
  await log.append('t', 0, [{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
  const p = log.partition('t', 0);
  for (const offset of [-1, 0, 1, 2, 3, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER]) await t.notThrowsAsync(p.prepareRead(offset));
  t.deepEqual(log.read('t', 0, 1, { maxBytes: 1 }).map((r) => r.value?.toString()), ['b']);
  await log.close();
  await t.notThrowsAsync(p.prepareRead(0));
});

import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { CommitLog } from '../../src/log/commit-log.js';
import { pageSize, residentPages } from '../../src/native.js';
import { dropSegmentPages, inMemoryFs, noReadAround } from '../helpers/page-cache.js';
import { tmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const quiet = { info: () => undefined, warn: () => undefined };
const coldTest = inMemoryFs(os.tmpdir()) ? test.serial.skip : test.serial;

/** A log with `batches` batches of 16 records of 4000 random bytes; the values, by offset. */
async function setup(t: ExecutionContext, batches: number): Promise<{ log: CommitLog; values: Buffer[] }> {
  const log = await CommitLog.open({ dir: tmpDir(t, 'commitlog-prefetch-'), logger: quiet, flush: 'os' });
  t.teardown(() => log.close());
  await log.createTopic('t', { segmentBytes: 64 * MiB });
  const values: Buffer[] = [];
  for (let i = 0; i < batches; i++) {
    const records = Array.from({ length: 16 }, () => ({ value: randomBytes(4000) }));
    values.push(...records.map((r) => r.value));
    await log.append('t', 0, records);
  }
  await log.flush();
  return { log, values };
}

function resident(log: CommitLog, offset: number, maxBytes: number): { pages: number; of: number } {
  const slice = log.readSlice('t', 0, offset, maxBytes)!;
  const data = slice.segment.data;
  const pages = residentPages(data.buffer as ArrayBuffer, data.byteOffset + slice.position, slice.length);
  const of = Math.ceil((slice.position + slice.length) / pageSize) - Math.floor(slice.position / pageSize);
  slice.release();
  return { pages, of };
}

coldTest('prefetch reads a cold range into the page cache on the thread pool, then finds nothing to do', async (t) => {
  const { log } = await setup(t, 64);
  noReadAround(dropSegmentPages(log, 't', 0, 0));
  const before = resident(log, 0, MiB);
  // Only the page holding the first batch header, which locating the range read.
  t.is(before.pages, 1);
  const read = await log.prefetch('t', 0, 0, { maxBytes: MiB });
  t.true(read > 0 && read <= MiB);
  const after = resident(log, 0, MiB);
  t.is(after.pages, after.of);
  t.is(await log.prefetch('t', 0, 0, { maxBytes: MiB }), 0);
});

test('prefetch at the end of the log resolves with 0; out of range and bad maxBytes are refused as read refuses them', async (t) => {
  const { log } = await setup(t, 2);
  t.is(await log.prefetch('t', 0, 32), 0);
  await t.throwsAsync(log.prefetch('t', 0, 33), { code: 'ERR_OFFSET_OUT_OF_RANGE' });
  t.throws(() => log.read('t', 0, 33), { code: 'ERR_OFFSET_OUT_OF_RANGE' });
  await t.throwsAsync(log.prefetch('t', 0, 0, { maxBytes: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(log.prefetch('nope', 0, 0), { code: 'ERR_UNKNOWN_TOPIC' });
});

coldTest('tail over data not in the page cache yields every record exactly, in order', async (t) => {
  const { log, values } = await setup(t, 160);
  noReadAround(dropSegmentPages(log, 't', 0, 0));
  t.is(resident(log, 0, 4 * MiB).pages, 1);
  const abort = new AbortController();
  let n = 0;
  for await (const r of log.tail('t', 0, { maxBytes: MiB, signal: abort.signal })) {
    t.is(r.offset, n);
    t.true(r.value!.equals(values[n]), `value of offset ${n}`);
    if (++n === values.length) abort.abort();
  }
  t.is(n, values.length);
  const after = resident(log, 0, 16 * MiB);
  t.is(after.pages, after.of);
});

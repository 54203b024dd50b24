/**
 * One flush path (issue 8.6): every msync and fdatasync of a segment goes through the
 * segment's one serialised flush, and the first failure fails it for good. Linux
 * reports a writeback error once per open file, so a second flusher of the same range
 * would see success for lost data: the injected faults here fail once and then pass,
 * as the kernel does. No append whose range overlaps a failed flush may resolve.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { CommitLog } from '../../src/log/commit-log.js';
import { preparedPaths, segmentPaths } from '../../src/log/file-names.js';
import * as native from '../../src/native.js';
import { tmpDir } from '../helpers/tmp.js';

const SEGMENT = 64 * 1024;
const VALUE = Buffer.alloc(1000, 0x5a);

test.afterEach.always(() => {
  native.flushFaults.msync = null;
  native.flushFaults.fdatasync = null;
});

/** A fault that fails the first call naming `file` with `errno`, then lets every call pass (the kernel's once-per-file report). */
function once(file: string, errno = 'EIO'): (p: string | undefined) => string | null {
  let fired = false;
  return (p) => {
    if (fired || p !== file) return null;
    fired = true;
    return errno;
  };
}

/** Opens a sync log with a topic whose active segment is close to full (past PREPARE_AT) and whose next segment is prepared. */
async function nearRoll(dir: string): Promise<{ log: CommitLog; first: string; appended: number }> {
  const log = await CommitLog.open({ dir, flush: 'sync', warmSegments: false, retentionCheckIntervalMs: 0, checkpointIntervalMs: 3_600_000, topicDefaults: { segmentBytes: SEGMENT } });
  await log.createTopic('t');
  let appended = 0;
  while (log.describeTopic('t').partitions[0].sizeBytes < SEGMENT * 0.8) {
    await log.append('t', 0, [{ value: VALUE }]);
    appended++;
  }
  const pdir = path.join(dir, 't', '0');
  while (!fs.existsSync(preparedPaths(pdir).log)) await new Promise((resolve) => setTimeout(resolve, 5));
  return { log, first: segmentPaths(pdir, 0).log, appended };
}

test.serial('an msync failure of a rolled segment rejects every append it covered, even though a second msync of the range succeeds', async (t) => {
  const dir = tmpDir(t);
  const { log, first, appended } = await nearRoll(dir);
  native.flushFaults.msync = once(first);
  // One tick of appends that fill the old segment and roll into the next one.
  const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => log.append('t', 0, [{ value: VALUE, key: String(i) }])));
  t.true(log.describeTopic('t').partitions[0].segments >= 2, 'the appends rolled the segment');
  const resolved = results.filter((r) => r.status === 'fulfilled');
  t.deepEqual(resolved, [], 'no append of the failed range was acknowledged');
  for (const r of results) {
    t.true(r.status === 'rejected' && r.reason instanceof CommitLogError && r.reason.code === ErrorCode.LOG_FAILED, String(r.status === 'rejected' ? r.reason : 'fulfilled'));
  }
  await t.throwsAsync(log.append('t', 0, [{ value: VALUE }]), { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  // Nothing unacknowledged is visible: the high watermark stayed at what was flushed.
  t.is(log.latestOffset('t', 0), appended);
  await log.close();
  t.false(fs.existsSync(path.join(dir, '.clean-shutdown')), 'a failed log does not close clean');
});

test.serial('an fdatasync failure while sealing a rolled segment fails the partition: waiting and later appends reject', async (t) => {
  const dir = tmpDir(t);
  const { log, first } = await nearRoll(dir);
  native.flushFaults.fdatasync = once(first);
  const results = await Promise.allSettled(Array.from({ length: 40 }, () => log.append('t', 0, [{ value: VALUE }])));
  t.true(log.describeTopic('t').partitions[0].segments >= 2, 'the appends rolled the segment');
  // The seal runs after the appends' msync; from its failure on, nothing is acknowledged.
  const err = await t.throwsAsync(async () => {
    for (let i = 0; i < 100; i++) {
      await log.append('t', 0, [{ value: VALUE }]);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }, { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  t.regex(err?.message ?? '', /fdatasync failed \(.*00000000000000000000.log\).*EIO/);
  t.true(results.every((r) => r.status === 'fulfilled' || (r.reason instanceof CommitLogError && r.reason.code === ErrorCode.LOG_FAILED)));
  await log.close();
});

test.serial('an msync failure of the active segment rejects the appends waiting on it and every later one, and a retry of the flush is refused', async (t) => {
  const dir = tmpDir(t);
  const log = await CommitLog.open({ dir, flush: 'sync', warmSegments: false, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes: SEGMENT } });
  await log.createTopic('t');
  await log.append('t', 0, [{ value: VALUE }]);
  native.flushFaults.msync = once(segmentPaths(path.join(dir, 't', '0'), 0).log);
  const results = await Promise.allSettled([1, 2, 3].map(() => log.append('t', 0, [{ value: VALUE }])));
  t.true(results.every((r) => r.status === 'rejected' && r.reason instanceof CommitLogError && r.reason.code === ErrorCode.LOG_FAILED));
  await t.throwsAsync(log.flush('t'), { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  await t.throwsAsync(log.append('t', 0, [{ value: VALUE }]), { instanceOf: CommitLogError, code: ErrorCode.LOG_FAILED });
  t.is(log.latestOffset('t', 0), 1);
  await log.close();
  // Reopened: recovery keeps what is on disk (the page cache still holds it), nothing is lost.
  const again = await CommitLog.open({ dir, flush: 'sync', warmSegments: false, retentionCheckIntervalMs: 0 });
  t.teardown(() => again.close());
  t.true(again.latestOffset('t', 0) >= 1);
});

/**
 * Background work on a segment's mapping racing the foreground: the next segment is
 * allocated ahead (its first pages warmed) once the active one is half full and after
 * each roll, and the active segment's pages are warmed ahead of the writer, both on the
 * thread pool. A close or a roll that lands while such work is still in flight must
 * wait for it or leave the mapping to it: close must succeed and write the
 * clean-shutdown marker, and trimming a sealed segment must never pull the file out
 * from under a warm-up (SIGBUS would kill the process).
 *
 * The warm-up is slowed down here: the addon's populate is wrapped with a delay, so
 * the race is won by the foreground every time, not once in a while.
 */
import test from 'ava';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { CommitLog } from '../../src/log/commit-log.js';
import '../../src/native.js';
import { TOPIC, markerPath, partitionDir, readSegments, tempDir } from './helpers.js';

type Populate = (mapping: ArrayBuffer, offset: number, length: number) => Promise<void>;
// The module instance src/native.ts loaded (require caches it): wrapping its populate
// slows every warm-up in this test process. Tests here run serially for that reason.
const addon = createRequire(import.meta.url)('../../build/Release/commitlog.node') as { populate: Populate };
const originalPopulate = addon.populate;
let delayFor: (offset: number) => number = () => 0;
let delayedCalls = 0;
addon.populate = (mapping, offset, length) => {
  const ms = delayFor(offset);
  if (ms === 0) return originalPopulate(mapping, offset, length);
  delayedCalls++;
  return new Promise((resolve) => setTimeout(resolve, ms)).then(() => originalPopulate(mapping, offset, length));
};

function collectingLogger(): { warnings: string[]; logger: { info: () => void; warn: (fields: object, message: string) => void } } {
  const warnings: string[] = [];
  return { warnings, logger: { info: () => undefined, warn: (fields, message) => void warnings.push(`${message} ${JSON.stringify(fields)}`) } };
}

test.afterEach.always(() => {
  delayFor = () => 0;
  delayedCalls = 0;
});

test.serial('close while the next segment is still being allocated is clean and leaves no prepared files', async (t) => {
  delayFor = () => 100;
  const dir = tempDir(t);
  const { warnings, logger } = collectingLogger();
  const value = Buffer.alloc(40 * 1024, 7);
  for (let round = 0; round < 3; round++) {
    const log = await CommitLog.open({ dir, logger, warmSegments: true, flush: 'sync', topicDefaults: { segmentBytes: 64 * 1024 } });
    if (round === 0) await log.createTopic(TOPIC);
    // 40 KB into a 64 KB segment: past half, so the next segment is being prepared (or,
    // when it does not fit, a roll happens and the one after it is being prepared).
    await log.append(TOPIC, 0, [{ value }]);
    await log.close();
    t.deepEqual(warnings, [], `round ${round}: close logged warnings`);
    t.true(fs.existsSync(markerPath(dir)), `round ${round}: no clean-shutdown marker`);
    t.deepEqual(fs.readdirSync(partitionDir(dir)).filter((n) => n.includes('prepared')), [], `round ${round}: prepared files left behind`);
    const again = await CommitLog.open({ dir, logger });
    t.true(again.recovery.clean, `round ${round}: the reopen is not clean`);
    t.is(again.latestOffset(TOPIC, 0), round + 1);
    t.true(again.read(TOPIC, 0, round)[0].value!.equals(value));
    await again.close();
  }
  t.true(delayedCalls > 0, 'no warm-up ran');
});

test.serial('a roll while the old segment is still being warmed waits for the warm-up before trimming the file', async (t) => {
  // Only the warm-up ahead of the writer (it starts past position 0); allocate-ahead warms from 0.
  delayFor = (offset) => (offset === 0 ? 0 : 300);
  const dir = tempDir(t);
  const { warnings, logger } = collectingLogger();
  const log = await CommitLog.open({ dir, logger, warmSegments: true, flush: 'sync', topicDefaults: { segmentBytes: 64 * 1024 } });
  await log.createTopic(TOPIC);
  const values = [1, 2, 3, 4].map((n) => Buffer.alloc(20_000, n));
  // The first append starts warming the rest of segment 0; the fourth does not fit and rolls.
  for (const value of values) await log.append(TOPIC, 0, [{ value }]);
  t.is(log.describeTopic(TOPIC).partitions[0].segments, 2);
  t.true(delayedCalls > 0, 'no warm-up ahead of the writer ran');
  await log.close(); // waits for sealing segment 0, which waits for its warm-up
  t.deepEqual(warnings, []);
  t.true(fs.existsSync(markerPath(dir)));
  const again = await CommitLog.open({ dir, logger });
  t.true(again.recovery.clean);
  t.deepEqual(values.map((_, offset) => again.read(TOPIC, 0, offset)[0].value), values);
  const [sealed] = readSegments(partitionDir(dir));
  t.is(sealed.batches.length, 3);
  t.is(sealed.bytes.length, sealed.dataEnd, 'segment 0 is trimmed to its batches');
  await again.close();
});

/**
 * Recovery never resurrects bytes of an earlier life of a segment (issue 8.1): it wipes
 * everything past the new end, whatever lies between (a hole of zeros, then old
 * batches), reports what it dropped truthfully, and stamps a new epoch into the
 * batches appended after it, so a batch left from an earlier life cannot pass a scan.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog, type CommitLogOptions } from '../../src/log/commit-log.js';
import { setBaseOffset } from '../../src/log/batch.js';
import { tmpDir } from '../helpers/tmp.js';

const PAGE = 4096;
const SEGMENT = 4 * 1024 * 1024;

function options(dir: string, extra: Partial<CommitLogOptions> = {}): CommitLogOptions {
  return { dir, flush: 'os', warmSegments: false, retentionCheckIntervalMs: 0, checkpointIntervalMs: 3_600_000, topicDefaults: { segmentBytes: SEGMENT }, ...extra };
}

const logFile = (dir: string) => path.join(dir, 't', '0', '00000000000000000000.log');

/** A crash that also lost the recovery point: no clean marker, no checkpoint. */
function crashLosingCheckpoint(dir: string): void {
  fs.rmSync(path.join(dir, '.clean-shutdown'), { force: true });
  fs.rmSync(path.join(dir, 't', '0', 'recovery.checkpoint'), { force: true });
}

/** Position of every batch in the segment, from the consume queue as the log reads it. */
function positions(log: CommitLog, count: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < count; o++) {
    const s = log.readSlice('t', 0, o, 1)!;
    out.push(s.position);
    s.release();
  }
  return out;
}

function writeZeros(file: string, position: number, length: number): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(length), 0, length, position);
  fs.closeSync(fd);
}

function lastNonZero(buf: Buffer, from: number): number {
  for (let i = buf.length; i > from; i--) if (buf[i - 1] !== 0) return i;
  return from;
}

test('a hole of zeros before old batches: recovery cuts there, wipes every byte after it, reports them, and the old batches never come back', async (t) => {
  const dir = tmpDir(t);
  let log = await CommitLog.open(options(dir));
  await log.createTopic('t');
  const value = Buffer.alloc(900, 0x61);
  for (let i = 0; i < 200; i++) await log.append('t', 0, [{ key: `old-${i}`, value, timestamp: 1000 + i }]);
  const pos = positions(log, 200);
  const dataEnd = pos[199] + (pos[199] - pos[198]);
  await log.close();

  // A power loss that wrote later pages but not earlier ones: 100 KiB of pages at batch 50 read as zeros.
  const holeStart = Math.floor(pos[50] / PAGE) * PAGE;
  writeZeros(logFile(dir), holeStart, 100 * 1024);
  crashLosingCheckpoint(dir);
  const file = fs.readFileSync(logFile(dir));
  const cut = pos.findIndex((p, i) => i + 1 < pos.length && pos[i + 1] > holeStart);
  t.true(cut >= 45 && cut <= 50, `the batch holding the hole's first byte (${cut})`);
  const cutPosition = pos[cut];
  const expectedDropped = lastNonZero(file, cutPosition) - cutPosition;
  // A record ends with its header count, 0 here: what is dropped is counted to its last non-zero byte.
  t.is(lastNonZero(file, cutPosition), dataEnd - 1);

  log = await CommitLog.open(options(dir));
  const r = log.recovery.partitions[0];
  t.like(r, { clean: false, droppedBytes: expectedDropped, droppedSegments: 0 });
  // The batches behind the hole are found and counted, plus the one torn run before them.
  const behindHole = pos.filter((p) => p >= holeStart + 100 * 1024).length;
  t.is(r.droppedBatches, behindHole + 1);
  t.is(log.latestOffset('t', 0), cut);
  const wiped = fs.readFileSync(logFile(dir)).subarray(cutPosition);
  t.true(wiped.every((b) => b === 0), 'every byte past the new end is zero on disk');

  for (let i = 0; i < 55; i++) await log.append('t', 0, [{ key: `new-${i}`, value, timestamp: 5000 + i }]);
  await log.flush();
  // A second crash, again losing the checkpoint: without the wipe, the old batches from
  // offset cut+55 on would parse again (same shape, offsets continuing).
  await log.close();
  crashLosingCheckpoint(dir);
  log = await CommitLog.open(options(dir));
  t.teardown(() => log.close());
  t.is(log.latestOffset('t', 0), cut + 55);
  const all = log.read('t', 0, 0, { maxBytes: 64 * 1024 * 1024 });
  t.deepEqual(all.map((x) => x.key!.toString()), [
    ...Array.from({ length: cut }, (_, i) => `old-${i}`),
    ...Array.from({ length: 55 }, (_, i) => `new-${i}`),
  ]);
});

test('a torn batch whose value holds 70 KiB of zeros is wiped to its last byte, not to the first long run of zeros', async (t) => {
  const dir = tmpDir(t);
  let log = await CommitLog.open(options(dir));
  await log.createTopic('t');
  for (let i = 0; i < 3; i++) await log.append('t', 0, [{ key: `k${i}`, value: Buffer.alloc(100, 1) }]);
  const value = Buffer.concat([Buffer.alloc(1024, 0x11), Buffer.alloc(70 * 1024), Buffer.alloc(1024, 0x22)]);
  await log.append('t', 0, [{ key: 'big', value }]);
  const [p3] = positions(log, 4).slice(3);
  await log.close();
  // Tear the big batch: its CRC no longer matches.
  const fd = fs.openSync(logFile(dir), 'r+');
  fs.writeSync(fd, Buffer.from([0xff]), 0, 1, p3 + 17);
  fs.closeSync(fd);
  crashLosingCheckpoint(dir);
  const before = fs.readFileSync(logFile(dir));
  const end = lastNonZero(before, p3);

  log = await CommitLog.open(options(dir));
  t.teardown(() => log.close());
  t.like(log.recovery.partitions[0], { droppedBytes: end - p3, droppedBatches: 1, stopReason: 'CRC mismatch' });
  t.is(log.latestOffset('t', 0), 3);
  t.true(fs.readFileSync(logFile(dir)).subarray(p3).every((b) => b === 0));
});

test('batches appended after a recovery carry the next epoch, and a batch of an earlier epoch after them ends the log at the next recovery', async (t) => {
  const dir = tmpDir(t);
  let log = await CommitLog.open(options(dir));
  await log.createTopic('t');
  for (let i = 0; i < 3; i++) await log.append('t', 0, [{ key: `a${i}`, value: Buffer.alloc(50, 1) }]);
  await log.close();
  let file = fs.readFileSync(logFile(dir));
  t.is(file.readInt32BE(12), 0, 'the first life stamps epoch 0');
  const firstSize = 12 + file.readInt32BE(8);
  const oldBatch = Buffer.from(file.subarray(0, firstSize));

  fs.rmSync(path.join(dir, '.clean-shutdown'));
  log = await CommitLog.open(options(dir));
  for (let i = 0; i < 2; i++) await log.append('t', 0, [{ key: `b${i}`, value: Buffer.alloc(50, 2) }]);
  const pos = positions(log, 5);
  const end = pos[4] + (pos[4] - pos[3]);
  await log.close();
  file = fs.readFileSync(logFile(dir));
  t.deepEqual(pos.map((p) => file.readInt32BE(p + 12)), [0, 0, 0, 1, 1], 'the unclean open started epoch 1');

  // A batch from the first life placed after the new ones, with a continuing offset: it
  // passes every other check (CRC, length, offsets), only its epoch gives it away.
  setBaseOffset(oldBatch, 0, 5);
  const fd = fs.openSync(logFile(dir), 'r+');
  fs.writeSync(fd, oldBatch, 0, oldBatch.length, end);
  fs.closeSync(fd);
  fs.rmSync(path.join(dir, '.clean-shutdown'));
  fs.rmSync(path.join(dir, 't', '0', 'recovery.checkpoint'));
  log = await CommitLog.open(options(dir));
  t.teardown(() => log.close());
  t.is(log.latestOffset('t', 0), 5);
  t.like(log.recovery.partitions[0], { droppedBatches: 1, droppedBytes: lastNonZero(oldBatch, 0) });
  t.regex(log.recovery.partitions[0].stopReason, /epoch/);
  await log.append('t', 0, [{ key: 'c', value: Buffer.alloc(5) }]);
  const slice = log.readSlice('t', 0, 5, 1)!;
  t.is(fs.readFileSync(logFile(dir)).readInt32BE(slice.position + 12), 2, 'and the next open epoch 2');
  slice.release();
});

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ConsumeQueue, CQ_ENTRY_BYTES } from '../../src/index/consume-queue.js';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import * as native from '../../src/native.js';
import { tmpDir } from '../helpers/tmp.js';

/** Opens a queue in a fresh directory; closed after the test. */
function openCq(t: import('ava').ExecutionContext, maxEntries = 1000, file?: string): ConsumeQueue {
  const cq = ConsumeQueue.open(file ?? path.join(tmpDir(t), '00000000000000000000.cq'), maxEntries, true);
  t.teardown(() => cq.close());
  return cq;
}

/** Three batches: offsets 0-2 at 0 (100 bytes), 3-4 at 100 (50 bytes), 5-9 at 150 (70 bytes). */
function fill(cq: ConsumeQueue): void {
  cq.append(0, 0, 100);
  cq.append(3, 100, 50);
  cq.append(5, 150, 70);
}

function entriesOf(cq: ConsumeQueue): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < cq.entries; i++) out.push([cq.relativeOffsetAt(i), cq.positionAt(i), cq.sizeAt(i)]);
  return out;
}

test('a new queue is empty and validates against an empty log only', (t) => {
  const cq = openCq(t);
  t.is(cq.entries, 0);
  t.is(cq.lookup(0), -1);
  t.is(cq.countBefore(1000), 0);
  t.true(cq.validate(0));
  t.false(cq.validate(1));
});

test('appended entries read back exactly', (t) => {
  const cq = openCq(t);
  fill(cq);
  t.is(cq.entries, 3);
  t.deepEqual(entriesOf(cq), [[0, 0, 100], [3, 100, 50], [5, 150, 70]]);
});

test('lookup returns the entry of the batch holding an offset, the last one past the end', (t) => {
  const cq = openCq(t);
  fill(cq);
  t.is(cq.lookup(0), 0);
  t.is(cq.lookup(1), 0);
  t.is(cq.lookup(2), 0);
  t.is(cq.lookup(3), 1);
  t.is(cq.lookup(4), 1);
  t.is(cq.lookup(5), 2);
  t.is(cq.lookup(9), 2);
  t.is(cq.lookup(1_000_000), 2);
  t.is(cq.lookup(-1), -1);
});

test('lookup of an offset before the first entry is -1', (t) => {
  const cq = openCq(t);
  cq.append(10, 0, 100);
  cq.append(20, 100, 100);
  t.is(cq.lookup(9), -1);
  t.is(cq.lookup(0), -1);
  t.is(cq.lookup(10), 0);
  t.is(cq.lookup(19), 0);
  t.is(cq.lookup(20), 1);
});

test('lookup stays exact over many entries (binary search boundaries)', (t) => {
  const cq = openCq(t, 5000);
  // Batch i holds offsets [3i, 3i + 3) at position 40i.
  for (let i = 0; i < 4000; i++) cq.append(3 * i, 40 * i, 40);
  for (let offset = 0; offset < 12_000; offset++) {
    if (cq.lookup(offset) !== Math.floor(offset / 3)) {
      t.fail(`lookup(${offset}) = ${cq.lookup(offset)}, expected ${Math.floor(offset / 3)}`);
      return;
    }
  }
  t.is(cq.countBefore(40 * 1234), 1234);
  t.is(cq.countBefore(40 * 1234 + 1), 1235);
  t.true(cq.validate(40 * 4000));
});

test('countBefore counts the entries whose batch starts before a position', (t) => {
  const cq = openCq(t);
  fill(cq);
  t.is(cq.countBefore(0), 0);
  t.is(cq.countBefore(1), 1);
  t.is(cq.countBefore(100), 1);
  t.is(cq.countBefore(101), 2);
  t.is(cq.countBefore(150), 2);
  t.is(cq.countBefore(151), 3);
  t.is(cq.countBefore(220), 3);
  t.is(cq.countBefore(1_000_000), 3);
});

test('validate is true only for an unbroken chain from 0 ending exactly at the log end', (t) => {
  const cq = openCq(t);
  fill(cq);
  t.true(cq.validate(220));
  t.false(cq.validate(219));
  t.false(cq.validate(221));
  t.false(cq.validate(0));
});

test('validate is false for a gap, an overlap, a first entry not at position 0, or offsets that do not increase', (t) => {
  const cases: [string, number[][], number][] = [
    ['gap between batches', [[0, 0, 100], [3, 101, 50]], 151],
    ['overlapping batches', [[0, 0, 100], [3, 99, 50]], 149],
    ['first batch not at position 0', [[0, 10, 100]], 110],
    ['repeated relative offset', [[0, 0, 100], [0, 100, 50]], 150],
    ['decreasing relative offset', [[5, 0, 100], [3, 100, 50]], 150],
  ];
  for (const [name, entries, end] of cases) {
    const cq = openCq(t);
    for (const [rel, pos, size] of entries) cq.append(rel, pos, size);
    t.false(cq.validate(end), name);
  }
});

test('a reopened queue counts its entries again from the file', (t) => {
  const file = path.join(tmpDir(t), 'q.cq');
  const cq = ConsumeQueue.open(file, 1000, true);
  fill(cq);
  cq.flushSync();
  cq.close();

  const again = ConsumeQueue.open(file, 1000, true);
  t.teardown(() => again.close());
  t.is(again.entries, 3);
  t.deepEqual(entriesOf(again), [[0, 0, 100], [3, 100, 50], [5, 150, 70]]);
  again.append(10, 220, 30);
  again.close();

  const readOnly = ConsumeQueue.open(file, 1, false);
  t.teardown(() => readOnly.close());
  t.is(readOnly.entries, 4);
  t.deepEqual(entriesOf(readOnly), [[0, 0, 100], [3, 100, 50], [5, 150, 70], [10, 220, 30]]);
  t.true(readOnly.validate(250));
});

test('truncateTo drops entries from a count on and zeroes them in the file', async (t) => {
  const file = path.join(tmpDir(t), 'q.cq');
  const cq = ConsumeQueue.open(file, 1000, true);
  t.teardown(() => cq.close());
  fill(cq);
  await cq.flush();
  cq.truncateTo(1);
  t.is(cq.entries, 1);
  t.is(cq.lookup(9), 0);
  t.true(cq.validate(100));
  cq.flushSync();
  const bytes = fs.readFileSync(file);
  t.deepEqual([...new Uint32Array(bytes.buffer, bytes.byteOffset, 3)], [0, 0, 100]);
  t.true(bytes.subarray(CQ_ENTRY_BYTES, 3 * CQ_ENTRY_BYTES).every((b) => b === 0));
  cq.truncateTo(5); // past the end: nothing changes
  t.is(cq.entries, 1);
  cq.close();

  const again = ConsumeQueue.open(file, 1000, true);
  t.teardown(() => again.close());
  t.is(again.entries, 1);
  again.append(3, 100, 20);
  t.deepEqual(entriesOf(again), [[0, 0, 100], [3, 100, 20]]);
});

test('reset drops every entry', (t) => {
  const cq = openCq(t);
  fill(cq);
  cq.reset();
  t.is(cq.entries, 0);
  t.is(cq.lookup(5), -1);
  t.true(cq.validate(0));
});

test('trim truncates the file to the entries in use', async (t) => {
  const file = path.join(tmpDir(t), 'q.cq');
  const cq = ConsumeQueue.open(file, 1000, true);
  t.teardown(() => cq.close());
  fill(cq);
  t.true(fs.statSync(file).size >= 3 * CQ_ENTRY_BYTES);
  await cq.flush();
  await cq.trim();
  t.is(fs.statSync(file).size, 3 * CQ_ENTRY_BYTES);
  t.is(cq.fileBytes, 3 * CQ_ENTRY_BYTES);
});

test('a full queue refuses another entry with ERR_INVALID_ARGUMENT', (t) => {
  const cq = openCq(t, 1);
  // Room is rounded up to whole pages.
  const capacity = Math.floor(native.pageSize / CQ_ENTRY_BYTES);
  t.is(cq.capacity, capacity);
  for (let i = 0; i < capacity; i++) cq.append(i, i * 100, 100);
  t.throws(() => cq.append(capacity, capacity * 100, 100), { instanceOf: CommitLogError, code: ErrorCode.INVALID_ARGUMENT });
  t.is(cq.entries, capacity);
});

test('a read-only queue of a missing file cannot be opened (ERR_IO, ENOENT)', (t) => {
  const err = t.throws(() => ConsumeQueue.open(path.join(tmpDir(t), 'missing.cq'), 10, false), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'ENOENT');
});

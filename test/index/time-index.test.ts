import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { TimeIndex, TIX_ENTRY_BYTES } from '../../src/index/time-index.js';
import { tmpDir } from '../helpers/tmp.js';

function openTix(t: import('ava').ExecutionContext, file?: string, maxEntries = 100): TimeIndex {
  const tix = TimeIndex.open(file ?? path.join(tmpDir(t), '00000000000000000000.tix'), maxEntries, true);
  t.teardown(() => tix.close());
  return tix;
}

function entriesOf(tix: TimeIndex): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < tix.entries; i++) out.push([tix.timestampAt(i), tix.relativeOffsetAt(i), tix.positionAt(i)]);
  return out;
}

/** Entries (1000, 0, 0), (2000, 10, 4096), (3000, 25, 8192). */
function fill(tix: TimeIndex): void {
  tix.maybeAppend(1000, 0, 0);
  tix.maybeAppend(2000, 10, 4096);
  tix.maybeAppend(3000, 25, 8192);
}

test('a new time index is empty', (t) => {
  const tix = openTix(t);
  t.is(tix.entries, 0);
  t.is(tix.lastTimestamp, -1);
  t.is(tix.lastRelativeOffset, -1);
  t.is(tix.lookupBefore(Number.MAX_SAFE_INTEGER), -1);
  t.true(tix.validate(1, 1));
});

test('maybeAppend always takes the first entry', (t) => {
  const tix = openTix(t);
  t.true(tix.maybeAppend(500, 0, 0));
  t.deepEqual(entriesOf(tix), [[500, 0, 0]]);
  t.is(tix.lastTimestamp, 500);
  t.is(tix.lastRelativeOffset, 0);
});

test('maybeAppend takes an entry only when the timestamp grew and the offset moved on', (t) => {
  const tix = openTix(t);
  t.true(tix.maybeAppend(1000, 0, 0));
  t.false(tix.maybeAppend(1000, 5, 500), 'same timestamp, not forced');
  t.false(tix.maybeAppend(999, 6, 600), 'smaller timestamp');
  t.false(tix.maybeAppend(999, 6, 600, true), 'smaller timestamp, even forced');
  t.false(tix.maybeAppend(1500, 0, 700), 'same offset');
  t.true(tix.maybeAppend(1500, 7, 700), 'larger timestamp, larger offset');
  t.false(tix.maybeAppend(2000, 7, 800), 'offset did not grow');
  t.false(tix.maybeAppend(2000, 3, 800), 'offset went back');
  t.true(tix.maybeAppend(1500, 9, 900, true), 'same timestamp, forced (seal)');
  t.false(tix.maybeAppend(1500, 9, 900, true), 'forced, but the entry exists');
  t.deepEqual(entriesOf(tix), [[1000, 0, 0], [1500, 7, 700], [1500, 9, 900]]);
  t.is(tix.lastTimestamp, 1500);
  t.is(tix.lastRelativeOffset, 9);
});

test('lookupBefore returns the last entry with a timestamp strictly before T, or -1', (t) => {
  const tix = openTix(t);
  fill(tix);
  t.is(tix.lookupBefore(0), -1);
  t.is(tix.lookupBefore(1000), -1);
  t.is(tix.lookupBefore(1001), 0);
  t.is(tix.lookupBefore(2000), 0);
  t.is(tix.lookupBefore(2001), 1);
  t.is(tix.lookupBefore(3000), 1);
  t.is(tix.lookupBefore(3001), 2);
  t.is(tix.lookupBefore(Number.MAX_SAFE_INTEGER), 2);
});

test('lookupBefore over equal timestamps returns the entry before the first of them', (t) => {
  const tix = openTix(t);
  tix.maybeAppend(1000, 0, 0);
  tix.maybeAppend(2000, 4, 400);
  tix.maybeAppend(2000, 8, 800, true);
  tix.maybeAppend(2000, 9, 900, true);
  t.is(tix.lookupBefore(2000), 0);
  t.is(tix.lookupBefore(2001), 3);
});

test('lookupBefore stays exact over many entries', (t) => {
  const tix = openTix(t, undefined, 3000);
  // Entry i: timestamp 10 * (i + 1).
  for (let i = 0; i < 2000; i++) tix.maybeAppend(10 * (i + 1), i, i * 64);
  t.is(tix.entries, 2000);
  for (let ts = 0; ts <= 20_020; ts += 3) {
    const want = ts <= 10 ? -1 : Math.min(Math.ceil(ts / 10) - 2, 1999);
    if (tix.lookupBefore(ts) !== want) {
      t.fail(`lookupBefore(${ts}) = ${tix.lookupBefore(ts)}, expected ${want}`);
      return;
    }
  }
  t.pass();
});

test('validate checks order and that every entry lies inside the segment', (t) => {
  const tix = openTix(t);
  fill(tix);
  t.true(tix.validate(26, 8193));
  t.true(tix.validate(1000, 1_000_000));
  t.false(tix.validate(25, 8193), 'an offset at the segment end');
  t.false(tix.validate(26, 8192), 'a position at the log end');
});

test('validate is false for entries out of order', (t) => {
  const file = path.join(tmpDir(t), 'x.tix');
  // Written by hand: maybeAppend refuses these.
  const cases: [string, number[][]][] = [
    ['timestamps decrease', [[2000, 0, 0], [1000, 5, 100]]],
    ['offsets repeat', [[1000, 0, 0], [2000, 0, 100]]],
    ['positions repeat', [[1000, 0, 0], [2000, 5, 0]]],
    ['a NaN timestamp', [[1000, 0, 0], [Number.NaN, 5, 100]]],
  ];
  for (const [name, entries] of cases) {
    const buf = Buffer.alloc(entries.length * TIX_ENTRY_BYTES);
    entries.forEach(([ts, rel, pos], i) => {
      buf.writeDoubleLE(ts, i * TIX_ENTRY_BYTES);
      buf.writeUInt32LE(rel, i * TIX_ENTRY_BYTES + 8);
      buf.writeUInt32LE(pos, i * TIX_ENTRY_BYTES + 12);
    });
    fs.writeFileSync(file, buf);
    const tix = TimeIndex.open(file, 1, false);
    t.is(tix.entries, entries.length, name);
    t.false(tix.validate(100, 1000), name);
    tix.close();
  }
});

test('a reopened time index counts its entries again from the file', (t) => {
  const file = path.join(tmpDir(t), 'x.tix');
  const tix = TimeIndex.open(file, 100, true);
  fill(tix);
  tix.flushSync();
  tix.close();
  const again = TimeIndex.open(file, 100, true);
  t.teardown(() => again.close());
  t.is(again.entries, 3);
  t.deepEqual(entriesOf(again), [[1000, 0, 0], [2000, 10, 4096], [3000, 25, 8192]]);
  t.true(again.maybeAppend(4000, 30, 9000));
  again.close();
  const readOnly = TimeIndex.open(file, 1, false);
  t.teardown(() => readOnly.close());
  t.is(readOnly.entries, 4);
  t.is(readOnly.lastTimestamp, 4000);
});

test('truncateFromOffset drops the entries at or past an offset and zeroes them', async (t) => {
  const file = path.join(tmpDir(t), 'x.tix');
  const tix = TimeIndex.open(file, 100, true);
  t.teardown(() => tix.close());
  fill(tix);
  tix.truncateFromOffset(26);
  t.is(tix.entries, 3);
  tix.truncateFromOffset(25);
  t.deepEqual(entriesOf(tix), [[1000, 0, 0], [2000, 10, 4096]]);
  tix.truncateFromOffset(11);
  t.deepEqual(entriesOf(tix), [[1000, 0, 0], [2000, 10, 4096]]);
  tix.truncateFromOffset(10);
  t.deepEqual(entriesOf(tix), [[1000, 0, 0]]);
  await tix.flush();
  tix.flushSync();
  const bytes = fs.readFileSync(file);
  t.true(bytes.subarray(TIX_ENTRY_BYTES, 3 * TIX_ENTRY_BYTES).every((b) => b === 0));
  tix.close();
  const again = TimeIndex.open(file, 100, true);
  t.teardown(() => again.close());
  t.is(again.entries, 1);
  // The rules start again from the remaining last entry.
  t.true(again.maybeAppend(1500, 3, 300));
});

test('truncateTo zeroes the dropped entries', (t) => {
  const file = path.join(tmpDir(t), 'x.tix');
  const tix = TimeIndex.open(file, 100, true);
  t.teardown(() => tix.close());
  fill(tix);
  tix.truncateTo(0);
  t.is(tix.entries, 0);
  tix.flushSync();
  t.true(fs.readFileSync(file).subarray(0, 3 * TIX_ENTRY_BYTES).every((b) => b === 0));
  t.true(tix.maybeAppend(1, 0, 0));
});

// An entry (timestamp 0, offset 0, position 0) is all zeros, like unused space: it must
// not hide the entries after it when the index is reopened.
test('an index whose first entry has timestamp 0 counts it after reopening', (t) => {
  const file = path.join(tmpDir(t), 'x.tix');
  const tix = TimeIndex.open(file, 100, true);
  t.true(tix.maybeAppend(0, 0, 0));
  t.true(tix.maybeAppend(0, 5, 500, true));
  tix.flushSync();
  tix.close();
  const again = TimeIndex.open(file, 1, false);
  t.teardown(() => again.close());
  t.is(again.entries, 2);
});

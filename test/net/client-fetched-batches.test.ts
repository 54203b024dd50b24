/**
 * readFetched (src/net/client/fetched-batches.ts): what the Consumer hands out of a fetch
 * payload, and where it stops, for hand-made payloads with damage at known places.
 */
import test from 'ava';
import { ErrorCode } from '../../src/errors.js';
import { encodeBatch } from '../../src/log/batch.js';
import { readFetched } from '../../src/net/client/fetched-batches.js';

function batch(baseOffset: number, count: number): Buffer {
  return encodeBatch(Array.from({ length: count }, (_, i) => ({ value: `r${baseOffset + i}` })), { baseOffset, timestamp: 1000 });
}

const offsets = (r: ReturnType<typeof readFetched>): number[] => r.records.map((x) => x.offset);

test('whole batches decode from the offset asked for; nextOffset is one past the last batch', (t) => {
  const payload = Buffer.concat([batch(0, 4), batch(4, 3)]);
  const r = readFetched(payload, 2, true);
  t.deepEqual(offsets(r), [2, 3, 4, 5, 6]);
  t.deepEqual(r.records.map((x) => x.value!.toString()), ['r2', 'r3', 'r4', 'r5', 'r6']);
  t.is(r.nextOffset, 7);
  t.is(r.damage, undefined);
});

test('batches wholly before the offset asked for are skipped, and nextOffset moves past them', (t) => {
  const r = readFetched(batch(0, 4), 9, true);
  t.deepEqual(r.records, []);
  t.is(r.nextOffset, 9);
  const behind = readFetched(Buffer.concat([batch(0, 4), batch(4, 2)]), 5, true);
  t.deepEqual(offsets(behind), [5]);
  t.is(behind.nextOffset, 6);
});

test('a CRC mismatch in the second batch: the first is delivered, the damage is at its end', (t) => {
  const second = batch(3, 3);
  second[second.length - 2] ^= 0x01; // the last byte of the last value
  const r = readFetched(Buffer.concat([batch(0, 3), second, batch(6, 3)]), 0, true);
  t.deepEqual(offsets(r), [0, 1, 2]);
  t.is(r.nextOffset, 3);
  t.is(r.damage?.offset, 3);
  t.is(r.damage?.reason.code, ErrorCode.CORRUPT_BATCH);
  t.regex(r.damage!.reason.message, /CRC mismatch/);
  // Without the CRC check the damaged byte goes through (it sits in a value).
  t.is(readFetched(Buffer.concat([batch(0, 3), second]), 0, false).damage, undefined);
});

test('a zero batch length, a truncated tail and trailing garbage are damage, not the end of data', (t) => {
  for (const checkCrcs of [true, false]) {
    const zeros = readFetched(Buffer.concat([batch(0, 2), Buffer.alloc(70)]), 0, checkCrcs);
    t.deepEqual(offsets(zeros), [0, 1]);
    t.is(zeros.damage?.offset, 2, `zeros, checkCrcs ${checkCrcs}`);
    const whole = batch(2, 2);
    const truncated = readFetched(Buffer.concat([batch(0, 2), whole.subarray(0, whole.length - 5)]), 0, checkCrcs);
    t.deepEqual(offsets(truncated), [0, 1]);
    t.is(truncated.damage?.offset, 2, `truncated, checkCrcs ${checkCrcs}`);
    const garbage = readFetched(Buffer.concat([batch(0, 2), Buffer.from([1, 2, 3])]), 0, checkCrcs);
    t.deepEqual(offsets(garbage), [0, 1]);
    t.is(garbage.damage?.offset, 2, `garbage, checkCrcs ${checkCrcs}`);
  }
});

test('base offsets: the first batch may start before the offset asked for, never after; each next one where the last ended', (t) => {
  const late = readFetched(batch(5, 2), 3, true);
  t.deepEqual(late.records, []);
  t.is(late.damage?.offset, 3);
  t.regex(late.damage!.reason.message, /base offset 5, expected at most 3/);
  const gap = readFetched(Buffer.concat([batch(0, 2), batch(3, 2)]), 0, true);
  t.deepEqual(offsets(gap), [0, 1]);
  t.is(gap.damage?.offset, 2);
  t.regex(gap.damage!.reason.message, /base offset 3, expected 2/);
});

test('a batch whose records do not decode stops delivery at its first offset, with or without the CRC check', (t) => {
  const bad = batch(2, 2);
  bad.writeInt32BE(3, 57); // record count 3 of 2 records: decoding runs past the batch
  const r = readFetched(Buffer.concat([batch(0, 2), bad, batch(4, 2)]), 1, false);
  t.deepEqual(offsets(r), [1]);
  t.is(r.nextOffset, 2);
  t.is(r.damage?.offset, 2);
  t.regex(r.damage!.reason.message, /runs past/);
  // The CRC check catches the same batch first.
  t.regex(readFetched(Buffer.concat([batch(0, 2), bad]), 0, true).damage!.reason.message, /CRC mismatch/);
});

/**
 * The JavaScript batch walker (src/log/batch-walker.ts) and the native scanner that
 * recovery uses must agree on where a run of batches ends: the same damaged inputs,
 * walked both ways, stop at the same byte.
 */
import test from 'ava';
import { BATCH_LENGTH_POS, CRC_POS, MAGIC_POS, encodeBatch } from '../../src/log/batch.js';
import { BatchWalker, bufferSource, countRecords, type WalkStop } from '../../src/log/batch-walker.js';
import * as native from '../../src/native.js';

/** Three batches (2, 1 and 3 records) from offset 10, then `tail` zero bytes. */
function run(tail = 64): { buf: Buffer; starts: number[]; end: number } {
  const parts = [
    encodeBatch([{ value: 'a' }, { value: 'b' }], { baseOffset: 10, timestamp: 1000 }),
    encodeBatch([{ value: 'c' }], { baseOffset: 12, timestamp: 1001 }),
    encodeBatch([{ key: 'k', value: 'd' }, { value: 'e' }, { value: 'f' }], { baseOffset: 13, timestamp: 1002 }),
  ];
  const starts: number[] = [];
  let at = 0;
  for (const p of parts) {
    starts.push(at);
    at += p.length;
  }
  return { buf: Buffer.concat([...parts, Buffer.alloc(tail)]), starts, end: at };
}

function walk(buf: Buffer, options: { verify?: boolean; strict?: boolean; expect?: number | { atMost: number }; end?: number } = {}) {
  const walker = new BatchWalker(bufferSource(buf), { end: options.end ?? buf.length, verify: options.verify, strict: options.strict, expect: options.expect });
  const positions: number[] = [];
  for (let b = walker.next(); b !== null; b = walker.next()) positions.push(b.position);
  return { positions, ended: walker.ended!, error: walker.error() };
}

test('an undamaged run: every batch in order, then the end at the first zero length; countRecords sums the headers', (t) => {
  const { buf, starts, end } = run();
  const w = walk(buf, { verify: true, expect: 10 });
  t.deepEqual(w.positions, starts);
  t.deepEqual(w.ended, { position: end, stop: 'end', reason: '', nextOffset: 16 });
  t.is(w.error, null);
  t.is(countRecords(buf), 6);
  t.is(countRecords(buf, starts[1], end), 4);
  const scan = native.scanBatches(buf, 0, buf.length, 10);
  t.is(scan.status, native.ScanStatus.END);
  t.is(scan.position, end);
  t.is(scan.nextOffset, 16);
});

const damages: Array<{ name: string; damage: (buf: Buffer, at: number) => void; stop: WalkStop; status: number; reason: RegExp }> = [
  { name: 'a flipped CRC byte', damage: (b, at) => { b[at + CRC_POS] ^= 0xff; }, stop: 'crc', status: native.ScanStatus.BAD_CRC, reason: /^CRC mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/ },
  { name: 'magic 1', damage: (b, at) => { b[at + MAGIC_POS] = 1; }, stop: 'magic', status: native.ScanStatus.BAD_MAGIC, reason: /^magic 1, expected 2$/ },
  { name: 'a batch length of 20', damage: (b, at) => { b.writeInt32BE(20, at + BATCH_LENGTH_POS); }, stop: 'short', status: native.ScanStatus.BAD_LENGTH, reason: /^batch length 20 is below the minimum 49$/ },
  { name: 'a batch length past the end', damage: (b, at) => { b.writeInt32BE(1 << 20, at + BATCH_LENGTH_POS); }, stop: 'truncated', status: native.ScanStatus.TRUNCATED, reason: /^truncated: batch length 1048576 runs past the end \(\d+ bytes left\)$/ },
  { name: 'a base offset out of sequence', damage: (b, at) => { b.writeBigInt64BE(99n, at); }, stop: 'offset', status: native.ScanStatus.BAD_OFFSET, reason: /^base offset 99, expected 12$/ },
];

for (const d of damages) {
  test(`${d.name} in the second batch: the walker and the native scanner both stop at its start`, (t) => {
    const { buf, starts } = run();
    d.damage(buf, starts[1]!);
    const w = walk(buf, { verify: true, expect: 10 });
    t.deepEqual(w.positions, [starts[0]]);
    t.is(w.ended.position, starts[1]);
    t.is(w.ended.stop, d.stop);
    t.regex(w.ended.reason, d.reason);
    t.is(w.error?.code, 'ERR_CORRUPT_BATCH');
    t.is(w.error?.message, `corrupt batch at position ${starts[1]}: ${w.ended.reason}`);
    const scan = native.scanBatches(buf, 0, buf.length, 10);
    t.is(scan.position, starts[1]);
    t.is(scan.status, d.status);
  });
}

test('without verify a CRC mismatch is walked over (the frame is sound); without expect offsets are not checked', (t) => {
  const { buf, starts, end } = run();
  buf[starts[1]! + CRC_POS] ^= 0xff;
  buf.writeBigInt64BE(99n, starts[2]!);
  const w = walk(buf);
  t.deepEqual(w.positions, starts);
  t.is(w.ended.position, end);
  t.is(w.ended.stop, 'end');
  t.is(w.ended.nextOffset, -1);
});

test('expect { atMost }: the first batch may start at or before the offset, never after it', (t) => {
  const { buf, starts } = run();
  t.deepEqual(walk(buf, { expect: { atMost: 11 } }).positions, starts);
  t.deepEqual(walk(buf, { expect: { atMost: 10 } }).positions, starts);
  const after = walk(buf, { expect: { atMost: 9 } });
  t.deepEqual(after.positions, []);
  t.is(after.ended.stop, 'offset');
  t.is(after.ended.reason, 'base offset 10, expected at most 9');
  const second = walk(buf, { expect: 10, end: buf.length });
  t.is(second.ended.nextOffset, 16);
});

test('strict: zeros and a partial header before the end are damage, not the end of the data', (t) => {
  const { buf, starts, end } = run(64);
  const zeros = walk(buf, { strict: true });
  t.deepEqual(zeros.positions, starts);
  t.is(zeros.ended.stop, 'short');
  t.is(zeros.ended.position, end);
  t.is(zeros.ended.reason, 'batch length 0 is below the minimum 49');
  const partial = walk(buf.subarray(0, end + 7), { strict: true });
  t.is(partial.ended.stop, 'truncated');
  t.is(partial.ended.reason, 'a batch header needs 61 bytes, only 7 left');
  const exact = walk(buf.subarray(0, end), { strict: true });
  t.is(exact.ended.stop, 'end');
  t.is(exact.error, null);
  // Not strict, the same 7 bytes are what follows the data in a file.
  t.is(walk(buf.subarray(0, end + 7)).ended.stop, 'end');
});

test('a source that returns fewer bytes than asked (a file that shrank) ends the walk as truncated', (t) => {
  const { buf, starts } = run(0);
  const shrunk = starts[2]! + 30;
  const source = { bytes: (p: number, n: number) => buf.subarray(p, Math.min(shrunk, p + n)) };
  const walker = new BatchWalker(source, { end: buf.length });
  t.is(walker.next()?.position, starts[0]);
  t.is(walker.next()?.position, starts[1]);
  t.is(walker.next(), null);
  t.is(walker.ended?.stop, 'truncated');
  t.is(walker.ended?.position, starts[2]);
});

/**
 * scanSegment and tailExtent read a file one window at a time (pread, data-dir.ts);
 * they must find exactly what the native scanner finds over the whole file in memory:
 * batches cut by a window's end (header or body), batches larger than a window, zero
 * runs and garbage crossing windows, torn and corrupt tails. Random files with the
 * seed printed (replay with SEED=), plus hand-made cases at the window boundaries.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { encodeBatch, setBaseOffset, verifyBatch } from '../../src/log/batch.js';
import * as native from '../../src/native.js';
import { FileReader, WINDOW_BYTES, scanSegment, tailExtent, type ScanOutcome } from '../../src/ops/data-dir.js';
import { randBytes, randInt, rng, testSeed, tmpDir, type Rng } from '../helpers/tmp.js';

const ZERO_RUN = 64 * 1024;

/** One batch at `baseOffset`: `records` records, the first with a value of `valueBytes`. */
function batch(baseOffset: number, records: number, valueBytes: number): Buffer {
  const b = encodeBatch(Array.from({ length: records }, (_, i) => ({ key: null, value: Buffer.alloc(i === 0 ? valueBytes : 3, 0x61 + (baseOffset % 26)), timestamp: 1_700_000_000_000 + baseOffset })));
  setBaseOffset(b, 0, baseOffset);
  return b;
}

/** A single-record batch of exactly `bytes` bytes. */
function batchOfSize(baseOffset: number, bytes: number): Buffer {
  let value = bytes - 80;
  for (;;) {
    const b = batch(baseOffset, 1, value);
    if (b.length === bytes) return b;
    value += bytes - b.length;
  }
}

/** Position just past the last non-zero byte of data[from, end). */
function lastNonZero(data: Buffer, from: number, end = data.length): number {
  for (let i = end; i > from; i--) if (data[i - 1] !== 0) return i;
  return from;
}

/** What the scan must report: the native scanner and the last non-zero byte over the whole file in memory. */
function reference(data: Buffer, expected: number): ScanOutcome {
  const r = native.scanBatches(data, 0, data.length, expected, Number.MAX_SAFE_INTEGER, -1);
  const next = r.batches > 0 ? r.nextOffset : expected;
  const extent = lastNonZero(data, r.position);
  let problem: string | null = null;
  if (r.status === native.ScanStatus.BAD_OFFSET) {
    problem = `batch base offset ${Number(data.readBigInt64BE(r.position))}, expected ${next} (offsets not contiguous)`;
  } else if (r.status !== native.ScanStatus.END) {
    try {
      verifyBatch(data, r.position, data.length);
      problem = native.scanStatusNames[r.status]!;
    } catch (err) {
      problem = (err as Error).message.replace(/^corrupt batch at position \d+: /, '');
    }
  } else if (extent > r.position) {
    problem = `${extent - r.position} bytes after the last valid batch are not a batch (torn write)`;
  }
  return { dataEnd: r.position, batches: r.batches, records: r.records, nextOffset: next, problem, extent, epoch: r.epoch };
}

function scanFile(dir: string, name: string, data: Buffer, expected = 0): ScanOutcome {
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  const reader = FileReader.open(file)!;
  try {
    return scanSegment(reader, expected);
  } finally {
    reader.close();
  }
}

/** Batches from offset 0 whose sizes are given, then `tail`. */
function layout(sizes: number[], tail: Buffer = Buffer.alloc(0)): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (const size of sizes) {
    parts.push(batchOfSize(offset, size));
    offset++;
  }
  return Buffer.concat([...parts, tail]);
}

test('batches cut by a window end, in the header or the body, and larger than a window scan as in memory', (t) => {
  const dir = tmpDir(t);
  const cases: Record<string, Buffer> = {
    // The 1 MiB boundary falls 5 bytes into a header, then 30 bytes into one.
    'header cut at the length field': layout([WINDOW_BYTES - 5, 4096], Buffer.alloc(100_000)),
    'header cut after the length field': layout([WINDOW_BYTES - 30, 4096], Buffer.alloc(100_000)),
    'body cut': layout([WINDOW_BYTES - 2000, 8000, 300], Buffer.alloc(70_000)),
    'batch of three windows': layout([1000, 3 * WINDOW_BYTES + 17, 1000], Buffer.alloc(WINDOW_BYTES)),
    'batch ending exactly at the window end': layout([WINDOW_BYTES / 2, WINDOW_BYTES / 2, 500]),
    'file ending exactly at a window end': layout([WINDOW_BYTES / 4, WINDOW_BYTES / 4, WINDOW_BYTES / 4, WINDOW_BYTES / 4]),
    'empty file': Buffer.alloc(0),
    'only zeros': Buffer.alloc(3 * WINDOW_BYTES),
    'last batch runs past the end (larger than a window)': layout([1000, 2 * WINDOW_BYTES]).subarray(0, 1000 + WINDOW_BYTES + 5),
    'last header runs past the end': layout([WINDOW_BYTES, 500]).subarray(0, WINDOW_BYTES + 7),
  };
  for (const [name, data] of Object.entries(cases)) {
    t.deepEqual(scanFile(dir, name.replace(/\W+/g, '-'), data), reference(data, 0), name);
  }
});

test('tail garbage and zero runs crossing window ends are sized as in memory', (t) => {
  const dir = tmpDir(t);
  const data = layout([WINDOW_BYTES - 100_000, 1000]);
  const end = data.length;
  const cases: [string, Buffer][] = [];
  // Garbage after zero runs just under and at the limit, placed across the window end.
  for (const gap of [1, ZERO_RUN - 8, ZERO_RUN - 1, ZERO_RUN, ZERO_RUN + 1]) {
    const tail = Buffer.alloc(gap + 200 + 2 * WINDOW_BYTES);
    tail.fill(0x5a, gap, gap + 200);
    tail.fill(0x33, gap + 200 + ZERO_RUN - 3, gap + 200 + ZERO_RUN - 2); // one more byte after a run one short of the limit
    cases.push([`gap ${gap}`, Buffer.concat([data, tail])]);
  }
  for (const [name, file] of cases) {
    const p = path.join(dir, name.replace(/\W+/g, '-'));
    fs.writeFileSync(p, file);
    const reader = FileReader.open(p)!;
    t.is(tailExtent(reader, end, file.length), lastNonZero(file, end), name);
    reader.close();
    t.deepEqual(scanFile(dir, `${name}-scan`.replace(/\W+/g, '-'), file), reference(file, 0), name);
  }
});

/** A random segment: batches of random sizes (some larger than a window), then a random tail or damage. */
function randomSegment(r: Rng): { data: Buffer; first: number } {
  const parts: Buffer[] = [];
  const first = randInt(r, 0, 1000);
  let offset = first;
  let bytes = 0;
  const target = randInt(r, 0, 4 * WINDOW_BYTES);
  while (bytes < target) {
    const big = r() < 0.05;
    const records = randInt(r, 1, 5);
    const b = batch(offset, records, big ? randInt(r, WINDOW_BYTES / 2, 2 * WINDOW_BYTES) : randInt(r, 0, 20_000));
    parts.push(b);
    offset += records;
    bytes += b.length;
  }
  let data = Buffer.concat([...parts, Buffer.alloc(randInt(r, 0, 2 * WINDOW_BYTES))]);
  const damage = randInt(r, 0, 4);
  if (damage === 1 && data.length > 0) {
    // Garbage from a random point, possibly inside a batch.
    const at = randInt(r, 0, data.length - 1);
    randBytes(r, Math.min(randInt(r, 1, 100_000), data.length - at)).copy(data, at);
  } else if (damage === 2) {
    data = data.subarray(0, randInt(r, 0, data.length)); // torn at a random point
  } else if (damage === 3 && data.length > 0) {
    data[randInt(r, 0, data.length - 1)] ^= 0x40; // one flipped bit
  } else if (damage === 4 && parts.length > 1) {
    setBaseOffset(data, parts[0]!.length, 999_999); // offsets not contiguous
  }
  return { data, first };
}

test('random segments scan through windows exactly as in memory', (t) => {
  const seed = testSeed();
  t.log(`seed ${seed}`);
  const r = rng(seed);
  const dir = tmpDir(t);
  for (let i = 0; i < 40; i++) {
    const { data, first } = randomSegment(r);
    const expected = r() < 0.5 ? -1 : first;
    t.deepEqual(scanFile(dir, `seg-${i}`, data, expected), reference(data, expected), `file ${i} (seed ${seed})`);
  }
});

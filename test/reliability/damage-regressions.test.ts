/**
 * The damage the corruption matrix (corruption-matrix.test.ts) found reading wrongly,
 * each made by hand so it is tried on every run, not only when a random case hits it
 * (docs/reliability.md, "What the suite found"):
 *   - a damaged batch before the recovery point steering a timestamp lookup;
 *   - a sealed segment's time index cut short, understating its maximum timestamp;
 *   - a sealed segment's log truncated to zero bytes, reading as empty;
 *   - a consume-queue entry with a wrong relative offset that still validates;
 * and one that reads right and must stay so: a time-index entry moved to an offset
 * where no batch starts.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { CommitLog, type CommitLogOptions } from '../../src/log/commit-log.js';
import { tempDir } from './helpers.js';

const TOPIC = 't';
const T0 = 1_700_000_000_000;

interface Log {
  dir: string;
  pdir: string;
  count: number;
  /** Segment base offsets, ascending. */
  bases: number[];
}

const rebuilt: string[] = [];
function options(dir: string): CommitLogOptions {
  return {
    dir, flush: 'os', warmSegments: false, topicDefaults: { segmentBytes: 64 * 1024, indexIntervalBytes: 1024 },
    logger: { info: () => undefined, warn: (_f, m) => void rebuilt.push(m) },
  };
}

const stem = (l: Log, base: number): string => path.join(l.pdir, String(base).padStart(20, '0'));
const valueOf = (offset: number): Buffer => Buffer.alloc(700 + ((offset * 37) % 300), offset & 0xff);

/**
 * Records of ~1 KB, 2 per batch (so entry i of a consume queue has relative offset 2i),
 * timestamps rising by 10 ms: at least three 64 KiB segments, the active one with at
 * least 4 batches.
 */
async function makeLog(t: ExecutionContext): Promise<Log> {
  const dir = tempDir(t);
  const pdir = path.join(dir, TOPIC, '0');
  const log = await CommitLog.open(options(dir));
  await log.createTopic(TOPIC);
  let count = 0;
  const basesNow = (): number[] => fs.readdirSync(pdir).filter((n) => n.endsWith('.log')).map((n) => Number(n.slice(0, 20))).sort((a, b) => a - b);
  for (let i = 0; i < 1000; i++) {
    const bases = basesNow();
    if (bases.length >= 3 && count - bases[bases.length - 1]! >= 8) break;
    await log.append(TOPIC, 0, [count, count + 1].map((x) => ({ key: `k${x}`, value: valueOf(x), timestamp: T0 + x * 10 })));
    count += 2;
  }
  await log.close();
  return { dir, pdir, count, bases: basesNow() };
}

function exactRead(log: CommitLog, offset: number): boolean {
  const [rec] = log.read(TOPIC, 0, offset, { maxBytes: 1 });
  return rec !== undefined && rec.offset === offset && rec.key?.toString() === `k${offset}` && rec.value!.equals(valueOf(offset)) && rec.timestamp === T0 + offset * 10;
}

function writeAt(file: string, position: number, bytes: Buffer): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, bytes, 0, bytes.length, position);
  fs.closeSync(fd);
}

function everyTimestampExact(t: ExecutionContext, log: CommitLog, count: number): void {
  const wrong: string[] = [];
  for (let o = 0; o < count && wrong.length < 5; o++) {
    for (const ts of [T0 + o * 10 - 5, T0 + o * 10]) {
      const got = log.offsetForTimestamp(TOPIC, 0, ts);
      if (got !== o) wrong.push(`offsetForTimestamp(${ts}) = ${got}, expected ${o}`);
    }
  }
  t.deepEqual(wrong, []);
}

test('a batch damaged before the recovery point never answers a timestamp lookup: ERR_LOG_CORRUPT naming the file', async (t) => {
  const l = await makeLog(t);
  const file = `${stem(l, l.bases[0]!)}.log`;
  // The first batch's first record: its timestamp delta is the 3rd byte of the record (after length and attributes).
  const data = fs.readFileSync(file);
  writeAt(file, 61 + 2, Buffer.from([data[61 + 2]! ^ 0x7e]));
  const log = await CommitLog.open(options(l.dir));
  t.teardown(() => log.close());
  const err = t.throws(() => log.offsetForTimestamp(TOPIC, 0, T0 - 1), { instanceOf: CommitLogError, code: ErrorCode.LOG_CORRUPT });
  t.is(err?.path, file);
  t.is(typeof err?.position, 'number');
  t.throws(() => log.read(TOPIC, 0, 0), { code: ErrorCode.LOG_CORRUPT });
  // Later segments answer exactly.
  t.is(log.offsetForTimestamp(TOPIC, 0, T0 + l.bases[1]! * 10), l.bases[1]!);
});

for (const damage of ['truncated after its first entries', 'zeroed from its third entry on'] as const) {
  test(`a sealed segment's time index ${damage} is rebuilt: every timestamp lookup stays exact`, async (t) => {
    const l = await makeLog(t);
    const tix = `${stem(l, l.bases[1]!)}.tix`;
    const size = fs.statSync(tix).size;
    t.true(size >= 4 * 16);
    if (damage === 'truncated after its first entries') fs.truncateSync(tix, 2 * 16 + 5);
    else writeAt(tix, 2 * 16, Buffer.alloc(size - 2 * 16));
    const log = await CommitLog.open(options(l.dir));
    t.teardown(() => log.close());
    everyTimestampExact(t, log, l.count);
  });
}

for (const mode of ['clean', 'unclean'] as const) {
  test(`a sealed segment truncated to zero bytes is ERR_LOG_CORRUPT naming it, never an empty segment (open: ${mode})`, async (t) => {
    const l = await makeLog(t);
    const file = `${stem(l, l.bases[1]!)}.log`;
    fs.truncateSync(file, 0);
    if (mode === 'unclean') fs.rmSync(path.join(l.dir, '.clean-shutdown'));
    const log = await CommitLog.open(options(l.dir));
    t.teardown(() => log.close());
    t.is(log.latestOffset(TOPIC, 0), l.count);
    for (let o = l.bases[1]!; o < l.bases[2]!; o++) {
      const err = t.throws(() => log.read(TOPIC, 0, o), { instanceOf: CommitLogError, code: ErrorCode.LOG_CORRUPT });
      t.is(err?.path, file);
    }
    t.true(exactRead(log, l.bases[2]!));
    t.true(exactRead(log, 0));
  });
}

for (const target of ['sealed', 'active'] as const) {
  // The active segment is opened after a simulated crash: recovery then keeps its
  // consume queue (the chain of positions is sound) and the read finds the bad entry.
  test(`a consume-queue entry of the ${target} segment with a wrong relative offset that still validates is rebuilt: every read exact`, async (t) => {
    const l = await makeLog(t);
    const base = target === 'sealed' ? l.bases[1]! : l.bases[l.bases.length - 1]!;
    const cq = `${stem(l, base)}.cq`;
    // Entry 2 names the batch at relative offset 4; 5 still lies between its neighbours' 2 and 6.
    t.is(fs.readFileSync(cq).readUInt32LE(2 * 12), 4);
    const bad = Buffer.alloc(4);
    bad.writeUInt32LE(5);
    writeAt(cq, 2 * 12, bad);
    if (target === 'active') fs.rmSync(path.join(l.dir, '.clean-shutdown'));
    rebuilt.length = 0;
    const log = await CommitLog.open(options(l.dir));
    t.teardown(() => log.close());
    const wrong: number[] = [];
    for (let o = 0; o < l.count; o++) if (!exactRead(log, o)) wrong.push(o);
    t.deepEqual(wrong, []);
    everyTimestampExact(t, log, l.count);
    t.true(rebuilt.some((m) => m.includes(`rebuilt the indexes of ${stem(l, base)}.log`)), `the indexes of ${base} were rebuilt on read (${rebuilt.join(' | ')})`);
  });
}

test('a time-index entry naming no batch (an offset changed but still in order) is rebuilt: every timestamp lookup stays exact', async (t) => {
  const l = await makeLog(t);
  const tix = `${stem(l, l.bases[1]!)}.tix`;
  const entries = fs.statSync(tix).size / 16;
  t.true(entries >= 4);
  // Entry 1's relative offset moved up by one: between its neighbours, but no batch starts there.
  const k = 1;
  const rel = fs.readFileSync(tix).readUInt32LE(k * 16 + 8);
  const next = fs.readFileSync(tix).readUInt32LE((k + 1) * 16 + 8);
  t.true(rel + 1 < next);
  const b = Buffer.alloc(4);
  b.writeUInt32LE(rel + 1);
  writeAt(tix, k * 16 + 8, b);
  const log = await CommitLog.open(options(l.dir));
  t.teardown(() => log.close());
  everyTimestampExact(t, log, l.count);
});

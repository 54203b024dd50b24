import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog } from '../../src/log/commit-log.js';
import { tmpDir } from '../helpers/tmp.js';
import { lines, runCli } from './helpers.js';

const SEGMENT_BYTES = 64 * 1024;

/** A closed data directory: topic 't', 2 partitions of small segments, `batches` batches each. */
async function dataDir(dir: string, batches = 300, close = true): Promise<CommitLog> {
  const log = await CommitLog.open({ dir, flush: 'async', logger: { info: () => undefined, warn: () => undefined } });
  await log.createTopic('t', { partitions: 2, segmentBytes: SEGMENT_BYTES, indexIntervalBytes: 256 });
  for (let i = 0; i < batches; i++) {
    const records = Array.from({ length: 1 + (i % 5) }, (_, j) => ({ key: `k${j}`, value: valueOf(i, j), timestamp: 1_700_000_000_000 + i * 7 - (j % 3) * 1000 }));
    await log.append('t', i % 2, records);
  }
  if (close) await log.close();
  return log;
}

function valueOf(i: number, j: number): string {
  return `value ${i}.${j} `.repeat(10 * (1 + (i % 9)));
}

function segmentsOf(dir: string, partition: number): string[] {
  const p = path.join(dir, 't', String(partition));
  return fs.readdirSync(p).filter((n) => n.endsWith('.log')).sort().map((n) => path.join(p, n));
}

/** Position of the n-th batch (0-based) of a segment file. */
function batchPosition(file: string, n: number): number {
  const b = fs.readFileSync(file);
  let pos = 0;
  for (let i = 0; i < n; i++) pos += 12 + b.readInt32BE(pos + 8);
  return pos;
}

test('verify exits 0 on a clean directory and prints a summary', async (t) => {
  const dir = tmpDir(t);
  await dataDir(dir);
  const r = await runCli(['verify', dir]);
  t.is(r.code, 0, r.stdout.toString());
  t.regex(r.stdout.toString(), /^verified 1 topics, 2 partitions, \d+ segments, 300 batches, 900 records, .* closed cleanly: no problems\n$/);
  t.true(segmentsOf(dir, 0).length > 2, 'the test needs several segments');
  t.is(r.stderr, '', 'no progress bar when stderr is not a terminal');
});

test('verify exits 1 naming file and position of a flipped byte, and --repair cannot fix it before the recovery point', async (t) => {
  const dir = tmpDir(t);
  await dataDir(dir);
  const file = segmentsOf(dir, 1)[0]!;
  const position = batchPosition(file, 5);
  const bytes = fs.readFileSync(file);
  bytes[position + 70] ^= 0x5a; // inside the records: only the CRC can tell
  fs.writeFileSync(file, bytes);

  const r = await runCli(['verify', dir]);
  t.is(r.code, 1);
  const report = lines(r.stdout);
  t.regex(report[0]!, new RegExp(`^${escape(file)}:${position}: CRC mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}`));
  t.regex(report[report.length - 1]!, /: \d+ problems?$/);

  const repaired = await runCli(['verify', dir, '--repair']);
  t.is(repaired.code, 1, 'damage in a sealed segment before the recovery point stays');
  t.regex(repaired.stdout.toString(), new RegExp(`after repair:\\n${escape(file)}:${position}: CRC mismatch`));
});

test('a torn tail and a damaged consume queue: verify reports both, --repair truncates and rebuilds, then verify is clean', async (t) => {
  const dir = tmpDir(t);
  await dataDir(dir);
  // As after a crash: no clean-shutdown marker, and garbage after the last batch.
  fs.rmSync(path.join(dir, '.clean-shutdown'));
  const active = segmentsOf(dir, 0).at(-1)!;
  const end = batchPosition(active, countBatches(active));
  const data = fs.readFileSync(active);
  data.write('torn write garbage', end);
  fs.writeFileSync(active, data);
  const sealed = segmentsOf(dir, 1)[1]!;
  const cq = sealed.replace(/\.log$/, '.cq');
  const entries = fs.readFileSync(cq);
  entries.writeUInt32LE(entries.readUInt32LE(12 + 4) + 1, 12 + 4); // entry 1's position
  fs.writeFileSync(cq, entries);

  const r = await runCli(['verify', dir]);
  t.is(r.code, 1);
  const out = r.stdout.toString();
  t.regex(out, new RegExp(`^${escape(active)}:${end}: .*\\(recovery truncates the log here`, 'm'));
  t.regex(out, new RegExp(`^${escape(cq)}:12: entry 1 is \\(relative offset \\d+, position \\d+`, 'm'));

  const repaired = await runCli(['verify', dir, '--repair']);
  t.is(repaired.code, 0, repaired.stdout.toString());
  t.regex(repaired.stdout.toString(), /recovery: recovered t\/0: dropped 1 batches/);
  t.regex(repaired.stdout.toString(), /after repair:\nverified 1 topics, 2 partitions, \d+ segments, 300 batches, 900 records, .*closed cleanly: no problems/);
  t.is((await runCli(['verify', dir])).code, 0);
});

test('verify --repair refuses a directory in use; verify alone warns and reads', async (t) => {
  const dir = tmpDir(t);
  const log = await dataDir(dir, 20, false);
  t.teardown(() => log.close());
  const repair = await runCli(['verify', dir, '--repair']);
  t.is(repair.code, 1);
  t.regex(repair.stderr, /is in use .*stop the broker first \(ERR_LOCKED\)/);
  const plain = await runCli(['verify', dir]);
  t.regex(plain.stderr, /in use by a running broker/);
  t.regex(plain.stdout.toString(), /in use by a broker/);
  await log.close();
  const repaired = await runCli(['verify', dir, '--repair']);
  t.is(repaired.code, 0, repaired.stderr + repaired.stdout.toString());
});

test('dump prints every batch with offsets, positions and checksum status, and records with --records', async (t) => {
  const dir = tmpDir(t);
  await dataDir(dir, 10);
  const r = await runCli(['dump', dir, '--topic', 't', '--partition', '0', '--records', '--indexes']);
  t.is(r.code, 0, r.stderr);
  const out = lines(r.stdout);
  t.is(out[0], `Dumping ${segmentsOf(dir, 0)[0]}`);
  const batches = out.filter((l) => l.startsWith('baseOffset: '));
  t.is(batches.length, 5);
  t.regex(batches[0]!, /^baseOffset: 0 lastOffset: 0 count: 1 position: 0 size: \d+ firstTimestamp: 1700000000000 .* crc: 0x[0-9a-f]{8} isValid: true$/);
  t.regex(batches[1]!, /^baseOffset: 1 lastOffset: 3 count: 3 /);
  t.is(out.filter((l) => l.startsWith('| offset: ')).length, 1 + 3 + 5 + 2 + 4);
  t.true(out.includes(`| offset: 0 timestamp: 1700000000000 keySize: 2 valueSize: 100 key: "k0" value: ${JSON.stringify(valueOf(0, 0))} headers: {}`));
  t.true(out.some((l) => /^end of data at position \d+: 5 batches, 15 records$/.test(l)));
  t.true(out.some((l) => l.startsWith('relativeOffset: 0 offset: 0 position: 0 size: ')));
});

function countBatches(file: string): number {
  const b = fs.readFileSync(file);
  let n = 0;
  for (let pos = 0; pos + 12 <= b.length && b.readInt32BE(pos + 8) > 0; pos += 12 + b.readInt32BE(pos + 8)) n++;
  return n;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

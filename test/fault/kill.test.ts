/**
 * SIGKILL torture of the embedded library. A child process (child-appender.ts) appends
 * from 8 concurrent producers and prints an ACK line for every append that resolved;
 * the parent kills it with SIGKILL at a random moment, reopens the same directory and
 * checks the prefix property:
 *   - every acknowledged record is readable at its acknowledged offset, byte for byte;
 *   - offsets are dense from 0 to latestOffset - 1;
 *   - no partial record is visible: every record decodes and is exactly the record its
 *     (generation, producer, seq) stands for, and each producer's records appear in
 *     order with no gap (a producer only appends after its previous append resolved);
 *   - what a previous iteration verified is still there, unchanged.
 * Then it closes cleanly and the next child continues in the same directory.
 *
 * A process kill leaves the page cache intact, so under every flush policy nothing
 * acknowledged may be lost. Seeded: SEED=<n> replays; FAULT_ITERATIONS=<n> runs more.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommitLog } from '../../src/log/commit-log.js';
import type { FlushPolicy } from '../../src/log/partition-log.js';
import { TOPIC, markerPath, partitionDir, randInt, resolveSeed, rng, segmentBases, tempDir, type Rng } from './helpers.js';
import { idOf, recordKey, recordValue, type RecordId } from './payload.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ITERATIONS = Number(process.env.FAULT_ITERATIONS ?? 25);
const PRODUCERS = 8;
const SEGMENT_BYTES = 65536;
const CHILD_TIMEOUT_MS = 20_000;

interface Ack {
  base: number;
  last: number;
  producer: number;
  seq: number;
  count: number;
}

interface ChildRun {
  acks: Ack[];
  readyOffset: number;
  stderr: string;
}

interface ChildOptions {
  flush: FlushPolicy;
  warm: boolean;
  checkpointIntervalMs: number;
  /** 'acks': kill once this many ACKs arrived (plus a random delay); 'early': at a random time after spawn. */
  killAfterAcks: number | null;
  killDelayMs: number;
}

function parseAck(line: string): Ack | null {
  const m = /^ACK (\d+) (\d+) (\d+) (\d+) (\d+)$/.exec(line);
  if (m === null) return null;
  return { base: Number(m[1]), last: Number(m[2]), producer: Number(m[3]), seq: Number(m[4]), count: Number(m[5]) };
}

/** Runs one child generation until the parent SIGKILLs it; rejects if it died any other way. */
function runChild(live: Set<ChildProcess>, dir: string, gen: number, o: ChildOptions): Promise<ChildRun> {
  const child = spawn(process.execPath, [
    '--import=tsx', 'test/fault/child-appender.ts',
    dir, String(gen), o.flush, o.warm ? '1' : '0', String(SEGMENT_BYTES), String(PRODUCERS), String(o.checkpointIntervalMs),
  ], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const acks: Ack[] = [];
  let readyOffset = -1;
  let pending = '';
  let stderr = '';
  const garbled: string[] = [];
  let killTimer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const scheduleKill = (ms: number) => {
    if (killTimer === undefined) killTimer = setTimeout(kill, ms);
  };
  if (o.killAfterAcks === null) scheduleKill(o.killDelayMs);
  const safety = setTimeout(() => {
    timedOut = true;
    kill();
  }, CHILD_TIMEOUT_MS);
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!; // an unterminated line was never fully acknowledged
    for (const line of lines) {
      if (line.startsWith('READY ')) {
        readyOffset = Number(line.slice(6));
        continue;
      }
      const ack = parseAck(line);
      if (ack === null) {
        garbled.push(line);
        continue;
      }
      acks.push(ack);
      if (o.killAfterAcks !== null && acks.length >= o.killAfterAcks) scheduleKill(o.killDelayMs);
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      live.delete(child);
      clearTimeout(safety);
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (timedOut) reject(new Error(`child ${gen} made no progress in ${CHILD_TIMEOUT_MS} ms (${acks.length} acks)\n${stderr}`));
      else if (signal !== 'SIGKILL') reject(new Error(`child ${gen} exited by itself (code ${code}, signal ${signal})\n${stderr}`));
      else if (garbled.length > 0) reject(new Error(`child ${gen} printed lines that are not ACKs: ${garbled.slice(0, 3).join(' | ')}`));
      else resolve({ acks, readyOffset, stderr });
    });
  });
}

function sameId(a: RecordId | undefined, b: RecordId): boolean {
  return a !== undefined && a.gen === b.gen && a.producer === b.producer && a.seq === b.seq;
}

function fmt(id: RecordId | undefined): string {
  return id === undefined ? 'nothing' : recordKey(id.gen, id.producer, id.seq);
}

interface Verified {
  ids: RecordId[];
  droppedBatches: number;
  droppedBytes: number;
  droppedSegments: number;
  unacked: number;
}

/**
 * Reopens the log after a kill and checks everything (the open is unclean unless the
 * child died before opening the log); returns the records found, by offset. Problems
 * are collected and asserted at once so a failure lists them all.
 */
async function verifyAfterKill(t: ExecutionContext, dir: string, gen: number, run: ChildRun, previous: RecordId[], where: string): Promise<Verified> {
  const problems: string[] = [];
  // A child killed before it opened the log left the last clean close's marker: that open is clean.
  const expectClean = fs.existsSync(markerPath(dir));
  if (expectClean && run.readyOffset >= 0) problems.push('the clean-shutdown marker survived a child that opened the log');
  const log = await CommitLog.open({ dir, logger: { info: () => undefined, warn: () => undefined } });
  let ids: RecordId[] = [];
  let report;
  try {
    // The recovery report of an unclean open.
    const rec = log.recovery;
    report = rec.partitions[0];
    if (rec.clean !== expectClean) problems.push(`recovery.clean is ${rec.clean}, expected ${expectClean}`);
    if (rec.partitions.length !== 1) problems.push(`recovery has ${rec.partitions.length} partition reports, expected 1`);
    if (report !== undefined) {
      if (report.clean !== expectClean) problems.push(`partition report clean is ${report.clean}, expected ${expectClean}`);
      if (report.topic !== TOPIC || report.partition !== 0) problems.push(`partition report names ${report.topic}/${report.partition}`);
      if (!(report.droppedBytes >= 0 && report.droppedBatches >= 0 && report.droppedSegments >= 0 && report.scannedBytes >= 0 && report.rebuiltIndexes >= 0)) {
        problems.push(`negative count in report ${JSON.stringify(report)}`);
      }
      if ((report.droppedBytes > 0) !== (report.droppedBatches > 0)) problems.push(`droppedBytes ${report.droppedBytes} but droppedBatches ${report.droppedBatches}`);
      if (report.droppedBytes === 0 && report.droppedSegments === 0 && report.stopReason !== 'end of data') problems.push(`nothing dropped but stopReason ${report.stopReason}`);
      if (rec.droppedBytes !== report.droppedBytes || rec.droppedBatches !== report.droppedBatches) problems.push('report totals differ from the partition report');
      const bases = segmentBases(partitionDir(dir));
      if (!bases.includes(report.fromSegment)) problems.push(`report.fromSegment ${report.fromSegment} is not a segment on disk (${bases.join(',')})`);
      if (report.fromPosition < 0 || report.fromPosition > SEGMENT_BYTES) problems.push(`report.fromPosition ${report.fromPosition} is outside a segment`);
      if (!(report.durationMs >= 0)) problems.push(`report.durationMs ${report.durationMs}`);
    }

    // Read everything: dense offsets, every record exact, producers gap-free and in order.
    const latest = log.latestOffset(TOPIC, 0);
    if (log.earliestOffset(TOPIC, 0) !== 0) problems.push(`earliestOffset ${log.earliestOffset(TOPIC, 0)}, expected 0`);
    const nextSeq = new Map<string, number>();
    let lastGen = 0;
    let next = 0;
    while (next < latest && problems.length < 20) {
      const records = log.read(TOPIC, 0, next, { maxBytes: 256 * 1024 });
      if (records.length === 0) {
        problems.push(`read at ${next} returned nothing though latestOffset is ${latest}`);
        break;
      }
      for (const r of records) {
        if (r.offset !== next) {
          problems.push(`record at offset ${r.offset} where ${next} was expected (offsets must be dense)`);
          next = r.offset;
        }
        const id = idOf(r.value);
        if (id === null) {
          problems.push(`record ${r.offset} has an undecodable value (${r.value?.length ?? 'null'} bytes)`);
        } else if (id.gen > gen) {
          problems.push(`record ${r.offset} claims generation ${id.gen}, newer than ${gen}`);
        } else if (!recordValue(id.gen, id.producer, id.seq).equals(r.value!) || r.key?.toString() !== recordKey(id.gen, id.producer, id.seq)) {
          problems.push(`record ${r.offset} (${fmt(id)}) is not the exact record it claims to be`);
        } else {
          if (id.gen < lastGen) problems.push(`record ${r.offset} of generation ${id.gen} follows generation ${lastGen}`);
          lastGen = id.gen;
          const stream = `${id.gen}/${id.producer}`;
          const want = nextSeq.get(stream) ?? 0;
          if (id.seq !== want) problems.push(`record ${r.offset} is ${fmt(id)}, but producer ${stream} was at seq ${want} (gap or reorder)`);
          nextSeq.set(stream, id.seq + 1);
        }
        ids[r.offset] = id ?? { gen: -1, producer: -1, seq: -1 };
        next = r.offset + 1;
      }
    }
    if (next !== latest && problems.length < 20) problems.push(`read ended at ${next}, latestOffset is ${latest}`);
    if (log.read(TOPIC, 0, latest).length !== 0) problems.push(`read at latestOffset ${latest} returned records`);

    // What the previous iteration verified (and closed cleanly) is unchanged.
    if (latest < previous.length) problems.push(`log shrank from ${previous.length} to ${latest} records`);
    for (let i = 0; i < previous.length && problems.length < 20; i++) {
      if (!sameId(ids[i], previous[i])) problems.push(`offset ${i} was ${fmt(previous[i])} before this kill, now ${fmt(ids[i])}`);
    }
    if (run.readyOffset >= 0 && run.readyOffset !== previous.length) problems.push(`child ${gen} started at offset ${run.readyOffset}, expected ${previous.length}`);

    // Every acknowledged record is there, at its acknowledged offset, exact (random access too).
    let acked = 0;
    for (const ack of run.acks) {
      if (problems.length >= 20) break;
      if (ack.last - ack.base + 1 !== ack.count) problems.push(`ack ${JSON.stringify(ack)} spans ${ack.last - ack.base + 1} offsets`);
      for (let i = 0; i < ack.count; i++) {
        const want: RecordId = { gen, producer: ack.producer, seq: ack.seq + i };
        const offset = ack.base + i;
        acked++;
        if (offset >= latest) {
          problems.push(`acknowledged ${fmt(want)} at offset ${offset} is lost (latestOffset ${latest})`);
          continue;
        }
        if (!sameId(ids[offset], want)) {
          problems.push(`acknowledged ${fmt(want)} at offset ${offset}, found ${fmt(ids[offset])}`);
          continue;
        }
        const [r] = log.read(TOPIC, 0, offset, { maxBytes: 1 });
        if (r === undefined || r.offset !== offset || !recordValue(gen, ack.producer, ack.seq + i).equals(r.value ?? Buffer.alloc(0))) {
          problems.push(`random read of acknowledged offset ${offset} returned ${r === undefined ? 'nothing' : `offset ${r.offset}`}`);
        }
      }
    }
    ids = ids.slice(0, latest);
    const fromThisGen = ids.filter((id) => id.gen === gen).length;
    t.deepEqual(problems, [], `${where}: the prefix property fails`);
    return {
      ids,
      droppedBatches: report?.droppedBatches ?? 0,
      droppedBytes: report?.droppedBytes ?? 0,
      droppedSegments: report?.droppedSegments ?? 0,
      unacked: fromThisGen - acked,
    };
  } finally {
    await log.close();
    if (!fs.existsSync(markerPath(dir))) t.fail(`${where}: close did not write the clean-shutdown marker`);
  }
}

function pick<T>(r: Rng, items: T[]): T {
  return items[randInt(r, 0, items.length - 1)];
}

async function torture(t: ExecutionContext, flush: FlushPolicy, iterations: number): Promise<void> {
  const seed = resolveSeed();
  t.log(`seed ${seed} (replay with SEED=${seed}), ${iterations} iterations, flush '${flush}'`);
  const r = rng(seed);
  const dir = tempDir(t);
  const live = new Set<ChildProcess>();
  t.teardown(() => {
    for (const c of live) c.kill('SIGKILL');
  });
  let previous: RecordId[] = [];
  const totals = { acked: 0, unacked: 0, droppedBatches: 0, droppedBytes: 0, droppedSegments: 0, early: 0 };
  for (let gen = 0; gen < iterations; gen++) {
    // Now and then kill at a random time after spawn (during startup, recovery or the first appends).
    const early = gen > 0 && r() < 0.15;
    const options: ChildOptions = {
      flush,
      warm: r() < 0.5,
      checkpointIntervalMs: pick(r, [5, 20, 100, 10_000]),
      killAfterAcks: early ? null : randInt(r, 1, 400),
      killDelayMs: early ? randInt(r, 0, 700) : randInt(r, 0, 30),
    };
    const where = `seed ${seed}, iteration ${gen} (${JSON.stringify(options)})`;
    const run = await runChild(live, dir, gen, options);
    if (!early && run.acks.length === 0) t.fail(`${where}: the child was killed before any ACK`);
    if (!fs.existsSync(partitionDir(dir))) {
      // Killed before the topic existed (only possible for an early kill of the first child).
      continue;
    }
    let v: Verified;
    try {
      v = await verifyAfterKill(t, dir, gen, run, previous, where);
    } catch (err) {
      t.fail(`${where}: reopening and reading threw ${err instanceof Error ? err.stack : String(err)}`);
      return;
    }
    previous = v.ids;
    totals.acked += run.acks.reduce((n, a) => n + a.count, 0);
    totals.unacked += v.unacked;
    totals.droppedBatches += v.droppedBatches;
    totals.droppedBytes += v.droppedBytes;
    totals.droppedSegments += v.droppedSegments;
    if (early) totals.early++;
  }
  t.log(`${previous.length} records in ${segmentBases(partitionDir(dir)).length} segments; ${totals.acked} acknowledged, ${totals.unacked} present unacknowledged; `
    + `recovery dropped ${totals.droppedBatches} batches / ${totals.droppedBytes} bytes / ${totals.droppedSegments} segments; ${totals.early} early kills`);
  t.true(previous.length > 0);
}

test('flush sync: every acknowledged record survives repeated SIGKILLs, exact and densely numbered', async (t) => {
  await torture(t, 'sync', ITERATIONS);
});

test('flush async: a process kill loses no acknowledged record (the page cache survives)', async (t) => {
  await torture(t, 'async', Math.max(4, Math.round(ITERATIONS / 4)));
});

test('flush os: a process kill loses no acknowledged record (the page cache survives)', async (t) => {
  await torture(t, 'os', Math.max(4, Math.round(ITERATIONS / 4)));
});

/**
 * Lost or damaged indexes of closed logs. The consume queue (.cq) and time index (.tix)
 * are derived data, not checksummed: deleted, scrambled or (.tix) backdated, of the
 * active segment, an old sealed one or every one, and reopened cleanly or after a
 * simulated crash from various recovery points, they must be rebuilt or trimmed so
 * that every read and every offsetForTimestamp answer is exact. Seeded: SEED=<n>.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import { CommitLog } from '../../src/log/commit-log.js';
import {
  T0, appendAndReopen, appendRandom, checkLog, createLog, isZero, openModes, options, prepareOpen, type StoredRecord,
} from './fixture.js';
import {
  TOPIC, cqPath, dataExtent, logPath, partitionDir, randBytes, randInt, readSegments, resolveSeed, rng, simulateCrash,
  tempDir, tixPath, writeAt, type Rng,
} from './helpers.js';

// ---------------------------------------------------------------- consume queues

/**
 * deleted; scrambled: random bytes over the entries; backdated (.tix only): one middle
 * entry's timestamp set before every record; backdated last (.tix only): the last entry's
 * set to the one before it (before every record if it is the only one), still in order
 * but below the batch it names.
 */
type IndexDamage = 'deleted' | 'scrambled' | 'backdated' | 'backdated last';

function damageIndex(file: string, damage: IndexDamage, entryBytes: number, entries: number, r: Rng): void {
  if (damage === 'deleted') fs.rmSync(file);
  else if (damage === 'scrambled') writeAt(file, 0, randBytes(r, Math.max(1, entries) * entryBytes));
  else if (damage === 'backdated') {
    const ts = Buffer.alloc(8);
    ts.writeDoubleLE(T0 - 5);
    writeAt(file, Math.floor(entries / 2) * entryBytes, ts);
  } else {
    const last = Math.max(0, entries - 1);
    const ts = last === 0 ? Buffer.from(new Float64Array([T0 - 5]).buffer) : fs.readFileSync(file).subarray((last - 1) * entryBytes, (last - 1) * entryBytes + 8);
    writeAt(file, last * entryBytes, ts);
  }
}

/** Entries in use in a time index file: up to the first all-zero entry. */
function tixEntries(file: string): number {
  const b = fs.readFileSync(file);
  let n = 0;
  while ((n + 1) * 16 <= b.length && !isZero(b.subarray(n * 16, n * 16 + 16))) n++;
  return n;
}

for (const target of ['active', 'sealed'] as const) {
  for (const damage of ['deleted', 'scrambled'] as IndexDamage[]) {
    for (const mode of openModes) {
      test(`a ${damage} .cq of the ${target} segment is rebuilt (open: ${mode}); reads of every offset are exact`, async (t) => {
        const seed = resolveSeed();
        t.log(`seed ${seed}`);
        const r = rng(seed);
        const dir = tempDir(t);
        const model = await createLog(dir, r, 130, 1500, (s) => s.length >= 3);
        const pdir = partitionDir(dir);
        const segs = readSegments(pdir);
        const seg = target === 'active' ? segs[segs.length - 1] : segs[1];
        const original = fs.readFileSync(cqPath(pdir, seg.base));
        damageIndex(cqPath(pdir, seg.base), damage, 12, seg.batches.length, r);
        prepareOpen(dir, segs, mode);

        const log = await CommitLog.open(options(dir));
        const report = log.recovery.partitions[0];
        t.like(report, { clean: mode === 'clean', droppedBytes: 0, droppedBatches: 0, droppedSegments: 0 });
        // Recovery rebuilds the active segment's index when it checks it against a recovery
        // point; a scan from the first segment re-indexes everything it scans.
        if (target === 'active' && mode !== 'unclean, no checkpoint') t.is(report.rebuiltIndexes, 1, 'rebuiltIndexes');
        if (target === 'sealed' && mode !== 'unclean, no checkpoint') t.is(report.rebuiltIndexes, 0, 'sealed indexes are rebuilt lazily, not by recovery');
        checkLog(t, log, model, `${damage} ${target} .cq, ${mode}`);
        if (target === 'sealed') t.deepEqual(fs.readFileSync(cqPath(pdir, seg.base)), original, 'the rebuilt .cq of the sealed segment equals the original');
        await appendAndReopen(t, log, model, r, `${damage} ${target} .cq, ${mode}`);
      });
    }
  }
}

// ---------------------------------------------------------------- time indexes

function expectedOffsetFor(model: StoredRecord[], ts: number): number | null {
  const i = model.findIndex((m) => m.timestamp >= ts);
  return i < 0 ? null : i;
}

function checkTimeLookups(t: ExecutionContext, log: CommitLog, model: StoredRecord[], where: string): void {
  const problems: string[] = [];
  const probes = new Set<number>([T0 - 1000, T0 + model.length * 10 + 1000]);
  for (const m of model) {
    probes.add(m.timestamp - 1);
    probes.add(m.timestamp);
    probes.add(m.timestamp + 1);
  }
  for (const ts of probes) {
    const got = log.offsetForTimestamp(TOPIC, 0, ts);
    const want = expectedOffsetFor(model, ts);
    if (got !== want) problems.push(`offsetForTimestamp(${ts}) = ${got}, expected ${want}`);
    if (problems.length >= 10) break;
  }
  t.deepEqual(problems, [], `${where}: offsetForTimestamp`);
}

for (const target of ['active', 'sealed', 'every'] as const) {
  for (const damage of ['deleted', 'scrambled', 'backdated', 'backdated last'] as IndexDamage[]) {
    for (const mode of openModes) {
      test(`a ${damage} .tix of ${target === 'every' ? 'every' : `the ${target}`} segment still gives exact offsetForTimestamp answers (open: ${mode})`, async (t) => {
        const seed = resolveSeed();
        t.log(`seed ${seed}`);
        const r = rng(seed);
        const dir = tempDir(t);
        const model = await createLog(dir, r, 130, 1500, (s) => s.length >= 3);
        const pdir = partitionDir(dir);
        const segs = readSegments(pdir);
        const victims = target === 'active' ? [segs[segs.length - 1]] : target === 'sealed' ? [segs[1]] : segs;
        for (const seg of victims) {
          const entries = tixEntries(tixPath(pdir, seg.base));
          damageIndex(tixPath(pdir, seg.base), damage, 16, entries, r);
        }
        prepareOpen(dir, segs, mode);
        const log = await CommitLog.open(options(dir));
        t.like(log.recovery.partitions[0], { clean: mode === 'clean', droppedBytes: 0, droppedBatches: 0, droppedSegments: 0 });
        checkTimeLookups(t, log, model, `${damage} ${target} .tix, ${mode}`);
        checkLog(t, log, model, `${damage} ${target} .tix, ${mode}`);
        await appendRandom(log, model, r, 3);
        checkTimeLookups(t, log, model, `${damage} ${target} .tix, ${mode}, after appending`);
        await log.close();
        const again = await CommitLog.open(options(dir));
        checkTimeLookups(t, again, model, `${damage} ${target} .tix, ${mode}, after reopening`);
        await again.close();
      });
    }
  }
}

for (const point of ['the segment start', 'nowhere (checkpoint deleted)'] as const) {
  test(`time-index entries of batches recovery dropped never steer offsetForTimestamp (recovery from ${point})`, async (t) => {
    const seed = resolveSeed();
    t.log(`seed ${seed}`);
    const r = rng(seed);
    const dir = tempDir(t);
    const model = await createLog(dir, r, 25, 500); // at most ~54 KB: one segment
    const pdir = partitionDir(dir);
    const [seg] = readSegments(pdir);
    t.true(fs.statSync(tixPath(pdir, seg.base)).size > 0);
    // Tear the very first batch: recovery keeps nothing of the segment.
    const first = seg.batches[0];
    writeAt(logPath(pdir, seg.base), first.position + 30, Buffer.alloc(first.size - 30));
    simulateCrash(dir, point === 'the segment start' ? { segmentBaseOffset: 0, position: 0, nextOffset: 0 } : null);
    const torn = fs.readFileSync(logPath(pdir, seg.base));
    const log = await CommitLog.open(options(dir));
    // Every batch header after the torn one still parses, so each counts as dropped.
    t.like(log.recovery.partitions[0], { droppedBatches: seg.batches.length, droppedBytes: dataExtent(torn, 0, torn.length) });
    t.is(log.latestOffset(TOPIC, 0), 0);
    model.length = 0;
    // New records, later in time than the dropped ones.
    for (let b = 0; b < 30; b++) {
      const records = [{ key: `k${model.length}`, value: randBytes(r, randInt(r, 1, 800)), timestamp: T0 + 1_000_000 + model.length * 10 }];
      await log.append(TOPIC, 0, records);
      model.push(...records);
    }
    checkTimeLookups(t, log, model, 'after recovery and new appends');
    t.is(log.offsetForTimestamp(TOPIC, 0, T0 + 500_000), 0);
    await log.close();
    const again = await CommitLog.open(options(dir));
    checkTimeLookups(t, again, model, 'after reopening');
    await again.close();
  });
}

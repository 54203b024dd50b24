/**
 * The process kill.test.ts SIGKILLs: opens a CommitLog (recovering whatever the last
 * kill left), creates topic `t` if missing, then appends forever from several
 * concurrent producers. After each append resolves it prints
 *   ACK <baseOffset> <lastOffset> <producer> <seq> <count>
 * on stdout (a pipe: Node writes it synchronously, so a printed line was acknowledged
 * before any later kill). Records are the pure functions of payload.ts.
 *
 * Usage: child-appender.ts <dir> <gen> <flush> <warm 0|1> <segmentBytes> <producers> <checkpointIntervalMs>
 */
import { CommitLog } from '../../src/log/commit-log.js';
import type { FlushPolicy } from '../../src/log/partition-log.js';
import { batchCount, recordKey, recordValue } from './payload.js';

const [dir, genArg, flush, warm, segmentBytesArg, producersArg, checkpointArg] = process.argv.slice(2);
const gen = Number(genArg);
const producers = Number(producersArg);

function die(err: unknown): never {
  process.stderr.write(`child-appender: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
}

async function produce(log: CommitLog, producer: number): Promise<void> {
  for (let seq = 0; ;) {
    const count = batchCount(gen, producer, seq);
    const records = [];
    for (let i = 0; i < count; i++) records.push({ key: recordKey(gen, producer, seq + i), value: recordValue(gen, producer, seq + i) });
    const { baseOffset, lastOffset } = await log.append('t', 0, records);
    process.stdout.write(`ACK ${baseOffset} ${lastOffset} ${producer} ${seq} ${count}\n`);
    seq += count;
  }
}

async function main(): Promise<void> {
  const log = await CommitLog.open({
    dir,
    flush: flush as FlushPolicy,
    flushIntervalMs: 20,
    checkpointIntervalMs: Number(checkpointArg),
    warmSegments: warm === '1',
    topicDefaults: { segmentBytes: Number(segmentBytesArg) },
  });
  if (!log.listTopics().includes('t')) await log.createTopic('t', { partitions: 1 });
  process.stdout.write(`READY ${log.latestOffset('t', 0)}\n`);
  const loops: Promise<void>[] = [];
  for (let p = 0; p < producers; p++) loops.push(produce(log, p));
  await Promise.all(loops);
}

main().catch(die);

/**
 * The process producer-kill.test.ts SIGKILLs: opens a CommitLog (flush policy from
 * argv), creates topic `t`, takes a producer id (CommitLog.initProducerId) and appends
 * idempotent batches of 3 records forever: batch n has base sequence 3n. It prints
 *   ID <producerId>
 *   ACK <n> <baseOffset> <lastOffset>
 * (stdout is a pipe: each line is written synchronously after its append resolved),
 * several appends in flight at once, as a pipelining producer has them.
 *
 * Usage: producer-appender.ts <dir> <flush>
 */
import { CommitLog } from '../../src/log/commit-log.js';
import type { FlushPolicy } from '../../src/log/partition-log.js';
import { encodeBatch } from '../../src/log/batch.js';

export const RECORDS_PER_BATCH = 3;

/** Batch n of producer `id` (the parent rebuilds the same bytes to resend them). */
export function producerBatch(id: number, n: number): Buffer {
  const records = Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({ key: `k${n}`, value: `p${id}-n${n}-r${i}` }));
  return encodeBatch(records, { producerId: id, producerEpoch: 0, baseSequence: n * RECORDS_PER_BATCH, timestamp: 1_700_000_000_000 + n });
}

async function main(): Promise<void> {
  const [dir, flush] = process.argv.slice(2);
  const log = await CommitLog.open({ dir, flush: flush as FlushPolicy, flushIntervalMs: 20, checkpointIntervalMs: 50 });
  if (!log.listTopics().includes('t')) await log.createTopic('t', { partitions: 1 });
  const { producerId } = await log.initProducerId();
  process.stdout.write(`ID ${producerId}\n`);
  let n = 0;
  const inFlight = new Set<Promise<void>>();
  for (;;) {
    const mine = n++;
    const p: Promise<void> = log.appendBatch('t', 0, producerBatch(producerId, mine)).then(({ baseOffset, lastOffset }) => {
      process.stdout.write(`ACK ${mine} ${baseOffset} ${lastOffset}\n`);
    }).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= 5) await Promise.race(inFlight);
  }
}

if (process.argv[1]?.endsWith('producer-appender.ts')) {
  main().catch((err: unknown) => {
    process.stderr.write(`producer-appender: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}

/**
 * A group member process for group-processes.test.ts: a Consumer of topic `orders`
 * in group `billing` (argv: broker address). For every record it prints
 * `H <partition> <offset> <value>`, then commits and prints `C <partition> <next offset>`
 * once the commit is acknowledged; `A <partitions>` / `R <partitions>` on assignment
 * and revoke. SIGTERM closes the consumer (leaving the group) and exits 0.
 */
import { Consumer } from '../../../src/net/client/consumer.js';

const [broker] = process.argv.slice(2);
const out = (line: string): boolean => process.stdout.write(`${line}\n`);
const consumer = new Consumer({
  broker: broker!, topic: 'orders', group: 'billing', clientId: `member-${process.pid}`,
  sessionTimeoutMs: 2000, heartbeatIntervalMs: 200, rebalanceTimeoutMs: 10_000, maxWaitMs: 100,
  logger: { info: () => undefined, warn: (fields, message) => process.stderr.write(`${message} ${JSON.stringify(fields)}\n`) },
  onAssigned: (ps) => out(`A ${ps.join(',')}`),
  onRevoked: (ps) => void out(`R ${ps.join(',')}`),
});
let stopping = false;
process.once('SIGTERM', () => {
  stopping = true;
  void consumer.close().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`close failed: ${String(err)}\n`);
    process.exit(1);
  });
});
for await (const r of consumer) {
  out(`H ${r.partition} ${r.offset} ${String(r.value)}`);
  if (stopping) break;
  try {
    await consumer.commit();
    out(`C ${r.partition} ${r.offset + 1}`);
  } catch (err) {
    // A commit refused in a rebalance: the record will be handled again by its next owner.
    process.stderr.write(`commit failed: ${String(err)}\n`);
  }
}

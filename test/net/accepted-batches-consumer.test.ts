/**
 * Issue 8.3's property, end to end: any batch `appendBatch` accepts (random valid
 * batches and random mutations of them, CRC recomputed so they get past the CRC) is
 * readable by the Consumer over the network, record for record what `read()` returns.
 * A rejected batch leaves nothing behind. Seeded: SEED=<n> replays.
 */
import test from 'ava';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { ATTRIBUTES_POS, CRC_POS, encodeBatch } from '../../src/log/batch.js';
import type { ProducerRecord } from '../../src/log/record.js';
import { crc32c } from '../../src/native.js';
import { Consumer } from '../../src/net/client/consumer.js';
import { rng, testSeed } from '../helpers/tmp.js';
import { inProcessBroker, quiet, within } from './client-helpers.js';

const CASES = 300;

test('every batch appendBatch accepts, mutated or not, is read by the Consumer exactly as read() returns it', async (t) => {
  const seed = testSeed();
  t.log(`seed ${seed} (replay with SEED=${seed})`);
  const REJECTIONS = new Set<string>([ErrorCode.CORRUPT_BATCH, ErrorCode.UNKNOWN_PRODUCER_ID, ErrorCode.OUT_OF_ORDER_SEQUENCE, ErrorCode.INVALID_PRODUCER_EPOCH]);
  const r = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const { log, address } = await inProcessBroker(t, 'async');
  await log.createTopic('p');
  let accepted = 0;
  let rejected = 0;
  for (let n = 0; n < CASES; n++) {
    const records: ProducerRecord[] = Array.from({ length: int(1, 5) }, (_, i) => ({
      key: r() < 0.2 ? null : Buffer.from(`k${n}-${i}`),
      value: r() < 0.1 ? null : Buffer.alloc(int(0, 300), int(0, 255)),
      timestamp: 1_700_000_000_000 + int(0, 10_000),
      headers: r() < 0.3 ? [{ key: `h${i}`, value: r() < 0.5 ? null : Buffer.from('v') }] : [],
    }));
    const batch = encodeBatch(records);
    if (r() < 0.7) {
      // Mutate one byte of the checked region (attributes on), then make the CRC match again.
      const at = int(ATTRIBUTES_POS, batch.length - 1);
      batch[at] = int(0, 255);
      batch.writeUInt32BE(crc32c(batch, ATTRIBUTES_POS, batch.length), CRC_POS);
    }
    const before = log.logEndOffset('p', 0);
    try {
      await log.appendBatch('p', 0, batch);
      accepted++;
    } catch (err) {
      // A mutated producer id, epoch or sequence meets the idempotent-producer checks instead.
      t.true(err instanceof CommitLogError && REJECTIONS.has(err.code), `case ${n}: ${String(err)}`);
      t.is(log.logEndOffset('p', 0), before, `case ${n}: a rejected batch stores nothing`);
      rejected++;
    }
  }
  t.log(`${accepted} accepted, ${rejected} rejected`);
  t.true(accepted > 0 && rejected > 0);
  await log.flush();
  const end = log.latestOffset('p', 0);
  const expected: unknown[] = [];
  // A read stops at a segment's end: read on from the next offset.
  for (let next = 0; next < end;) {
    const part = log.read('p', 0, next, { maxBytes: 1 << 20 });
    for (const x of part) {
      expected.push({
        offset: x.offset, timestamp: x.timestamp, key: x.key?.toString('hex') ?? null, value: x.value?.toString('hex') ?? null,
        headers: x.headers.map((h) => [h.key, h.value?.toString('hex') ?? null]),
      });
    }
    next = part[part.length - 1]!.offset + 1;
  }
  t.is(expected.length, end);
  const consumer = new Consumer({ broker: address, topic: 'p', from: 'earliest', logger: quiet });
  t.teardown(() => consumer.close());
  const got: unknown[] = [];
  await within((async () => {
    for await (const x of consumer) {
      got.push({
        offset: x.offset, timestamp: x.timestamp, key: x.key?.toString('hex') ?? null, value: x.value?.toString('hex') ?? null,
        headers: x.headers.map((h) => [h.key, h.value?.toString('hex') ?? null]),
      });
      if (got.length === end) break;
    }
  })(), 60_000, 'consuming every accepted record');
  t.deepEqual(got, expected);
});

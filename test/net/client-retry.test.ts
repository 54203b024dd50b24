/**
 * The clients' retry policy: capped, jittered exponential backoff between attempts,
 * bounded by time (the Producer's deliveryTimeoutMs) rather than by a count. The
 * Consumer's reconnectTimeoutMs is tested with the restarts (client-restart.test.ts).
 */
import test from 'ava';
import net from 'node:net';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { backoffMs, isConnectionError } from '../../src/net/client/client-types.js';
import { Producer } from '../../src/net/client/producer.js';
import { rng, testSeed } from '../helpers/tmp.js';
import { within } from './client-helpers.js';

test('backoff for attempt n is half of min(max, base * 2^n) plus the random source times the other half', (t) => {
  const low = (n: number): number => backoffMs(n, 100, 1000, () => 0);
  const mid = (n: number): number => backoffMs(n, 100, 1000, () => 0.5);
  const high = (n: number): number => backoffMs(n, 100, 1000, () => 1 - Number.EPSILON);
  t.deepEqual([0, 1, 2, 3, 4, 5].map(low), [50, 100, 200, 400, 500, 500]);
  t.deepEqual([0, 1, 2, 3, 4, 5].map(mid), [75, 150, 300, 600, 750, 750]);
  t.deepEqual([0, 1, 2, 3, 4, 5].map(high), [99, 199, 399, 799, 999, 999]);
});

test('backoff never exceeds the cap, for any attempt and any random source', (t) => {
  const seed = testSeed();
  t.log(`seed ${seed} (replay with SEED=${seed})`);
  const r = rng(seed);
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const attempt = i % 2 === 0 ? Math.floor(r() * 40) : Math.floor(r() * 1e9);
    const cap = Math.min(1000, 100 * 2 ** attempt);
    const ms = backoffMs(attempt, 100, 1000, r);
    t.true(Number.isInteger(ms) && ms >= cap / 2 && ms < cap, `attempt ${attempt}: ${ms} ms, cap ${cap}`);
    if (cap === 1000) seen.add(ms);
  }
  t.true(seen.size > 100, 'retries at the cap are spread, not synchronised');
  t.is(backoffMs(3, 100, 100, () => 0), 50, 'a cap below base * 2^n wins');
  t.is(backoffMs(0, 1, 1, () => 0.99), 0);
});

/** A port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

test('with no broker, a send keeps retrying and fails with ERR_DELIVERY_TIMEOUT once deliveryTimeoutMs passed, its cause the last connection error', async (t) => {
  const port = await closedPort();
  const producer = new Producer({ broker: `127.0.0.1:${port}`, lingerMs: 0, deliveryTimeoutMs: 1500, retryBackoffMs: 10, retryBackoffMaxMs: 50 });
  t.teardown(() => producer.close());
  const started = Date.now();
  const results = await within(Promise.allSettled([
    producer.send('t', { value: 'a' }, { partition: 0 }),
    producer.send('t', [{ value: 'b' }, { value: 'c' }], { partition: 1 }),
    producer.send('t', { value: 'keyed', key: 'k' }), // waits for the topic's metadata
  ]), 30_000, 'the sends to fail');
  t.true(Date.now() - started >= 1500, 'not before the delivery timeout');
  for (const result of results) {
    t.is(result.status, 'rejected');
    const err = (result as PromiseRejectedResult).reason as CommitLogError;
    t.true(err instanceof CommitLogError);
    t.is(err.code, ErrorCode.DELIVERY_TIMEOUT);
    t.regex(err.message, /1500 ms/);
    t.true(isConnectionError(err.cause), 'the cause is the last connection failure');
    t.is((err.cause as CommitLogError).errno, 'ECONNREFUSED');
  }
  t.is(((results[0] as PromiseRejectedResult).reason as CommitLogError).partition, 0);
});

test('an explicit retries count still bounds the attempts: the last connection error, before the delivery timeout', async (t) => {
  const port = await closedPort();
  const producer = new Producer({ broker: `127.0.0.1:${port}`, lingerMs: 0, retries: 2, retryBackoffMs: 5 });
  t.teardown(() => producer.close());
  const err = await t.throwsAsync(within(producer.send('t', { value: 'x' }, { partition: 0 }), 30_000, 'the send to fail'), { code: ErrorCode.IO });
  t.true(isConnectionError(err));
});

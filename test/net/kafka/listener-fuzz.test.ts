/**
 * The listener against the bytes real clients send (the captured requests of
 * test/net/kafka/fixtures/: kcat, librdkafka, kafka-python, kafkajs), replayed
 * pipelined on one connection: every served request is answered in order with a
 * response that decodes in its version. Then the same frames with random bytes
 * flipped, each on its own connection: whatever a mutation makes of a request (bad
 * lengths, odd partitions, offsets, acks, timeouts), the listener answers or closes
 * that connection, never crashes or leaks an unhandled rejection, and keeps serving.
 * Seeded: the seed is printed, SEED= replays it.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { KAFKA_HANDLERS } from '../../../src/net/kafka/handlers/index.js';
import { decodeRequest, type Message } from '../../../src/net/kafka/index.js';
import { randInt, rng, testSeed } from '../../helpers/tmp.js';
import { RawKafka, kafkaSetup } from './listener-helpers.js';

interface Fixture {
  label: string;
  requests: { api: string; apiKey: number; apiVersion: number; hex: string }[];
}

const dir = new URL('./fixtures/', import.meta.url);
const fixtures: Fixture[] = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as Fixture);

type M = Message & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Topics the captures name, so their requests find data. */
const TOPICS = ['test'];

for (const fx of fixtures) {
  test(`${fx.label}: the captured requests, pipelined, are each answered in order`, async (t) => {
    const { kafka, log } = await kafkaSetup(t);
    for (const name of TOPICS) await log.createTopic(name, { partitions: 3 }).catch(() => undefined);
    const raw = await RawKafka.connect(t, kafka.port);
    const sent = fx.requests.filter((r) => KAFKA_HANDLERS.has(r.apiKey)).map((r) => {
      const frame = Buffer.from(r.hex, 'hex');
      const d = decodeRequest(frame);
      if (!d.supported) throw new Error(`${r.api} v${r.apiVersion} is not supported by the codec`);
      const silent = r.apiKey === 0 && (d.body as M).acks === 0;
      return { r, f: raw.raw(frame, r.apiKey, r.apiVersion, d.header.correlationId, !silent), silent };
    });
    raw.socket.write(Buffer.concat(sent.map((s) => s.f.bytes)));
    for (const { r, f, silent } of sent) {
      if (silent) continue;
      const body = (await f.response) as M;
      t.is(typeof body, 'object', `${r.api} v${r.apiVersion}`);
    }
    t.is(kafka.stats().badFrames, 0);
  });
}

test('mutated captured requests never crash the listener, which keeps serving', async (t) => {
  const seed = testSeed();
  t.log(`SEED=${seed}`);
  const random = rng(seed);
  const { kafka, log } = await kafkaSetup(t, { defaultPartitions: 2 });
  for (const name of TOPICS) await log.createTopic(name, { partitions: 3 }).catch(() => undefined);
  await log.append('test', 0, [{ value: 'kept' }]);
  // Topic admin is left out: a mutated CreateTopics may ask for 10,000 partitions.
  const pool = fixtures.flatMap((f) => f.requests).filter((r) => ![19, 20, 37].includes(r.apiKey));
  const healthy = await RawKafka.connect(t, kafka.port);
  const check = async (): Promise<void> => {
    const r = (await healthy.request(2, 1, { replicaId: -1, topics: [{ name: 'test', partitions: [{ partitionIndex: 0, timestamp: -1 }] }] })) as M;
    // Mutations outside a batch's CRC (a partition index, the base offset) are still valid produces.
    t.is(r.topics[0].partitions[0].errorCode, 0);
    t.true(r.topics[0].partitions[0].offset >= 1);
  };
  const one = (frame: Buffer): Promise<void> => new Promise((resolve) => {
    const socket = net.connect(kafka.port, '127.0.0.1', () => {
      const size = Buffer.alloc(4);
      size.writeInt32BE(frame.length, 0);
      socket.end(Buffer.concat([size, frame]));
    });
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    // A mutated long poll may wait: that is allowed, not a failure; stop waiting for it.
    const guard = setTimeout(() => socket.destroy(), 300);
    socket.once('close', () => {
      clearTimeout(guard);
      resolve();
    });
  });
  const rounds = 40;
  for (let round = 0; round < rounds; round++) {
    const batch = Array.from({ length: 10 }, () => {
      const r = pool[randInt(random, 0, pool.length - 1)];
      const frame = Buffer.from(r.hex, 'hex');
      for (let flips = randInt(random, 1, 4); flips > 0; flips--) {
        // Mostly the body: the header's first bytes pick the API and version.
        const at = random() < 0.2 ? randInt(random, 0, frame.length - 1) : randInt(random, Math.min(8, frame.length - 1), frame.length - 1);
        frame[at] = random() < 0.5 ? frame[at] ^ (1 << randInt(random, 0, 7)) : randInt(random, 0, 255);
      }
      return one(frame);
    });
    await Promise.all(batch);
    await check();
  }
  t.deepEqual(log.read('test', 0, 0).slice(0, 1).map((r) => String(r.value)), ['kept']);
});

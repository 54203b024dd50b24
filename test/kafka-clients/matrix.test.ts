/**
 * The client matrix, produce x consume: records produced by each of kcat, kafka-python,
 * confluent-kafka, kafkajs, @platformatic/kafka, commitlog's own Producer and the
 * `commitlog produce` CLI are read back, exactly (offsets, keys, values, headers,
 * timestamps), by every one of those clients' consumers and by commitlog's Consumer
 * and `commitlog consume`. One broker process for the file; each producer writes its
 * own topic, then every consumer reads every topic.
 *
 * What a producer cannot set is not asserted as set: kcat gives every record of a run
 * the same headers and cannot set timestamps, the CLI sends neither; for those the
 * timestamp must lie between the start and the end of the produce run, and every
 * consumer must report the same one.
 */
import test from 'ava';
import {
  KAFKA_CLIENTS,
  assertAvailable,
  comparable,
  consumeCli,
  consumeOwn,
  consumeWith,
  createTopic,
  limiter,
  produceCli,
  produceOwn,
  produceWith,
  skipFor,
  spawnProc,
  startBroker,
  type BrokerProcess,
  type KafkaClient,
  type SeenRecord,
  type SpecRecord,
} from './harness.js';

type Producer = KafkaClient | 'commitlog' | 'commitlog-cli';
const PRODUCERS: Producer[] = [...KAFKA_CLIENTS, 'commitlog', 'commitlog-cli'];
const CONSUMERS: Producer[] = [...KAFKA_CLIENTS, 'commitlog', 'commitlog-cli'];

/** Distinct timestamps per producer, far from now (so a broker-set time would show). */
const BASE_TS = Date.UTC(2024, 0, 2, 3, 4, 5);

function recordsFor(p: Producer): SpecRecord[] {
  const i = PRODUCERS.indexOf(p);
  const big = `${'0123456789abcdef'.repeat(256)}-${p}`; // 4 KiB
  const records: SpecRecord[] = [
    { key: `k0-${p}`, value: `v0 ünïcødé ✓ ${p}`, headers: [['h-a', '1'], ['h-b', `日本 ${p}`]], timestamp: BASE_TS + i * 1000 },
    { key: null, value: `v1 no key ${p}`, headers: [['h-a', '2']], timestamp: BASE_TS + i * 1000 + 1 },
    { key: `k2-${p}`, value: '', headers: [], timestamp: BASE_TS + i * 1000 + 2 },
    { key: `k3-${p}`, value: big, headers: [['h-c', ''], ['h-d', 'x']], timestamp: BASE_TS + i * 1000 + 3 },
    { key: `k4-${p}`, value: `v4 ${p}`, headers: [['h-a', '4']], timestamp: BASE_TS - 86_400_000 + i }, // older than the one before
  ];
  if (p === 'kcat') return records.map((r) => ({ key: r.key, value: r.value, headers: [['h-kcat', 'kc ✓'], ['h-b', '日本']], partition: 0 }));
  if (p === 'commitlog-cli') return records.map((r) => ({ key: r.key, value: r.value }));
  return records.map((r) => ({ ...r, partition: 0 }));
}

const setsTimestamps = (p: Producer): boolean => p !== 'kcat' && p !== 'commitlog-cli';
const topicOf = (p: Producer): string => `matrix-from-${p}`;

const kafkaNeeded = KAFKA_CLIENTS;
const skip = skipFor(kafkaNeeded);
const run = limiter(3);

let broker: BrokerProcess | undefined;
const produced = new Map<Producer, Promise<{ before: number; after: number; delivered: ({ partition: number; offset: number } | null)[] }>>();

test.before(async () => {
  if (skip) return;
  broker = await startBroker(undefined);
});

test.after.always(async () => {
  await broker?.destroy();
});

/** Produces with `p` once; later callers share the result. */
function produceOnce(p: Producer): Promise<{ before: number; after: number; delivered: ({ partition: number; offset: number } | null)[] }> {
  let done = produced.get(p);
  if (done === undefined) {
    done = (async () => {
      const b = broker!;
      await createTopic(b, topicOf(p), 1);
      const records = recordsFor(p);
      return run(async () => {
        const before = Date.now();
        const delivered =
          p === 'commitlog' ? await produceOwn(b, topicOf(p), records) : p === 'commitlog-cli' ? await produceCli(b, topicOf(p), records) : await produceWith(undefined, p, { bootstrap: b.kafka, topic: topicOf(p), records });
        return { before, after: Date.now(), delivered };
      });
    })();
    produced.set(p, done);
  }
  return done;
}

async function consumeAll(c: Producer): Promise<SeenRecord[]> {
  const b = broker!;
  const reads = PRODUCERS.map((p) => ({ topic: topicOf(p), partition: 0, offset: 0, count: recordsFor(p).length }));
  if (c === 'commitlog') return (await Promise.all(reads.map((r) => consumeOwn(b, r.topic, 0, 0, r.count)))).flat();
  if (c === 'commitlog-cli') return (await Promise.all(reads.map((r) => run(() => consumeCli(b, r.topic, 0, 0, r.count))))).flat();
  return run(() => consumeWith(undefined, c, { bootstrap: b.kafka, reads, timeout_ms: 60_000 }));
}

const consumed = new Map<Producer, Promise<SeenRecord[]>>();
function consumeOnce(c: Producer): Promise<SeenRecord[]> {
  let done = consumed.get(c);
  if (done === undefined) {
    done = (async () => {
      await Promise.all(PRODUCERS.map(produceOnce));
      return consumeAll(c);
    })();
    consumed.set(c, done);
  }
  return done;
}

for (const p of PRODUCERS) {
  (skip ? test.skip : test)(`records produced by ${p} are read exactly by every client`, async (t) => {
    assertAvailable(kafkaNeeded);
    const { before, after, delivered } = await produceOnce(p);
    const want = recordsFor(p);
    // What the producer was told: offsets 0.. in order (kcat reports none).
    if (p !== 'kcat') t.deepEqual(delivered, want.map((_, i) => ({ partition: 0, offset: i })), `${p}'s delivery reports`);
    const expected = want.map((r, i) => ({ topic: topicOf(p), partition: 0, offset: i, key: r.key, value: r.value, headers: r.headers ?? [] }));
    const timestamps = new Map<number, number>();
    for (const c of CONSUMERS) {
      const seen = (await consumeOnce(c)).filter((r) => r.topic === topicOf(p)).sort((a, b) => a.offset - b.offset);
      t.deepEqual(seen.map(comparable), expected, `${p} -> ${c}`);
      for (const r of seen) {
        if (setsTimestamps(p)) {
          t.is(r.timestamp, want[r.offset]!.timestamp!, `${p} -> ${c}: timestamp of offset ${r.offset}`);
        } else {
          t.true(r.timestamp >= before - 1 && r.timestamp <= after + 1, `${p} -> ${c}: timestamp ${r.timestamp} of offset ${r.offset} outside the produce run [${before}, ${after}]`);
          const first = timestamps.get(r.offset);
          if (first === undefined) timestamps.set(r.offset, r.timestamp);
          else t.is(r.timestamp, first, `${p} -> ${c}: every consumer sees one timestamp for offset ${r.offset}`);
        }
      }
    }
  });
}

(skip ? test.skip : test)('kcat -C -f prints partition, offset, timestamp, key, value and headers exactly', async (t) => {
  assertAvailable(['kcat', 'confluent']);
  await produceOnce('confluent');
  const want = recordsFor('confluent');
  const p = spawnProc(t, 'kcat', ['-C', '-b', broker!.kafka, '-t', topicOf('confluent'), '-p', '0', '-o', '0', '-c', String(want.length), '-q', '-f', '%p|%o|%T|%K|%k|%S|%s|%h\\n'], 'kcat -C -f');
  t.is(await p.exited, 0, p.stderr());
  const text = p.lines.map((l) => String(l.text ?? JSON.stringify(l))).join('\n');
  const expected = want
    .map((r, i) => {
      const key = r.key === null ? '' : r.key;
      const value = r.value ?? '';
      return `0|${i}|${r.timestamp}|${r.key === null ? -1 : Buffer.byteLength(key)}|${key}|${Buffer.byteLength(value)}|${value}|${(r.headers ?? []).map(([k, v]) => `${k}=${v}`).join(',')}`;
    })
    .join('\n');
  t.is(text, expected);
});

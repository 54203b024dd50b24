/**
 * commitlog's own Producer with `compression` (and `commitlog produce --compression`):
 * the batches the broker stores carry the codec and their records compressed, and the
 * Consumer (which decompresses through decodeBatches) and CommitLog.read get back
 * exactly what was sent.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommitLog } from '../../src/log/commit-log.js';
import { ATTRIBUTES_POS, BATCH_LENGTH_POS, LOG_OVERHEAD } from '../../src/log/batch.js';
import { Admin } from '../../src/net/client/admin.js';
import type { ConsumerRecord } from '../../src/net/client/client-types.js';
import { Consumer } from '../../src/net/client/consumer.js';
import { Producer } from '../../src/net/client/producer.js';
import { startBroker } from '../../src/net/broker/server.js';
import { tmpDir } from '../helpers/tmp.js';

const quiet = { info: () => undefined, warn: () => undefined };
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;

/** The codec bits of every batch stored in the partition. */
function storedCodecs(log: CommitLog, topic: string): number[] {
  const slice = log.readSlice(topic, 0, 0, 1 << 20);
  if (slice === null) return [];
  try {
    const view = slice.segment.view(slice.position, slice.length);
    const codecs: number[] = [];
    for (let p = 0; p < view.length; p += LOG_OVERHEAD + view.readInt32BE(p + BATCH_LENGTH_POS)) codecs.push(view.readInt16BE(p + ATTRIBUTES_POS) & 7);
    return codecs;
  } finally {
    slice.release();
  }
}

test('the Producer compresses with each codec; the Consumer, read() and the CLI read the records back exactly', async (t) => {
  t.timeout(90_000);
  const log = await CommitLog.open({ dir: tmpDir(t), flush: 'async', logger: quiet });
  const broker = await startBroker({ log, port: 0, logger: quiet });
  t.teardown(async () => {
    await broker.close();
    await log.close();
  });
  const address = `127.0.0.1:${broker.port}`;
  const admin = new Admin({ broker: address });
  t.teardown(() => admin.close());
  for (const [k, codec] of CODECS.entries()) {
    const topic = `p-${codec}`;
    await admin.createTopic(topic, { partitions: 1 });
    const producer = new Producer({ broker: address, compression: codec, lingerMs: 20 });
    const records = Array.from({ length: 50 }, (_, i) => ({
      key: i % 5 === 0 ? null : `k${i}`,
      value: `${codec} ${i} ${'repeated text '.repeat(i % 7)}`,
      headers: { i: String(i) },
      timestamp: 1_700_000_000_000 + i,
    }));
    await Promise.all(records.map((r) => producer.send(topic, r, { partition: 0 })));
    await producer.close();
    const codecs = storedCodecs(log, topic);
    t.true(codecs.length >= 1);
    t.deepEqual([...new Set(codecs)], [k + 1], `${codec}: stored batches carry codec ${k + 1}`);
    const want = records.map((r, i) => ({ offset: i, key: r.key, value: r.value, headers: [['i', String(i)]], timestamp: r.timestamp }));
    const plain = (r: { offset: number; key: Buffer | null; value: Buffer | null; headers: { key: string; value: Buffer | null }[]; timestamp: number }) => ({
      offset: r.offset, key: r.key?.toString() ?? null, value: r.value?.toString() ?? null, headers: r.headers.map((h) => [h.key, h.value?.toString() ?? null]), timestamp: r.timestamp,
    });
    t.deepEqual(log.read(topic, 0, 0).map(plain), want, `${codec}: read()`);
    const consumer = new Consumer({ broker: address, topic, partitions: [0] });
    const got: ConsumerRecord[] = [];
    for await (const r of consumer) {
      got.push(r);
      if (got.length === records.length) break;
    }
    await consumer.close();
    t.deepEqual(got.map(plain), want, `${codec}: Consumer`);
  }
  // The CLI: `commitlog produce --compression zstd`, read back by read().
  await admin.createTopic('cli', { partitions: 1 });
  const out = await new Promise<{ code: number; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, [path.join(root, 'bin', 'commitlog.js'), 'produce', 'cli', '--compression', 'zstd', '--partition', '0', '--broker', address], { cwd: root }, (err, _stdout, stderr) => resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stderr }));
    child.stdin!.end('one\ntwo\nthree\n');
  });
  t.is(out.code, 0, out.stderr);
  t.deepEqual(storedCodecs(log, 'cli'), [4]);
  t.deepEqual(log.read('cli', 0, 0).map((r) => r.value!.toString()), ['one', 'two', 'three']);
  const bad = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(root, 'bin', 'commitlog.js'), 'produce', 'cli', '--compression', 'brotli', '--broker', address], { cwd: root }, (err, _o, stderr) => resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr }));
  });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--compression must be one of none, gzip, snappy, lz4, zstd, got "brotli"/);
});

test('an unknown compression option is ERR_INVALID_ARGUMENT', (t) => {
  t.throws(() => new Producer({ broker: '127.0.0.1:1', compression: 'brotli' as 'gzip' }), { code: 'ERR_INVALID_ARGUMENT', message: /compression must be one of 'none', 'gzip', 'snappy', 'lz4', 'zstd', got "brotli"/ });
});

/**
 * Cold reads on the Kafka fetch path: a range not in the page cache is read in on the
 * thread pool before its sendfile (as on the native path, zero-copy.ts), and the
 * client still gets exactly the stored bytes. Skipped where the temporary directory
 * is in memory (tmpfs: nothing is ever cold), like test/net/cold-fetch.test.ts.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { CommitLog } from '../../../src/log/commit-log.js';
import { OffsetsStore } from '../../../src/index/offsets-store.js';
import { residentPages } from '../../../src/native.js';
import type { TransferEvent } from '../../../src/net/broker/zero-copy.js';
import { startKafkaListener } from '../../../src/net/kafka/listener.js';
import { dropSegmentPages, inMemoryFs, noReadAround } from '../../helpers/page-cache.js';
import { tmpDir } from '../../helpers/tmp.js';
import { RawKafka, quiet } from './listener-helpers.js';

const MiB = 1024 * 1024;
const coldTest = inMemoryFs(os.tmpdir()) ? test.skip : test.serial;

coldTest('a Kafka fetch of a cold range prefetches it off the event loop and returns exactly the stored bytes', async (t) => {
  const log = await CommitLog.open({ dir: tmpDir(t, 'commitlog-kafka-cold-'), logger: quiet, flush: 'os' });
  t.teardown(() => log.close());
  await log.createTopic('cold', { segmentBytes: 64 * MiB });
  for (let i = 0; i < 64; i++) await log.append('cold', 0, Array.from({ length: 16 }, () => ({ value: randomBytes(4000) })));
  await log.flush();
  const offsets = new OffsetsStore(log.dir, { logger: quiet });
  t.teardown(() => offsets.close());
  const events: TransferEvent[] = [];
  const kafka = await startKafkaListener({ log, offsets, port: 0, logger: quiet, prefetch: { chunkBytes: 256 * 1024, observer: (e) => events.push(e) } });
  t.teardown(() => kafka.close());

  const slice = log.readSlice('cold', 0, 0, 8 * MiB)!;
  const { position, length } = slice;
  const file = slice.segment.logPath;
  slice.release();
  t.true(length > 3 * MiB);
  const view = dropSegmentPages(log, 'cold', 0, 0);
  noReadAround(view);
  t.is(residentPages(view.buffer as ArrayBuffer, view.byteOffset + position, length), 0);

  const raw = await RawKafka.connect(t, kafka.port);
  const r = (await raw.request(1, 11, {
    replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 8 * MiB, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
    topics: [{ topic: 'cold', partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 8 * MiB }] }],
    forgottenTopicsData: [], rackId: '',
  })) as { responses: { partitions: { records: Buffer }[] }[] };
  const records = r.responses[0].partitions[0].records;
  const fd = fs.openSync(file, 'r');
  const stored = Buffer.alloc(length);
  fs.readSync(fd, stored, 0, length, position);
  fs.closeSync(fd);
  t.true(records.equals(stored));
  const stats = kafka.stats();
  t.is(stats.coldFetches, 1);
  t.is(stats.sendfileBytes, length);
  t.true(stats.prefetchedBytes > 0 && stats.prefetchedBytes <= length);
  // Every sendfile starts only after the pages it sends were found resident or prefetched.
  const firstPrefetched = events.findIndex((e) => e.kind === 'prefetched');
  const firstColdSend = events.findIndex((e) => e.kind === 'sendfile' && e.position + e.length > (events[0] as { coldAt: number }).coldAt);
  t.true(firstPrefetched >= 0 && firstColdSend > firstPrefetched, JSON.stringify(events.slice(0, 6)));
});

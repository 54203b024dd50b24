/**
 * A batch that fails its CRC in a sealed segment with later segments is corruption:
 * opening fails with ERR_LOG_CORRUPT naming file and position and deletes nothing.
 * Repair mode (`verify --repair`) ends the log there: the rest of that segment and
 * every later segment are dropped, and the report counts every dropped batch,
 * including those of the deleted segments.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog } from '../../src/log/commit-log.js';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { writeRecoveryPoint } from '../../src/index/checkpoint.js';
import { tmpDir } from '../helpers/tmp.js';

test('a bad batch in a middle segment fails the open, and repair mode drops the rest of it and all later segments, counting every batch', async (t) => {
  const dir = tmpDir(t);
  let log = await CommitLog.open({ dir, flush: 'os', warmSegments: false, retentionCheckIntervalMs: 0, topicDefaults: { segmentBytes: 65536 } });
  await log.createTopic('t');
  const value = Buffer.alloc(900, 7);
  for (let i = 0; i < 200; i++) await log.append('t', 0, [{ key: String(i), value }]);
  const bases = fs.readdirSync(path.join(dir, 't', '0')).filter((n) => n.endsWith('.log')).map((n) => Number(n.slice(0, 20))).sort((a, b) => a - b);
  t.true(bases.length >= 3, `expected at least 3 segments, got ${bases.length}`);
  const bad = bases[1] + 5; // one record per batch: offset = batch
  const slice = log.readSlice('t', 0, bad, 1)!;
  const file = path.join(dir, 't', '0', `${String(bases[1]).padStart(20, '0')}.log`);
  const position = slice.position;
  slice.release();
  await log.close();

  // Crash: no clean marker, and a recovery point at the very start, so every segment is scanned.
  fs.rmSync(path.join(dir, '.clean-shutdown'));
  writeRecoveryPoint(path.join(dir, 't', '0', 'recovery.checkpoint'), { segmentBaseOffset: 0, position: 0, nextOffset: 0 });
  const fd = fs.openSync(file, 'r+');
  const crc = Buffer.alloc(1);
  fs.readSync(fd, crc, 0, 1, position + 17);
  crc[0] ^= 0xff;
  fs.writeSync(fd, crc, 0, 1, position + 17);
  fs.closeSync(fd);

  const files = fs.readdirSync(path.join(dir, 't', '0')).sort();
  const err = await t.throwsAsync(CommitLog.open({ dir, flush: 'os', warmSegments: false, retentionCheckIntervalMs: 0 }), { instanceOf: CommitLogError, code: ErrorCode.LOG_CORRUPT });
  t.is(err?.path, file);
  t.is(err?.position, position);
  t.deepEqual(fs.readdirSync(path.join(dir, 't', '0')).sort(), files);

  const warnings: string[] = [];
  log = await CommitLog.open({ dir, flush: 'os', repair: true, warmSegments: false, retentionCheckIntervalMs: 0, logger: { info: () => undefined, warn: (_f, m) => void warnings.push(m) } });
  t.teardown(() => log.close());
  const r = log.recovery.partitions[0];
  t.like(r, { clean: false, droppedSegments: bases.length - 2, droppedBatches: 200 - bad, stopReason: 'CRC mismatch' });
  t.is(log.latestOffset('t', 0), bad);
  t.deepEqual(warnings, [`recovered t/0: dropped ${200 - bad} batches (${r.droppedBytes} bytes) and ${bases.length - 2} segments, rebuilt 0 indexes`]);
  const remaining = fs.readdirSync(path.join(dir, 't', '0')).filter((n) => n.endsWith('.log')).map((n) => Number(n.slice(0, 20)));
  t.deepEqual(remaining, bases.slice(0, 2));
  // Everything before the bad batch is intact; appends continue right after it.
  const records = log.read('t', 0, 0, { maxBytes: 10_000_000 });
  t.is(records[0].key!.toString(), '0');
  t.deepEqual(await log.append('t', 0, [{ key: 'next', value }]), { baseOffset: bad, lastOffset: bad });
});

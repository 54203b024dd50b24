/**
 * No synchronous fsync on the event loop (issue 8.7): checkpoints, topic metadata,
 * rolls, retention and topic deletion write and fsync on the thread pool. And a new
 * topic's directory is fsynced after its partition directories exist, so their names
 * survive a power loss.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { CommitLog } from '../../src/log/commit-log.js';
import { tmpDir } from '../helpers/tmp.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.serial('creating topics, appending across rolls, checkpoints, retention and deleting a topic call no fsyncSync or fdatasyncSync', async (t) => {
  const dir = tmpDir(t);
  const log = await CommitLog.open({ dir, flush: 'sync', warmSegments: false, retentionCheckIntervalMs: 0, checkpointIntervalMs: 10, topicDefaults: { segmentBytes: 64 * 1024, retentionBytes: 128 * 1024 } });
  const calls: string[] = [];
  const fsyncSync = fs.fsyncSync;
  const fdatasyncSync = fs.fdatasyncSync;
  fs.fsyncSync = (fd) => {
    calls.push(`fsyncSync ${new Error().stack?.split('\n')[2]?.trim()}`);
    fsyncSync(fd);
  };
  fs.fdatasyncSync = (fd) => {
    calls.push(`fdatasyncSync ${new Error().stack?.split('\n')[2]?.trim()}`);
    fdatasyncSync(fd);
  };
  t.teardown(() => {
    fs.fsyncSync = fsyncSync;
    fs.fdatasyncSync = fdatasyncSync;
  });
  await log.createTopic('a', { partitions: 3 });
  await log.createTopic('b');
  for (let i = 0; i < 400; i++) await log.append('a', i % 3, [{ value: Buffer.alloc(1000, i) }]);
  await sleep(50); // several checkpoint ticks
  const removed = await log.enforceRetention();
  t.true(removed.segments > 0, 'retention deleted segments');
  await log.deleteTopic('b');
  await log.close();
  t.deepEqual(calls, []);
});

test.serial('a new topic directory is fsynced once every partition directory is in it', async (t) => {
  const dir = tmpDir(t);
  const log = await CommitLog.open({ dir, warmSegments: false, retentionCheckIntervalMs: 0 });
  t.teardown(() => log.close());
  const topicDir = path.join(dir, 'many');
  const synced: Array<{ dir: string; partitions: number }> = [];
  const open = fs.promises.open;
  fs.promises.open = (async (file: fs.PathLike, flags?: string | number, mode?: fs.Mode) => {
    const handle = await open(file, flags, mode);
    if (String(file) === topicDir && flags === 'r') {
      const sync = handle.sync.bind(handle);
      handle.sync = async () => {
        synced.push({ dir: String(file), partitions: fs.readdirSync(topicDir).filter((n) => /^\d+$/.test(n)).length });
        await sync();
      };
    }
    return handle;
  }) as typeof fs.promises.open;
  t.teardown(() => {
    fs.promises.open = open;
  });
  await log.createTopic('many', { partitions: 4 });
  t.deepEqual(synced.at(-1), { dir: topicDir, partitions: 4 });
});

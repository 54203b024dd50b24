import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../src/errors.js';
import { xxh3Hex } from '../../src/hash.js';
import { MAX_GROUP_NAME_LENGTH, OffsetsStore } from '../../src/index/offsets-store.js';
import { tmpDir } from '../helpers/tmp.js';

function silent(): { warn(fields: object, message: string): void; warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (_fields, message) => warnings.push(message) };
}

test('a committed offset is fetched back with its metadata; partitions never committed give -1', async (t) => {
  const store = new OffsetsStore(tmpDir(t));
  await store.commit('g1', [
    { topic: 'orders', partition: 0, offset: 42, metadata: 'm0' },
    { topic: 'orders', partition: 2, offset: 7 },
  ]);
  t.deepEqual(store.fetch('g1', 'orders', [2, 1, 0]), [
    { partition: 2, offset: 7, metadata: '' },
    { partition: 1, offset: -1, metadata: '' },
    { partition: 0, offset: 42, metadata: 'm0' },
  ]);
  t.deepEqual(store.fetch('other', 'orders', [0]), [{ partition: 0, offset: -1, metadata: '' }]);
  t.deepEqual(store.fetch('g1', 'payments', [0]), [{ partition: 0, offset: -1, metadata: '' }]);
});

test('a later commit replaces the partition offset and keeps the others', async (t) => {
  const store = new OffsetsStore(tmpDir(t));
  await store.commit('g', [{ topic: 'a', partition: 0, offset: 1 }, { topic: 'a', partition: 1, offset: 5 }]);
  await store.commit('g', [{ topic: 'a', partition: 0, offset: 9, metadata: 'x' }]);
  t.deepEqual(store.fetch('g', 'a', [0, 1]), [
    { partition: 0, offset: 9, metadata: 'x' },
    { partition: 1, offset: 5, metadata: '' },
  ]);
});

test('committed offsets survive reopening the store, with groups listed and described', async (t) => {
  const dir = tmpDir(t);
  const store = new OffsetsStore(dir);
  await store.commit('group b', [{ topic: 't', partition: 3, offset: 30, metadata: 'meta' }]);
  await store.commit('group/a ✓', [{ topic: 't', partition: 0, offset: 10 }, { topic: 'u', partition: 1, offset: 11 }]);
  await store.close();

  const again = new OffsetsStore(dir);
  t.deepEqual(again.listGroups(), ['group b', 'group/a ✓']);
  t.deepEqual(again.fetch('group b', 't', [3]), [{ partition: 3, offset: 30, metadata: 'meta' }]);
  t.deepEqual(again.describe('group/a ✓'), {
    group: 'group/a ✓',
    topics: { t: { 0: { offset: 10, metadata: '' } }, u: { 1: { offset: 11, metadata: '' } } },
  });
  t.is(again.describe('nobody'), null);
  // One file per group, named by the hash of the group, nothing temporary left.
  t.deepEqual(fs.readdirSync(path.join(dir, '.offsets')).sort(), [`${xxh3Hex('group b')}.json`, `${xxh3Hex('group/a ✓')}.json`].sort());
});

test('many concurrent commits of one group all resolve and the last value of each partition wins', async (t) => {
  const dir = tmpDir(t);
  const store = new OffsetsStore(dir);
  const commits: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) commits.push(store.commit('g', [{ topic: 't', partition: i % 4, offset: i }]));
  await Promise.all(commits);
  const expected = [196, 197, 198, 199].map((offset, partition) => ({ partition, offset, metadata: '' }));
  t.deepEqual(store.fetch('g', 't', [0, 1, 2, 3]), expected);
  t.deepEqual(new OffsetsStore(dir).fetch('g', 't', [0, 1, 2, 3]), expected);
});

test('a torn or corrupted group file is ignored with a warning, and the next commit replaces it', async (t) => {
  const dir = tmpDir(t);
  const store = new OffsetsStore(dir);
  await store.commit('g', [{ topic: 't', partition: 0, offset: 100 }]);
  await store.commit('h', [{ topic: 't', partition: 0, offset: 200 }]);
  const file = path.join(dir, '.offsets', `${xxh3Hex('g')}.json`);
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 9)); // torn: checksum line cut short

  const log = silent();
  const reopened = new OffsetsStore(dir, { logger: log });
  t.deepEqual(reopened.fetch('g', 't', [0]), [{ partition: 0, offset: -1, metadata: '' }]);
  t.deepEqual(reopened.fetch('h', 't', [0]), [{ partition: 0, offset: 200, metadata: '' }]);
  t.is(log.warnings.length, 1);
  t.regex(log.warnings[0], /torn or fails its checksum/);

  await reopened.commit('g', [{ topic: 't', partition: 0, offset: 101 }]);
  t.deepEqual(new OffsetsStore(dir).fetch('g', 't', [0]), [{ partition: 0, offset: 101, metadata: '' }]);
});

test('a flipped byte in a group file makes it read as empty; listGroups skips it', async (t) => {
  const dir = tmpDir(t);
  const store = new OffsetsStore(dir);
  await store.commit('g', [{ topic: 't', partition: 0, offset: 5 }]);
  const file = path.join(dir, '.offsets', `${xxh3Hex('g')}.json`);
  const bytes = fs.readFileSync(file);
  bytes[bytes.indexOf('5')] = '6'.charCodeAt(0);
  fs.writeFileSync(file, bytes);
  const reopened = new OffsetsStore(dir, { logger: silent() });
  t.deepEqual(reopened.listGroups(), []);
  t.deepEqual(reopened.fetch('g', 't', [0]), [{ partition: 0, offset: -1, metadata: '' }]);
});

test('a leftover temporary file from a crash mid-write is not read as a group', async (t) => {
  const dir = tmpDir(t);
  const store = new OffsetsStore(dir);
  await store.commit('g', [{ topic: 't', partition: 0, offset: 1 }]);
  fs.writeFileSync(path.join(dir, '.offsets', `${xxh3Hex('g')}.json.tmp`), '{"v":1,"group":"g","to');
  const reopened = new OffsetsStore(dir);
  t.deepEqual(reopened.listGroups(), ['g']);
  t.deepEqual(reopened.fetch('g', 't', [0]), [{ partition: 0, offset: 1, metadata: '' }]);
});

test('dropTopic forgets the topic in every group, durably; a group left empty has no file', async (t) => {
  const dir = tmpDir(t);
  const store = new OffsetsStore(dir);
  await store.commit('g1', [{ topic: 'gone', partition: 0, offset: 1 }, { topic: 'kept', partition: 0, offset: 2 }]);
  await store.commit('g2', [{ topic: 'gone', partition: 1, offset: 3 }]);
  await store.dropTopic('gone');
  t.deepEqual(store.fetch('g1', 'gone', [0]), [{ partition: 0, offset: -1, metadata: '' }]);
  t.deepEqual(store.listGroups(), ['g1']);
  const reopened = new OffsetsStore(dir);
  t.deepEqual(reopened.listGroups(), ['g1']);
  t.deepEqual(reopened.describe('g1'), { group: 'g1', topics: { kept: { 0: { offset: 2, metadata: '' } } } });
  t.deepEqual(fs.readdirSync(path.join(dir, '.offsets')), [`${xxh3Hex('g1')}.json`]);
});

test('retainTopics forgets every topic not listed', async (t) => {
  const dir = tmpDir(t);
  const store = new OffsetsStore(dir);
  await store.commit('g', [{ topic: 'a', partition: 0, offset: 1 }, { topic: 'b', partition: 0, offset: 2 }]);
  await new OffsetsStore(dir).retainTopics(['b']);
  t.deepEqual(new OffsetsStore(dir).describe('g'), { group: 'g', topics: { b: { 0: { offset: 2, metadata: '' } } } });
});

test('group names must be non-empty and at most 255 characters; offsets non-negative integers', async (t) => {
  const store = new OffsetsStore(tmpDir(t));
  const entry = { topic: 't', partition: 0, offset: 1 };
  await t.throwsAsync(store.commit('', [entry]), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(store.commit('x'.repeat(MAX_GROUP_NAME_LENGTH + 1), [entry]), { code: ErrorCode.INVALID_ARGUMENT });
  await t.notThrowsAsync(store.commit('x'.repeat(MAX_GROUP_NAME_LENGTH), [entry]));
  await t.throwsAsync(store.commit('g', [{ ...entry, offset: -1 }]), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(store.commit('g', [{ ...entry, offset: 1.5 }]), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(store.commit('g', [{ ...entry, partition: -1 }]), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(store.commit('g', [{ ...entry, metadata: 'm'.repeat(4097) }]), { code: ErrorCode.INVALID_ARGUMENT });
  await t.throwsAsync(store.commit('g', [{ ...entry, topic: '' }]), { code: ErrorCode.INVALID_TOPIC });
  t.throws(() => store.fetch('', 't', [0]), { code: ErrorCode.INVALID_ARGUMENT });
  // A rejected commit stores nothing, not even its valid entries.
  await t.throwsAsync(store.commit('g', [entry, { ...entry, partition: 1, offset: -5 }]), { code: ErrorCode.INVALID_ARGUMENT });
  t.deepEqual(store.fetch('g', 't', [0]), [{ partition: 0, offset: -1, metadata: '' }]);
});

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { readGuardedJson, readRecoveryPoint, writeGuardedJson, writeRecoveryPoint } from '../../src/index/checkpoint.js';
import { CommitLogError, ErrorCode } from '../../src/errors.js';
import { tmpDir } from '../helpers/tmp.js';

const value = { partitions: 3, segmentBytes: 65536, name: 'orders', nested: { list: [1, 2, 3], flag: true, none: null } };

test('a guarded JSON file reads back the value written', (t) => {
  const file = path.join(tmpDir(t), 'topic.json');
  writeGuardedJson(file, value);
  t.deepEqual(readGuardedJson(file), value);
});

test('a guarded JSON file is one JSON line and one xxh3 line, with no temporary file left', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'topic.json');
  writeGuardedJson(file, value);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  t.is(lines.length, 3);
  t.is(lines[0], JSON.stringify(value));
  t.regex(lines[1], /^xxh3:[0-9a-f]{16}$/);
  t.is(lines[2], '');
  t.deepEqual(fs.readdirSync(dir), ['topic.json']);
});

test('writing a guarded JSON file again replaces the value', (t) => {
  const file = path.join(tmpDir(t), 'x.json');
  writeGuardedJson(file, { a: 1 });
  writeGuardedJson(file, { b: 2 });
  t.deepEqual(readGuardedJson(file), { b: 2 });
});

test('a missing guarded JSON file reads as null', (t) => {
  t.is(readGuardedJson(path.join(tmpDir(t), 'missing.json')), null);
});

test('a guarded JSON file with any one byte flipped reads as null', (t) => {
  const file = path.join(tmpDir(t), 'x.json');
  writeGuardedJson(file, value);
  const good = fs.readFileSync(file);
  // Every byte except the final newline, which the checksum does not need.
  for (let i = 0; i < good.length - 1; i++) {
    for (const mask of [0x01, 0x20, 0x80]) {
      const bad = Buffer.from(good);
      bad[i] ^= mask;
      fs.writeFileSync(file, bad);
      const read = readGuardedJson(file);
      if (read !== null) {
        t.fail(`byte ${i} ^ 0x${mask.toString(16)} still reads as ${JSON.stringify(read)}`);
        return;
      }
    }
  }
  t.pass();
});

test('a torn guarded JSON file (half written, or any shorter prefix) reads as null', (t) => {
  const file = path.join(tmpDir(t), 'x.json');
  writeGuardedJson(file, value);
  const good = fs.readFileSync(file);
  fs.writeFileSync(file, good.subarray(0, Math.floor(good.length / 2)));
  t.is(readGuardedJson(file), null);
  // Every prefix that ends before the checksum line is complete.
  for (let n = 0; n < good.length - 1; n++) {
    fs.writeFileSync(file, good.subarray(0, n));
    if (readGuardedJson(file) !== null) {
      t.fail(`a prefix of ${n} of ${good.length} bytes reads as a value`);
      return;
    }
  }
  t.pass();
});

test('a guarded JSON file whose JSON line is replaced, with a stale checksum, reads as null', (t) => {
  const file = path.join(tmpDir(t), 'x.json');
  writeGuardedJson(file, { a: 1 });
  const [, checksum] = fs.readFileSync(file, 'utf8').split('\n');
  fs.writeFileSync(file, `{"a":2}\n${checksum}\n`);
  t.is(readGuardedJson(file), null);
});

test('reading a guarded JSON path that is a directory throws ERR_IO', (t) => {
  const dir = tmpDir(t);
  const err = t.throws(() => readGuardedJson(dir), { instanceOf: CommitLogError, code: ErrorCode.IO });
  t.is(err?.errno, 'EISDIR');
});

test('a recovery point reads back exactly', (t) => {
  const file = path.join(tmpDir(t), 'recovery.checkpoint');
  writeRecoveryPoint(file, { segmentBaseOffset: 1200, position: 65000, nextOffset: 1450 });
  t.deepEqual(readRecoveryPoint(file), { segmentBaseOffset: 1200, position: 65000, nextOffset: 1450 });
  t.deepEqual(readGuardedJson(file), { v: 1, segmentBaseOffset: 1200, position: 65000, nextOffset: 1450 });
});

test('a recovery point that is missing, damaged, or has fields that are not non-negative integers reads as null', (t) => {
  const file = path.join(tmpDir(t), 'recovery.checkpoint');
  t.is(readRecoveryPoint(file), null);
  writeRecoveryPoint(file, { segmentBaseOffset: 0, position: 10, nextOffset: 2 });
  const good = fs.readFileSync(file);
  const bad = Buffer.from(good);
  bad[5] ^= 1;
  fs.writeFileSync(file, bad);
  t.is(readRecoveryPoint(file), null);
  for (const v of [
    { segmentBaseOffset: -1, position: 0, nextOffset: 0 },
    { segmentBaseOffset: 0, position: 1.5, nextOffset: 0 },
    { segmentBaseOffset: 0, position: 0 },
    { segmentBaseOffset: 0, position: 0, nextOffset: '3' },
    [1, 2, 3],
    'text',
    null,
  ]) {
    writeGuardedJson(file, v);
    t.is(readRecoveryPoint(file), null, JSON.stringify(v));
  }
});

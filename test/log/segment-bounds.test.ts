/**
 * A consume-queue entry is checked against the data its segment's file really holds
 * (issue 8.9): a sealed segment keeps the mapping it had while active, larger than its
 * truncated file, and touching a page past the end of a file is a SIGBUS. The read runs
 * in a child process, so a SIGBUS fails this test instead of killing the runner.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { tmpDir } from '../helpers/tmp.js';

test('a bad index entry pointing past a sealed segment\'s truncated file is rebuilt from the log, never a SIGBUS', (t) => {
  const dir = tmpDir(t);
  const child = spawnSync(process.execPath, ['--import=tsx', 'test/log/fixtures/sealed-bad-entry-child.ts', dir], { encoding: 'utf8', timeout: 60_000 });
  t.is(child.signal, null, `the reader died of ${child.signal}: ${child.stderr}`);
  t.is(child.status, 0, child.stderr);
  const outcome = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { ok: boolean; keys?: string[] };
  t.deepEqual(outcome.keys, ['1']);
  t.true(outcome.ok);
});

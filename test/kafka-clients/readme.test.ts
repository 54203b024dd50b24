/**
 * The README's "Use it from any Kafka client" examples run as written: the kcat block
 * through sh and the kafkajs block as an ES module, against a broker whose Kafka
 * listener is on a free port (the examples' 127.0.0.1:9092 is replaced by it).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { assertAvailable, cleanEnv, root, skipFor, startBroker } from './harness.js';

const run = promisify(execFile);

function block(marker: string): string {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(`<!-- ${marker} -->`);
  if (at < 0) throw new Error(`README.md has no ${marker} block`);
  const m = /```\w*\n([\s\S]*?)```/.exec(readme.slice(at));
  return m![1]!;
}

(skipFor(['kcat', 'kafkajs']) ? test.skip : test)('the README kcat and kafkajs examples print what the README says', async (t) => {
  t.timeout(120_000);
  assertAvailable(['kcat', 'kafkajs']);
  const b = await startBroker(t);
  const kcat = block('readme-kcat').replaceAll('127.0.0.1:9092', b.kafka);
  const shell = await run('sh', ['-e', '-c', kcat], { cwd: root, env: cleanEnv(), timeout: 60_000 });
  t.deepEqual(shell.stdout.trim().split('\n'), ['k1=hello source=readme', 'k2=world source=readme']);

  const file = path.join(root, 'test', 'kafka-clients', `.readme-${process.pid}.mjs`);
  writeFileSync(file, block('readme-kafkajs').replaceAll('127.0.0.1:9092', b.kafka));
  t.teardown(() => rmSync(file, { force: true }));
  const js = await run(process.execPath, [file], { cwd: root, env: cleanEnv({ KAFKAJS_NO_PARTITIONER_WARNING: '1' }), timeout: 90_000 });
  const printed = js.stdout.split('\n').filter((l) => /^k\d=/.test(l));
  t.deepEqual(printed, ['k1=hello', 'k2=world', 'k3=from kafkajs']);
});

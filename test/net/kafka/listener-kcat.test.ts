/**
 * The quick check with kcat (librdkafka): -L lists the broker and topics, -P produces
 * keyed records with headers, -C reads them back with exact keys, values, headers and
 * offsets, and commitlog reads what kcat wrote. The fuller client matrix is
 * test/kafka-clients/. Without kcat the test fails under CI=true and is skipped
 * elsewhere (apt-get install -y kcat).
 */
import test from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { kafkaSetup } from './listener-helpers.js';

const hasKcat = spawnSync('kcat', ['-V']).status === 0;
const kcatTest = hasKcat || process.env.CI === 'true' ? test : test.skip;

function kcat(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('kcat', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

kcatTest('kcat -L, -P and -C against the Kafka listener', async (t) => {
  t.true(hasKcat, 'kcat is not installed (apt-get install -y kcat)');
  const { address, log, kafka } = await kafkaSetup(t);
  await log.createTopic('kc', { partitions: 2 });

  const listed = await kcat(['-b', address, '-L']);
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, new RegExp(`broker 1 at 127\\.0\\.0\\.1:${kafka.port}`));
  t.regex(listed.stdout, /topic "kc" with 2 partitions/);

  const produced = await kcat(['-b', address, '-P', '-t', 'kc', '-p', '1', '-K', ':', '-H', 'trace=abc', '-H', 'n=1'], 'k1:one\nk2:two\n');
  t.is(produced.code, 0, produced.stderr);
  t.deepEqual(log.read('kc', 1, 0).map((r) => [String(r.key), String(r.value), r.headers.map((h) => `${h.key}=${String(h.value)}`)]),
    [['k1', 'one', ['trace=abc', 'n=1']], ['k2', 'two', ['trace=abc', 'n=1']]]);

  await log.append('kc', 1, [{ key: 'k3', value: 'from commitlog', headers: { src: 'native' }, timestamp: 1_700_000_000_123 }]);
  const consumed = await kcat(['-b', address, '-C', '-t', 'kc', '-p', '1', '-o', 'beginning', '-e', '-f', '%k|%s|%h|%o\\n']);
  t.is(consumed.code, 0, consumed.stderr);
  t.deepEqual(consumed.stdout.trim().split('\n'), ['k1|one|trace=abc,n=1|0', 'k2|two|trace=abc,n=1|1', 'k3|from commitlog|src=native|2']);
  const stamped = await kcat(['-b', address, '-C', '-t', 'kc', '-p', '1', '-o', '2', '-c', '1', '-f', '%T %s\\n']);
  t.is(stamped.stdout.trim(), '1700000000123 from commitlog');
});

import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { lines, runCli, startBroker } from '../cli/helpers.js';

function tempDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-console-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('broker --http-port 0 prints the console URL before its listening line and serves the console and /metrics there', async (t) => {
  const dir = tempDir(t);
  const b = await startBroker(t, path.join(dir, 'data'), ['--http-port', '0']);
  const out = lines(b.stdout());
  const at = out.findIndex((l) => l.startsWith('commitlog broker console on '));
  const listening = out.findIndex((l) => l.startsWith('commitlog broker listening on '));
  t.true(at >= 0 && at < listening, out.join('\n'));
  const m = /^commitlog broker console on http:\/\/127\.0\.0\.1:(\d+)\/$/.exec(out[at]!);
  t.truthy(m, out[at]);
  t.regex(out[listening]!, /^commitlog broker listening on 127\.0\.0\.1:\d+ \(dir .+, flush sync\)$/);
  t.is(listening, out.length - 1, 'the listening line comes last');
  const base = `http://127.0.0.1:${m![1]}`;
  const created = await fetch(`${base}/api/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cli-made', partitions: 2 }) });
  t.is(created.status, 201);
  const listed = await runCli(['topics', 'list', '--broker', b.address]);
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout.toString(), /cli-made/);
  const overview = (await (await fetch(`${base}/api/overview`)).json()) as { broker: { port: number; flush: string } };
  t.deepEqual([overview.broker.port, overview.broker.flush], [b.port, 'sync']);
  const metrics = await fetch(`${base}/metrics`);
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), /commitlog_partition_log_end_offset\{topic="cli-made",partition="1"\} 0/);
  const page = await fetch(`${base}/topics/cli-made`);
  t.regex(await page.text(), /<title>commitlog console<\/title>/);
  t.is(await b.stop(), 0);
});

test('a console port in use is a start-up error naming --http-port; the broker exits 1 and releases its directory', async (t) => {
  const dir = tempDir(t);
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as net.AddressInfo).port;
  const r = await runCli(['broker', '--dir', path.join(dir, 'data'), '--port', '0', '--http-port', String(port)]);
  t.is(r.code, 1);
  t.is(r.stdout.toString(), '');
  t.regex(r.stderr, new RegExp(`cannot serve the web console on 127\\.0\\.0\\.1:${port}: the port is in use; choose another with --http-port PORT \\(0: any free one\\) or turn the console off with --http-port off`));
  // The directory was closed cleanly: a broker starts on it at once.
  const again = await startBroker(t, path.join(dir, 'data'));
  t.is(await again.stop(), 0);
});

test('--http-port off serves no console; a bad value exits 2 naming the flag', async (t) => {
  const dir = tempDir(t);
  const b = await startBroker(t, path.join(dir, 'data'), ['--http-port', 'off']);
  t.false(b.stdout().includes('console on'), b.stdout());
  t.regex(b.stdout(), /^commitlog broker listening on /m);
  t.is(await b.stop(), 0);
  const bad = await runCli(['broker', '--dir', path.join(dir, 'data'), '--http-port', 'sometimes']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--http-port must be an integer in \[0, 65535\] or off, got "sometimes"/);
  const badEnv = await runCli(['broker', '--dir', path.join(dir, 'data')], { env: { COMMITLOG_HTTP_PORT: '70000' } });
  t.is(badEnv.code, 2);
  t.regex(badEnv.stderr, /COMMITLOG_HTTP_PORT must be an integer in \[0, 65535\] or off, got "70000"/);
});

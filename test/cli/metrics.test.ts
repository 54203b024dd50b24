import test from 'ava';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { root, runCli, startBroker } from './helpers.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

/** Parses Prometheus text format strictly enough to fail on anything malformed. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta !== null) {
      if (meta[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]!)) throw new Error(`bad type: ${line}`);
        typed.add(meta[2]!);
      }
      continue;
    }
    // Values as Prometheus reads them (Go's ParseFloat: NaN and Inf in any case).
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|(?:nan|[+-]inf))$/i.exec(line);
    if (m === null) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
      const eq = pair.indexOf('=');
      labels[pair.slice(0, eq)] = JSON.parse(pair.slice(eq + 1)) as string;
    }
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!typed.has(m[1]!) && !typed.has(family)) throw new Error(`sample without a TYPE line: ${line}`);
    const text = m[3]!.toLowerCase();
    samples.push({ name: m[1]!, labels, value: text === 'nan' ? NaN : text.endsWith('inf') ? (text.startsWith('-') ? -Infinity : Infinity) : Number(text) });
  }
  return samples;
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

test('--metrics-port serves parseable Prometheus text whose counters move with traffic', async (t) => {
  const broker = await startBroker(t, tmpDir(t), ['--metrics-port', '0']);
  t.truthy(broker.metricsAddress, broker.stdout());
  const url = `http://${broker.metricsAddress}/metrics`;

  const before = await get(url);
  t.is(before.status, 200);
  t.regex(before.type, /^text\/plain; version=0\.0\.4/);
  const s0 = parse(before.body);
  t.is(value(s0, 'commitlog_sendfile_bytes_total'), 0);
  t.is(value(s0, 'commitlog_segments'), 0);
  t.true((value(s0, 'process_open_fds') ?? 0) > 0, 'default process metrics are there');

  const a = broker.address;
  t.is((await runCli(['topics', 'create', 'm', '--partitions', '2', '--broker', a])).code, 0);
  const input = Array.from({ length: 50 }, (_, i) => `k${i % 5}:record number ${i}\n`).join('');
  t.is((await runCli(['produce', 'm', '--key-separator', ':', '--broker', a], { input })).code, 0);
  const consumed = await runCli(['consume', 'm', '--group', 'readers', '--max', '20', '--broker', a]);
  t.is(consumed.code, 0, consumed.stderr);

  const after = parse((await get(url)).body);
  t.is(value(after, 'commitlog_topic_records_in_total', { topic: 'm' }), 50);
  t.true(value(after, 'commitlog_topic_bytes_in_total', { topic: 'm' })! > 50 * 10);
  t.true(value(after, 'commitlog_topic_records_out_total', { topic: 'm' })! >= 20);
  t.true(value(after, 'commitlog_topic_bytes_out_total', { topic: 'm' })! > 0);
  t.true(value(after, 'commitlog_sendfile_bytes_total')! >= value(after, 'commitlog_topic_bytes_out_total', { topic: 'm' })!);
  t.true(value(after, 'commitlog_request_duration_seconds_count', { request: 'produce' })! >= 1);
  t.true(value(after, 'commitlog_request_duration_seconds_count', { request: 'multiFetch' })! >= 1);
  t.is(value(after, 'commitlog_request_duration_seconds_bucket', { request: 'produce', le: '+Inf' }), value(after, 'commitlog_request_duration_seconds_count', { request: 'produce' }));
  t.true(value(after, 'commitlog_flush_duration_seconds_count')! >= 1, 'flush sync: every produce flushed');
  t.is(value(after, 'commitlog_segments'), 2);
  t.true(value(after, 'commitlog_disk_usage_bytes')! > 0);
  const ends = [0, 1].map((p) => value(after, 'commitlog_partition_log_end_offset', { topic: 'm', partition: String(p) })!);
  t.is(ends[0]! + ends[1]!, 50);
  const lag = [0, 1].map((p) => value(after, 'commitlog_consumer_group_lag', { group: 'readers', topic: 'm', partition: String(p) }) ?? 0);
  t.is(lag[0]! + lag[1]!, 30);
  t.true(value(after, 'commitlog_connections_accepted_total')! >= 3);

  const bad = await runCli(['produce', 'missing', '--broker', a], { input: 'x\n' });
  t.is(bad.code, 1);
  const errors = parse((await get(url)).body);
  t.true((value(errors, 'commitlog_request_errors_total', { code: 'ERR_UNKNOWN_TOPIC' }) ?? 0) >= 1);

  // Every family is documented in docs/operations.md.
  const doc = fs.readFileSync(path.join(root, 'docs', 'operations.md'), 'utf8');
  const families = new Set(errors.filter((x) => x.name.startsWith('commitlog_')).map((x) => x.name.replace(/_(bucket|sum|count)$/, '')));
  for (const name of families) t.true(doc.includes(`\`${name}\``), `${name} is not in docs/operations.md`);

  t.is((await get(`http://${broker.metricsAddress}/nothing`)).status, 404);
  t.is(await broker.stop(), 0, broker.stderr());
});

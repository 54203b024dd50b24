import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parseFrom } from '../../src/cli/consume.js';
import { readLines } from '../../src/cli/produce.js';
import { ConfigError, SETTINGS, envName, resolveSettings, settingsTable } from '../../src/ops/config.js';
import { createLogger, formatLine } from '../../src/ops/logger.js';
import { createProgress } from '../../src/ops/progress.js';
import { tmpDir } from '../helpers/tmp.js';
import { root } from './helpers.js';

test('each setting resolves from the flag, else COMMITLOG_*, else the config file, else its default', (t) => {
  const dir = tmpDir(t);
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ port: 9001, host: '0.0.0.0', flush: 'os', 'log-level': 'warn' }));
  const r = resolveSettings(['port', 'host', 'flush', 'dir', 'log-level'], {
    flags: { config: file, port: '9003' },
    env: { COMMITLOG_PORT: '9002', COMMITLOG_HOST: '::1', COMMITLOG_LOG_LEVEL: '' },
  });
  t.deepEqual(r.values, { port: 9003, host: '::1', flush: 'os', dir: './data', 'log-level': 'warn' });
  t.deepEqual(r.sources, { port: 'flag', host: 'env', flush: 'file', dir: 'default', 'log-level': 'file' });
  t.is(r.configFile, file);

  const fromEnvFile = resolveSettings(['port'], { flags: {}, env: { COMMITLOG_CONFIG: file } });
  t.is(fromEnvFile.values.port, 9001);
});

test('a bad value is a ConfigError naming its source', (t) => {
  const dir = tmpDir(t);
  t.throws(() => resolveSettings(['port'], { flags: { port: '-1' }, env: {} }), { instanceOf: ConfigError, message: '--port must be an integer in [0, 65535], got "-1"' });
  t.throws(() => resolveSettings(['flush'], { flags: {}, env: { COMMITLOG_FLUSH: 'never' } }), { instanceOf: ConfigError, message: /^COMMITLOG_FLUSH must be one of sync, async, os/ });
  t.throws(() => resolveSettings(['broker'], { flags: { broker: 'localhost' }, env: {} }), { instanceOf: ConfigError, message: /^--broker must be HOST:PORT/ });
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, JSON.stringify({ 'segment-bytes': 'big' }));
  t.throws(() => resolveSettings(['segment-bytes'], { flags: { config: file }, env: {} }), { instanceOf: ConfigError, message: new RegExp(`^segment-bytes in config file ${file} must be an integer`) });
  fs.writeFileSync(file, '[1, 2]');
  t.throws(() => resolveSettings(['port'], { flags: { config: file }, env: {} }), { instanceOf: ConfigError, message: /must hold a JSON object/ });
  t.throws(() => resolveSettings(['port'], { flags: { config: path.join(dir, 'missing.json') }, env: {} }), { instanceOf: ConfigError, message: /cannot read config file/ });
});

test('docs/operations.md holds the settings table as the code defines it', (t) => {
  const doc = fs.readFileSync(path.join(root, 'docs', 'operations.md'), 'utf8');
  t.true(doc.includes(settingsTable()), 'regenerate the table with settingsTable() (src/ops/config.ts)');
  for (const name of Object.keys(SETTINGS)) t.true(doc.includes(envName(name)));
});

test('the terminal log format is one readable line per event; JSON otherwise', (t) => {
  const line = formatLine(JSON.stringify({ level: 'warn', time: '2024-05-01T12:00:01.234Z', pid: 1, name: 'broker', msg: 'recovered t/0', droppedBytes: 14, path: '/a b' }));
  t.is(line, '12:00:01.234 WARN  recovered t/0  droppedBytes=14 path="/a b"\n');
  let written = '';
  const stream = new Writable({ write: (chunk, _enc, cb) => { written += String(chunk); cb(); } });
  const logger = createLogger({ level: 'info', stream, pretty: false });
  logger.debug({}, 'hidden');
  logger.info({ port: 7070 }, 'listening');
  const event = JSON.parse(written) as Record<string, unknown>;
  t.like(event, { level: 'info', msg: 'listening', port: 7070 });
  t.regex(String(event.time), /^\d{4}-\d\d-\d\dT/);
});

test('stdin lines are split on \\n only, keeping every other byte, with a last unterminated line', async (t) => {
  async function* chunks(): AsyncGenerator<Buffer> {
    yield Buffer.from('a\r\nb');
    yield Buffer.from('c\n\n');
    yield Buffer.from([0xff, 0x0a, 0x64]);
  }
  const got: string[] = [];
  await readLines(chunks(), (line) => void got.push(line.toString('latin1')), () => false);
  t.deepEqual(got, ['a\r', 'bc', '', '\xff', 'd']);
  const first: string[] = [];
  await readLines(chunks(), (line) => void first.push(line.toString()), () => first.length >= 2);
  t.deepEqual(first, ['a\r', 'bc']);
});

test('--from takes earliest, latest, an offset or an ISO-8601 time', (t) => {
  t.is(parseFrom('earliest'), 'earliest');
  t.is(parseFrom('latest'), 'latest');
  t.is(parseFrom('42'), 42);
  t.deepEqual(parseFrom('2024-05-01T12:00:00Z'), new Date(Date.UTC(2024, 4, 1, 12)));
  t.throws(() => parseFrom('now'), { message: /--from must be/ });
  t.throws(() => parseFrom('-1'), { message: /--from must be/ });
});

test('the progress bar draws only on a terminal', (t) => {
  let written = '';
  const sink = (isTTY: boolean) => Object.assign(new Writable({ write: (chunk, _enc, cb) => { written += String(chunk); cb(); } }), { isTTY, columns: 80 });
  const quiet = createProgress('verify', 100, { stream: sink(false) });
  quiet.update(50, 'x.log');
  quiet.done();
  t.is(written, '');
  const shown = createProgress('verify', 2048, { stream: sink(true) });
  shown.update(1024, 'x.log');
  shown.done();
  t.regex(written, /^\r\x1b\[Kverify \[#+\.+\]  50% 1\.00 KiB\/2\.00 KiB \d+\.\ds x\.log\r\x1b\[K$/);
});

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { once } from 'node:events';
import { tmpDir } from '../helpers/tmp.js';
import { lines, runCli, spawnBroker, startBroker } from './helpers.js';

test('broker prints its address, serves, and on SIGTERM exits 0 with the clean-shutdown marker written', async (t) => {
  const dir = tmpDir(t);
  const broker = await startBroker(t, dir);
  t.regex(broker.stdout(), /^commitlog broker listening on 127\.0\.0\.1:\d+ /m);
  t.true(broker.port > 0);
  t.false(fs.existsSync(path.join(dir, '.clean-shutdown')), 'no marker while the log is open');

  t.is((await runCli(['topics', 'create', 'life', '--broker', broker.address])).code, 0);
  const produced = await runCli(['produce', 'life', '--broker', broker.address], { input: 'one\ntwo\n' });
  t.is(produced.code, 0, produced.stderr);

  t.is(await broker.stop('SIGTERM'), 0, broker.stderr());
  t.true(fs.existsSync(path.join(dir, '.clean-shutdown')));
  // Structured log: one JSON object per line on stderr (not a terminal here).
  const events = lines(broker.stderr()).map((l) => JSON.parse(l) as { msg: string; level: string });
  t.deepEqual(events.map((e) => e.msg).filter((m) => m === 'shutting down' || m === 'stopped'), ['shutting down', 'stopped']);
  t.true(events.every((e) => typeof e.level === 'string'));

  // Reopened, the data is there and the directory verifies clean.
  const verify = await runCli(['verify', dir]);
  t.is(verify.code, 0, verify.stdout.toString());
  t.regex(verify.stdout.toString(), /2 records.*closed cleanly: no problems/);
});

test('SIGINT shuts the broker down cleanly too', async (t) => {
  const dir = tmpDir(t);
  const broker = await startBroker(t, dir);
  t.is(await broker.stop('SIGINT'), 0, broker.stderr());
  t.true(fs.existsSync(path.join(dir, '.clean-shutdown')));
});

test('a second broker on the same directory is refused at once and the first one keeps its data', async (t) => {
  const dir = tmpDir(t);
  const first = await startBroker(t, dir);
  t.is((await runCli(['topics', 'create', 'keep', '--broker', first.address])).code, 0);
  t.is((await runCli(['produce', 'keep', '--broker', first.address], { input: 'a\nb\nc\n' })).code, 0);

  const second = spawnBroker(t, dir);
  t.is(await second.exited, 1);
  t.regex(second.stderr(), /in use by another CommitLog \(lock file .*\.lock\).*ERR_LOCKED/);
  t.notRegex(second.stdout(), /listening/);

  const consumed = await runCli(['consume', 'keep', '--broker', first.address, '--max', '3']);
  t.is(consumed.stdout.toString(), 'a\nb\nc\n');
  t.is(await first.stop(), 0);
  t.is((await runCli(['verify', dir])).code, 0);
});

test('settings: a flag beats COMMITLOG_*, which beats the config file, which beats the default', async (t) => {
  const dir = tmpDir(t);
  const config = path.join(dir, 'commitlog.json');
  fs.writeFileSync(config, JSON.stringify({ flush: 'async', 'flush-interval-ms': 50 }));
  const fromFile = await startBroker(t, path.join(dir, 'a'), ['--config', config]);
  t.regex(fromFile.stdout(), /flush async\)/);
  t.is(await fromFile.stop(), 0);

  const fromEnv = await startBroker(t, path.join(dir, 'b'), [], { COMMITLOG_CONFIG: config, COMMITLOG_FLUSH: 'os' });
  t.regex(fromEnv.stdout(), /flush os\)/);
  t.is(await fromEnv.stop(), 0);

  const fromFlag = await startBroker(t, path.join(dir, 'c'), ['--flush', 'sync'], { COMMITLOG_CONFIG: config, COMMITLOG_FLUSH: 'os' });
  t.regex(fromFlag.stdout(), /flush sync\)/);
  t.is(await fromFlag.stop(), 0);
});

test('bad settings exit 2 naming where the value came from', async (t) => {
  const dir = tmpDir(t);
  const badFlag = await runCli(['broker', '--dir', dir, '--port', '70000']);
  t.is(badFlag.code, 2);
  t.regex(badFlag.stderr, /--port must be an integer in \[0, 65535\], got "70000"/);

  const badEnv = await runCli(['broker', '--dir', dir], { env: { COMMITLOG_FLUSH: 'sometimes' } });
  t.is(badEnv.code, 2);
  t.regex(badEnv.stderr, /COMMITLOG_FLUSH must be one of sync, async, os/);

  const config = path.join(dir, 'bad.json');
  fs.writeFileSync(config, JSON.stringify({ prot: 7070 }));
  const badFile = await runCli(['broker', '--dir', dir, '--config', config]);
  t.is(badFile.code, 2);
  t.regex(badFile.stderr, /unknown setting "prot"/);

  const stray = await runCli(['broker', '--dir', dir, 'extra']);
  t.is(stray.code, 2);
  t.regex(stray.stderr, /unexpected argument "extra"/);
});

test('--max-connections refuses connections beyond the limit while the ones inside it keep working', async (t) => {
  const dir = tmpDir(t);
  const broker = await startBroker(t, dir, ['--max-connections', '1']);
  const first = net.connect(broker.port, '127.0.0.1');
  t.teardown(() => first.destroy());
  await once(first, 'connect');
  // The broker accepts then closes the connection over the limit at once.
  const second = net.connect(broker.port, '127.0.0.1');
  t.teardown(() => second.destroy());
  const closed = await Promise.race([once(second, 'close').then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 3000))]);
  t.true(closed, 'the connection over the limit was closed');
  first.destroy();
  await once(first, 'close');
  // With the first gone, a client gets in again.
  const created = await runCli(['topics', 'create', 'after', '--broker', broker.address]);
  t.is(created.code, 0, created.stderr.toString());
  t.is(await broker.stop('SIGTERM'), 0, broker.stderr());
});

/**
 * The `commitlog` command sizes libuv's thread pool before the pool starts
 * (bin/commitlog.js): UV_THREADPOOL_SIZE unset means min(64, max(8, 2 x cores))
 * threads, a value in the environment is kept. Seen from outside: the broker process's
 * threads (/proc/PID/task), whose other threads do not depend on the variable, so the
 * difference between two brokers is the difference of their pool sizes.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpDir } from './helpers/tmp.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'commitlog.js');

/** Starts `commitlog broker` with UV_THREADPOOL_SIZE = `pool` (unset when undefined); resolves with its thread count once it listens, then stops it. */
async function brokerThreads(t: import('ava').ExecutionContext, pool: string | undefined): Promise<number> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('COMMITLOG_') && k !== 'UV_THREADPOOL_SIZE') env[k] = v;
  if (pool !== undefined) env.UV_THREADPOOL_SIZE = pool;
  const dir = path.join(tmpDir(t), 'data');
  const child = spawn(process.execPath, [bin, 'broker', '--dir', dir, '--port', '0', '--http-port', 'off', '--kafka-port', 'off', '--log-level', 'warn'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code} before listening: ${stderr}`)));
  });
  const threads = fs.readdirSync(`/proc/${child.pid}/task`).length;
  child.kill('SIGTERM');
  t.is(await exited, 0);
  return threads;
}

test.serial('the broker runs with the default pool size when UV_THREADPOOL_SIZE is unset, and with the given size when it is set', async (t) => {
  const expectedDefault = Math.min(64, Math.max(8, 2 * os.availableParallelism()));
  const two = await brokerThreads(t, '2');
  const five = await brokerThreads(t, '5');
  const unset = await brokerThreads(t, undefined);
  t.is(five - two, 3);
  t.is(unset - two, expectedDefault - 2);
});

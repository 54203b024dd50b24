#!/usr/bin/env node
// The `commitlog` command. This file is CommonJS (bin/package.json): the ES module
// loader reads its modules on libuv's thread pool, which starts the pool, and libuv
// sizes the pool once, from UV_THREADPOOL_SIZE, when it starts. A CommonJS entry runs
// before any pool job, so it can still choose the size (docs/operations.md, "Thread
// pool"); then it loads the command itself (bin/main.mjs).
'use strict';
const os = require('node:os');

/**
 * The broker's pool: msync and fdatasync of group commit, allocation steps, checkpoint
 * writes, file opens and cold-read prefetches all run there and mostly wait for the
 * disk, so it is sized past the core count: 2 per core, at least 8 (4 prefetch jobs
 * plus 4 threads for flushes), at most 64.
 */
function defaultThreadPoolSize(cores) {
  return Math.min(64, Math.max(8, 2 * cores));
}

const configured = process.env.UV_THREADPOOL_SIZE;
if (configured === undefined || configured.trim() === '') {
  process.env.UV_THREADPOOL_SIZE = String(defaultThreadPoolSize(os.availableParallelism()));
}

import('./main.mjs').catch((err) => {
  process.stderr.write(`commitlog: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});

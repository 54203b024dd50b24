/**
 * `commitlog broker`: opens the data directory (taking its lock), serves it with
 * startBroker, and on SIGINT/SIGTERM stops accepting, answers the requests already
 * received, closes the CommitLog cleanly (writing `.clean-shutdown`) and exits 0.
 * A second signal during shutdown exits 1 at once. Prints `listening on HOST:PORT`
 * on stdout once connections are accepted; everything else goes to stderr.
 */
import { parseArgs } from 'node:util';
import { CommitLogError, ErrorCode } from '../errors.js';
import { CommitLog, type Logger } from '../log/commit-log.js';
import type { FlushPolicy } from '../log/partition-log.js';
import { DEFAULT_HOST, DEFAULT_PORT, startBroker } from '../net/server.js';

const USAGE = `usage: commitlog broker [--dir DIR] [--host HOST] [--port PORT] [--flush sync|async|os] [--segment-bytes N]

  --dir DIR            data directory (default ./data)
  --host HOST          address to listen on (default ${DEFAULT_HOST})
  --port PORT          TCP port, 0 for any free one (default ${DEFAULT_PORT})
  --flush POLICY       sync: acknowledge after msync (default); async: flush in the
                       background; os: leave it to the kernel
  --segment-bytes N    segment size of topics created without their own (default 1 GiB)
`;

const logger: Logger = {
  info: (fields, message) => process.stderr.write(`${new Date().toISOString()} info ${message} ${JSON.stringify(fields)}\n`),
  warn: (fields, message) => process.stderr.write(`${new Date().toISOString()} warn ${message} ${JSON.stringify(fields)}\n`),
};

function fail(message: string, code: number): number {
  process.stderr.write(`commitlog broker: ${message}\n`);
  return code;
}

function parseInteger(name: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(text)}`);
  return n;
}

export async function run(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        dir: { type: 'string', default: './data' },
        host: { type: 'string', default: DEFAULT_HOST },
        port: { type: 'string', default: String(DEFAULT_PORT) },
        flush: { type: 'string', default: 'sync' },
        'segment-bytes': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  let port: number;
  let segmentBytes: number | undefined;
  const flush = values.flush as FlushPolicy;
  try {
    port = parseInteger('port', values.port, 0, 65535);
    if (values['segment-bytes'] !== undefined) segmentBytes = parseInteger('segment-bytes', values['segment-bytes'], 1, Number.MAX_SAFE_INTEGER);
    if (flush !== 'sync' && flush !== 'async' && flush !== 'os') throw new Error(`--flush must be sync, async or os, got ${JSON.stringify(values.flush)}`);
  } catch (err) {
    return fail(`${(err as Error).message}\n\n${USAGE}`, 2);
  }

  let log: CommitLog;
  try {
    log = await CommitLog.open({ dir: values.dir, flush, logger, topicDefaults: segmentBytes === undefined ? {} : { segmentBytes } });
  } catch (err) {
    if (err instanceof CommitLogError && err.code === ErrorCode.INVALID_ARGUMENT) return fail(`${err.message}\n\n${USAGE}`, 2);
    const code = err instanceof CommitLogError ? ` (${err.code})` : '';
    return fail(`cannot open data directory ${values.dir}: ${(err as Error).message}${code}`, 1);
  }
  let broker;
  try {
    broker = await startBroker({ log, host: values.host, port, logger });
  } catch (err) {
    await log.close();
    return fail(`cannot listen on ${values.host}:${port}: ${(err as Error).message}`, 1);
  }
  const shown = broker.host.includes(':') ? `[${broker.host}]` : broker.host;
  process.stdout.write(`commitlog broker listening on ${shown}:${broker.port} (dir ${log.dir}, flush ${flush})\n`);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const force = (): void => {
    process.stderr.write('commitlog broker: second signal during shutdown; exiting now\n');
    process.exit(1);
  };
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  logger.info({ signal }, 'shutting down');
  let code = 0;
  try {
    await broker.close();
  } catch (err) {
    code = fail(`stopping the server failed: ${(err as Error).message}`, 1);
  }
  try {
    await log.close();
  } catch (err) {
    code = fail(`closing the data directory failed: ${(err as Error).message}`, 1);
  }
  process.removeListener('SIGINT', force);
  process.removeListener('SIGTERM', force);
  logger.info({}, 'stopped');
  return code;
}

/**
 * `commitlog broker`: opens the data directory (taking its lock), serves it with
 * startBroker and, with --metrics-port, serves Prometheus metrics over HTTP. On
 * SIGINT/SIGTERM it stops accepting, answers the requests already received, closes the
 * CommitLog cleanly (writing `.clean-shutdown`) and exits 0; a second signal during
 * shutdown exits 1 at once.
 *
 * stdout carries lines for scripts and tests, `commitlog broker metrics on
 * HOST:PORT` (with --metrics-port), `commitlog broker console on http://HOST:PORT/`
 * (the web console, src/console/, unless --http-port off), `commitlog broker kafka
 * listener on HOST:PORT` (the Kafka wire protocol, src/net/kafka/, unless --kafka-port
 * off) and then `commitlog broker listening on HOST:PORT`, printed once connections
 * are accepted. Everything else is
 * the structured log on stderr (src/ops/logger.ts). Settings come from flags, COMMITLOG_* variables, a
 * config file and defaults, in that order (src/ops/config.ts).
 */
import { CommitLogError, ErrorCode } from '../errors.js';
import { CommitLog } from '../log/commit-log.js';
import type { FlushPolicy } from '../log/partition-log.js';
import { startBroker, type Broker } from '../net/broker/server.js';
import { startKafkaListener, type KafkaListener } from '../net/kafka/listener.js';
import { resolveSettings, type SettingName } from '../ops/config.js';
import { createLogger, type CliLogger, type LogLevel } from '../ops/logger.js';
import { BrokerMetrics, serveMetrics, type MetricsServer } from '../ops/metrics.js';
import { startConsole, type ConsoleServer } from '../console/server.js';
import { RateSampler, combineFlushHooks, combineObservers } from '../console/rates.js';
import { describeError, guard, parse } from './args.js';

const USAGE = `usage: commitlog broker [--dir DIR] [--host HOST] [--port PORT] [--flush sync|async|os]
                        [--flush-interval-ms MS] [--segment-bytes N] [--metrics-port PORT]
                        [--metrics-host HOST] [--http-port PORT|off]
                        [--kafka-port PORT|off] [--advertised-host HOST]
                        [--kafka-auto-create on|off] [--kafka-default-partitions N]
                        [--group-initial-rebalance-delay-ms MS] [--group-min-session-timeout-ms MS]
                        [--max-connections N] [--config FILE]
                        [--log-level LEVEL]

Serves a data directory over TCP until SIGINT or SIGTERM, then closes it cleanly.

  --dir DIR              data directory, created if missing (default ./data)
  --host HOST            address to listen on (default 127.0.0.1)
  --port PORT            TCP port, 0 for any free one (default 7070)
  --flush POLICY         sync: acknowledge after msync (default); async: flush in the
                         background; os: leave it to the kernel
  --flush-interval-ms MS async: flush at least this often (default 1000)
  --segment-bytes N      segment size of topics created without their own (default 1 GiB)
  --metrics-port PORT    serve Prometheus metrics at http://HOST:PORT/metrics (0: any port)
  --max-connections N    refuse connections beyond N, on each listener (default: unlimited)
  --metrics-host HOST    address of the metrics endpoint (default: --host)
  --http-port PORT|off   web console (and /metrics) at http://HOST:PORT/ (default 7080;
                         0: any free port; off: none)
  --kafka-port PORT|off  Kafka wire protocol for Kafka clients and tools (default 9092;
                         0: any free port; off: none)
  --advertised-host HOST host Kafka clients are told to connect to (default: --host)
  --kafka-auto-create on|off
                         create unknown topics Kafka clients ask for (default on)
  --kafka-default-partitions N
                         partitions of such auto-created topics (default 1)
  --group-initial-rebalance-delay-ms MS
                         a new consumer group waits this long for more members (default 3000)
  --group-min-session-timeout-ms MS
                         smallest session timeout a group member may ask for (default 6000)
  --config FILE          JSON file of settings (keys are these flag names)
  --log-level LEVEL      trace, debug, info (default), warn, error, fatal or silent

Every setting can also come from COMMITLOG_<NAME> (e.g. COMMITLOG_PORT=7071) or the
config file; flags win over the environment, which wins over the file.
Prints 'commitlog broker kafka listener on HOST:PORT' (unless --kafka-port off), then
'commitlog broker listening on HOST:PORT' on stdout once it accepts connections.
`;

const NAMES = ['dir', 'host', 'port', 'flush', 'flush-interval-ms', 'segment-bytes', 'metrics-port', 'metrics-host', 'http-port', 'max-connections', 'log-level',
  'kafka-port', 'advertised-host', 'kafka-auto-create', 'kafka-default-partitions',
  'group-initial-rebalance-delay-ms', 'group-min-session-timeout-ms'] as const satisfies readonly SettingName[];

const OPTIONS = {
  dir: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  flush: { type: 'string' },
  'flush-interval-ms': { type: 'string' },
  'segment-bytes': { type: 'string' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  'http-port': { type: 'string' },
  'kafka-port': { type: 'string' },
  'advertised-host': { type: 'string' },
  'kafka-auto-create': { type: 'string' },
  'kafka-default-partitions': { type: 'string' },
  'group-initial-rebalance-delay-ms': { type: 'string' },
  'group-min-session-timeout-ms': { type: 'string' },
  'max-connections': { type: 'string' },
  config: { type: 'string' },
  'log-level': { type: 'string' },
} as const;

function fail(message: string, code: number): number {
  process.stderr.write(`commitlog broker: ${message}\n`);
  return code;
}

export function run(args: string[]): Promise<number> {
  return guard('broker', USAGE, async () => {
    const parsed = parse(args, OPTIONS, USAGE, { min: 0, max: 0 });
    if (parsed === null) return 0;
    const { values, sources, configFile } = resolveSettings(NAMES, { flags: parsed.values });
    const logger = createLogger({ level: values['log-level'] as LogLevel, name: 'broker' });
    logger.debug({ settings: values, sources, configFile }, 'settings');
    return serve(logger, {
      dir: values.dir as string,
      host: values.host as string,
      port: values.port as number,
      flush: values.flush as FlushPolicy,
      flushIntervalMs: values['flush-interval-ms'] as number,
      segmentBytes: values['segment-bytes'] as number,
      metricsPort: values['metrics-port'] as number | undefined,
      metricsHost: (values['metrics-host'] ?? values.host) as string,
      httpPort: values['http-port'] as number | 'off',
      maxConnections: values['max-connections'] as number | undefined,
      kafkaPort: values['kafka-port'] as number | 'off',
      advertisedHost: values['advertised-host'] as string | undefined,
      kafkaAutoCreate: values['kafka-auto-create'] === 'on',
      kafkaDefaultPartitions: values['kafka-default-partitions'] as number,
      groups: {
        initialRebalanceDelayMs: values['group-initial-rebalance-delay-ms'] as number,
        minSessionTimeoutMs: values['group-min-session-timeout-ms'] as number,
      },
    });
  });
}

interface ServeOptions {
  dir: string;
  host: string;
  port: number;
  flush: FlushPolicy;
  flushIntervalMs: number;
  segmentBytes: number;
  metricsPort: number | undefined;
  metricsHost: string;
  httpPort: number | 'off';
  maxConnections: number | undefined;
  kafkaPort: number | 'off';
  advertisedHost: string | undefined;
  kafkaAutoCreate: boolean;
  kafkaDefaultPartitions: number;
  groups: { initialRebalanceDelayMs: number; minSessionTimeoutMs: number };
}

async function serve(logger: CliLogger, o: ServeOptions): Promise<number> {
  // Listening first: without a listener Node dies of SIGTERM at once, and a signal
  // that arrives while the log opens must still lead to a clean close.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const consoleOn = o.httpPort !== 'off';
  const metrics = o.metricsPort === undefined && !consoleOn ? undefined : new BrokerMetrics();
  const sampler = consoleOn ? new RateSampler() : undefined;
  let log: CommitLog;
  try {
    log = await CommitLog.open({
      dir: o.dir,
      flush: o.flush,
      flushIntervalMs: o.flushIntervalMs,
      logger,
      hooks: combineFlushHooks(metrics?.flushHooks, sampler?.flushHooks),
      topicDefaults: { segmentBytes: o.segmentBytes },
    });
  } catch (err) {
    if (err instanceof CommitLogError && err.code === ErrorCode.INVALID_ARGUMENT) return fail(err.message, 2);
    return fail(`cannot open data directory ${o.dir}: ${describeError(err)}`, 1);
  }
  const r = log.recovery;
  logger.info({ dir: log.dir, clean: r.clean, topics: log.listTopics().length, droppedBatches: r.droppedBatches, droppedBytes: r.droppedBytes, durationMs: Math.round(r.durationMs) }, r.clean ? 'opened data directory' : 'opened data directory after recovery');

  let broker: Broker;
  try {
    broker = await startBroker({ log, host: o.host, port: o.port, logger, observer: combineObservers(metrics?.observer, sampler?.observer), maxConnections: o.maxConnections, groups: o.groups });
  } catch (err) {
    await log.close();
    return fail(`cannot listen on ${o.host}:${o.port}: ${describeError(err)}`, 1);
  }
  let metricsServer: MetricsServer | undefined;
  metrics?.attach(log, broker);
  if (metrics !== undefined && o.metricsPort !== undefined) {
    try {
      metricsServer = await serveMetrics(metrics, o.metricsHost, o.metricsPort!, logger);
    } catch (err) {
      await broker.close();
      await log.close();
      return fail(`cannot serve metrics on ${o.metricsHost}:${o.metricsPort}: ${describeError(err)}`, 1);
    }
    const at = `${bracket(metricsServer.host)}:${metricsServer.port}`;
    logger.info({ url: `http://${at}/metrics` }, `metrics on ${at}`);
    process.stdout.write(`commitlog broker metrics on ${at}\n`);
  }
  let consoleServer: ConsoleServer | undefined;
  if (sampler !== undefined) {
    const port = o.httpPort as number;
    try {
      consoleServer = await startConsole({ log, broker, sampler, host: o.host, port, metrics, logger, info: { flush: o.flush } });
    } catch (err) {
      await metricsServer?.close();
      await broker.close();
      await log.close();
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      return fail(`cannot serve the web console on ${o.host}:${port}: ${inUse ? 'the port is in use; choose another with --http-port PORT (0: any free one) or turn the console off with --http-port off' : describeError(err)}`, 1);
    }
    logger.info({ url: consoleServer.url }, `console on ${consoleServer.url}`);
    process.stdout.write(`commitlog broker console on ${consoleServer.url}\n`);
  }
  let kafka: KafkaListener | undefined;
  if (o.kafkaPort !== 'off') {
    try {
      kafka = await startKafkaListener({
        log, offsets: broker.offsets, coordinator: broker.coordinator, host: o.host, port: o.kafkaPort,
        advertisedHost: o.advertisedHost, autoCreateTopics: o.kafkaAutoCreate, defaultPartitions: o.kafkaDefaultPartitions,
        logger, observer: metrics?.kafkaObserver, maxConnections: o.maxConnections,
      });
    } catch (err) {
      await consoleServer?.close();
      await metricsServer?.close();
      await broker.close();
      await log.close();
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      return fail(`cannot serve the Kafka protocol on ${o.host}:${o.kafkaPort}: ${inUse ? 'the port is in use; choose another with --kafka-port PORT (0: any free one) or turn the Kafka listener off with --kafka-port off' : describeError(err)}`, 1);
    }
    const kafkaAt = `${bracket(kafka.host)}:${kafka.port}`;
    logger.info({ advertised: `${kafka.settings.advertisedHost}:${kafka.settings.advertisedPort}`, autoCreateTopics: o.kafkaAutoCreate }, `kafka listener on ${kafkaAt}`);
    process.stdout.write(`commitlog broker kafka listener on ${kafkaAt}\n`);
  }
  const at = `${bracket(broker.host)}:${broker.port}`;
  logger.info({ dir: log.dir, flush: o.flush }, `listening on ${at}`);
  process.stdout.write(`commitlog broker listening on ${at} (dir ${log.dir}, flush ${o.flush})\n`);

  const signal = await stopSignal;
  const force = (): void => {
    logger.error({}, 'second signal during shutdown; exiting now');
    process.exit(1);
  };
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  logger.info({ signal }, 'shutting down');
  let code = 0;
  try {
    // Parked JoinGroup/SyncGroup answers go out first, so Kafka connections drain at once.
    broker.coordinator.close();
    await kafka?.close();
  } catch (err) {
    logger.error({ err: describeError(err) }, 'stopping the Kafka listener failed');
    code = 1;
  }
  try {
    await broker.close();
  } catch (err) {
    logger.error({ err: describeError(err) }, 'stopping the server failed');
    code = 1;
  }
  await consoleServer?.close();
  await metricsServer?.close();
  try {
    await log.close();
  } catch (err) {
    logger.error({ err: describeError(err) }, 'closing the data directory failed');
    code = 1;
  }
  process.removeListener('SIGINT', force);
  process.removeListener('SIGTERM', force);
  logger.info({ code }, 'stopped');
  return code;
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

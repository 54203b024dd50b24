/**
 * The broker's metrics, in Prometheus text format (prom-client), served over HTTP by
 * `commitlog broker --metrics-port`. Three sources feed them:
 *
 * - the broker's RequestObservation per answered request (BrokerOptions.observer):
 *   request latency histograms per kind, errors per code, and per topic the bytes and
 *   records produced (in) and fetched (out);
 * - the CommitLog's flush hooks: msync latency;
 * - state read when Prometheus scrapes: per partition log offsets, segment count and
 *   size, disk usage of the data directory, consumer-group lag from the offsets store,
 *   connections, process-wide sendfile counters, and prom-client's default process
 *   metrics (CPU, memory, open file descriptors, event-loop lag).
 *
 * Everything recorded on a hot path is a counter increment or a histogram observation
 * on a cached child (no label hashing per request). Scrape-time work is proportional
 * to the number of partitions and files, never to the data.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CommitLog, Logger } from '../log/commit-log.js';
import type { FlushHooks } from '../log/partition-log.js';
import { sendfileStats } from '../native.js';
import type { Broker, BrokerObserver, RequestObservation } from '../net/broker/server.js';
import type { KafkaObserver, KafkaRequestObservation } from '../net/kafka/listener.js';

/** Seconds: from 100 us (a pipelined metadata request) to 10 s (a long poll or a slow disk). */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface TopicCounters {
  bytesIn: Counter.Internal;
  recordsIn: Counter.Internal;
  bytesOut: Counter.Internal;
  recordsOut: Counter.Internal;
}

export class BrokerMetrics {
  readonly registry = new Registry();
  /** Pass to CommitLog.open({ hooks }): times every msync. */
  readonly flushHooks: FlushHooks;
  /** Pass to startBroker({ observer }). */
  readonly observer: BrokerObserver;
  /** Pass to startKafkaListener({ observer }): Kafka requests by API and version, errors by code, connections. */
  readonly kafkaObserver: KafkaObserver;

  private readonly requestDuration: Histogram<'request'>;
  private readonly requestErrors: Counter<'request' | 'code'>;
  private readonly bytesIn: Counter<'topic'>;
  private readonly recordsIn: Counter<'topic'>;
  private readonly bytesOut: Counter<'topic'>;
  private readonly recordsOut: Counter<'topic'>;
  private readonly flushDuration: Histogram;
  private readonly durationByKind = new Map<string, Histogram.Internal<'request'>>();
  private readonly byTopic = new Map<string, TopicCounters>();
  private readonly flushStarted = new Map<string, number>();
  private log: CommitLog | undefined;
  private broker: Broker | undefined;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requestDuration = new Histogram({
      name: 'commitlog_request_duration_seconds',
      help: 'Time from a decoded request to its response handed to the socket, by request kind (its _count is the request rate)',
      labelNames: ['request'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.requestErrors = new Counter({ name: 'commitlog_request_errors_total', help: 'Requests answered with an error code, by kind and code', labelNames: ['request', 'code'], registers });
    this.bytesIn = new Counter({ name: 'commitlog_topic_bytes_in_total', help: 'Batch bytes appended by produce requests', labelNames: ['topic'], registers });
    this.recordsIn = new Counter({ name: 'commitlog_topic_records_in_total', help: 'Records appended by produce requests', labelNames: ['topic'], registers });
    this.bytesOut = new Counter({ name: 'commitlog_topic_bytes_out_total', help: 'Batch bytes sent to fetchers', labelNames: ['topic'], registers });
    this.recordsOut = new Counter({ name: 'commitlog_topic_records_out_total', help: 'Records in the batches sent to fetchers (a batch that straddles the fetch offset counts whole)', labelNames: ['topic'], registers });
    this.flushDuration = new Histogram({ name: 'commitlog_flush_duration_seconds', help: 'Duration of one partition flush (msync of its unflushed bytes)', buckets: LATENCY_BUCKETS, registers });
    this.defineScrapeGauges(registers);

    this.observer = { onRequest: (o) => this.onRequest(o) };
    this.kafkaObserver = kafkaMetrics(registers);
    this.flushHooks = {
      beforeFlush: (topic, partition) => {
        this.flushStarted.set(`${partition}\0${topic}`, performance.now());
      },
      afterFlush: (topic, partition) => {
        const key = `${partition}\0${topic}`;
        const started = this.flushStarted.get(key);
        if (started === undefined) return;
        this.flushStarted.delete(key);
        this.flushDuration.observe((performance.now() - started) / 1000);
      },
    };
  }

  /** The log and broker whose state the scrape-time gauges read. */
  attach(log: CommitLog, broker: Broker): void {
    this.log = log;
    this.broker = broker;
  }

  /** The metrics in Prometheus text format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private onRequest(o: RequestObservation): void {
    let h = this.durationByKind.get(o.kind);
    if (h === undefined) this.durationByKind.set(o.kind, (h = this.requestDuration.labels(o.kind)));
    h.observe(o.durationMs / 1000);
    if (o.errorCode !== '') {
      this.requestErrors.labels(o.kind, o.errorCode).inc();
      return;
    }
    // A multiFetch counts out per topic it sent batches of (native protocol, docs/protocol.md).
    const out = o.kind === 'multiFetch' ? o.topics ?? [] : o.kind === 'fetch' || o.kind === 'produce' ? [o] : [];
    for (const x of out) this.countTopic(o.kind === 'produce', x.topic, x.bytes, x.records);
  }

  private countTopic(produce: boolean, topic: string, bytes: number, records: number): void {
    let t = this.byTopic.get(topic);
    if (t === undefined) {
      t = { bytesIn: this.bytesIn.labels(topic), recordsIn: this.recordsIn.labels(topic), bytesOut: this.bytesOut.labels(topic), recordsOut: this.recordsOut.labels(topic) };
      this.byTopic.set(topic, t);
    }
    if (produce) {
      t.bytesIn.inc(bytes);
      t.recordsIn.inc(records);
    } else if (bytes > 0) {
      t.bytesOut.inc(bytes);
      t.recordsOut.inc(records);
    }
  }

  /** Gauges (and externally counted counters) computed when Prometheus scrapes. */
  private defineScrapeGauges(registers: Registry[]): void {
    const self = this;
    // The registry collects in registration order: a gauge whose collect() fills
    // others is registered before them, and the others with `registers: []` first.
    const partitionLabels = ['topic', 'partition'] as const;
    const logStart = new Gauge({ name: 'commitlog_partition_log_start_offset', help: 'First offset still stored', labelNames: partitionLabels, registers: [] });
    const logEnd = new Gauge({ name: 'commitlog_partition_log_end_offset', help: 'Offset the next record gets', labelNames: partitionLabels, registers: [] });
    const size = new Gauge({ name: 'commitlog_partition_size_bytes', help: 'Bytes of log data (not counting allocated space past it or indexes)', labelNames: partitionLabels, registers: [] });
    const disk = new Gauge({ name: 'commitlog_partition_disk_bytes', help: 'Disk space the partition takes: allocated log space and indexes (never the logical segment size)', labelNames: partitionLabels, registers: [] });
    const segments = new Gauge({ name: 'commitlog_partition_segments', help: 'Segments of the partition', labelNames: partitionLabels, registers: [] });
    new Gauge({
      name: 'commitlog_segments',
      help: 'Segments across all partitions',
      registers,
      collect() {
        const log = self.log;
        logStart.reset();
        logEnd.reset();
        size.reset();
        disk.reset();
        segments.reset();
        if (log === undefined) return;
        let total = 0;
        for (const topic of safe(() => log.listTopics(), [])) {
          const d = safe(() => log.describeTopic(topic), null);
          for (const p of d?.partitions ?? []) {
            const labels = { topic, partition: String(p.partition) };
            logStart.set(labels, p.logStartOffset);
            logEnd.set(labels, p.nextOffset);
            size.set(labels, p.sizeBytes);
            disk.set(labels, p.diskBytes);
            segments.set(labels, p.segments);
            total += p.segments;
          }
        }
        this.set(total);
      },
    });
    for (const g of [logStart, logEnd, size, disk, segments]) this.registry.registerMetric(g);
    new Gauge({
      name: 'commitlog_disk_usage_bytes',
      help: 'Disk space allocated to the data directory (st_blocks: sparse segment tails do not count)',
      registers,
      collect() {
        if (self.log !== undefined) this.set(diskUsage(self.log.dir));
      },
    });
    const lag = new Gauge({ name: 'commitlog_consumer_group_lag', help: 'Log end offset minus the group\'s committed offset (log start offset when it committed nothing there)', labelNames: ['group', 'topic', 'partition'], registers: [] });
    new Gauge({
      name: 'commitlog_consumer_groups',
      help: 'Consumer groups with committed offsets',
      registers,
      collect() {
        lag.reset();
        const { log, broker } = self;
        if (log === undefined || broker === undefined) return;
        const groups = safe(() => broker.offsets.listGroups(), []);
        for (const group of groups) {
          const described = safe(() => broker.offsets.describe(group), null);
          for (const [topic, partitions] of Object.entries(described?.topics ?? {})) {
            for (const [p, committed] of Object.entries(partitions)) {
              const end = safe(() => log.latestOffset(topic, Number(p)), -1);
              if (end < 0) continue;
              const start = safe(() => log.earliestOffset(topic, Number(p)), 0);
              lag.set({ group, topic, partition: p }, Math.max(0, end - Math.max(committed.offset, start)));
            }
          }
        }
        this.set(groups.length);
      },
    });
    this.registry.registerMetric(lag);
    new Gauge({
      name: 'commitlog_connections',
      help: 'Open client connections',
      registers,
      collect() {
        this.set(self.broker?.stats().connections ?? 0);
      },
    });
    const fromStats = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    fromStats('commitlog_connections_accepted_total', 'Connections accepted since start', () => self.broker?.stats().connectionsAccepted ?? 0);
    fromStats('commitlog_bad_frames_total', 'Connections closed for an unparseable or oversized frame', () => self.broker?.stats().badFrames ?? 0);
    fromStats('commitlog_group_rebalances_total', 'Consumer-group rebalances started by the group coordinator', () => self.broker?.coordinator.stats().rebalances ?? 0);
    fromStats('commitlog_group_session_expirations_total', 'Group members removed because their session timed out', () => self.broker?.coordinator.stats().sessionExpirations ?? 0);
    new Gauge({ name: 'commitlog_group_members', help: 'Members of consumer groups held by the group coordinator', registers, collect() { this.set(self.broker?.coordinator.stats().members ?? 0); } });
    fromStats('commitlog_sendfile_bytes_total', 'Bytes sent with sendfile(2) by this process (the zero-copy fetch path)', () => sendfileStats().bytes);
    fromStats('commitlog_sendfile_calls_total', 'sendfile(2) calls made by this process, including those that found the socket full', () => sendfileStats().calls);
  }
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    // a topic deleted between listing and reading it, or the log closing
    return fallback;
  }
}

/** Allocated bytes (st_blocks) of every file under `dir`. */
export function diskUsage(dir: string): number {
  let total = 0;
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          total += fs.statSync(p).blocks * 512;
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  walk(dir);
  return total;
}

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` (and `/` as the same) on host:port; anything else is 404. */
export async function serveMetrics(metrics: BrokerMetrics, host: string, port: number, logger: Logger): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url !== '/metrics' && url !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    metrics.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        logger.warn({ err: String(err) }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${String(err)}\n`);
      },
    );
  });
  // A scraper keeps its connection open; close() must not wait for it.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger.warn({ err: String(err) }, 'metrics server failed'));
  const address = server.address() as import('node:net').AddressInfo;
  return {
    host: address.address,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The Kafka listener's metrics; children cached per API and version (no label hashing per request). */
function kafkaMetrics(registers: Registry[]): KafkaObserver {
  const requests = new Counter({ name: 'commitlog_kafka_requests_total', help: 'Kafka protocol requests answered (or, for acks 0 produce, handled), by API and version', labelNames: ['api', 'version'], registers });
  const duration = new Histogram({ name: 'commitlog_kafka_request_duration_seconds', help: 'Time from a decoded Kafka request to its response handed to the socket, by API', labelNames: ['api'], buckets: LATENCY_BUCKETS, registers });
  const errors = new Counter({ name: 'commitlog_kafka_errors_total', help: 'Kafka error codes in responses (top level, topics and partitions each count), by API and Kafka error code', labelNames: ['api', 'code'], registers });
  const connections = new Gauge({ name: 'commitlog_kafka_connections', help: 'Open connections to the Kafka listener', registers });
  const byApi = new Map<string, { requests: Counter.Internal; duration: Histogram.Internal<'api'> }>();
  return {
    onRequest(o: KafkaRequestObservation): void {
      const key = `${o.api}/${o.version}`;
      let c = byApi.get(key);
      if (c === undefined) byApi.set(key, (c = { requests: requests.labels(o.api, String(o.version)), duration: duration.labels(o.api) }));
      c.requests.inc();
      c.duration.observe(o.durationMs / 1000);
      for (const code of o.errorCodes) errors.labels(o.api, String(code)).inc();
    },
    onConnection(delta: 1 | -1): void {
      connections.inc(delta);
    },
  };
}

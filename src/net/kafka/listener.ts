/**
 * The Kafka wire-protocol listener: serves the broker core (CommitLog, OffsetsStore,
 * GroupCoordinator) to unmodified Kafka clients. The same shape as the native broker
 * (broker/server.ts), with Kafka's framing and the handler table of handlers/index.ts.
 * The socket, settings and stats live here; one connection's reading, ordering and
 * writing in connection.ts.
 *
 * Per connection: a KafkaFrameSplitter cuts requests out of the stream (several per
 * read and one spread over many reads both happen); each is decoded and handed to its
 * handler at once, in arrival order, so requests pipeline, and gets a slot in the
 * connection's response queue. One writer sends the responses strictly in request
 * order: the encoded parts one after another, Buffers with socket.write and each
 * fetch's record ranges straight from the segment file with sendfile (zero-copy.ts,
 * cold ranges prefetched on the thread pool first). Produce with acks 0 gets no
 * response; its slot is skipped.
 *
 * Backpressure: a connection stops reading while MAX_PENDING_REQUESTS responses wait,
 * or MAX_PENDING_BYTES of memory is held for it (request frames whose handlers are not
 * done, frames not yet dispatched, unsent bytes), or the socket's write buffer is over
 * its high-water mark.
 *
 * Failure: a frame that cannot be cut or decoded (negative or oversized size,
 * malformed header or body) closes its connection with a log line: the stream has no
 * trustworthy boundary, or the client does not speak the protocol. So does a request
 * of an API or version this broker does not serve, except ApiVersions, which is
 * answered in its v0 body with UNSUPPORTED_VERSION and the list (Kafka does the
 * same: no answer in an unknown version's format exists). A handler that throws is
 * answered with its Kafka error code when the response has a top-level error code,
 * otherwise the connection closes. Nothing a client sends stops the listener or
 * disturbs its other connections.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { invalidArgument } from '../../errors.js';
import type { OffsetsStore } from '../../index/offsets-store.js';
import type { CommitLog, Logger } from '../../log/commit-log.js';
import type { GroupCoordinator } from '../broker/coordinator.js';
import { listen, positiveMs, resolvePrefetch, type PrefetchSettings } from '../broker/server-support.js';
import { KafkaConnection, type ListenerShared } from './connection.js';
import { DEFAULT_MAX_KAFKA_FRAME_BYTES, KafkaFrameSplitter } from './frame.js';
import type { KafkaSettings } from './handlers/types.js';

export { MAX_PENDING_BYTES, MAX_PENDING_REQUESTS } from './connection.js';

export const DEFAULT_KAFKA_HOST = '127.0.0.1';
/** Kafka's port; what `commitlog broker` listens on unless told otherwise. */
export const DEFAULT_KAFKA_PORT = 9092;
/** The node id this broker has in Metadata, FindCoordinator and DescribeCluster. */
export const KAFKA_NODE_ID = 1;

/** The same settings as the native broker's (server-support.ts). */
export type KafkaPrefetchSettings = PrefetchSettings;

export interface KafkaRequestObservation {
  /** The API's name ('Produce', 'Fetch', ...). */
  api: string;
  apiKey: number;
  version: number;
  /** From the decoded request to its last response byte handed to the socket (or the handler's end for acks 0). */
  durationMs: number;
  /** Every non-zero error code in the response (top level, topics, partitions), one entry each. */
  errorCodes: number[];
  /** Fetch: record bytes sent; Produce: record bytes received. */
  bytes: number;
}

export interface KafkaObserver {
  onRequest?(observation: KafkaRequestObservation): void;
  /** A connection opened (+1) or closed (-1). */
  onConnection?(delta: 1 | -1): void;
}

export interface KafkaListenerOptions {
  log: CommitLog;
  offsets: OffsetsStore;
  coordinator?: GroupCoordinator;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: an ephemeral port. */
  port?: number;
  /** The host Metadata tells clients to connect to; default the listening host (0.0.0.0/:: become 127.0.0.1). */
  advertisedHost?: string;
  /** Default: the port listened on. */
  advertisedPort?: number;
  /** Create unknown topics named in Metadata (Kafka's auto.create.topics.enable); default true. */
  autoCreateTopics?: boolean;
  /** Partitions of an auto-created topic (Kafka's num.partitions); default 1. */
  defaultPartitions?: number;
  /** Default: one derived from the log's directory (stable across restarts). */
  clusterId?: string;
  logger?: Logger;
  observer?: KafkaObserver;
  /** Largest request frame; default 100 MiB (Kafka's socket.request.max.bytes). */
  maxFrameBytes?: number;
  maxConnections?: number;
  closeTimeoutMs?: number;
  /** Cold reads off the event loop before sendfile (default on), as the native broker. */
  prefetch?: boolean | KafkaPrefetchSettings;
  /**
   * A response transfer that makes no progress for this long (the client stopped
   * reading) destroys its connection and releases what it held; default 30000, as the
   * native broker's BrokerOptions.transferTimeoutMs.
   */
  transferTimeoutMs?: number;
}

export interface KafkaListenerStats {
  connections: number;
  connectionsAccepted: number;
  requests: number;
  responses: number;
  /** Connections closed for a frame that could not be cut or decoded, or an unserved API/version. */
  badFrames: number;
  /** Connections destroyed because a response transfer made no progress for transferTimeoutMs. */
  transferTimeouts: number;
  /** Requests answered UNSUPPORTED_VERSION (ApiVersions) or closed for an unserved API/version. */
  unsupported: number;
  /** Record bytes sent through sendfile. */
  sendfileBytes: number;
  /** Record bytes of the fetch responses sent (what sendfile must have moved). */
  fetchedRecordBytes: number;
  fetchedRecords: number;
  producedBytes: number;
  prefetchedBytes: number;
  coldFetches: number;
  maxPendingBytes: number;
}

export interface KafkaListener {
  readonly host: string;
  readonly port: number;
  readonly settings: Readonly<KafkaSettings>;
  close(): Promise<void>;
  stats(): KafkaListenerStats;
}

const stderrLogger: Logger = {
  info: () => undefined,
  warn: (fields, message) => process.stderr.write(`commitlog kafka: ${message} ${JSON.stringify(fields)}\n`),
};


/** A cluster id in Kafka's form (22 characters of base64url), stable for one data directory. */
export function clusterIdFor(dir: string): string {
  return createHash('sha256').update(`commitlog:${dir}`).digest().subarray(0, 16).toString('base64url');
}

/** Starts listening; resolves once connections are accepted. A taken port rejects with the socket's EADDRINUSE error. */
export async function startKafkaListener(options: KafkaListenerOptions): Promise<KafkaListener> {
  if (options === null || typeof options !== 'object' || options.log === undefined || options.offsets === undefined) {
    throw invalidArgument('options.log and options.offsets are required');
  }
  const host = options.host ?? DEFAULT_KAFKA_HOST;
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`port must be an integer in [0, 65535], got ${port}`);
  const defaultPartitions = options.defaultPartitions ?? 1;
  if (!Number.isSafeInteger(defaultPartitions) || defaultPartitions < 1 || defaultPartitions > 10000) {
    throw invalidArgument(`defaultPartitions must be an integer in [1, 10000], got ${defaultPartitions}`);
  }
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_KAFKA_FRAME_BYTES;
  new KafkaFrameSplitter(maxFrameBytes); // validates the limit
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  const transferTimeoutMs = positiveMs('transferTimeoutMs', options.transferTimeoutMs, 30_000);
  const logger = options.logger ?? stderrLogger;
  const settings: KafkaSettings = {
    nodeId: KAFKA_NODE_ID,
    advertisedHost: options.advertisedHost ?? advertisable(host),
    advertisedPort: options.advertisedPort ?? port,
    clusterId: options.clusterId ?? clusterIdFor(options.log.dir),
    autoCreateTopics: options.autoCreateTopics ?? true,
    defaultPartitions,
  };
  const counters: ListenerShared['counters'] = {
    connectionsAccepted: 0, requests: 0, responses: 0, badFrames: 0, transferTimeouts: 0, unsupported: 0, sendfileBytes: 0,
    fetchedRecordBytes: 0, fetchedRecords: 0, producedBytes: 0, prefetchedBytes: 0, coldFetches: 0, maxPendingBytes: 0,
  };
  const shared: ListenerShared = {
    log: options.log, offsets: options.offsets, coordinator: options.coordinator, settings, logger,
    observer: options.observer, maxFrameBytes, counters, prefetch: resolvePrefetch(options.prefetch), transferTimeoutMs,
  };
  const connections = new Set<KafkaConnection>();
  let nextId = 1;
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    counters.connectionsAccepted++;
    const conn = new KafkaConnection(nextId++, socket, shared);
    connections.add(conn);
    notifyConnection(shared, 1);
    socket.once('close', () => {
      connections.delete(conn);
      notifyConnection(shared, -1);
    });
  });
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
  server.on('error', (err) => logger.warn({ err: String(err) }, 'Kafka listening socket failed'));
  await listen(server, port, host);
  const address = server.address() as net.AddressInfo;
  if (options.advertisedPort === undefined) settings.advertisedPort = address.port;

  let closing: Promise<void> | null = null;
  const close = async (): Promise<void> => {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([...connections].map((c) => c.shutdown(closeTimeoutMs)));
    await stopped;
  };
  return {
    host: address.address,
    port: address.port,
    settings,
    close: () => (closing ??= close()),
    stats: () => ({ connections: connections.size, ...counters }),
  };
}

/** A wildcard listen address cannot be connected to as given: advertise loopback then. */
function advertisable(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
}

function notifyConnection(shared: ListenerShared, delta: 1 | -1): void {
  try {
    shared.observer?.onConnection?.(delta);
  } catch (err) {
    shared.logger.warn({ err: String(err) }, 'Kafka observer failed');
  }
}

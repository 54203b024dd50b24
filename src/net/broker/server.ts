/**
 * The broker: serves a CommitLog over TCP with the framed protocol of frame.ts and
 * messages.ts (docs/protocol.md). Owns the listening socket, the connections and the
 * offsets store; not the CommitLog, which the caller opens and closes.
 *
 * Per connection (connection.ts): a FrameDecoder cuts requests out of the stream; each request is
 * handed to its handler (handlers.ts) at once, so requests pipeline, and gets a slot
 * in the connection's response queue. One writer per connection sends the responses
 * strictly in request order: a header with socket.write, and for a fetch the batches
 * straight from the segment file with sendfile (zero-copy.ts). The writer is the only
 * code that writes to the socket, so nothing can interleave with a transfer.
 *
 * Backpressure: a connection stops reading (socket.pause) while its queue holds
 * MAX_PENDING_REQUESTS responses or MAX_PENDING_BYTES of buffered memory, or while the
 * socket's write buffer is over its high-water mark; frames already received stay in
 * the decoder until the queue drains. A client that stops reading therefore costs at
 * most one queue and one socket buffer, and never stalls other connections.
 *
 * Failure: every CommitLogError becomes the response's error_code, anything else
 * ERR_IO; only a frame that cannot be parsed (bad prefix, over maxFrameBytes, a header
 * that does not decode as a RequestHeader) closes its connection, with a log line.
 * Nothing a client sends stops the broker or disturbs its other connections.
 */
import net from 'node:net';
import { invalidArgument } from '../../errors.js';
import { OffsetsStore } from '../../index/offsets-store.js';
import { GroupCoordinator, type GroupCoordinatorOptions } from './coordinator.js';
import type { CommitLog, Logger } from '../../log/commit-log.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder } from '../protocol/frame.js';
import { Connection, type Counters, type Shared } from './connection.js';
import { listen, positiveMs, resolvePrefetch, warnCommittedPastEnd, type PrefetchSettings } from './server-support.js';

export const DEFAULT_HOST = '127.0.0.1';
/** The port `commitlog broker` listens on unless told otherwise (docs/protocol.md). */
export const DEFAULT_PORT = 7070;
export { MAX_PENDING_BYTES, MAX_PENDING_REQUESTS, TRANSFER_CHUNK_BYTES } from './connection.js';

export interface BrokerOptions {
  log: CommitLog;
  /** Data directory of the offsets store (`<dir>/.offsets`); default log.dir. */
  dir?: string;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 0: an ephemeral port (read it from broker.port). */
  port?: number;
  /** Largest request frame accepted; default DEFAULT_MAX_FRAME_BYTES (16 MiB). */
  maxFrameBytes?: number;
  /** Connections beyond this are refused; default unlimited. */
  maxConnections?: number;
  /** close() destroys connections whose responses are still unsent after this long. Default 5000. */
  closeTimeoutMs?: number;
  logger?: Logger;
  /** Told about every answered request (metrics); see RequestObservation. */
  observer?: BrokerObserver;
  /**
   * How fetch payloads leave: 'sendfile' (default, zero-copy, page cache -> socket in
   * the kernel) or 'copy' (the bytes copied into a Buffer and written with
   * socket.write): the baseline the network benchmark compares against.
   */
  fetchPath?: 'sendfile' | 'copy';
  /**
   * Cold reads off the event loop (default on): before a fetch's payload is sent, its
   * pages are checked with mincore, and those not in the page cache are read in on
   * libuv's thread pool first, in chunks, one job in flight per connection and at most
   * `concurrency` in all (docs/architecture.md, "Fetch path"). false sends at once:
   * sendfile then reads cold pages from disk on the event loop, stalling every
   * connection (the baseline bench/cold-fetch.ts compares against).
   */
  prefetch?: boolean | PrefetchSettings;
  /**
   * A connection whose response transfer makes no progress for this long (the client
   * stopped reading: a sendfile chunk or a drain of the socket's write buffer does not
   * complete) is destroyed and its held slices released. Default 30000.
   */
  transferTimeoutMs?: number;
  /**
   * The longest long poll the broker grants: a Fetch or MultiFetch asking for a longer
   * max_wait_ms waits this long (counted in stats().clampedWaits; MultiFetch reports the
   * wait applied). Default 30000.
   */
  maxWaitMs?: number;
  /** The group coordinator's settings (initial rebalance delay, session timeout bounds, limits); see coordinator.ts. */
  groups?: GroupCoordinatorOptions;
}

export type { PrefetchSettings } from './server-support.js';

/**
 * One request, once its response was handed to the socket (for a produce with acks
 * NONE: once its append finished). For metrics: called synchronously on the broker's
 * event loop, so it must be cheap and must not throw.
 */
export interface RequestObservation {
  /** The request kind: 'produce', 'fetch', 'metadata', ... */
  kind: string;
  /** The topic the request names ('' for metadata and offsetCommit). */
  topic: string;
  /** From the decoded request to the last byte of its response handed to the socket. */
  durationMs: number;
  /** The response's error code; '' when the request succeeded. */
  errorCode: string;
  /** produce: the appended batch's bytes; fetch and multiFetch: the batch bytes sent; 0 otherwise and on error. */
  bytes: number;
  /** produce: the appended batch's records; fetch and multiFetch: the records of the batches sent; 0 otherwise and on error. */
  records: number;
  /** multiFetch: the bytes and records sent, by topic (`topic` is '' when it named several). */
  topics?: { topic: string; bytes: number; records: number }[];
}

export interface BrokerObserver {
  onRequest(observation: RequestObservation): void;
}

export interface ConnectionStats {
  id: number;
  remote: string;
  /** Requests received whose responses are not yet fully sent. */
  pendingRequests: number;
  /** Memory queued for this connection: held request payloads, unsent response bytes, undecoded input. */
  pendingBytes: number;
  /** True while the broker does not read from the connection (backpressure). */
  paused: boolean;
}

export interface BrokerStats {
  /** Open connections. */
  connections: number;
  /** Connections accepted since start. */
  connectionsAccepted: number;
  /** Requests decoded since start. */
  requests: number;
  /** Responses fully sent since start. */
  responses: number;
  /** Responses that carried an error code. */
  errors: number;
  /** Connections closed for an unparseable or oversized frame. */
  badFrames: number;
  /** Batch bytes sent to fetchers through sendfile. */
  sendfileBytes: number;
  /** Bytes of fetch payloads read into the page cache on the thread pool before sending (cold reads). */
  prefetchedBytes: number;
  /** Fetch payloads that had pages not in the page cache when they were about to be sent. */
  coldFetches: number;
  /** Produced batch bytes received. */
  producedBytes: number;
  /** The largest pendingBytes any connection reached. */
  maxPendingBytes: number;
  /** Connections destroyed because a response transfer made no progress for transferTimeoutMs. */
  transferTimeouts: number;
  /** Fetches whose max_wait_ms was above the broker's maxWaitMs and was clamped to it. */
  clampedWaits: number;
  /** Fetch and MultiFetch requests received. */
  fetches: number;
  multiFetches: number;
  perConnection: ConnectionStats[];
}

export interface Broker {
  readonly host: string;
  readonly port: number;
  readonly offsets: OffsetsStore;
  /** Consumer-group membership (classic protocol), shared by the listeners; closed by close(). */
  readonly coordinator: GroupCoordinator;
  /** Stops accepting, answers the requests already received, then closes every connection. Does not close the CommitLog. */
  close(): Promise<void>;
  stats(): BrokerStats;
}

const stderrLogger: Logger = {
  info: () => undefined,
  warn: (fields, message) => process.stderr.write(`commitlog broker: ${message} ${JSON.stringify(fields)}\n`),
};


/** Starts listening; resolves once connections are accepted. */
export async function startBroker(options: BrokerOptions): Promise<Broker> {
  if (options === null || typeof options !== 'object' || options.log === undefined) throw invalidArgument('options.log must be a CommitLog');
  const { log } = options;
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`port must be an integer in [0, 65535], got ${port}`);
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  new FrameDecoder({ maxFrameBytes }); // validates the limit before anything starts
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000;
  const prefetch = resolvePrefetch(options.prefetch);
  const logger = options.logger ?? stderrLogger;
  const coordinator = new GroupCoordinator(options.groups); // validates its options; holds no timer until a group forms
  const offsets = new OffsetsStore(options.dir ?? log.dir, { logger });
  // Topics deleted while no broker ran must not keep their committed offsets.
  await offsets.retainTopics(log.listTopics());
  warnCommittedPastEnd(log, offsets, logger);

  const counters: Counters = { connectionsAccepted: 0, requests: 0, responses: 0, errors: 0, badFrames: 0, sendfileBytes: 0, prefetchedBytes: 0, coldFetches: 0, producedBytes: 0, maxPendingBytes: 0, transferTimeouts: 0, clampedWaits: 0, fetches: 0, multiFetches: 0 };
  const connections = new Set<Connection>();
  const fetchPath = options.fetchPath ?? 'sendfile';
  if (fetchPath !== 'sendfile' && fetchPath !== 'copy') throw invalidArgument(`fetchPath must be 'sendfile' or 'copy', got ${String(fetchPath)}`);
  const transferTimeoutMs = positiveMs('transferTimeoutMs', options.transferTimeoutMs, 30_000);
  const maxWaitMs = positiveMs('maxWaitMs', options.maxWaitMs, 30_000);
  const fetchLimits = { maxWaitMs, clamped: () => void counters.clampedWaits++ };
  const shared: Shared = { log, offsets, coordinator, logger, maxFrameBytes, counters, observer: options.observer, fetchPath, prefetch, transferTimeoutMs, fetchLimits };
  let nextId = 1;

  // allowHalfOpen: a client may send its requests, shut down its side and still
  // read every response; the broker ends the connection after the last one.
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    counters.connectionsAccepted++;
    const conn = new Connection(nextId++, socket, shared);
    connections.add(conn);
    socket.once('close', () => connections.delete(conn));
  });
  if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections;
  server.on('error', (err) => logger.warn({ err: String(err) }, 'listening socket failed'));
  await listen(server, port, host);
  const address = server.address() as net.AddressInfo;

  let closing: Promise<void> | null = null;
  const close = async (): Promise<void> => {
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    coordinator.close(); // parked JoinGroup/SyncGroup answers go out before connections drain
    await Promise.all([...connections].map((c) => c.shutdown(closeTimeoutMs)));
    await stopped;
    await offsets.close();
  };

  return {
    host: address.address,
    port: address.port,
    offsets,
    coordinator,
    close: () => (closing ??= close()),
    stats: () => {
      const perConnection = [...connections].map((c) => c.stats());
      return { connections: connections.size, ...counters, perConnection };
    },
  };
}





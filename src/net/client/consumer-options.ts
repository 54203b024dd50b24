/**
 * A Consumer's options: their types and doc comments, their defaults and their
 * validation, turned into the settings the Consumer and its Fetcher run with. Kept
 * apart from consumer.ts, which fetches, hands out records and commits, because none
 * of this has state: it runs once, in the constructor, and every invalid option
 * throws ERR_INVALID_ARGUMENT from here, the first one checked winning.
 */
import { invalidArgument } from '../../errors.js';
import type { Logger } from '../../log/commit-log.js';
import {
  intOption,
  parseBroker,
  retryPolicy,
  type ClientOptions,
  type RetryOptions,
  type RetryPolicy,
} from './client-types.js';
import type { ConnectionOptions } from './connection.js';
import type { AutoOffsetReset, FetcherSettings, OffsetReset } from './consumer-fetcher.js';
import { resolveGroupOptions, type GroupOptions } from './consumer-group.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/frame.js';

/** Where partitions without a committed offset start: an offset, the first record at or after a time, or either end. */
export type ConsumerStart = 'earliest' | 'latest' | number | Date;

export interface ConsumerOptions extends ClientOptions, RetryOptions, GroupOptions {
  topic: string;
  /**
   * Partitions to read (Kafka's assign()); default all of the topic's, or, with
   * `group`, those the group assigns this member (Kafka's subscribe(); consumer-group.ts).
   */
  partitions?: number[];
  /** Default 'earliest' (as CommitLog.tail). */
  from?: ConsumerStart;
  /**
   * Consumer group whose committed offsets are resumed from and committed to. Without
   * `partitions` the consumer joins the group and reads only the partitions assigned
   * to it, which move between the group's members as they join and leave.
   */
  group?: string;
  /** Commit consumed positions this often (needs group); default 0: only commit() commits. */
  autoCommitIntervalMs?: number;
  /** Soft cap of one partition's batches in a fetch response; default 1 MiB. */
  maxBytes?: number;
  /**
   * Soft cap of one whole fetch response (all partitions; Kafka's fetch.max.bytes);
   * default 4 MiB or maxFrameBytes less 256 KiB, whichever is smaller (measured: a
   * 16-partition catch-up ran slower with 8 and 16 MiB responses, which are received
   * and decoded whole before their first record is handed out; bench/multi-fetch.ts).
   * The first partition with data always gets at least one batch.
   */
  fetchMaxBytes?: number;
  /** How long a fetch at the end of a partition waits for new records; default 500. */
  maxWaitMs?: number;
  /** A fetch returns early once this many bytes are there; default 1. */
  minBytes?: number;
  /** Check every fetched batch's CRC32C (Kafka's check.crcs); default true. Framing and decoding are checked either way. */
  checkCrcs?: boolean;
  /**
   * A position out of range continues at the log start ('earliest', default: skips
   * only what is gone), at the log end ('latest': skips everything stored), or fails
   * the partition ('none'). Where partitions without a committed offset start is `from`.
   */
  autoOffsetReset?: AutoOffsetReset;
  /** Called with every reset autoOffsetReset makes (it is logged as well). */
  onOffsetReset?: (reset: OffsetReset) => void;
  /** Where resets are reported (warn); default: a line on stderr. */
  logger?: Logger;
  /**
   * How long a partition, or connect(), keeps retrying a broker that cannot be reached
   * (or is shutting down) before it fails with the last error. Default 120000.
   */
  reconnectTimeoutMs?: number;
  /** Attempts after consecutive retriable failures, per partition; default unlimited: reconnectTimeoutMs bounds them. */
  retries?: number;
}

/** Fetched chunks a partition may hold before its next fetch waits. */
const MAX_BUFFERED_CHUNKS = 2;
const FRAME_HEADROOM_BYTES = 4096;
/** Room for a MultiFetch response's header (its per-partition results) within maxFrameBytes. */
const MULTI_FETCH_HEADROOM_BYTES = 256 * 1024;

const stderrLogger: Logger = {
  info: () => undefined,
  warn: (fields, message) => process.stderr.write(`commitlog consumer: ${message} ${JSON.stringify(fields)}\n`),
};

/** What the Consumer runs with: its options checked, defaults filled in. */
export interface ConsumerSettings {
  topic: string;
  group: string | undefined;
  /** options.partitions, deduplicated and sorted; undefined: all, or the group's assignment. */
  wantedPartitions: number[] | undefined;
  from: ConsumerStart;
  autoCommitIntervalMs: number;
  retries: number;
  retry: RetryPolicy;
  reconnectTimeoutMs: number;
  connectionOptions: ConnectionOptions;
  /** As given (checked when the consumer joins a group; none allowed without membership). */
  groupOptions: GroupOptions;
  logger: Logger;
  fetcher: FetcherSettings;
}

/** Checks `options` and fills in the defaults; throws ERR_INVALID_ARGUMENT for the first invalid one. */
export function resolveConsumerOptions(options: ConsumerOptions): ConsumerSettings {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options must be an object');
  const { host, port } = parseBroker(options.broker);
  if (typeof options.topic !== 'string' || options.topic.length === 0) throw invalidArgument('topic must be a non-empty string');
  const topic = options.topic;
  if (options.group !== undefined && (typeof options.group !== 'string' || options.group.length === 0)) {
    throw invalidArgument('group must be a non-empty string');
  }
  const group = options.group;
  let wantedPartitions: number[] | undefined;
  if (options.partitions !== undefined) {
    if (!Array.isArray(options.partitions) || options.partitions.length === 0 || !options.partitions.every((p) => Number.isInteger(p) && p >= 0)) {
      throw invalidArgument('partitions must be a non-empty list of non-negative integers');
    }
    wantedPartitions = [...new Set(options.partitions)].sort((a, b) => a - b);
  }
  const from = options.from ?? 'earliest';
  const validFrom = from === 'earliest' || from === 'latest' || (typeof from === 'number' && Number.isSafeInteger(from) && from >= 0)
    || (from instanceof Date && Number.isFinite(from.getTime()));
  if (!validFrom) throw invalidArgument(`from must be 'earliest', 'latest', an offset or a Date, got ${String(from)}`);
  const autoCommitIntervalMs = intOption('autoCommitIntervalMs', options.autoCommitIntervalMs, 0);
  if (autoCommitIntervalMs > 0 && group === undefined) throw invalidArgument('autoCommitIntervalMs needs a group');
  const maxFrameBytes = intOption('maxFrameBytes', options.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 64 * 1024, 0xffffffff);
  const maxBytes = intOption('maxBytes', options.maxBytes, 1024 * 1024, 1, Math.min(maxFrameBytes - FRAME_HEADROOM_BYTES, 0xffffffff));
  const maxWaitMs = intOption('maxWaitMs', options.maxWaitMs, 500, 0, 0xffffffff);
  const minBytes = intOption('minBytes', options.minBytes, 1, 0, 0xffffffff);
  const fetchMaxBytes = intOption('fetchMaxBytes', options.fetchMaxBytes, Math.min(4 * 1024 * 1024, maxFrameBytes - MULTI_FETCH_HEADROOM_BYTES),
    1, Math.min(maxFrameBytes - MULTI_FETCH_HEADROOM_BYTES, 0xffffffff));
  const retries = intOption('retries', options.retries, Number.MAX_SAFE_INTEGER);
  const retry = retryPolicy(options);
  const reconnectTimeoutMs = intOption('reconnectTimeoutMs', options.reconnectTimeoutMs, 120_000, 0);
  if (options.checkCrcs !== undefined && typeof options.checkCrcs !== 'boolean') throw invalidArgument(`checkCrcs must be a boolean, got ${String(options.checkCrcs)}`);
  const autoOffsetReset: AutoOffsetReset = options.autoOffsetReset ?? 'earliest';
  if (autoOffsetReset !== 'earliest' && autoOffsetReset !== 'latest' && autoOffsetReset !== 'none') {
    throw invalidArgument(`autoOffsetReset must be 'earliest', 'latest' or 'none', got ${String(autoOffsetReset)}`);
  }
  if (options.onOffsetReset !== undefined && typeof options.onOffsetReset !== 'function') throw invalidArgument('onOffsetReset must be a function');
  const requestTimeoutMs = intOption('requestTimeoutMs', options.requestTimeoutMs, 30_000, 1);
  const connectionOptions: ConnectionOptions = {
    host,
    port,
    clientId: options.clientId,
    connectTimeoutMs: options.connectTimeoutMs,
    requestTimeoutMs,
    maxFrameBytes,
  };
  const logger = options.logger ?? stderrLogger;
  const groupOptions: GroupOptions = {
    sessionTimeoutMs: options.sessionTimeoutMs, rebalanceTimeoutMs: options.rebalanceTimeoutMs, heartbeatIntervalMs: options.heartbeatIntervalMs,
    groupInstanceId: options.groupInstanceId, assignors: options.assignors, onAssigned: options.onAssigned, onRevoked: options.onRevoked,
  };
  if (group === undefined || wantedPartitions !== undefined) {
    for (const name of Object.keys(groupOptions) as (keyof GroupOptions)[]) {
      if (groupOptions[name] !== undefined) throw invalidArgument(`${name} needs group membership: options.group without options.partitions`);
    }
  } else {
    resolveGroupOptions(groupOptions);
  }
  return {
    topic,
    group,
    wantedPartitions,
    from,
    autoCommitIntervalMs,
    retries,
    retry,
    reconnectTimeoutMs,
    connectionOptions,
    groupOptions,
    logger,
    fetcher: {
      topic,
      maxBytes,
      fetchMaxBytes,
      maxWaitMs,
      minBytes,
      fetchTimeoutMs: requestTimeoutMs + maxWaitMs,
      maxBufferedChunks: MAX_BUFFERED_CHUNKS,
      checkCrcs: options.checkCrcs ?? true,
      autoOffsetReset,
      onOffsetReset: options.onOffsetReset,
      logger,
      retries,
      retry,
      reconnectTimeoutMs,
    },
  };
}

/**
 * Types and small helpers shared by the network clients (Producer, Consumer, Admin):
 * where the broker is, the options every client takes, and which failures are worth
 * a retry. No I/O here.
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';
import type { LogRecord } from '../../log/record.js';

/** 'host:port' ('[::1]:9092' for IPv6), or the two parts. */
export type BrokerAddress = string | { host: string; port: number };

/** Options every client accepts besides `broker`. */
export interface ClientOptions {
  broker: BrokerAddress;
  /** Sent in every request header, for the broker's logs. Default 'commitlog'. */
  clientId?: string;
  /** Give up connecting after this long (ERR_IO, errno ETIMEDOUT). Default 10000. */
  connectTimeoutMs?: number;
  /**
   * A request not answered within this long fails with ERR_IO, errno ETIMEDOUT, and
   * its connection is closed (a fetch gets its maxWaitMs on top). Default 30000.
   */
  requestTimeoutMs?: number;
  /** Largest frame sent or accepted (the broker's limit must match). Default 16 MiB. */
  maxFrameBytes?: number;
}

/**
 * How a client waits between attempts at a failure worth retrying (isRetriable):
 * capped exponential backoff with jitter (backoffMs). How long it keeps trying is
 * each client's own option (Producer deliveryTimeoutMs, Consumer reconnectTimeoutMs).
 */
export interface RetryOptions {
  /** The delay before the first retry, before jitter; it doubles with each further one. Default 100. */
  retryBackoffMs?: number;
  /** The cap of that delay, before jitter (Kafka's retry.backoff.max.ms). Default 1000. */
  retryBackoffMaxMs?: number;
}

export interface RetryPolicy {
  backoffMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_RETRY_BACKOFF_MS = 100;
export const DEFAULT_RETRY_BACKOFF_MAX_MS = 1000;

/** The retry options, checked, with their defaults. */
export function retryPolicy(options: RetryOptions): RetryPolicy {
  return {
    backoffMs: intOption('retryBackoffMs', options.retryBackoffMs, DEFAULT_RETRY_BACKOFF_MS, 1, 0x7fffffff),
    backoffMaxMs: intOption('retryBackoffMaxMs', options.retryBackoffMaxMs, DEFAULT_RETRY_BACKOFF_MAX_MS, 1, 0x7fffffff),
  };
}

/** What the Consumer yields: a LogRecord plus where it came from. */
export interface ConsumerRecord extends LogRecord {
  topic: string;
  partition: number;
}

/** Where a record ended up. offset is -1 when it was sent with acks 'none'. */
export interface RecordMetadata {
  partition: number;
  offset: number;
}

export function parseBroker(broker: BrokerAddress): { host: string; port: number } {
  let host: unknown;
  let port: unknown;
  if (typeof broker === 'string') {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(broker);
    if (m === null) throw invalidArgument(`broker must be 'host:port', got ${JSON.stringify(broker)}`);
    host = m[1] ?? m[2];
    port = Number(m[3]);
  } else if (typeof broker === 'object' && broker !== null) {
    host = broker.host;
    port = broker.port;
  } else {
    throw invalidArgument(`broker must be 'host:port' or { host, port }, got ${String(broker)}`);
  }
  if (typeof host !== 'string' || host.length === 0) throw invalidArgument(`broker host must be a non-empty string, got ${String(host)}`);
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
    throw invalidArgument(`broker port must be an integer in [1, 65535], got ${String(port)}`);
  }
  return { host, port: port as number };
}

/** A non-negative integer option with a default; ERR_INVALID_ARGUMENT otherwise. */
export function intOption(name: string, value: unknown, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

/** Errors raised by the client side of a connection (refused, reset, timed out, closed). */
const connectionErrors = new WeakSet<CommitLogError>();

/** ERR_IO for a connection-level failure, marked so isConnectionError() knows it. */
export function connectionError(message: string, errno: string, cause?: unknown, syscall?: string): CommitLogError {
  const err = new CommitLogError(ErrorCode.IO, message, { errno, syscall, cause });
  connectionErrors.add(err);
  return err;
}

/**
 * True for a failure of the connection itself (it never reached the broker, or the
 * answer never came back), as opposed to an error code the broker answered with.
 */
export function isConnectionError(err: unknown): boolean {
  return err instanceof CommitLogError && connectionErrors.has(err);
}

/**
 * Which failures a client retries (after reconnecting):
 * - connection failures (refused, reset, closed, timed out): the broker may be
 *   restarting, and nothing says the request was refused;
 * - ERR_LOG_CLOSED from the broker: it is shutting down its log, a restart is likely.
 * Everything else is final: unknown topic or partition, corrupt or oversized batches,
 * ERR_LOG_FAILED (the partition stays failed until the broker reopens it), disk full,
 * and a broker-side ERR_IO (a failed syscall on the broker, not a lost connection).
 */
export function isRetriable(err: unknown): boolean {
  return isConnectionError(err) || (err instanceof CommitLogError && err.code === ErrorCode.LOG_CLOSED);
}

/**
 * The delay before retry number `attempt` (0 for the first): exponential backoff
 * with "equal jitter". With cap = min(maxMs, baseMs * 2^attempt) it is
 * floor(cap / 2 + random() * cap / 2), in [cap / 2, cap): at least half the cap, so
 * a broker that is down is not hammered, and spread over the other half, so clients
 * that lost the same broker at the same moment do not all come back at once (which
 * Kafka's jitter, applied before its cap, loses once the cap is reached). `random`
 * returns [0, 1) like Math.random, its default; tests pass a seeded one.
 */
export function backoffMs(attempt: number, baseMs = DEFAULT_RETRY_BACKOFF_MS, maxMs = DEFAULT_RETRY_BACKOFF_MAX_MS, random: () => number = Math.random): number {
  // 2^31 already exceeds any cap a timer can take: no need to let the power overflow.
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 31));
  return Math.floor(cap / 2 + (random() * cap) / 2);
}

/** A promise of `ms` of waiting. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Start-up helpers of the broker (server.ts), some shared with the Kafka listener: the
 * cold-read settings from BrokerOptions.prefetch, listening, millisecond options, and
 * the warning about committed offsets past a log's end.
 */
import type net from 'node:net';
import { invalidArgument } from '../../errors.js';
import type { OffsetsStore } from '../../index/offsets-store.js';
import type { CommitLog, Logger } from '../../log/commit-log.js';
import { PREFETCH_CHUNK_BYTES, PrefetchLimiter, type ColdReadOptions, type TransferEvent } from './zero-copy.js';

export interface PrefetchSettings {
  /** Bytes read per pool job; default PREFETCH_CHUNK_BYTES (1 MiB). */
  chunkBytes?: number;
  /** Prefetch jobs in flight across all connections; default half of UV_THREADPOOL_SIZE (4 unless set), at least 1. */
  concurrency?: number;
  /** Told every residency check, prefetch and sendfile of cold transfers (tests, tracing); must not throw. */
  observer?: (event: TransferEvent) => void;
}

/** Cold-read settings shared by all connections (one limiter); null when prefetch is off. */
export type SharedPrefetch = Omit<ColdReadOptions, 'view'> | null;

/** An option in milliseconds: `fallback` when absent, else an integer >= 1 (ERR_INVALID_ARGUMENT). */
export function positiveMs(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw invalidArgument(`${name} must be an integer >= 1 (milliseconds), got ${String(value)}`);
  return v;
}

/** Starts `server` listening on host:port; rejects with the socket's error (EADDRINUSE, ...). Both listeners use it. */
export function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
}

/** The broker's cold-read settings from BrokerOptions.prefetch; validated before anything starts. */
export function resolvePrefetch(option: boolean | PrefetchSettings | undefined): SharedPrefetch {
  if (option === false) return null;
  if (option !== undefined && option !== true && (option === null || typeof option !== 'object')) {
    throw invalidArgument(`prefetch must be a boolean or an object, got ${String(option)}`);
  }
  const settings = typeof option === 'object' ? option : {};
  const chunkBytes = settings.chunkBytes ?? PREFETCH_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw invalidArgument(`prefetch.chunkBytes must be an integer >= 1, got ${String(chunkBytes)}`);
  // libuv reads UV_THREADPOOL_SIZE once, before the first pool job (default 4).
  const poolSize = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  const concurrency = settings.concurrency ?? Math.max(1, Math.floor((Number.isSafeInteger(poolSize) && poolSize > 0 ? poolSize : 4) / 2));
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw invalidArgument(`prefetch.concurrency must be an integer >= 1, got ${String(concurrency)}`);
  if (settings.observer !== undefined && typeof settings.observer !== 'function') throw invalidArgument('prefetch.observer must be a function');
  return { chunkBytes, limiter: new PrefetchLimiter(concurrency), observer: settings.observer };
}

/**
 * A committed offset past its partition's end after a recovery (the log lost its tail,
 * the offsets file did not) names records that no longer exist. Nothing is changed:
 * each one is logged, Admin shows it, and the group's consumers resume by their
 * autoOffsetReset policy when their fetch is out of range.
 */
export function warnCommittedPastEnd(log: CommitLog, offsets: OffsetsStore, logger: Logger): void {
  for (const group of offsets.listGroups()) {
    const described = offsets.describe(group);
    if (described === null) continue;
    for (const [topic, partitions] of Object.entries(described.topics)) {
      for (const [p, { offset }] of Object.entries(partitions)) {
        const partition = Number(p);
        let end: number;
        try {
          end = log.latestOffset(topic, partition);
        } catch {
          continue;
        }
        if (offset > end) {
          logger.warn({ group, topic, partition, committedOffset: offset, logEndOffset: end },
            `group ${group} committed offset ${offset} for ${topic}/${partition}, past the end of the log (${end}); its consumers resume by their autoOffsetReset policy`);
        }
      }
    }
  }
}

/**
 * The shapes of a partition's options and results (partition-log.ts), apart so the
 * modules around PartitionLog can name them without importing the class.
 */
import type { SegmentCache } from './segment-cache.js';
import type { Segment } from './segment.js';

export type FlushPolicy = 'sync' | 'async' | 'os';

/** Per-topic settings every partition of the topic shares. */
export interface PartitionConfig {
  segmentBytes: number;
  indexIntervalBytes: number;
  maxBatchBytes: number;
  /** Delete the oldest segments while the partition is larger than this; -1: no limit. */
  retentionBytes: number;
  /** Delete segments whose newest record is older than this; -1: no limit. */
  retentionMs: number;
}

export interface FlushHooks {
  /** Called before each msync of a partition; throwing fails the flush (fault injection). */
  beforeFlush?: (topic: string, partition: number) => void | Promise<void>;
  /** Called after each successful msync, before any waiting append resolves. */
  afterFlush?: (topic: string, partition: number) => void | Promise<void>;
}

export interface PartitionOptions {
  dir: string;
  topic: string;
  partition: number;
  config: PartitionConfig;
  flush: FlushPolicy;
  flushBytes: number;
  clean: boolean;
  cache: SegmentCache;
  warmSegments: boolean;
  hooks: FlushHooks;
  onIndexRebuilt: (path: string) => void;
  /** `verify --repair`: damage in a sealed segment cuts the log there (recovery.ts). */
  repair?: boolean;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
}

/** A byte range of one segment's log, held open until released (the sendfile path). */
export interface LogSlice {
  segment: Segment;
  /** File descriptor of the segment's .log (valid until release). */
  fd: number;
  position: number;
  length: number;
  /** Base offset of the first batch in the range (may be below the offset asked for). */
  firstOffset: number;
  release(): void;
}


/**
 * Topic names and `<dir>/<topic>/topic.json` (partition count and per-topic settings,
 * XXH3-guarded like every small file of ours; see index/checkpoint.ts).
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../errors.js';
import type { PartitionConfig } from './partition-log.js';

export interface TopicConfig extends PartitionConfig {
  partitions: number;
}

const MAX_TOPIC_NAME_LENGTH = 249;
const TOPIC_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** Kafka's rule (letters, digits, '.', '_', '-'; at most 249), and no leading '.' or '-'. */
export function ensureTopicName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new CommitLogError(ErrorCode.INVALID_TOPIC, 'topic name must be a non-empty string');
  }
  if (name.length > MAX_TOPIC_NAME_LENGTH) {
    throw new CommitLogError(ErrorCode.INVALID_TOPIC, `topic name is ${name.length} characters, more than ${MAX_TOPIC_NAME_LENGTH}`, { topic: name.slice(0, 64) });
  }
  if (!TOPIC_NAME.test(name)) {
    throw new CommitLogError(ErrorCode.INVALID_TOPIC, `topic name ${JSON.stringify(name)} may only hold letters, digits, '.', '_' and '-', and may not start with '.' or '-'`, { topic: name });
  }
}

export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  partitions: 1,
  segmentBytes: 1024 * 1024 * 1024,
  indexIntervalBytes: 4096,
  maxBatchBytes: 16 * 1024 * 1024,
  retentionBytes: -1,
  retentionMs: 7 * 24 * 60 * 60 * 1000,
};

/** Smallest segment allowed: room for a few pages and a large-ish batch header. */
export const MIN_SEGMENT_BYTES = 64 * 1024;
/** Positions in index entries are u32, and Buffer views must stay addressable. */
export const MAX_SEGMENT_BYTES = 2 ** 31;

function ensureInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalidArgument(`${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v;
}

/** Fills defaults and checks every field's type and range. */
export function resolveTopicConfig(input: Partial<TopicConfig>, defaults: TopicConfig): TopicConfig {
  const c = { ...defaults, ...stripUndefined(input) };
  return {
    partitions: ensureInt('partitions', c.partitions, 1, 10000),
    segmentBytes: ensureInt('segmentBytes', c.segmentBytes, MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES),
    indexIntervalBytes: ensureInt('indexIntervalBytes', c.indexIntervalBytes, 1, MAX_SEGMENT_BYTES),
    maxBatchBytes: ensureInt('maxBatchBytes', c.maxBatchBytes, 128, MAX_SEGMENT_BYTES),
    retentionBytes: ensureInt('retentionBytes', c.retentionBytes, -1, Number.MAX_SAFE_INTEGER),
    retentionMs: ensureInt('retentionMs', c.retentionMs, -1, Number.MAX_SAFE_INTEGER),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Which partition a record sent without one goes to (the Producer's partitioner).
 * Pure functions of the record, the partition count and a per-topic round-robin
 * counter; no I/O.
 */
import { invalidArgument } from '../../errors.js';
import { xxh3Low32 } from '../../hash.js';
import type { ProducerRecord } from '../../log/record.js';

/** Picks a partition in [0, partitions) for a record sent without one. */
export type PartitionerFn = (record: ProducerRecord, partitions: number, topic: string) => number;

/**
 * 'hash' (default): XXH3 of the key (its low 32 bits) modulo the partition count, so
 * a key always lands on the same partition; records without a key go round robin.
 * 'round-robin': every record to the next partition, keys ignored.
 */
export type Partitioner = 'hash' | 'round-robin' | PartitionerFn;

/** The option as given, checked; default 'hash'. */
export function partitionerOption(value: unknown): Partitioner {
  const partitioner = value ?? 'hash';
  if (partitioner !== 'hash' && partitioner !== 'round-robin' && typeof partitioner !== 'function') {
    throw invalidArgument(`partitioner must be 'hash', 'round-robin' or a function, got ${String(partitioner)}`);
  }
  return partitioner as Partitioner;
}

/**
 * The record's partition among `count`; `state.roundRobin` is the topic's counter for
 * keyless records. ERR_INVALID_ARGUMENT when a custom function answers out of range.
 */
export function choosePartition(partitioner: Partitioner, state: { roundRobin: number }, topic: string, count: number, record: ProducerRecord): number {
  if (typeof partitioner === 'function') {
    const p = partitioner(record, count, topic);
    if (!Number.isInteger(p) || p < 0 || p >= count) throw invalidArgument(`partitioner returned ${String(p)} for topic ${topic} of ${count} partitions`);
    return p;
  }
  const key = record.key;
  if (partitioner === 'hash' && key != null) {
    // ProducerRecord says Buffer, but any Uint8Array encodes; hash its bytes as a view.
    const u8 = key as Uint8Array;
    const bytes = typeof key === 'string' || Buffer.isBuffer(key) ? key : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    return xxh3Low32(bytes) % count;
  }
  const p = state.roundRobin % count;
  state.roundRobin = (p + 1) % count;
  return p;
}

/**
 * The records the SIGKILL torture writes (child-appender.ts) and checks (kill.test.ts).
 * Every record is a pure function of (generation, producer, seq): a generation is one
 * child process, a producer one of its concurrent append loops, seq the producer's
 * running record number. So the parent can recompute the exact bytes of any record it
 * reads back, and a partial or misplaced record can never pass for a valid one.
 *
 * value = gen u32 | producer u32 | seq u32 | payloadBytes u32 | payload (1..2000 bytes)
 * key   = "<gen>/<producer>/<seq>"
 */

const VALUE_HEADER_BYTES = 16;

/** A 32-bit mix of the triple (murmur3's finalizer over a simple combination). */
function mix(gen: number, producer: number, seq: number): number {
  let h = Math.imul(gen + 1, 0x9e3779b1) ^ Math.imul(producer + 1, 0x85ebca6b) ^ Math.imul(seq + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function recordKey(gen: number, producer: number, seq: number): string {
  return `${gen}/${producer}/${seq}`;
}

export function recordValue(gen: number, producer: number, seq: number): Buffer {
  const h = mix(gen, producer, seq);
  const payloadBytes = 1 + (h % 2000);
  const value = Buffer.allocUnsafe(VALUE_HEADER_BYTES + payloadBytes);
  value.writeUInt32BE(gen, 0);
  value.writeUInt32BE(producer, 4);
  value.writeUInt32BE(seq, 8);
  value.writeUInt32BE(payloadBytes, 12);
  let s = h | 1;
  for (let i = 0; i < payloadBytes; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    value[VALUE_HEADER_BYTES + i] = s & 0xff;
  }
  return value;
}

/** Records per append (1..4), also a function of the first record's triple. */
export function batchCount(gen: number, producer: number, seq: number): number {
  return 1 + (mix(gen, producer, seq) >>> 24) % 4;
}

export interface RecordId {
  gen: number;
  producer: number;
  seq: number;
}

/** The triple a value claims to be, or null when it is too short to say. */
export function idOf(value: Buffer | null): RecordId | null {
  if (value === null || value.length < VALUE_HEADER_BYTES) return null;
  return { gen: value.readUInt32BE(0), producer: value.readUInt32BE(4), seq: value.readUInt32BE(8) };
}

/**
 * The "consumer" group protocol's embedded formats, as Kafka defines them: what a
 * member sends as its protocol metadata in JoinGroup (a Subscription) and what the
 * leader hands each member in SyncGroup (an Assignment). The coordinator never looks
 * inside them (they are opaque bytes to it); members, `commitlog groups describe` and
 * the console decode them. commitlog's own Consumer writes the same bytes, so its
 * members and those of any Kafka client can share one group.
 *
 *   Subscription  version:int16 topics:[string] userData:nullable bytes
 *                 v1+ ownedPartitions:[topic:string partitions:[int32]]
 *                 v2+ generationId:int32      v3+ rackId:nullable string
 *   Assignment    version:int16 partitions:[topic:string partitions:[int32]]
 *                 userData:nullable bytes
 *
 * Never flexible (int16 strings, int32 counts and lengths). A version above the last
 * one known is read as that one with its trailing bytes ignored (Kafka's rule, so a
 * newer client's metadata still decodes); malformed bytes throw ERR_KAFKA_BAD_REQUEST.
 */
import { Reader, Writer, badRequest } from '../kafka/primitives.js';

export interface TopicPartitions {
  topic: string;
  partitions: number[];
}

export interface Subscription {
  version: number;
  topics: string[];
  userData: Buffer | null;
  ownedPartitions: TopicPartitions[];
  generationId: number;
  rackId: string | null;
}

export interface Assignment {
  version: number;
  partitions: TopicPartitions[];
  userData: Buffer | null;
}

/** The protocol type members of consumer groups join with. */
export const CONSUMER_PROTOCOL_TYPE = 'consumer';
const LAST_SUBSCRIPTION_VERSION = 3;
const LAST_ASSIGNMENT_VERSION = 3;

function readTopicPartitions(r: Reader): TopicPartitions[] {
  const n = r.arrayCount(false, 6);
  const out: TopicPartitions[] = [];
  for (let i = 0; i < n; i++) {
    const topic = r.string(false);
    if (topic === null) throw badRequest('a null topic name in a consumer protocol partition list', r.pos);
    const count = r.arrayCount(false, 4);
    const partitions: number[] = [];
    for (let j = 0; j < count; j++) partitions.push(r.int32());
    out.push({ topic, partitions });
  }
  return out;
}

function writeTopicPartitions(w: Writer, list: readonly TopicPartitions[]): void {
  w.int32(list.length);
  for (const tp of list) {
    w.string(tp.topic, false);
    w.int32(tp.partitions.length);
    for (const p of tp.partitions) w.int32(p);
  }
}

function version(r: Reader, what: string): number {
  const v = r.int16();
  if (v < 0) throw badRequest(`${what} version ${v}`, 0);
  return v;
}

export function decodeSubscription(bytes: Buffer): Subscription {
  const r = new Reader(bytes);
  const v = version(r, 'subscription');
  const n = r.arrayCount(false, 2);
  const topics: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.string(false);
    if (t === null) throw badRequest('a null topic in a subscription', r.pos);
    topics.push(t);
  }
  const userData = copy(r.bytes(false));
  const sub: Subscription = { version: v, topics, userData, ownedPartitions: [], generationId: -1, rackId: null };
  // Tolerate a v1+ subscription that ends early: older librdkafka writes v1 without owned partitions.
  if (v >= 1 && r.remaining > 0) sub.ownedPartitions = readTopicPartitions(r);
  if (v >= 2 && r.remaining > 0) sub.generationId = r.int32();
  if (v >= 3 && r.remaining > 0) sub.rackId = r.string(false);
  if (v <= LAST_SUBSCRIPTION_VERSION && r.remaining > 0) throw badRequest(`${r.remaining} bytes after a version ${v} subscription`, r.pos);
  return sub;
}

export function encodeSubscription(sub: Partial<Subscription> & { topics: string[] }): Buffer {
  const v = sub.version ?? 1;
  const w = new Writer(64);
  w.int16(v);
  w.int32(sub.topics.length);
  for (const t of sub.topics) w.string(t, false);
  w.bytes(sub.userData ?? null, false);
  if (v >= 1) writeTopicPartitions(w, sub.ownedPartitions ?? []);
  if (v >= 2) w.int32(sub.generationId ?? -1);
  if (v >= 3) w.string(sub.rackId ?? null, false);
  return w.cut();
}

export function decodeAssignment(bytes: Buffer): Assignment {
  // A member the leader left out gets empty bytes: no partitions.
  if (bytes.length === 0) return { version: 0, partitions: [], userData: null };
  const r = new Reader(bytes);
  const v = version(r, 'assignment');
  const partitions = readTopicPartitions(r);
  const userData = r.remaining > 0 ? copy(r.bytes(false)) : null;
  if (v <= LAST_ASSIGNMENT_VERSION && r.remaining > 0) throw badRequest(`${r.remaining} bytes after a version ${v} assignment`, r.pos);
  return { version: v, partitions, userData };
}

export function encodeAssignment(a: Partial<Assignment> & { partitions: TopicPartitions[] }): Buffer {
  const w = new Writer(64);
  w.int16(a.version ?? 1);
  writeTopicPartitions(w, a.partitions);
  w.bytes(a.userData ?? null, false);
  return w.cut();
}

function copy(b: Buffer | null): Buffer | null {
  return b === null ? null : Buffer.from(b);
}

/**
 * Small helpers shared by the Kafka handlers: reading decoded fields defensively
 * (the codec fills every field, but a handler never trusts a type), and topic
 * auto-creation with one creation in flight per name.
 */
import { CommitLogError, ErrorCode } from '../../../errors.js';
import type { CommitLog } from '../../../log/commit-log.js';
import type { Message } from '../codec.js';
import { KafkaError, kafkaErrorCode } from '../error-codes.js';

export const EMPTY = Buffer.alloc(0);

export const str = (v: unknown): string => (typeof v === 'string' ? v : '');
export const nullableStr = (v: unknown): string | null => (typeof v === 'string' ? v : null);
export const int = (v: unknown, fallback = -1): number => (typeof v === 'number' && Number.isSafeInteger(v) ? v : fallback);
export const list = (v: unknown): Message[] => (Array.isArray(v) ? (v as Message[]) : []);
export const ints = (v: unknown): number[] => (Array.isArray(v) ? (v as unknown[]).map((x) => int(x)) : []);
export const strs = (v: unknown): string[] => (Array.isArray(v) ? (v as unknown[]).map(str) : []);

/** Topic creations in flight, per log: a second creation of the same name waits for the first. */
const creating = new WeakMap<CommitLog, Map<string, Promise<void>>>();

export function creationInFlight(log: CommitLog, name: string): boolean {
  return creating.get(log)?.has(name) === true;
}

/**
 * Creates `name` with `partitions` unless it exists; resolves when the topic is usable.
 * Concurrent calls for one name share the one creation.
 */
export function ensureTopic(log: CommitLog, name: string, partitions: number): Promise<void> {
  let inFlight = creating.get(log);
  if (inFlight === undefined) creating.set(log, (inFlight = new Map()));
  const pending = inFlight.get(name);
  if (pending !== undefined) return pending;
  if (log.listTopics().includes(name)) return Promise.resolve();
  const map = inFlight;
  const p = log.createTopic(name, { partitions }).then(
    () => undefined,
    (err: unknown) => {
      // Created meanwhile by someone else (the native protocol, the CLI): fine.
      if (err instanceof CommitLogError && err.code === ErrorCode.TOPIC_EXISTS) return;
      throw err;
    },
  ).finally(() => map.delete(name));
  map.set(name, p);
  return p;
}

/** The Kafka code of a failure of one topic or partition. */
export function codeOf(err: unknown): number {
  return kafkaErrorCode(err);
}

export { KafkaError };

/**
 * The Producer's accumulator (Kafka's RecordAccumulator): the drafts of every
 * partition from their first record until their records are settled.
 *
 * - Open drafts, one per partition at most, take records until they hold about
 *   `batchBytes` or are closed (their linger passed, flush(), a send that would not
 *   fit); a closed draft waits in `drafts`, in creation (seq) order, to be dispatched.
 * - `encode()` turns a draft into its batch when it is dispatched; a draft whose batch
 *   outgrew a frame (the size estimate fell short) is split in two halves that take
 *   its place at the head of the queue.
 * - `unsettled` holds every draft whose records have not been answered yet: queued,
 *   in flight or waiting for a resend (the last two are the Producer's, producer.ts).
 *   Settling a draft (resolved, rejected or expired) removes it and wakes whoever
 *   waits for it (flush()).
 *
 * Concurrency: single JS thread; no I/O, no timers.
 */
import { CommitLogError, ErrorCode } from '../../errors.js';
import { encodeBatch } from '../../log/batch.js';
import type { ProducerRecord } from '../../log/record.js';
import { Draft, NO_RECORDS, rejectRecords, type Owner } from './producer-batch.js';

export class Accumulator {
  /** Drafts not dispatched yet, open or full, in creation (seq) order. */
  drafts: Draft[] = [];
  /** Every draft whose records are not settled yet. */
  readonly unsettled = new Set<Draft>();
  /** The open draft of each topic's partitions. */
  private readonly open = new Map<string, (Draft | undefined)[]>();
  private nextSeq = 0;
  /** The batches' compression codec (0 none, 1-4: Kafka's; the Producer's `compression`). */
  compression = 0;

  /** `onIdle` runs whenever the last unsettled draft settles. */
  constructor(private readonly batchBytes: number, private readonly maxBatchBytes: number, private readonly onIdle: () => void) {}

  /**
   * Adds a record to its partition's open draft, starting one if there is none or the
   * record would overflow it. `created`: a new draft was started; `full`: the draft
   * reached batchBytes and is closed.
   */
  append(topic: string, partition: number, record: ProducerRecord, bytes: number, owner: Owner, slot: number): { created: boolean; full: boolean } {
    let open = this.open.get(topic);
    if (open === undefined) this.open.set(topic, (open = []));
    let draft = open[partition];
    if (draft !== undefined && draft.bytes + bytes > this.batchBytes) {
      this.closeDraft(draft);
      draft = undefined;
    }
    const created = draft === undefined;
    if (draft === undefined) {
      draft = new Draft(this.nextSeq++, topic, partition, Date.now());
      open[partition] = draft;
      this.drafts.push(draft);
      this.unsettled.add(draft);
    }
    draft.records.push(record);
    draft.owners.push(owner);
    draft.slots.push(slot);
    draft.bytes += bytes;
    const full = draft.bytes >= this.batchBytes;
    if (full) this.closeDraft(draft);
    return { created, full };
  }

  /** The draft takes no more records: later ones for its partition start a new one. */
  closeDraft(draft: Draft): void {
    draft.full = true;
    const open = this.open.get(draft.topic);
    if (open !== undefined && open[draft.partition] === draft) open[draft.partition] = undefined;
  }

  /** Closes every open draft (flush()). */
  closeAll(): void {
    for (const draft of this.drafts) this.closeDraft(draft);
  }

  /** The oldest draft still taking records: the next linger to wait for. */
  oldestOpen(): Draft | undefined {
    return this.drafts.find((d) => !d.full);
  }

  /** Removes and returns the first draft that is full or past its linger. */
  takeSendable(now: number, lingerMs: number): Draft | undefined {
    const drafts = this.drafts;
    for (let i = 0; i < drafts.length; i++) {
      const draft = drafts[i]!;
      if (!draft.full && now - draft.createdAt < lingerMs) continue;
      if (i === 0) drafts.shift();
      else drafts.splice(i, 1);
      this.closeDraft(draft);
      return draft;
    }
    return undefined;
  }

  /** Removes every draft not dispatched yet and returns them (to be failed). */
  takeAll(): Draft[] {
    const drafts = this.drafts;
    this.drafts = [];
    this.open.clear();
    return drafts;
  }

  /**
   * Encodes the draft's records into draft.buf; false when it cannot go as it is:
   * split in two (an estimate fell short of a frame's limit; both halves are put at
   * the head of the queue) or failed (its records rejected).
   */
  encode(draft: Draft): boolean {
    try {
      draft.buf = encodeBatch(draft.records, { compression: this.compression });
    } catch (err) {
      this.reject(draft, err);
      return false;
    }
    if (draft.buf.length <= this.maxBatchBytes) {
      // The bytes are all a resend needs; the record objects can go now.
      draft.records = NO_RECORDS;
      return true;
    }
    const size = draft.buf.length;
    draft.buf = undefined;
    if (draft.records.length === 1) {
      this.reject(draft, new CommitLogError(ErrorCode.RECORD_TOO_LARGE, `a record of ${size} bytes (as a batch) exceeds the ${this.maxBatchBytes} bytes a produce frame can carry`, { topic: draft.topic, partition: draft.partition }));
      return false;
    }
    const half = draft.records.length >>> 1;
    const halves = [0, half].map((from, i) => {
      const to = i === 0 ? half : draft.records.length;
      const part = new Draft(draft.seq, draft.topic, draft.partition, draft.createdAt);
      part.records = draft.records.slice(from, to);
      part.owners = draft.owners.slice(from, to);
      part.slots = draft.slots.slice(from, to);
      part.full = true;
      this.unsettled.add(part);
      return part;
    });
    this.drafts.unshift(...halves);
    // The halves settle on their own; whoever waits on the original waits on them.
    this.unsettled.delete(draft);
    if (draft.onSettled !== undefined) {
      const done = draft.onSettled;
      void Promise.all(halves.map((h) => settled(h))).then(done);
    }
    return false;
  }

  /** Rejects the draft's records and settles it. */
  reject(draft: Draft, err: unknown): void {
    rejectRecords(draft, err);
    this.settle(draft);
  }

  /** The draft's records are answered: it leaves `unsettled`, its waiters wake. */
  settle(draft: Draft): void {
    this.unsettled.delete(draft);
    draft.onSettled?.();
    if (this.unsettled.size === 0) this.onIdle();
  }

  /** Resolves once every draft unsettled now has settled. */
  settledAll(): Promise<void> {
    return Promise.all([...this.unsettled].map(settled)).then(() => undefined);
  }

  /** createdAt of the oldest unsettled draft; Infinity when there is none. */
  oldestCreatedAt(): number {
    let oldest = Infinity;
    for (const d of this.unsettled) oldest = Math.min(oldest, d.createdAt);
    return oldest;
  }

  /**
   * Rejects, with `errorFor(draft)`, every unsettled draft created at or before
   * `cutoff`, marks it expired and takes it out of `drafts`; the caller drops expired
   * drafts from its own queues. True when any expired.
   */
  expire(cutoff: number, errorFor: (draft: Draft) => unknown): boolean {
    let expired = false;
    for (const draft of this.unsettled) {
      if (draft.createdAt > cutoff) continue;
      draft.expired = true;
      expired = true;
      this.closeDraft(draft);
      this.reject(draft, errorFor(draft));
    }
    if (expired) this.drafts = this.drafts.filter((d) => !d.expired);
    return expired;
  }
}

function settled(draft: Draft): Promise<void> {
  return (draft.settledPromise ??= new Promise<void>((resolve) => (draft.onSettled = resolve)));
}

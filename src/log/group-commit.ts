/**
 * Flush scheduling for one partition (RocketMQ's GroupCommitService / FlushRealTime
 * service, in one small class).
 *
 * Appends are numbered by a running byte count (`written`, across segments). Under
 * `sync` an append waits until `flushed` covers its end: while one msync runs, later
 * appends queue up and the next msync covers them all (group commit). Under `async` a
 * timer or `flushBytes` of backlog starts a flush and nobody waits. msync always runs
 * on the thread pool. A failed flush rejects every waiter and fails the log.
 */

interface Waiter {
  end: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  /** Bytes appended so far (running count across segments). */
  written = 0;
  /** Bytes known flushed. */
  flushed = 0;
  /** The error of the flush that failed, if one did; every later flush rejects with it. */
  error: unknown = null;
  private running: Promise<void> | null = null;
  private waiters: Waiter[] = [];
  private head = 0;
  private readonly doFlush: () => Promise<void>;
  private readonly onError: (err: unknown) => unknown;

  /** `doFlush` flushes everything written when it is called. */
  /** `onError` turns a flush failure into the error every waiter and later call gets. */
  constructor(doFlush: () => Promise<void>, onError: (err: unknown) => unknown) {
    this.doFlush = doFlush;
    this.onError = onError;
  }

  get pendingBytes(): number {
    return this.written - this.flushed;
  }

  /** Resolves once a flush has covered byte `end` of the running count. */
  waitFor(end: number): Promise<void> {
    if (this.error !== null) return Promise.reject(this.error);
    if (end <= this.flushed) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ end, resolve, reject }));
    this.schedule();
    return p;
  }

  /** Starts a flush unless one is running (which then runs again if needed). */
  schedule(): Promise<void> {
    if (this.running === null) this.running = this.loop();
    return this.running;
  }

  /** Settles once no flush is running (a failed log's close must not unmap under one). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** Flushes everything written before this call. */
  async flushAll(): Promise<void> {
    const target = this.written;
    while (this.flushed < target) {
      if (this.error !== null) throw this.error;
      await this.schedule();
    }
    if (this.error !== null) throw this.error;
  }

  private async loop(): Promise<void> {
    try {
      while (this.flushed < this.written && this.error === null) {
        // Let every append already on its way (e.g. the appenders the last round just
        // released, which append again from their continuations) land first, so one
        // msync covers them all instead of every other round covering half.
        await yieldToAppenders();
        const target = this.written;
        await this.doFlush();
        this.flushed = target;
        this.settle();
      }
    } catch (err) {
      this.error = this.onError(err);
      this.rejectAll(this.error);
    } finally {
      this.running = null;
    }
  }

  private settle(): void {
    const ws = this.waiters;
    let i = this.head;
    while (i < ws.length && ws[i].end <= this.flushed) ws[i++].resolve();
    if (i === ws.length) {
      this.waiters = [];
      this.head = 0;
    } else {
      this.head = i;
      if (i > 1024) {
        this.waiters = ws.slice(i);
        this.head = 0;
      }
    }
  }

  /**
   * A flush outside this loop failed (sealing a rolled segment): from now on every
   * waiter and every later flush rejects, before any waiter could resolve.
   */
  fail(err: unknown): void {
    if (this.error === null) this.error = err;
    this.rejectAll(this.error);
  }

  /** Rejects every waiter (a failed flush, or close after failure). */
  rejectAll(err: unknown): void {
    const ws = this.waiters;
    for (let i = this.head; i < ws.length; i++) ws[i].reject(err);
    this.waiters = [];
    this.head = 0;
  }
}

function yieldToAppenders(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * A Producer's link to its broker: the one connection, (re)established with capped
 * jittered backoff while the producer still has something to deliver, and the
 * Metadata requests that give a topic's partition count. Records, drafts and the
 * delivery timeout stay in producer.ts; this module knows nothing of them except,
 * through `wanted`, whether anything still waits for a connection.
 */
import { CommitLogError, ErrorCode } from '../../errors.js';
import { backoffMs, isRetriable, sleep, type RetryPolicy } from './client-types.js';
import { Connection, type ConnectionOptions } from './connection.js';

export class ProducerLink {
  /** The open connection, if any. */
  conn: Connection | undefined;
  /** The latest retriable failure: the cause of a delivery timeout. */
  lastError: unknown;
  private connecting: Promise<Connection | undefined> | undefined;

  constructor(
    private readonly options: ConnectionOptions,
    /** Attempts after the first (the producer's `retries`). */
    private readonly retries: number,
    private readonly retry: RetryPolicy,
    /** Whether anything still waits for a connection (a draft, a resend, a send waiting for metadata). */
    private readonly wanted: () => boolean,
  ) {}

  /**
   * The open connection, (re)connecting with backoff for as long as something waits
   * for it (a draft, a resend, a send waiting for metadata): undefined once nothing
   * does (all of it timed out). Rejects once `retries` attempts failed.
   */
  connection(): Promise<Connection | undefined> {
    if (this.conn !== undefined && this.conn.isOpen) return Promise.resolve(this.conn);
    this.connecting ??= this.connectWithRetries().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connectWithRetries(): Promise<Connection | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const conn = await Connection.connect(this.options);
        this.conn = conn;
        conn.onClose(() => {
          if (this.conn === conn) this.conn = undefined;
        });
        return conn;
      } catch (err) {
        if (!isRetriable(err)) throw err;
        this.lastError = err;
        if (attempt >= this.retries) throw err;
        if (!this.wanted()) return undefined;
        await sleep(backoffMs(attempt, this.retry.backoffMs, this.retry.backoffMaxMs));
      }
    }
  }

  /**
   * The partition count of `topic` from a Metadata request, retried on connection
   * failures while `stillWanted()` (some send still waits for the answer).
   */
  async partitionCount(topic: string, stillWanted: () => boolean): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      // connection() does its own retries: its failure is final.
      const conn = await this.connection();
      if (conn === undefined) throw this.lastError;
      try {
        const response = await conn.request({ case: 'metadata', value: { topics: [topic] } });
        const body = response.header.body;
        const meta = body?.case === 'metadata' ? body.value.topics.find((t) => t.name === topic) : undefined;
        if (meta === undefined || meta.partitions.length === 0) {
          throw new CommitLogError(ErrorCode.UNKNOWN_TOPIC, `unknown topic ${topic}`, { topic });
        }
        return meta.partitions.length;
      } catch (err) {
        if (!isRetriable(err)) throw err;
        this.lastError = err;
        // Every send waiting for this answer may have timed out meanwhile.
        if (attempt >= this.retries || !stillWanted()) throw err;
        await sleep(backoffMs(attempt, this.retry.backoffMs, this.retry.backoffMaxMs));
      }
    }
  }

  /** Waits for a connection attempt under way, then closes the connection. */
  async close(): Promise<void> {
    await this.connecting?.catch(() => undefined);
    const conn = this.conn;
    this.conn = undefined;
    await conn?.close();
  }
}

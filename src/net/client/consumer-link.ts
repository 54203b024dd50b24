/**
 * A Consumer's link to its broker: the one connection that carries its metadata,
 * offset and commit requests and the fetcher's MultiFetch, (re)established with
 * capped jittered backoff, and the requests on it, each sent again after a retriable
 * failure (all of them are idempotent) until it succeeds, fails for good, or
 * retrying is over (reconnectTimeoutMs, `retries`, close()). Kept apart from
 * consumer.ts, as producer-link.ts is from producer.ts: partitions, positions and
 * what an answer means for them stay there; this module only gets answers.
 */
import { backoffMs, isRetriable, sleep, type RetryPolicy } from './client-types.js';
import { Connection, type ConnectionOptions, type Response } from './connection.js';
import type { RequestBody, TopicMetadata } from '../protocol/messages.js';

export class ConsumerLink {
  private control: Connection | undefined;
  private controlConnecting: Promise<Connection> | undefined;

  constructor(
    private readonly connectionOptions: ConnectionOptions,
    /** Attempts after consecutive retriable failures (the consumer's `retries`). */
    private readonly retries: number,
    private readonly retry: RetryPolicy,
    private readonly reconnectTimeoutMs: number,
    /** True once the consumer is closed: retrying stops. */
    private readonly closed: () => boolean,
  ) {}

  /** The connection for metadata, offsets and commits, reconnecting with backoff. */
  connection(): Promise<Connection> {
    if (this.control !== undefined && this.control.isOpen) return Promise.resolve(this.control);
    this.controlConnecting ??= this.retrying(() => Connection.connect(this.connectionOptions))
      .then((conn) => {
        this.control = conn;
        return conn;
      })
      .finally(() => {
        this.controlConnecting = undefined;
      });
    return this.controlConnecting;
  }

  /** A request on the control connection, sent again after a retriable failure (all of them are idempotent). */
  request(body: RequestBody): Promise<Response> {
    return this.retrying(async () => (await this.connection()).request(body));
  }

  /** The broker's metadata of `topic`; undefined when it does not know the topic. */
  async topicMetadata(topic: string): Promise<TopicMetadata | undefined> {
    const response = await this.request({ case: 'metadata', value: { topics: [topic] } });
    const body = response.header.body;
    return body?.case === 'metadata' ? body.value.topics.find((t) => t.name === topic) : undefined;
  }

  /** Runs `attempt` until it succeeds, fails for good, or retrying is over (reconnectTimeoutMs, `retries`, close()). */
  private async retrying<T>(attempt: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const elapsed = Date.now() - started;
        if (!isRetriable(err) || n >= this.retries || elapsed >= this.reconnectTimeoutMs || this.closed()) throw err;
        await sleep(Math.min(backoffMs(n, this.retry.backoffMs, this.retry.backoffMaxMs), this.reconnectTimeoutMs - elapsed));
      }
    }
  }

  /** Waits for a connection attempt under way (it gives up once the consumer is closed). */
  async idle(): Promise<void> {
    await this.controlConnecting?.catch(() => undefined);
  }

  /**
   * Closes the connection; at once when nothing but the fetcher's long poll
   * (`polling`) is in flight on it (nothing to wait for).
   */
  async close(polling: boolean): Promise<void> {
    const conn = this.control;
    if (conn === undefined) return;
    if (conn.inFlight <= (polling ? 1 : 0)) conn.destroy();
    else await conn.close();
  }
}

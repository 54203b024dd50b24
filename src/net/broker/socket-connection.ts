/**
 * The socket side both listeners' connections share (broker/connection.ts for the
 * native protocol, kafka/connection.ts for Kafka's): pausing the socket for
 * backpressure within the same bounds, the queue of responses in request order with
 * the request bytes each holds, waiting for 'drain', ending our side once everything
 * queued is written, shutdown with a deadline, a deadline on every step of a response
 * transfer (a client that stops reading), closing on a frame that cannot be parsed,
 * and the cold-read options of a fetched range counted in the listener's
 * stats. How requests are cut, dispatched and answered stays in the subclasses: the
 * two wire formats differ there, not here.
 */
import type net from 'node:net';
import type { Logger } from '../../log/commit-log.js';
import type { LogSlice } from '../../log/partition-log.js';
import type { SharedPrefetch } from './server-support.js';
import { sendFileRange, type ColdReadOptions } from './zero-copy.js';

/** A connection stops reading while this many responses wait to be sent... */
export const MAX_PENDING_REQUESTS = 64;
/** ...or while this much memory (held request bytes, unsent bytes) is queued for it. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;

/** What the response queue needs of an entry: the request bytes it still holds. */
export interface QueuedResponse {
  heldBytes: number;
}

/**
 * A record range is sent in steps of at most this much (one sendFileRange each): the
 * transfer deadline bounds each step, restarted by every prefetch chunk of a cold one.
 * Large, so an ordinary fetch is one sendfile; a reader slower than 64 MiB per
 * transferTimeoutMs is taken for one that stopped.
 */
export const TRANSFER_CHUNK_BYTES = 64 * 1024 * 1024;

/** The listener-wide counters this part adds to. */
export interface SocketCounters {
  badFrames: number;
  /** Connections destroyed because a response transfer made no progress for transferTimeoutMs. */
  transferTimeouts: number;
  coldFetches: number;
  prefetchedBytes: number;
  maxPendingBytes: number;
}

/** What this part needs of a listener's shared state. */
export interface SocketShared {
  counters: SocketCounters;
  logger: Logger;
  prefetch: SharedPrefetch;
  transferTimeoutMs: number;
}

export abstract class SocketConnection<P extends QueuedResponse> {
  protected readonly socket: net.Socket;
  protected readonly remote: string;
  /** Aborts this connection's work in flight (transfers, prefetches, handlers that take a signal). */
  protected readonly abort = new AbortController();
  /** Settles when the socket has closed. */
  protected readonly closed: Promise<void>;
  /** The writer is sending responses. */
  protected writing = false;
  /** Reading is paused (backpressure). */
  protected paused = false;
  /** No more requests are taken (broker shutdown or a bad frame). */
  protected ending = false;
  /** The peer shut down its side: answer what was received, then end. */
  protected peerEnded = false;
  /** Our side has been ended. */
  protected finished = false;
  /** Responses in request order; those from `head` on are not sent yet. */
  protected readonly queue: P[] = [];
  protected head = 0;
  /** Request bytes held until their handlers are done. */
  protected heldBytes = 0;
  private readonly io: SocketShared;
  /** How log lines name this kind of connection ("connection", "Kafka connection"). */
  private readonly label: string;
  /** The deadline of the transfer step under way (guarded()). */
  private progressTimer: NodeJS.Timeout | undefined;

  protected constructor(socket: net.Socket, io: SocketShared, label: string) {
    this.socket = socket;
    this.io = io;
    this.label = label;
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Takes queued input as far as the bounds allow, then calls applyBackpressure. */
  protected abstract pump(): void;

  /** Sends the queued responses in order; the only writer of the socket. */
  protected abstract writeLoop(): Promise<void>;

  /** Drops input not yet dispatched and ends what waits for more (shutdown, a bad frame). */
  protected abstract stopTaking(): void;

  protected get pendingRequests(): number {
    return this.queue.length - this.head;
  }

  /** True while no more requests may be taken (the bounds above). */
  protected overBound(): boolean {
    return this.pendingRequests >= MAX_PENDING_REQUESTS || this.heldBytes + this.socket.writableLength >= MAX_PENDING_BYTES;
  }

  /**
   * Queues a response; the request bytes it holds are released once `handled` settles
   * (the handler is done with them), not when the response is sent.
   */
  protected enqueuePending(pending: P, handled: Promise<unknown>): void {
    this.heldBytes += pending.heldBytes;
    if (pending.heldBytes > 0) {
      void handled.finally(() => {
        this.heldBytes -= pending.heldBytes;
        pending.heldBytes = 0;
        this.pump();
      });
    }
    this.queue.push(pending);
    if (!this.writing) void this.writeLoop();
  }

  /** The response at `head` has been sent: its slot is let go (the array compacted now and then). */
  protected advanceQueue(): void {
    this.queue[this.head] = undefined as unknown as P;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Records the connection's memory high mark and pauses or resumes reading to match `stop`. */
  protected applyBackpressure(stop: boolean, pendingBytes: number): void {
    const counters = this.io.counters;
    counters.maxPendingBytes = Math.max(counters.maxPendingBytes, pendingBytes);
    if (stop && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!stop && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Resolves once the socket's write buffer has drained (or it closed); reading pauses meanwhile. */
  protected drained(): Promise<void> {
    this.pump();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.removeListener('drain', done);
        this.socket.removeListener('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** A frame that cannot be parsed: the stream has no frame boundary, so the connection ends. */
  protected closeOnBadFrame(code: string, message: string): void {
    if (this.ending && this.socket.destroyed) return;
    this.io.counters.badFrames++;
    this.io.logger.warn({ connection: this.remote, code }, `closing ${this.label} ${this.remote}: ${message}`);
    this.ending = true;
    this.stopTaking();
    this.abort.abort();
    this.socket.destroy();
  }

  /**
   * Listener shutdown: takes no more requests, sends what is queued, then closes.
   * Destroys the socket if that takes longer than `timeoutMs` (a client that does not
   * read).
   */
  async shutdown(timeoutMs: number): Promise<void> {
    this.ending = true;
    this.stopTaking();
    this.abort.abort();
    // Keep reading (and dropping) input so the peer's FIN is seen.
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    if (!this.writing) this.finish();
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    timer.unref();
    await this.closed;
    clearTimeout(timer);
  }

  /** Ends our side of the connection after everything written so far. */
  protected finish(): void {
    if (this.finished || this.socket.destroyed) return;
    this.finished = true;
    // The socket closes once the peer has ended too (at once after a half-close;
    // at shutdown, when the client answers our FIN, or shutdown()'s timeout).
    this.socket.end();
  }

  /**
   * Sends [position, position + length) of `slice`'s file by sendfile, in steps of
   * TRANSFER_CHUNK_BYTES, each under the transfer deadline; `sent` hears each step.
   * Cold pages are read in on the thread pool first (coldRead).
   */
  protected async sendRange(slice: LogSlice, position: number, length: number, sent?: (bytes: number) => void): Promise<void> {
    const cold = this.coldRead(slice);
    const end = position + length;
    for (let at = position; at < end; at += TRANSFER_CHUNK_BYTES) {
      const n = Math.min(TRANSFER_CHUNK_BYTES, end - at);
      await this.guarded(sendFileRange(this.socket, slice.fd, at, n, { cold }));
      sent?.(n);
    }
  }

  /**
   * `step` of a response transfer, with a deadline of transferTimeoutMs: a client that
   * stops reading leaves it pending, and then the connection is destroyed (which
   * cancels the step; the caller releases what it holds).
   */
  protected async guarded<T>(step: Promise<T>): Promise<T> {
    const { transferTimeoutMs } = this.io;
    const timer = setTimeout(() => {
      if (this.socket.destroyed) return;
      this.io.counters.transferTimeouts++;
      this.io.logger.warn({ connection: this.remote, transferTimeoutMs },
        `closing ${this.label} ${this.remote}: a response transfer made no progress for ${transferTimeoutMs} ms (the client does not read)`);
      this.socket.destroy();
    }, transferTimeoutMs);
    this.progressTimer = timer;
    try {
      return await step;
    } finally {
      clearTimeout(timer);
      this.progressTimer = undefined;
    }
  }

  /**
   * The cold-read options of one fetched range, counting it (and the bytes prefetched
   * for it) in the listener's stats; undefined when prefetch is off. A prefetch chunk
   * read, or a sendfile started after one, is progress: the transfer deadline starts
   * again.
   */
  protected coldRead(slice: LogSlice): ColdReadOptions | undefined {
    const settings = this.io.prefetch;
    if (settings === null) return undefined;
    const counters = this.io.counters;
    let counted = false;
    return {
      ...settings,
      view: slice.segment.data,
      observer: (event) => {
        if (event.kind === 'prefetched' || event.kind === 'sendfile') this.progressTimer?.refresh();
        if (event.kind === 'prefetch' && !counted) {
          counted = true;
          counters.coldFetches++;
        } else if (event.kind === 'prefetched') {
          counters.prefetchedBytes += event.bytes;
        }
        settings.observer?.(event);
      },
    };
  }
}

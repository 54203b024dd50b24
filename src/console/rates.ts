/**
 * Rates for the console's live charts, sampled once per interval (default 1 s) into a
 * ring of the last `historySize` samples (default 300: five minutes).
 *
 * - records in: the change of every partition's log end offset since the last sample,
 *   so appends from any path count (native protocol, Kafka listener, in-process);
 * - records out: the records of fetch and multiFetch responses, from the broker's
 *   RequestObservation (per topic; the broker does not observe fetches per partition);
 * - flush latency: mean and max msync time of the partition flushes in the interval,
 *   from the CommitLog's flush hooks;
 * - connections: broker.stats().connections;
 * - lag: per group, the sum over its committed partitions of latest offset minus the
 *   committed one (the first `MAX_LAG_GROUPS` groups only).
 *
 * Wiring: `observer` goes to startBroker({ observer }) and `flushHooks` to
 * CommitLog.open({ hooks }) (combine them with other observers and hooks with
 * `combineObservers` / `combineFlushHooks`); `attach()` names the log and broker to
 * sample. Everything runs on the JS thread; a sample costs O(partitions + groups'
 * committed partitions), never a read of data. The timer is unref'd.
 */
import type { CommitLog } from '../log/commit-log.js';
import type { FlushHooks } from '../log/partition-log.js';
import type { OffsetsStore } from '../index/offsets-store.js';
import type { BrokerObserver, BrokerStats } from '../net/broker/server.js';

export interface TopicRates {
  recordsInPerSec: number;
  recordsOutPerSec: number;
}

export interface Sample {
  /** ms since epoch. */
  time: number;
  recordsInPerSec: number;
  recordsOutPerSec: number;
  bytesOutPerSec: number;
  connections: number;
  /** Mean msync time of the flushes in the interval, ms; null when none ran. */
  flushMeanMs: number | null;
  flushMaxMs: number | null;
  flushes: number;
  topics: Record<string, TopicRates>;
  /** group -> total lag at this sample. */
  lag: Record<string, number>;
}

/** What the sampler reads of a broker (Broker satisfies it). */
export interface SampledBroker {
  readonly offsets: OffsetsStore;
  stats(): Pick<BrokerStats, 'connections'>;
}

const MAX_LAG_GROUPS = 100;

export class RateSampler {
  readonly observer: BrokerObserver;
  readonly flushHooks: FlushHooks;
  private readonly history: Sample[] = [];
  private readonly listeners = new Set<(s: Sample) => void>();
  private readonly outByTopic = new Map<string, { records: number; bytes: number }>();
  private readonly flushStarted = new Map<string, number>();
  /** Partition rates of the last sample: topic -> records/s per partition. */
  private partitionRates = new Map<string, number[]>();
  private lastEnds = new Map<string, number[]>();
  private lastTime = 0;
  private flushCount = 0;
  private flushSumMs = 0;
  private flushMaxMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private log: CommitLog | undefined;
  private broker: SampledBroker | undefined;

  constructor(readonly intervalMs = 1000, readonly historySize = 300) {
    this.observer = {
      onRequest: (o) => {
        if ((o.kind !== 'fetch' && o.kind !== 'multiFetch') || o.errorCode !== '' || o.records === 0) return;
        // A multi-partition fetch reports what it sent per topic.
        for (const part of o.topics ?? [{ topic: o.topic, bytes: o.bytes, records: o.records }]) {
          if (part.records === 0) continue;
          let t = this.outByTopic.get(part.topic);
          if (t === undefined) this.outByTopic.set(part.topic, (t = { records: 0, bytes: 0 }));
          t.records += part.records;
          t.bytes += part.bytes;
        }
      },
    };
    this.flushHooks = {
      beforeFlush: (topic, partition) => {
        this.flushStarted.set(`${partition}\0${topic}`, performance.now());
      },
      afterFlush: (topic, partition) => {
        const key = `${partition}\0${topic}`;
        const started = this.flushStarted.get(key);
        if (started === undefined) return;
        this.flushStarted.delete(key);
        const ms = performance.now() - started;
        this.flushCount++;
        this.flushSumMs += ms;
        if (ms > this.flushMaxMs) this.flushMaxMs = ms;
      },
    };
  }

  /** Starts sampling `log` and `broker`. */
  attach(log: CommitLog, broker: SampledBroker): void {
    this.log = log;
    this.broker = broker;
    this.lastEnds = this.readEnds();
    this.lastTime = Date.now();
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sample(), this.intervalMs);
      this.timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.listeners.clear();
  }

  /** The samples kept, oldest first. */
  samples(): readonly Sample[] {
    return this.history;
  }

  /** records/s per partition of `topic` at the last sample (zeros before the first). */
  partitionRatesOf(topic: string, partitions: number): number[] {
    const rates = this.partitionRates.get(topic) ?? [];
    return Array.from({ length: partitions }, (_, i) => rates[i] ?? 0);
  }

  /** Calls `fn` with every new sample until the returned function is called. */
  subscribe(fn: (s: Sample) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Takes a sample now (the timer calls this; tests may too). */
  sample(): Sample | undefined {
    const log = this.log;
    if (log === undefined) return undefined;
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.lastTime) / 1000);
    const ends = this.readEnds();
    const topics: Record<string, TopicRates> = {};
    const partitionRates = new Map<string, number[]>();
    let recordsIn = 0;
    for (const [topic, list] of ends) {
      const before = this.lastEnds.get(topic) ?? [];
      // A partition seen for the first time (a new topic) counts from this sample on.
      const rates = list.map((end, i) => (before[i] === undefined ? 0 : Math.max(0, end - before[i]!) / seconds));
      partitionRates.set(topic, rates);
      const rate = rates.reduce((a, b) => a + b, 0);
      recordsIn += rate;
      topics[topic] = { recordsInPerSec: rate, recordsOutPerSec: 0 };
    }
    let recordsOut = 0;
    let bytesOut = 0;
    for (const [topic, out] of this.outByTopic) {
      if (topics[topic] !== undefined) topics[topic].recordsOutPerSec = out.records / seconds;
      recordsOut += out.records / seconds;
      bytesOut += out.bytes / seconds;
    }
    this.outByTopic.clear();
    const s: Sample = {
      time: now,
      recordsInPerSec: recordsIn,
      recordsOutPerSec: recordsOut,
      bytesOutPerSec: bytesOut,
      connections: safe(() => this.broker?.stats().connections ?? 0, 0),
      flushMeanMs: this.flushCount === 0 ? null : this.flushSumMs / this.flushCount,
      flushMaxMs: this.flushCount === 0 ? null : this.flushMaxMs,
      flushes: this.flushCount,
      topics,
      lag: this.readLag(log),
    };
    this.flushCount = this.flushSumMs = this.flushMaxMs = 0;
    this.lastEnds = ends;
    this.lastTime = now;
    this.partitionRates = partitionRates;
    this.history.push(s);
    if (this.history.length > this.historySize) this.history.splice(0, this.history.length - this.historySize);
    for (const fn of this.listeners) {
      try {
        fn(s);
      } catch {
        // a listener's failure (a closed response) must not stop sampling
      }
    }
    return s;
  }

  private readEnds(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    const log = this.log;
    if (log === undefined) return out;
    for (const topic of safe(() => log.listTopics(), [])) {
      const d = safe(() => log.describeTopic(topic), null);
      if (d !== null) out.set(topic, d.partitions.map((p) => p.nextOffset));
    }
    return out;
  }

  private readLag(log: CommitLog): Record<string, number> {
    const out: Record<string, number> = {};
    const offsets = this.broker?.offsets;
    if (offsets === undefined) return out;
    for (const group of safe(() => offsets.listGroups(), []).slice(0, MAX_LAG_GROUPS)) {
      const described = safe(() => offsets.describe(group), null);
      let total = 0;
      for (const [topic, partitions] of Object.entries(described?.topics ?? {})) {
        for (const [p, committed] of Object.entries(partitions)) {
          total += lagOf(log, topic, Number(p), committed.offset) ?? 0;
        }
      }
      out[group] = total;
    }
    return out;
  }
}

/** Latest offset (high watermark) minus the committed offset (log start when older); null for a partition that is gone. */
export function lagOf(log: CommitLog, topic: string, partition: number, committed: number): number | null {
  return safe(() => {
    const latest = log.latestOffset(topic, partition);
    const start = log.earliestOffset(topic, partition);
    return Math.max(0, latest - Math.max(committed, start));
  }, null);
}

/** One observer that calls each of `observers`. */
export function combineObservers(...observers: (BrokerObserver | undefined)[]): BrokerObserver | undefined {
  const list = observers.filter((o): o is BrokerObserver => o !== undefined);
  if (list.length <= 1) return list[0];
  return { onRequest: (o) => list.forEach((x) => x.onRequest(o)) };
}

/** One set of flush hooks that calls each of `hooks` in turn (awaiting any that return a promise). */
export function combineFlushHooks(...hooks: (FlushHooks | undefined)[]): FlushHooks | undefined {
  const list = hooks.filter((h): h is FlushHooks => h !== undefined);
  if (list.length <= 1) return list[0];
  const each = (name: keyof FlushHooks) => (topic: string, partition: number): void | Promise<void> => {
    let pending: Promise<void> | undefined;
    for (const h of list) {
      const fn = h[name];
      if (fn === undefined) continue;
      if (pending !== undefined) pending = pending.then(() => fn(topic, partition));
      else {
        const r = fn(topic, partition);
        if (r instanceof Promise) pending = r;
      }
    }
    return pending;
  };
  return { beforeFlush: each('beforeFlush'), afterFlush: each('afterFlush') };
}

function safe<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    // a topic deleted between listing and reading it, or the log closing
    return fallback;
  }
}

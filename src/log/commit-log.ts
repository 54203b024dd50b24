/**
 * CommitLog: the embedded API. Owns a data directory (`<dir>/<topic>/<partition>/`),
 * its lock file, the clean-shutdown marker, topic metadata, the shared segment cache
 * and the background timers (async flush, checkpoints, retention).
 *
 * Opening takes `<dir>/.lock` with flock (a second open, in this or another process,
 * fails with ERR_LOCKED), recovers every partition (see recovery.ts), then removes the
 * `.clean-shutdown` marker before any append can happen. close() flushes everything,
 * checkpoints exact ends and writes the marker again.
 *
 * Lookups of topics and partitions and every read (records, slices, offsets, waits,
 * prefetch, tail) live in the base class, CommitLogReads (commit-log-reads.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, ErrorCode, invalidArgument, ioError } from '../errors.js';
import { fsyncDirAsync, readGuardedJson, writeGuardedJsonAsync } from '../index/checkpoint.js';
import * as native from '../native.js';
import type { ProducerRecord } from './record.js';
import { PartitionLog, type AppendResult, type FlushHooks, type FlushPolicy } from './partition-log.js';
import type { PartitionRecoveryReport } from './recovery.js';
import { SegmentCache } from './segment-cache.js';
import { ProducerIdAllocator } from './producer-ids.js';
import { ensureLimitsFor, forEachLimited } from './limits.js';
import { DEFAULT_TOPIC_CONFIG, ensureTopicName, resolveTopicConfig, type TopicConfig } from './topic-config.js';
import { CommitLogReads, ensurePositiveInt, type Topic } from './commit-log-reads.js';

export type { StartPosition, TailOptions } from './commit-log-reads.js';

export interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface CommitLogOptions {
  /** The data directory; created if missing. */
  dir: string;
  /** 'sync': an append resolves after msync of its bytes (group commit). 'async': flushed in the background. 'os': never flushed explicitly. Default 'sync'. */
  flush?: FlushPolicy;
  /** async: flush at least this often. Default 1000. */
  flushIntervalMs?: number;
  /** async: also flush once this many bytes are unflushed. Default 64 MiB. */
  flushBytes?: number;
  /** How often the recovery point is written (sync and async). Default 10000. */
  checkpointIntervalMs?: number;
  /** How often retention runs. Default 60000; 0 disables the timer (call enforceRetention). */
  retentionCheckIntervalMs?: number;
  /** Sealed segments kept open (fd + mappings) across all partitions. Default 256. */
  maxOpenSegments?: number;
  /**
   * Fault in the pages ahead of the writer on the thread pool (MADV_POPULATE_WRITE in a
   * 32 MiB window, RocketMQ's warm-up). Default false: measured here it costs more than
   * it saves (see docs/benchmarks.md): first touches of a fallocated page are cheap on
   * the append path, while populating dirties pages that are then written back as
   * zeros, taking disk bandwidth from the data.
   */
  warmSegments?: boolean;
  /** Defaults for topics created without their own settings. */
  topicDefaults?: Partial<Omit<TopicConfig, 'partitions'>>;
  logger?: Logger;
  hooks?: FlushHooks;
  /**
   * Repair mode (`commitlog verify --repair`): damage inside a sealed segment that has
   * later segments cuts the log there and drops the later segments. Without it such
   * damage fails the open with ERR_LOG_CORRUPT and nothing is deleted. Default false.
   */
  repair?: boolean;
}

export interface RecoveryReport {
  /** True when the previous close was clean. */
  clean: boolean;
  partitions: PartitionRecoveryReport[];
  droppedBatches: number;
  droppedBytes: number;
  durationMs: number;
}

export interface PartitionDescription {
  partition: number;
  logStartOffset: number;
  /** The log end offset: one past the last record written. */
  nextOffset: number;
  /** One past the last record readers see (see PartitionLog.highWatermark). */
  highWatermark: number;
  sizeBytes: number;
  /** Disk space the partition's files take: allocated log space and indexes (never the logical segment size). */
  diskBytes: number;
  segments: number;
}

export interface TopicDescription {
  name: string;
  config: TopicConfig;
  partitions: PartitionDescription[];
}

const LOCK_FILE = '.lock';
/**
 * Partitions opened (or created) at once, and background flushes and checkpoints in
 * flight at once: enough to keep the thread pool and the disk's queue busy (fsyncs of
 * many files share journal commits), few enough that a timer tick over thousands of
 * partitions does not queue thousands of jobs ahead of the appends' msyncs.
 */
const OPEN_CONCURRENCY = 32;
const BACKGROUND_CONCURRENCY = 8;
const CLEAN_MARKER = '.clean-shutdown';
const TOPIC_FILE = 'topic.json';

const stderrLogger: Logger = {
  info: () => undefined,
  warn: (fields, message) => process.stderr.write(`commitlog: ${message} ${JSON.stringify(fields)}\n`),
};

export class CommitLog extends CommitLogReads {
  readonly recovery: RecoveryReport;
  private readonly cache: SegmentCache;
  private readonly logger: Logger;
  private readonly settings: Required<Omit<CommitLogOptions, 'dir' | 'topicDefaults' | 'logger' | 'hooks'>> & { hooks: FlushHooks };
  private readonly defaults: TopicConfig;
  private lockFd: number;
  private timers: NodeJS.Timeout[] = [];
  private closing: Promise<void> | null = null;
  private producerIds: ProducerIdAllocator | null = null;

  private constructor(dir: string, lockFd: number, settings: CommitLog['settings'], defaults: TopicConfig, logger: Logger) {
    super(dir);
    this.lockFd = lockFd;
    this.settings = settings;
    this.defaults = defaults;
    this.logger = logger;
    this.cache = new SegmentCache(settings.maxOpenSegments);
    this.recovery = { clean: true, partitions: [], droppedBatches: 0, droppedBytes: 0, durationMs: 0 };
  }

  /** Opens (creating) the log in `options.dir`, recovering it if it was not closed cleanly. */
  static async open(options: CommitLogOptions): Promise<CommitLog> {
    if (options === null || typeof options !== 'object' || typeof options.dir !== 'string' || options.dir.length === 0) {
      throw invalidArgument('options.dir must be a non-empty string');
    }
    const flush = options.flush ?? 'sync';
    if (flush !== 'sync' && flush !== 'async' && flush !== 'os') throw invalidArgument(`flush must be 'sync', 'async' or 'os', got ${String(flush)}`);
    const settings = {
      flush,
      flushIntervalMs: ensurePositiveInt('flushIntervalMs', options.flushIntervalMs, 1000),
      flushBytes: ensurePositiveInt('flushBytes', options.flushBytes, 64 * 1024 * 1024),
      checkpointIntervalMs: ensurePositiveInt('checkpointIntervalMs', options.checkpointIntervalMs, 10_000),
      retentionCheckIntervalMs: ensurePositiveInt('retentionCheckIntervalMs', options.retentionCheckIntervalMs, 60_000, 0),
      maxOpenSegments: ensurePositiveInt('maxOpenSegments', options.maxOpenSegments, 256),
      warmSegments: options.warmSegments ?? false,
      hooks: options.hooks ?? {},
      repair: options.repair === true,
    };
    const defaults = resolveTopicConfig({ ...DEFAULT_TOPIC_CONFIG, ...(options.topicDefaults ?? {}), partitions: 1 }, DEFAULT_TOPIC_CONFIG);
    const dir = path.resolve(options.dir);
    let lockFd = -1;
    try {
      fs.mkdirSync(dir, { recursive: true });
      lockFd = fs.openSync(path.join(dir, LOCK_FILE), 'a+', 0o644);
    } catch (err) {
      throw ioError(err, 'opening the data directory failed', { path: dir });
    }
    if (!native.tryLock(lockFd, { path: dir })) {
      fs.closeSync(lockFd);
      throw new CommitLogError(ErrorCode.LOCKED, `data directory ${dir} is in use by another CommitLog (lock file ${path.join(dir, LOCK_FILE)})`, { path: dir });
    }
    const log = new CommitLog(dir, lockFd, settings, defaults, options.logger ?? stderrLogger);
    try {
      await log.load();
    } catch (err) {
      await log.abandon();
      throw err;
    }
    return log;
  }

  private async load(): Promise<void> {
    const started = performance.now();
    const markerPath = path.join(this.dir, CLEAN_MARKER);
    const clean = fs.existsSync(markerPath);
    this.recovery.clean = clean;
    const found: Array<{ name: string; config: TopicConfig }> = [];
    for (const name of fs.readdirSync(this.dir).sort()) {
      if (name.startsWith('.')) continue;
      const topicDir = path.join(this.dir, name);
      if (!fs.statSync(topicDir).isDirectory()) continue;
      try {
        ensureTopicName(name);
      } catch {
        continue;
      }
      found.push({ name, config: await this.readTopicConfig(name, topicDir) });
    }
    // Before opening anything: a directory that cannot fit the process's limits fails
    // here with the number to raise, not with EMFILE halfway through.
    ensureLimitsFor(found.reduce((n, t) => n + t.config.partitions, 0), this.settings.maxOpenSegments, `opening ${this.dir}`);
    for (const { name, config } of found) {
      const topic: Topic = { name, config, partitions: [] };
      // Registered first so that a failed open (abandon) closes what did open.
      this.topics.set(name, topic);
      await this.openPartitions(topic, clean);
    }
    // From here on an append may happen: the marker must be gone, durably.
    if (clean) {
      fs.unlinkSync(markerPath);
      await fsyncDirAsync(this.dir);
    }
    for (const t of this.topics.values()) {
      for (const p of t.partitions) {
        const r = p.report;
        this.recovery.partitions.push(r);
        this.recovery.droppedBatches += r.droppedBatches;
        this.recovery.droppedBytes += r.droppedBytes;
        if (r.checkpointError !== undefined) {
          this.logger.warn({ topic: r.topic, partition: r.partition, err: r.checkpointError }, `recovered ${r.topic}/${r.partition} but could not write its recovery point (disk full); the next crash scans from the older one`);
        }
        if (!r.clean && (r.droppedBytes > 0 || r.droppedSegments > 0 || r.rebuiltIndexes > 0)) {
          this.logger.warn({ ...r }, `recovered ${r.topic}/${r.partition}: dropped ${r.droppedBatches} batches (${r.droppedBytes} bytes) and ${r.droppedSegments} segments, rebuilt ${r.rebuiltIndexes} indexes`);
        }
      }
    }
    this.recovery.durationMs = performance.now() - started;
    // A new or empty directory has nothing to recover.
    if (this.topics.size === 0) this.recovery.clean = true;
    if (!this.recovery.clean) this.logger.info({ durationMs: this.recovery.durationMs }, 'recovery finished');
    this.startTimers();
  }

  private async readTopicConfig(name: string, topicDir: string): Promise<TopicConfig> {
    const stored = readGuardedJson(path.join(topicDir, TOPIC_FILE));
    if (stored !== null && typeof stored === 'object') {
      try {
        return resolveTopicConfig(stored as Partial<TopicConfig>, this.defaults);
      } catch {
        // fall through: rebuild from the directory
      }
    }
    const partitions = fs.readdirSync(topicDir).filter((n) => /^\d+$/.test(n)).map(Number);
    const config = resolveTopicConfig({ partitions: Math.max(1, ...partitions.map((p) => p + 1)) }, this.defaults);
    this.logger.warn({ topic: name }, `topic metadata of ${name} is missing or damaged; rebuilt with ${config.partitions} partitions and default settings`);
    await writeGuardedJsonAsync(path.join(topicDir, TOPIC_FILE), config);
    return config;
  }

  /** Opens (or creates) every partition of `topic`, OPEN_CONCURRENCY at a time, in partition order in the array. */
  private async openPartitions(topic: Topic, clean: boolean): Promise<void> {
    const numbers = Array.from({ length: topic.config.partitions }, (_, p) => p);
    const opened: PartitionLog[] = [];
    try {
      await forEachLimited(numbers, OPEN_CONCURRENCY, async (p) => {
        opened[p] = await this.openPartition(topic.name, p, topic.config, clean);
      });
    } catch (err) {
      await Promise.all(opened.filter((p) => p !== undefined).map((p) => p.close().catch(() => undefined)));
      throw err;
    }
    topic.partitions.push(...opened);
  }

  private openPartition(topic: string, partition: number, config: TopicConfig, clean: boolean): Promise<PartitionLog> {
    return PartitionLog.open({
      dir: path.join(this.dir, topic, String(partition)),
      topic,
      partition,
      config,
      flush: this.settings.flush,
      flushBytes: this.settings.flushBytes,
      clean,
      cache: this.cache,
      warmSegments: this.settings.warmSegments,
      hooks: this.settings.hooks,
      repair: this.settings.repair,
      onIndexRebuilt: (file) => this.logger.warn({ path: file }, `rebuilt the indexes of ${file} from its log`),
    });
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => void) => {
      if (ms <= 0) return;
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    // One pass at a time per kind, BACKGROUND_CONCURRENCY partitions in flight: a tick
    // over thousands of partitions shares the thread pool instead of flooding it.
    const pass = (fn: () => Promise<void>): (() => void) => {
      let running = false;
      return () => {
        if (running) return;
        running = true;
        void fn().finally(() => {
          running = false;
        });
      };
    };
    if (this.settings.flush === 'async') {
      every(this.settings.flushIntervalMs, pass(() => forEachLimited([...this.allPartitions()].filter((p) => p.hasUnflushed), BACKGROUND_CONCURRENCY, (p) => p.flushInBackground())));
    }
    if (this.settings.flush !== 'os') {
      every(this.settings.checkpointIntervalMs, pass(() => forEachLimited([...this.allPartitions()], BACKGROUND_CONCURRENCY, (p) => p.checkpoint().catch((err) => {
        this.logger.warn({ topic: p.topic, partition: p.partition, err: String(err) }, 'checkpoint failed');
      }))));
    }
    every(this.settings.retentionCheckIntervalMs, () => {
      this.enforceRetention().catch((err: unknown) => this.logger.warn({ err: String(err) }, 'retention failed'));
    });
  }

  private *allPartitions(): Iterable<PartitionLog> {
    for (const t of this.topics.values()) yield* t.partitions;
  }

  /** Creates a topic; ERR_TOPIC_EXISTS if it exists. */
  async createTopic(name: string, config: Partial<TopicConfig> = {}): Promise<TopicDescription> {
    this.ensureOpen();
    ensureTopicName(name);
    if (this.topics.has(name)) throw new CommitLogError(ErrorCode.TOPIC_EXISTS, `topic ${name} already exists`, { topic: name });
    const resolved = resolveTopicConfig({ ...config }, this.defaults);
    const topicDir = path.join(this.dir, name);
    const topic: Topic = { name, config: resolved, partitions: [] };
    this.topics.set(name, topic); // reserve the name while partitions are created
    try {
      fs.mkdirSync(topicDir, { recursive: true });
      await writeGuardedJsonAsync(path.join(topicDir, TOPIC_FILE), resolved);
      await fsyncDirAsync(this.dir);
      ensureLimitsFor(resolved.partitions, 0, `creating topic ${name}`);
      await this.openPartitions(topic, false);
      // The partition directories' names, durable (each partition made its own files durable).
      await fsyncDirAsync(topicDir);
    } catch (err) {
      this.topics.delete(name);
      for (const p of topic.partitions) await p.close().catch(() => undefined);
      fs.rmSync(topicDir, { recursive: true, force: true });
      throw ioError(err, `creating topic ${name} failed`, { topic: name });
    }
    return this.describeTopic(name);
  }

  /**
   * Grows `name` to `count` partitions (the new total, as Kafka's CreatePartitions):
   * the new ones are created empty and topic.json records the count. Partitions are
   * never removed; a count not above the current one is ERR_INVALID_ARGUMENT.
   */
  async addPartitions(name: string, count: number): Promise<TopicDescription> {
    const topic = this.topicOf(name);
    const current = topic.partitions.length;
    if (!Number.isSafeInteger(count) || count <= current || count > 10000) {
      throw invalidArgument(`topic ${name} has ${current} partitions: the new count must be an integer in [${current + 1}, 10000], got ${String(count)}`);
    }
    if (topic.growing) throw invalidArgument(`topic ${name} is already being given more partitions`);
    topic.growing = true;
    const opened: PartitionLog[] = [];
    try {
      ensureLimitsFor(count - current, 0, `adding partitions to topic ${name}`);
      const topicDir = path.join(this.dir, name);
      const numbers = Array.from({ length: count - current }, (_, i) => current + i);
      await forEachLimited(numbers, OPEN_CONCURRENCY, async (p) => {
        opened[p - current] = await this.openPartition(name, p, topic.config, false);
      });
      await fsyncDirAsync(topicDir);
      const config = { ...topic.config, partitions: count };
      await writeGuardedJsonAsync(path.join(topicDir, TOPIC_FILE), config);
      if (this.topics.get(name) !== topic) throw new CommitLogError(ErrorCode.UNKNOWN_TOPIC, `topic ${name} was deleted while partitions were added`, { topic: name });
      topic.config = config;
      topic.partitions.push(...opened);
    } catch (err) {
      for (const p of opened) if (p !== undefined) await p.close().catch(() => undefined);
      for (let p = current; p < count; p++) if (topic.partitions.length <= p) fs.rmSync(path.join(this.dir, name, String(p)), { recursive: true, force: true });
      throw ioError(err, `adding partitions to topic ${name} failed`, { topic: name });
    } finally {
      topic.growing = false;
    }
    return this.describeTopic(name);
  }

  /** Deletes a topic and its files. Segments held by readers are removed on release. */
  async deleteTopic(name: string): Promise<void> {
    const topic = this.topicOf(name);
    this.topics.delete(name);
    for (const p of topic.partitions) await p.destroy();
    fs.rmSync(path.join(this.dir, name), { recursive: true, force: true });
    await fsyncDirAsync(this.dir);
  }

  listTopics(): string[] {
    this.ensureOpen();
    return [...this.topics.keys()].sort();
  }

  describeTopic(name: string): TopicDescription {
    const topic = this.topicOf(name);
    return {
      name,
      config: { ...topic.config },
      partitions: topic.partitions.map((p) => ({
        partition: p.partition, logStartOffset: p.logStartOffset, nextOffset: p.nextOffset, highWatermark: p.highWatermark, sizeBytes: p.sizeBytes, diskBytes: p.diskBytes, segments: p.segmentCount,
      })),
    };
  }

  /** Appends records as one batch. Resolves per the flush policy with the offsets assigned. */
  append(topic: string, partition: number, records: ProducerRecord[]): Promise<AppendResult> {
    try {
      return this.partition(topic, partition).append(records);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * A new idempotent-producer id with epoch 0 (Kafka's InitProducerId): unique in this
   * data directory, never reused after a restart or a kill (producer-ids.ts).
   */
  async initProducerId(): Promise<{ producerId: number; producerEpoch: number }> {
    this.ensureOpen();
    this.producerIds ??= new ProducerIdAllocator(this.dir, () => 1 + Math.max(-1, ...[...this.allPartitions()].map((p) => p.producers.maxProducerId)));
    return { producerId: await this.producerIds.allocate(), producerEpoch: 0 };
  }

  /** Appends one complete RecordBatch v2 (CRC verified; base offset assigned). */
  appendBatch(topic: string, partition: number, batch: Buffer): Promise<AppendResult> {
    try {
      if (!Buffer.isBuffer(batch)) throw invalidArgument('batch must be a Buffer');
      return this.partition(topic, partition).appendBatch(batch);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Flushes every partition (or one topic's). */
  async flush(topic?: string): Promise<void> {
    this.ensureOpen();
    const parts = topic === undefined ? [...this.allPartitions()] : this.topicOf(topic).partitions;
    await Promise.all(parts.map((p) => p.flush()));
  }

  /** Runs retention on every partition now; resolves with what it deleted once the files are gone. */
  async enforceRetention(now = Date.now()): Promise<{ segments: number; bytes: number }> {
    this.ensureOpen();
    let segments = 0;
    let bytes = 0;
    const results = await Promise.all([...this.allPartitions()].map((p) => p.enforceRetention(now)));
    for (const r of results) {
      segments += r.segments;
      bytes += r.bytes;
    }
    return { segments, bytes };
  }

  /** Flushes, checkpoints and closes every partition, writes the clean marker, unlocks. */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    let allClean = true;
    await this.producerIds?.idle();
    for (const p of this.allPartitions()) {
      try {
        await p.close();
        if (p.isFailed) allClean = false;
      } catch (err) {
        allClean = false;
        this.logger.warn({ topic: p.topic, partition: p.partition, err: String(err) }, 'closing partition failed');
      }
    }
    if (allClean) {
      fs.writeFileSync(path.join(this.dir, CLEAN_MARKER), '');
      await fsyncDirAsync(this.dir);
    }
    fs.closeSync(this.lockFd);
    this.lockFd = -1;
  }

  private async abandon(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const p of this.allPartitions()) await p.close().catch(() => undefined);
    if (this.lockFd >= 0) fs.closeSync(this.lockFd);
    this.lockFd = -1;
  }
}

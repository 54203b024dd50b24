/**
 * Committed offsets of consumer groups, in `<dir>/.offsets/`: one file per group,
 * `<xxh3 of the group name>.json`, in the XXH3-guarded format of checkpoint.ts
 * (one line of JSON, then `xxh3:<16 hex digits>` over it):
 *
 *   {"v":1,"group":"<name>","topics":{"<topic>":{"<partition>":{"offset":N,"metadata":"…"}}}}
 *
 * The file name is a hash because a group name may hold any character; the name
 * inside the file is checked on load, so a (64-bit) collision reads as an empty group
 * and is reported, never as another group's offsets.
 *
 * Concurrency: one store per directory, in one process (the CommitLog's `.lock` on
 * the same data directory guards it). All calls run on the JS thread: a commit updates
 * the in-memory map at once (a fetch right after it sees it) and then writes the whole
 * group file on the thread pool. Writes of one group run one at a time; commits that
 * arrive while one runs share the next write (group commit), so a consumer committing
 * often costs at most one fsync in flight per group.
 *
 * Crash: each write goes to `<file>.tmp`, is fsynced, renamed over the file and the
 * directory fsynced, so a crash leaves the old or the new file, never a mix. A commit
 * resolves only after its write is durable. A file that is torn or fails its checksum
 * (a disk fault; rename cannot tear) reads as a group with no offsets, with a warning:
 * consumers then restart from their reset policy rather than from garbage.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CommitLogError, ErrorCode, invalidArgument, ioError } from '../errors.js';
import { xxh3Hex } from '../hash.js';
import { fsyncDir, fsyncDirAsync, readGuardedJson, writeGuardedJsonAsync } from './checkpoint.js';

const OFFSETS_DIR = '.offsets';
export const MAX_GROUP_NAME_LENGTH = 255;
/** Kafka's offset.metadata.max.bytes. */
const MAX_OFFSET_METADATA_BYTES = 4096;

export interface OffsetCommitEntry {
  topic: string;
  partition: number;
  /** The next offset the group will consume. */
  offset: number;
  metadata?: string;
}

export interface CommittedOffset {
  partition: number;
  /** -1 when the group has committed nothing for the partition. */
  offset: number;
  metadata: string;
}

export interface GroupOffsets {
  group: string;
  /** topic -> partition -> committed offset. */
  topics: Record<string, Record<number, { offset: number; metadata: string }>>;
}

export interface OffsetsStoreOptions {
  logger?: { warn(fields: object, message: string): void };
}

interface Stored {
  offset: number;
  metadata: string;
}

interface Group {
  name: string;
  file: string;
  topics: Map<string, Map<number, Stored>>;
  /** The write in progress, if any. */
  writing: Promise<void> | null;
  /** The write queued behind it, which every commit made meanwhile waits for. */
  next: Promise<void> | null;
}

export class OffsetsStore {
  /** `<data dir>/.offsets` */
  readonly dir: string;
  private readonly groups = new Map<string, Group>();
  private allLoaded = false;
  private readonly logger: OffsetsStoreOptions['logger'];

  /** `dataDir` is the CommitLog's directory; the store lives in its `.offsets/`. */
  constructor(dataDir: string, options: OffsetsStoreOptions = {}) {
    if (typeof dataDir !== 'string' || dataDir.length === 0) throw invalidArgument('dataDir must be a non-empty string');
    this.dir = path.join(path.resolve(dataDir), OFFSETS_DIR);
    this.logger = options.logger;
    try {
      if (!fs.existsSync(this.dir)) {
        fs.mkdirSync(this.dir, { recursive: true });
        fsyncDir(path.dirname(this.dir));
      }
    } catch (err) {
      throw ioError(err, 'creating the offsets directory failed', { path: this.dir });
    }
  }

  /**
   * Stores the entries for `group` (replacing earlier offsets of the same partitions)
   * and resolves once they are durable.
   */
  commit(group: string, entries: readonly OffsetCommitEntry[]): Promise<void> {
    try {
      ensureGroupName(group);
      if (!Array.isArray(entries)) throw invalidArgument('entries must be an array');
      const checked = entries.map((e, i) => checkEntry(e, i));
      if (checked.length === 0) return Promise.resolve();
      const g = this.load(group);
      for (const e of checked) {
        let partitions = g.topics.get(e.topic);
        if (partitions === undefined) g.topics.set(e.topic, (partitions = new Map()));
        partitions.set(e.partition, { offset: e.offset, metadata: e.metadata });
      }
      return this.scheduleWrite(g);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The group's committed offsets of `topic`'s partitions, in the order asked; -1 where none. */
  fetch(group: string, topic: string, partitions: readonly number[]): CommittedOffset[] {
    ensureGroupName(group);
    ensureTopic(topic);
    if (!Array.isArray(partitions)) throw invalidArgument('partitions must be an array');
    const stored = this.load(group).topics.get(topic);
    return partitions.map((partition) => {
      ensurePartition(partition);
      const s = stored?.get(partition);
      return { partition, offset: s?.offset ?? -1, metadata: s?.metadata ?? '' };
    });
  }

  /** Every group with at least one committed offset, sorted. */
  listGroups(): string[] {
    this.loadAll();
    return [...this.groups.values()].filter((g) => g.topics.size > 0).map((g) => g.name).sort();
  }

  /** All of the group's committed offsets, or null when it has none. */
  describe(group: string): GroupOffsets | null {
    ensureGroupName(group);
    const g = this.load(group);
    if (g.topics.size === 0) return null;
    const topics: GroupOffsets['topics'] = {};
    for (const [topic, partitions] of [...g.topics].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const out: Record<number, Stored> = {};
      for (const [p, s] of [...partitions].sort(([a], [b]) => a - b)) out[p] = { ...s };
      topics[topic] = out;
    }
    return { group: g.name, topics };
  }

  /**
   * Forgets every group's offsets of `topic` (call after deleting the topic, so a
   * topic created later under the same name starts with no committed offsets).
   * Resolves once the rewritten files are durable.
   */
  async dropTopic(topic: string): Promise<void> {
    ensureTopic(topic);
    this.loadAll();
    const writes: Promise<void>[] = [];
    for (const g of this.groups.values()) {
      if (g.topics.delete(topic)) writes.push(this.scheduleWrite(g));
    }
    await Promise.all(writes);
  }

  /** Forgets the offsets of every topic not in `topics` (topics deleted while no broker ran). */
  async retainTopics(topics: Iterable<string>): Promise<void> {
    const keep = new Set(topics);
    this.loadAll();
    const writes: Promise<void>[] = [];
    for (const g of this.groups.values()) {
      let changed = false;
      for (const topic of [...g.topics.keys()]) {
        if (!keep.has(topic)) changed = g.topics.delete(topic) || changed;
      }
      if (changed) writes.push(this.scheduleWrite(g));
    }
    await Promise.all(writes);
  }

  /** Resolves once every write started so far has finished (successfully or not). */
  async close(): Promise<void> {
    for (const g of this.groups.values()) {
      await (g.next ?? g.writing)?.catch(() => undefined);
    }
  }

  // ---- files ----

  private fileOf(group: string): string {
    return path.join(this.dir, `${xxh3Hex(group)}.json`);
  }

  private load(group: string): Group {
    let g = this.groups.get(group);
    if (g !== undefined) return g;
    const file = this.fileOf(group);
    g = { name: group, file, topics: this.allLoaded ? new Map() : this.read(file, group), writing: null, next: null };
    this.groups.set(group, g);
    return g;
  }

  /** Reads every group file once; later calls see the in-memory state. */
  private loadAll(): void {
    if (this.allLoaded) return;
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (err) {
      throw ioError(err, 'listing the offsets directory failed', { path: this.dir });
    }
    for (const name of names) {
      if (!/^[0-9a-f]{16}\.json$/.test(name)) continue;
      const file = path.join(this.dir, name);
      const stored = this.parse(file, readGuardedJson(file), undefined);
      if (stored !== null && !this.groups.has(stored.group)) {
        this.groups.set(stored.group, { name: stored.group, file, topics: stored.topics, writing: null, next: null });
      }
    }
    this.allLoaded = true;
  }

  private read(file: string, group: string): Map<string, Map<number, Stored>> {
    return this.parse(file, readGuardedJson(file), group)?.topics ?? new Map();
  }

  /** The file's contents, or null (with a warning) when it is damaged or names another group. */
  private parse(file: string, value: unknown, expected: string | undefined): { group: string; topics: Map<string, Map<number, Stored>> } | null {
    if (value === null) {
      if (fs.existsSync(file)) this.logger?.warn({ path: file }, `committed offsets file ${file} is torn or fails its checksum; the group's offsets are ignored`);
      return null;
    }
    const v = value as { v?: unknown; group?: unknown; topics?: unknown };
    if (typeof v !== 'object' || v.v !== 1 || typeof v.group !== 'string' || typeof v.topics !== 'object' || v.topics === null) {
      this.logger?.warn({ path: file }, `committed offsets file ${file} has an unknown layout; ignored`);
      return null;
    }
    if (expected !== undefined && v.group !== expected) {
      this.logger?.warn({ path: file }, `committed offsets file ${file} belongs to group ${JSON.stringify(v.group)}, not ${JSON.stringify(expected)} (hash collision); ignored`);
      return null;
    }
    const topics = new Map<string, Map<number, Stored>>();
    for (const [topic, partitions] of Object.entries(v.topics as Record<string, unknown>)) {
      if (typeof partitions !== 'object' || partitions === null) continue;
      const m = new Map<number, Stored>();
      for (const [p, s] of Object.entries(partitions as Record<string, unknown>)) {
        const partition = Number(p);
        const stored = s as Partial<Stored> | null;
        if (!Number.isSafeInteger(partition) || partition < 0 || stored === null || typeof stored !== 'object') continue;
        if (!Number.isSafeInteger(stored.offset) || (stored.offset as number) < 0) continue;
        m.set(partition, { offset: stored.offset as number, metadata: typeof stored.metadata === 'string' ? stored.metadata : '' });
      }
      if (m.size > 0) topics.set(topic, m);
    }
    return { group: v.group, topics };
  }

  /** Resolves after a write that starts after this call (so it holds the current state) is durable. */
  private scheduleWrite(g: Group): Promise<void> {
    if (g.next !== null) return g.next;
    if (g.writing === null) return this.startWrite(g);
    const next = g.writing.catch(() => undefined).then(() => {
      g.next = null;
      return this.startWrite(g);
    });
    g.next = next;
    return next;
  }

  private startWrite(g: Group): Promise<void> {
    const writing = writeGroupFile(g).finally(() => {
      if (g.writing === writing) g.writing = null;
    });
    g.writing = writing;
    return writing;
  }
}

/**
 * A guarded file written on the thread pool (writeGuardedJsonAsync): a broker commits
 * offsets at its consumers' pace, and an fsync on the event loop would stall every
 * connection meanwhile.
 */
async function writeGroupFile(g: Group): Promise<void> {
  if (g.topics.size === 0) return removeGroupFile(g.file);
  const topics: Record<string, Record<string, Stored>> = {};
  for (const [topic, partitions] of g.topics) {
    const out: Record<string, Stored> = {};
    for (const [p, s] of partitions) out[p] = s;
    topics[topic] = out;
  }
  await writeGuardedJsonAsync(g.file, { v: 1, group: g.name, topics }, `writing the committed offsets of group ${JSON.stringify(g.name)} failed`);
}

/** A group left with no offsets (its topics were deleted) has no file. */
async function removeGroupFile(file: string): Promise<void> {
  try {
    await fs.promises.rm(file, { force: true });
    await fsyncDirAsync(path.dirname(file));
  } catch (err) {
    throw ioError(err, 'removing a committed offsets file failed', { path: file });
  }
}

function ensureGroupName(group: unknown): asserts group is string {
  if (typeof group !== 'string' || group.length === 0) throw invalidArgument('group must be a non-empty string');
  if (group.length > MAX_GROUP_NAME_LENGTH) throw invalidArgument(`group name is ${group.length} characters, more than ${MAX_GROUP_NAME_LENGTH}`);
}

function ensureTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0) throw new CommitLogError(ErrorCode.INVALID_TOPIC, 'topic name must be a non-empty string');
}

function ensurePartition(partition: unknown): asserts partition is number {
  if (!Number.isSafeInteger(partition) || (partition as number) < 0) throw invalidArgument(`partition must be a non-negative integer, got ${String(partition)}`);
}

function checkEntry(e: OffsetCommitEntry, i: number): Required<OffsetCommitEntry> {
  if (e === null || typeof e !== 'object') throw invalidArgument(`entries[${i}] must be an object`);
  ensureTopic(e.topic);
  ensurePartition(e.partition);
  if (!Number.isSafeInteger(e.offset) || e.offset < 0) throw invalidArgument(`entries[${i}].offset must be a non-negative integer, got ${String(e.offset)}`);
  const metadata = e.metadata ?? '';
  if (typeof metadata !== 'string') throw invalidArgument(`entries[${i}].metadata must be a string`);
  if (Buffer.byteLength(metadata) > MAX_OFFSET_METADATA_BYTES) {
    throw invalidArgument(`entries[${i}].metadata is ${Buffer.byteLength(metadata)} bytes, more than ${MAX_OFFSET_METADATA_BYTES}`);
  }
  return { topic: e.topic, partition: e.partition, offset: e.offset, metadata };
}

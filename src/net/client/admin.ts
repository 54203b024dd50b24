/**
 * Admin: topics, offsets and consumer-group lag on a broker, over one connection.
 * The calls mirror CommitLog's (createTopic, deleteTopic, listTopics, describeTopic,
 * the offset lookups) but return promises, and a topic description carries what the
 * protocol's Metadata response has: per partition its log start and next offset (no
 * config, sizes or segment counts).
 *
 * Connecting is lazy (first call) and retried with backoff on connection failures; a
 * request is not retried once sent (createTopic twice would answer ERR_TOPIC_EXISTS).
 * Errors are the broker's codes (ERR_UNKNOWN_TOPIC, ERR_TOPIC_EXISTS, ...) or ERR_IO
 * for the connection. Calls may run concurrently; they pipeline on the connection.
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';
import { backoffMs, intOption, isRetriable, parseBroker, retryPolicy, sleep, type ClientOptions, type RetryOptions, type RetryPolicy } from './client-types.js';
import { Connection, type ConnectionOptions } from './connection.js';
import type { CreateTopicRequest, ListOffsetsRequest, RequestBody, ResponseBody, TopicMetadata } from '../protocol/messages.js';
import { CONSUMER_PROTOCOL_TYPE, decodeAssignment, decodeSubscription, type TopicPartitions } from '../groups/consumer-protocol.js';

/** `fn()`, or `fallback` when it throws (a member's metadata in a format we cannot read). */
function safely<T>(fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

export interface AdminOptions extends ClientOptions, RetryOptions {
  /** Reconnect attempts after a connection failure; default 5 (an admin call should answer, not wait out an outage). */
  retries?: number;
}

export interface CreateTopicOptions {
  partitions: number;
  /** Absent: the broker's default. */
  segmentBytes?: number;
  /** -1: unlimited; absent: the broker's default. */
  retentionBytes?: number;
  /** -1: unlimited; absent: the broker's default. */
  retentionMs?: number;
}

/** CommitLog's PartitionDescription, as far as the protocol carries it. */
export interface RemotePartitionDescription {
  partition: number;
  logStartOffset: number;
  /** The log end offset: where the next record goes. */
  nextOffset: number;
  /** Bytes of log data stored, not counting indexes. */
  sizeBytes: number;
  segments: number;
}

export interface RemoteTopicDescription {
  name: string;
  partitions: RemotePartitionDescription[];
}

/** 'earliest', 'latest', or a time (Date or ms since the epoch): the first offset at or after it. */
export type OffsetQuery = 'earliest' | 'latest' | Date | number;

export interface GroupPartitionOffsets {
  partition: number;
  /** The next offset the group will consume; null when it committed nothing here. */
  committedOffset: number | null;
  logStartOffset: number;
  nextOffset: number;
  /** Records not yet consumed: nextOffset - (committedOffset ?? logStartOffset), at least 0 (0 when committedPastEnd). */
  lag: number;
  /**
   * The committed offset lies past the log end (the log lost records it had, e.g. to a
   * recovery): the group's consumer will reset it (autoOffsetReset).
   */
  committedPastEnd: boolean;
  /** The committed offset lies below the log start (retention deleted it): the group's consumer will reset it. */
  committedBeforeStart: boolean;
  /** The member the current generation assigned this partition to; null when none (no members, or not subscribed). */
  memberId: string | null;
}

export interface GroupTopicOffsets {
  topic: string;
  partitions: GroupPartitionOffsets[];
  /** Sum of the partitions' lag. */
  lag: number;
}

/** A live member of a group, as the coordinator knows it (members of Kafka clients included). */
export interface GroupMemberInfo {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** Topics subscribed to; null when the member's protocol is not Kafka's "consumer" format. */
  topics: string[] | null;
  /** Its partitions in the current generation (empty during a rebalance). */
  assignment: TopicPartitions[];
}

export interface GroupDescription {
  group: string;
  /** Empty, PreparingRebalance, CompletingRebalance, Stable; Dead for a group with neither members nor offsets. */
  state: string;
  protocolType: string;
  /** The assignor of the current generation ('' when none). */
  protocolName: string;
  generationId: number;
  leaderId: string;
  members: GroupMemberInfo[];
  /** The topic asked for; without one, every topic a member subscribes to or the group committed offsets for. */
  topics: GroupTopicOffsets[];
  /** The first of `topics` (the one asked for): its name, partitions and lag; '' / [] / 0 when there is none. */
  topic: string;
  partitions: GroupPartitionOffsets[];
  lag: number;
}

export interface GroupListing {
  group: string;
  state: string;
  /** '' for a group known only by its committed offsets. */
  protocolType: string;
}

export class Admin {
  private readonly connectionOptions: ConnectionOptions;
  private readonly retries: number;
  private readonly retry: RetryPolicy;
  private conn: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: AdminOptions) {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options must be an object');
    const { host, port } = parseBroker(options.broker);
    this.retries = intOption('retries', options.retries, 5);
    this.retry = retryPolicy(options);
    this.connectionOptions = {
      host,
      port,
      clientId: options.clientId,
      connectTimeoutMs: options.connectTimeoutMs,
      requestTimeoutMs: options.requestTimeoutMs,
      maxFrameBytes: options.maxFrameBytes,
    };
  }

  /** Creates a topic; ERR_TOPIC_EXISTS if it exists, ERR_INVALID_TOPIC for a bad name. */
  async createTopic(name: string, options: CreateTopicOptions): Promise<void> {
    if (typeof options !== 'object' || options === null) throw invalidArgument('options must be an object with partitions');
    if (options.partitions === undefined) throw invalidArgument('options.partitions is required');
    const request: CreateTopicRequest = { name, partitions: intOption('partitions', options.partitions, 1, 1, 0xffffffff) };
    if (options.segmentBytes !== undefined) request.segmentBytes = options.segmentBytes;
    if (options.retentionBytes !== undefined) request.retentionBytes = options.retentionBytes;
    if (options.retentionMs !== undefined) request.retentionMs = options.retentionMs;
    await this.call({ case: 'createTopic', value: request });
  }

  /** Deletes a topic, its data and the groups' committed offsets for it. */
  async deleteTopic(name: string): Promise<void> {
    await this.call({ case: 'deleteTopic', value: { name } });
  }

  /** Every topic's name, sorted. */
  async listTopics(): Promise<string[]> {
    const topics = await this.metadata([]);
    return topics.map((t) => t.name).sort();
  }

  /** The topic's partitions with their log start and next offsets; ERR_UNKNOWN_TOPIC. */
  async describeTopic(name: string): Promise<RemoteTopicDescription> {
    const topic = await this.topicMetadata(name);
    return {
      name: topic.name,
      partitions: topic.partitions
        .map((p) => ({ partition: p.partition, logStartOffset: p.earliestOffset, nextOffset: p.latestOffset, sizeBytes: p.sizeBytes, segments: p.segments }))
        .sort((a, b) => a.partition - b.partition),
    };
  }

  /**
   * 'earliest': the log start offset; 'latest': the next offset to be written; a time:
   * the first offset whose record timestamp is at or after it, null when there is none.
   */
  async listOffsets(topic: string, partition: number, query: OffsetQuery): Promise<number | null> {
    let value: ListOffsetsRequest;
    if (query === 'earliest') value = { topic, partition, spec: 'EARLIEST', timestamp: 0 };
    else if (query === 'latest') value = { topic, partition, spec: 'LATEST', timestamp: 0 };
    else {
      const ms = query instanceof Date ? query.getTime() : query;
      if (typeof ms !== 'number' || !Number.isSafeInteger(ms)) throw invalidArgument(`query must be 'earliest', 'latest', a Date or ms since the epoch, got ${String(query)}`);
      value = { topic, partition, spec: 'TIMESTAMP', timestamp: ms };
    }
    const body = await this.call({ case: 'listOffsets', value });
    const offset = body?.case === 'listOffsets' ? body.value.offset : -1;
    return offset >= 0 ? offset : null;
  }

  /**
   * The group's members and their partitions (from the broker's coordinator, whichever
   * protocol they speak) and, per partition of `topic` (or, without one, of every
   * topic its members subscribe to or it committed offsets for): the committed offset,
   * the log's offsets, the lag, the owning member, and whether the committed offset
   * lies outside the log (committedPastEnd, committedBeforeStart), which a lag of 0
   * would otherwise hide. ERR_UNKNOWN_TOPIC for a `topic` that does not exist.
   */
  async describeGroup(group: string, topic?: string): Promise<GroupDescription> {
    if (typeof group !== 'string' || group.length === 0) throw invalidArgument('group must be a non-empty string');
    const described = await this.call({ case: 'describeGroup', value: { group } });
    const d = described?.case === 'describeGroup' ? described.value : undefined;
    const consumer = d?.protocolType === CONSUMER_PROTOCOL_TYPE;
    const members: GroupMemberInfo[] = (d?.members ?? []).map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId ?? null,
      clientId: m.clientId,
      clientHost: m.clientHost,
      topics: consumer ? safely(() => decodeSubscription(m.metadata).topics, null) : null,
      assignment: consumer ? safely(() => decodeAssignment(m.assignment).partitions, []) : [],
    }));
    const owners = new Map<string, string>();
    for (const m of members) for (const tp of m.assignment) for (const p of tp.partitions) owners.set(`${tp.topic}\u0000${p}`, m.memberId);
    let names: string[];
    if (topic !== undefined) {
      names = [topic];
    } else {
      const subscribed = new Set(members.flatMap((m) => [...(m.topics ?? []), ...m.assignment.map((tp) => tp.topic)]));
      names = [...new Set([...subscribed, ...(await this.listTopics())])].sort();
    }
    const topics: GroupTopicOffsets[] = [];
    for (const name of names) {
      let offsets: GroupTopicOffsets;
      try {
        offsets = await this.topicOffsets(group, name, owners);
      } catch (err) {
        // A subscribed topic that does not exist (yet) has no offsets to show.
        if (topic === undefined && err instanceof CommitLogError && err.code === ErrorCode.UNKNOWN_TOPIC) continue;
        throw err;
      }
      // Without a topic asked for, a topic nobody subscribes to is shown only if the group committed there.
      const wanted = topic !== undefined || members.some((m) => m.topics?.includes(name) || m.assignment.some((tp) => tp.topic === name))
        || offsets.partitions.some((p) => p.committedOffset !== null);
      if (wanted) topics.push(offsets);
    }
    const first = topics[0];
    return {
      group,
      state: d?.state ?? 'Dead',
      protocolType: d?.protocolType ?? '',
      protocolName: d?.protocolName ?? '',
      generationId: d?.generationId ?? -1,
      leaderId: d?.leaderId ?? '',
      members,
      topics,
      topic: first?.topic ?? '',
      partitions: first?.partitions ?? [],
      lag: first?.lag ?? 0,
    };
  }

  /** Every group the broker knows: those with members (either protocol) and those with committed offsets. */
  async listGroups(): Promise<GroupListing[]> {
    const body = await this.call({ case: 'listGroups', value: {} });
    return body?.case === 'listGroups' ? body.value.groups.map((g) => ({ group: g.group, state: g.state, protocolType: g.protocolType })) : [];
  }

  /** Offsets and lag of `group` on `topic`, with each partition's owner from `owners`; ERR_UNKNOWN_TOPIC. */
  private async topicOffsets(group: string, topic: string, owners: Map<string, string>): Promise<GroupTopicOffsets> {
    // Both requests leave at once; the connection answers them in order.
    const [meta, fetched] = await Promise.all([
      this.topicMetadata(topic),
      this.call({ case: 'offsetFetch', value: { group, topic, partitions: [] } }),
    ]);
    const committed = new Map<number, number>();
    if (fetched?.case === 'offsetFetch') for (const c of fetched.value.offsets) if (c.offset >= 0) committed.set(c.partition, c.offset);
    const partitions = meta.partitions
      .map((p): GroupPartitionOffsets => {
        const c = committed.get(p.partition);
        return {
          partition: p.partition,
          committedOffset: c ?? null,
          logStartOffset: p.earliestOffset,
          nextOffset: p.latestOffset,
          lag: Math.max(0, p.latestOffset - (c ?? p.earliestOffset)),
          committedPastEnd: c !== undefined && c > p.latestOffset,
          committedBeforeStart: c !== undefined && c < p.earliestOffset,
          memberId: owners.get(`${topic}\u0000${p.partition}`) ?? null,
        };
      })
      .sort((a, b) => a.partition - b.partition);
    return { topic, partitions, lag: partitions.reduce((sum, p) => sum + p.lag, 0) };
  }

  /** Closes the connection once pending calls are answered. Later calls reject with ERR_LOG_CLOSED. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.connecting?.catch(() => undefined);
      await this.conn?.close();
    })();
    return this.closing;
  }

  // ---- internals ------------------------------------------------------------------

  private async metadata(topics: string[]): Promise<TopicMetadata[]> {
    const body = await this.call({ case: 'metadata', value: { topics } });
    return body?.case === 'metadata' ? body.value.topics : [];
  }

  private async topicMetadata(name: string): Promise<TopicMetadata> {
    const topic = (await this.metadata([name])).find((t) => t.name === name);
    if (topic === undefined) throw new CommitLogError(ErrorCode.UNKNOWN_TOPIC, `unknown topic ${name}`, { topic: name });
    return topic;
  }

  private async call(body: RequestBody): Promise<ResponseBody | undefined> {
    const conn = await this.connection();
    const response = await conn.request(body);
    return response.header.body;
  }

  private connection(): Promise<Connection> {
    if (this.closing !== undefined) return Promise.reject(new CommitLogError(ErrorCode.LOG_CLOSED, 'admin client is closed'));
    if (this.conn !== undefined && this.conn.isOpen) return Promise.resolve(this.conn);
    this.connecting ??= (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          this.conn = await Connection.connect(this.connectionOptions);
          return this.conn;
        } catch (err) {
          if (attempt >= this.retries || !isRetriable(err)) throw err;
          await sleep(backoffMs(attempt, this.retry.backoffMs, this.retry.backoffMaxMs));
        }
      }
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }
}

/**
 * A consumer's membership in a group: the client half of Kafka's classic group
 * protocol (eager rebalancing), over any transport that reaches the broker's group
 * coordinator (src/net/broker/coordinator.ts).
 *
 *   join ──> (leader: assign) ──> sync ──> assigned: heartbeat every heartbeatIntervalMs
 *     ^                                          │ REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION /
 *     └──── revoke (the application commits) <───┘ UNKNOWN_MEMBER / session lost
 *
 * - Join: protocol type "consumer", one protocol per assignor (its name, the
 *   subscription in Kafka's consumer-protocol bytes), so members of Kafka clients with
 *   the same assignor names can share the group. A first join may be answered
 *   ERR_MEMBER_ID_REQUIRED with an id to join again with (KIP-394).
 * - The leader (the coordinator names it) decodes every member's subscription, asks
 *   for the partition counts of the topics subscribed, runs the chosen assignor and
 *   hands the assignments to SyncGroup; the others send an empty SyncGroup.
 * - Assigned: `onAssigned` is awaited before the first heartbeat; heartbeats run on
 *   a timer, never on the record loop. A heartbeat answered REBALANCE_IN_PROGRESS
 *   ends the generation: `onRevoked` is awaited (the Consumer commits the positions
 *   of the partitions it gives up: commits are allowed while the group prepares the
 *   rebalance) and the member joins again. ILLEGAL_GENERATION and UNKNOWN_MEMBER end
 *   it too (the commit would be refused; the member id is dropped for the latter).
 *   A heartbeat that cannot reach the broker is retried; once no heartbeat has got
 *   through for sessionTimeoutMs the coordinator has removed the member, so its
 *   partitions are revoked locally (`lost`) and it joins again as a new member.
 * - close(): the partitions are revoked (the Consumer commits), then LeaveGroup, so
 *   the others rebalance at once rather than after the session timeout.
 * Errors that no retry can fix (INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT,
 * FENCED_INSTANCE_ID, GROUP_LIMIT, an assignor that throws) stop the member and
 * reach `onError`.
 */
import { CommitLogError, ErrorCode, type ErrorCodeValue } from '../../errors.js';
import type { GroupProtocol, JoinGroupRequest, JoinGroupResult, SyncGroupRequest, SyncGroupResult } from '../broker/coordinator-types.js';
import type { Assignor, AssignorMember } from '../groups/assignors.js';
import {
  CONSUMER_PROTOCOL_TYPE, decodeAssignment, decodeSubscription, encodeAssignment, encodeSubscription, type TopicPartitions,
} from '../groups/consumer-protocol.js';
import { backoffMs, isRetriable } from './client-types.js';

/** What a member needs of the broker; the native protocol's implementation is in group-transport.ts. */
export interface GroupTransport {
  join(req: JoinGroupRequest): Promise<JoinGroupResult>;
  sync(req: SyncGroupRequest): Promise<SyncGroupResult>;
  heartbeat(req: { groupId: string; memberId: string; generationId: number; groupInstanceId: string | null }): Promise<{ error: ErrorCodeValue | null }>;
  leave(req: { groupId: string; memberId: string; groupInstanceId: string | null }): Promise<{ error: ErrorCodeValue | null }>;
  /** Partition counts of the topics (a topic that does not exist is left out). */
  partitionCounts(topics: readonly string[]): Promise<Map<string, number>>;
  /** Abandons a request under way (a parked JoinGroup) so close() need not wait for the rebalance; later requests work. */
  interrupt?(): void;
}

export interface GroupMemberOptions {
  groupId: string;
  topics: readonly string[];
  assignors: readonly Assignor[];
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Static membership (Kafka's group.instance.id); null for a dynamic member. */
  groupInstanceId: string | null;
  clientId?: string;
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
}

export interface GroupMemberHooks {
  /** The partitions of a new generation; awaited before the first heartbeat. */
  onAssigned(partitions: TopicPartitions[], generationId: number): void | Promise<void>;
  /**
   * The partitions are given up. `lost` is true when the member was dropped by the
   * coordinator (its commits would be refused); false when they may still be committed.
   */
  onRevoked(partitions: TopicPartitions[], lost: boolean): void | Promise<void>;
  /** The member stopped for good (see the head of this file). */
  onError(err: CommitLogError): void;
}

const FATAL = new Set<string>([
  ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ErrorCode.INVALID_SESSION_TIMEOUT, ErrorCode.FENCED_INSTANCE_ID,
  ErrorCode.GROUP_LIMIT, ErrorCode.INVALID_ARGUMENT,
]);

type Ended = 'rebalance' | 'illegal-generation' | 'unknown-member' | 'lost' | 'closed';

export class GroupMember {
  private memberId = '';
  private generation = -1;
  private assigned: TopicPartitions[] = [];
  private closed = false;
  private running: Promise<void> | undefined;
  /** Resolves the wait of the assigned phase (heartbeats) with why it ended. */
  private endAssigned: ((why: Ended) => void) | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastHeartbeatOk = 0;
  private heartbeating = false;

  constructor(
    private readonly options: GroupMemberOptions,
    private readonly transport: GroupTransport,
    private readonly hooks: GroupMemberHooks,
  ) {}

  /** The member id and generation to commit with (-1 / '' while not in a generation). */
  get commitIdentity(): { memberId: string; generationId: number; groupInstanceId: string | null } {
    return { memberId: this.memberId, generationId: this.generation, groupInstanceId: this.options.groupInstanceId };
  }

  /** The partitions of the current generation. */
  get assignment(): TopicPartitions[] {
    return this.assigned;
  }

  start(): void {
    this.running ??= this.run().catch((err: unknown) => {
      if (!this.closed) this.hooks.onError(asError(err));
    });
  }

  /** Revokes (awaiting onRevoked), leaves the group and stops; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return this.running;
    this.closed = true;
    if (this.endAssigned !== undefined) this.endAssigned('closed');
    else this.transport.interrupt?.();
    await this.running;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      let joined: JoinGroupResult;
      try {
        joined = await this.transport.join(this.joinRequest());
      } catch (err) {
        if (!isRetriable(err)) throw err;
        await this.backoff(attempt++);
        continue;
      }
      if (this.closed) {
        if (joined.error === null) this.memberId = joined.memberId;
        break;
      }
      if (joined.error === ErrorCode.MEMBER_ID_REQUIRED) {
        this.memberId = joined.memberId;
        continue;
      }
      if (joined.error !== null) {
        if (FATAL.has(joined.error)) throw new CommitLogError(joined.error, `group ${this.options.groupId}: join refused (${joined.error})`);
        if (joined.error === ErrorCode.UNKNOWN_MEMBER) this.memberId = '';
        await this.backoff(attempt++);
        continue;
      }
      this.memberId = joined.memberId;
      this.generation = joined.generationId;
      const assignments = joined.leaderId === joined.memberId ? await this.assign(joined) : [];
      let synced: SyncGroupResult;
      try {
        synced = await this.transport.sync({
          groupId: this.options.groupId, memberId: this.memberId, generationId: this.generation,
          groupInstanceId: this.options.groupInstanceId, assignments,
        });
      } catch (err) {
        if (!isRetriable(err)) throw err;
        await this.backoff(attempt++);
        continue;
      }
      if (synced.error !== null) {
        if (FATAL.has(synced.error)) throw new CommitLogError(synced.error, `group ${this.options.groupId}: sync refused (${synced.error})`);
        if (synced.error === ErrorCode.UNKNOWN_MEMBER) this.memberId = '';
        this.generation = -1;
        continue;
      }
      attempt = 0;
      this.assigned = decodeAssignment(synced.assignment).partitions;
      await this.hooks.onAssigned(this.assigned, this.generation);
      const why = await this.heartbeatUntilEnd();
      const lost = why === 'lost' || why === 'unknown-member' || why === 'illegal-generation';
      const revoked = this.assigned;
      this.assigned = [];
      await this.hooks.onRevoked(revoked, lost);
      if (why === 'unknown-member' || why === 'lost') this.memberId = '';
      this.generation = why === 'closed' ? this.generation : -1;
    }
    if (this.memberId !== '') {
      await this.transport.leave({ groupId: this.options.groupId, memberId: this.memberId, groupInstanceId: this.options.groupInstanceId }).catch(() => undefined);
    }
    this.generation = -1;
  }

  private joinRequest(): JoinGroupRequest {
    const metadata = encodeSubscription({ version: 0, topics: [...this.options.topics] });
    const protocols: GroupProtocol[] = this.options.assignors.map((a) => ({ name: a.name, metadata }));
    return {
      groupId: this.options.groupId,
      memberId: this.memberId,
      groupInstanceId: this.options.groupInstanceId,
      clientId: this.options.clientId,
      sessionTimeoutMs: this.options.sessionTimeoutMs,
      rebalanceTimeoutMs: this.options.rebalanceTimeoutMs,
      protocolType: CONSUMER_PROTOCOL_TYPE,
      protocols,
      requireKnownMemberId: true,
    };
  }

  /** The leader's part: every member's partitions under the chosen assignor. */
  private async assign(joined: JoinGroupResult): Promise<{ memberId: string; assignment: Buffer }[]> {
    const assignor = this.options.assignors.find((a) => a.name === joined.protocolName);
    if (assignor === undefined) {
      throw new CommitLogError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, `group ${this.options.groupId} chose protocol ${String(joined.protocolName)}, which this member does not offer`);
    }
    const members: AssignorMember[] = joined.members.map((m) => {
      const sub = decodeSubscription(m.metadata);
      return { memberId: m.memberId, topics: sub.topics, userData: sub.userData };
    });
    const topics = [...new Set(members.flatMap((m) => m.topics))].sort();
    const counts = await this.transport.partitionCounts(topics);
    const result = assignor.assign(members, counts);
    return members.map((m) => {
      const topicsOf = result.get(m.memberId) ?? new Map<string, number[]>();
      const partitions = [...topicsOf].map(([topic, list]) => ({ topic, partitions: [...list].sort((a, b) => a - b) }));
      return { memberId: m.memberId, assignment: encodeAssignment({ version: 0, partitions }) };
    });
  }

  /** Heartbeats on a timer until the generation ends; resolves with why. */
  private heartbeatUntilEnd(): Promise<Ended> {
    if (this.closed) return Promise.resolve('closed');
    this.lastHeartbeatOk = Date.now();
    return new Promise<Ended>((resolve) => {
      this.endAssigned = (why) => {
        this.endAssigned = undefined;
        clearTimeout(this.heartbeatTimer);
        this.heartbeatTimer = undefined;
        resolve(why);
      };
      this.scheduleHeartbeat(this.options.heartbeatIntervalMs);
    });
  }

  private scheduleHeartbeat(ms: number): void {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), ms);
  }

  private async heartbeat(): Promise<void> {
    if (this.endAssigned === undefined || this.heartbeating) return;
    this.heartbeating = true;
    const generation = this.generation;
    let error: ErrorCodeValue | null = null;
    let reached = true;
    try {
      ({ error } = await this.transport.heartbeat({
        groupId: this.options.groupId, memberId: this.memberId, generationId: generation, groupInstanceId: this.options.groupInstanceId,
      }));
    } catch (err) {
      if (!isRetriable(err)) error = err instanceof CommitLogError ? err.code : ErrorCode.IO;
      reached = false;
    } finally {
      this.heartbeating = false;
    }
    const end = this.endAssigned;
    if (end === undefined || generation !== this.generation) return;
    if (reached && error === null) {
      this.lastHeartbeatOk = Date.now();
      this.scheduleHeartbeat(this.options.heartbeatIntervalMs);
      return;
    }
    if (error === ErrorCode.REBALANCE_IN_PROGRESS) return end('rebalance');
    if (error === ErrorCode.ILLEGAL_GENERATION) return end('illegal-generation');
    if (error === ErrorCode.UNKNOWN_MEMBER) return end('unknown-member');
    if (error !== null && FATAL.has(error)) {
      end('lost');
      this.hooks.onError(new CommitLogError(error, `group ${this.options.groupId}: heartbeat refused (${error})`));
      this.closed = true;
      return;
    }
    // Not reached (or a transient refusal): retry soon, until the session must have expired.
    if (Date.now() - this.lastHeartbeatOk >= this.options.sessionTimeoutMs) return end('lost');
    this.scheduleHeartbeat(Math.min(this.options.heartbeatIntervalMs, this.options.retryBackoffMs ?? 100));
  }

  private backoff(attempt: number): Promise<void> {
    const ms = backoffMs(attempt, this.options.retryBackoffMs ?? 100, this.options.retryBackoffMaxMs ?? 2000);
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}

function asError(err: unknown): CommitLogError {
  if (err instanceof CommitLogError) return err;
  return new CommitLogError(ErrorCode.IO, err instanceof Error ? err.message : String(err), { cause: err });
}

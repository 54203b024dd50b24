/**
 * GroupTransport over the broker protocol: the group requests of a GroupMember on a
 * connection of its own (the coordinator connection). Its own, because a JoinGroup
 * is answered only when the rebalance completes and a connection answers in order:
 * on the Consumer's fetch connection it would hold every fetch behind it.
 *
 * Errors the coordinator answers (ERR_REBALANCE_IN_PROGRESS, ...) come back as result
 * values, as GroupMember expects; a failed connection rejects (retriable), and the
 * next request connects again.
 */
import { CommitLogError, ErrorCode, type ErrorCodeValue } from '../../errors.js';
import type { JoinGroupRequest, JoinGroupResult, SyncGroupRequest, SyncGroupResult } from '../broker/coordinator-types.js';
import type { RequestBody, ResponseBody } from '../protocol/messages.js';
import { Connection, type ConnectionOptions } from './connection.js';
import type { GroupTransport } from './group-member.js';

/** Codes that are an answer about the membership, not a failure of the request. */
const GROUP_ANSWERS = new Set<string>([
  ErrorCode.UNKNOWN_MEMBER, ErrorCode.ILLEGAL_GENERATION, ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.MEMBER_ID_REQUIRED,
  ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ErrorCode.INVALID_SESSION_TIMEOUT, ErrorCode.FENCED_INSTANCE_ID, ErrorCode.GROUP_LIMIT,
  ErrorCode.INVALID_GROUP, ErrorCode.COORDINATOR_CLOSED,
]);

type BodyOf<K extends ResponseBody['case']> = Extract<ResponseBody, { case: K }> extends { value: infer V } ? V : never;

/** How much longer than the rebalance timeout a parked JoinGroup may take to be answered. */
const JOIN_SLACK_MS = 5000;

export class NativeGroupTransport implements GroupTransport {
  private conn: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private closed = false;

  constructor(
    private readonly options: ConnectionOptions,
    /** Partition counts for the leader's assignment (the Consumer's metadata). */
    private readonly counts: (topics: readonly string[]) => Promise<Map<string, number>>,
  ) {}

  async join(req: JoinGroupRequest): Promise<JoinGroupResult> {
    const body: RequestBody = {
      case: 'joinGroup',
      value: {
        group: req.groupId, memberId: req.memberId, ...(req.groupInstanceId ? { groupInstanceId: req.groupInstanceId } : {}),
        sessionTimeoutMs: req.sessionTimeoutMs, rebalanceTimeoutMs: req.rebalanceTimeoutMs ?? 0, protocolType: req.protocolType,
        protocols: req.protocols.map((p) => ({ name: p.name, metadata: p.metadata })),
      },
    };
    const timeout = Math.max(req.rebalanceTimeoutMs ?? req.sessionTimeoutMs, req.sessionTimeoutMs) + JOIN_SLACK_MS;
    const answer = await this.call(body, 'joinGroup', timeout);
    if (typeof answer === 'string') return { error: answer, memberId: req.memberId, generationId: -1, protocolType: null, protocolName: null, leaderId: '', members: [] };
    return {
      error: null, memberId: answer.memberId, generationId: answer.generationId, protocolType: req.protocolType, protocolName: answer.protocolName,
      leaderId: answer.leaderId, members: answer.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId ?? null, metadata: m.metadata })),
    };
  }

  async sync(req: SyncGroupRequest): Promise<SyncGroupResult> {
    const body: RequestBody = {
      case: 'syncGroup',
      value: {
        group: req.groupId, memberId: req.memberId, generationId: req.generationId, ...(req.groupInstanceId ? { groupInstanceId: req.groupInstanceId } : {}),
        assignments: req.assignments.map((a) => ({ memberId: a.memberId, assignment: a.assignment })),
      },
    };
    // A follower's SyncGroup waits for the leader's: up to the rebalance timeout.
    const answer = await this.call(body, 'syncGroup', 60_000 + JOIN_SLACK_MS);
    if (typeof answer === 'string') return { error: answer, assignment: Buffer.alloc(0), protocolType: null, protocolName: null };
    return { error: null, assignment: answer.assignment, protocolType: 'consumer', protocolName: answer.protocolName };
  }

  async heartbeat(req: { groupId: string; memberId: string; generationId: number; groupInstanceId: string | null }): Promise<{ error: ErrorCodeValue | null }> {
    const body: RequestBody = {
      case: 'heartbeat',
      value: { group: req.groupId, memberId: req.memberId, generationId: req.generationId, ...(req.groupInstanceId ? { groupInstanceId: req.groupInstanceId } : {}) },
    };
    const answer = await this.call(body, 'heartbeat');
    return { error: typeof answer === 'string' ? answer : null };
  }

  async leave(req: { groupId: string; memberId: string; groupInstanceId: string | null }): Promise<{ error: ErrorCodeValue | null }> {
    const body: RequestBody = {
      case: 'leaveGroup',
      value: { group: req.groupId, memberId: req.memberId, ...(req.groupInstanceId ? { groupInstanceId: req.groupInstanceId } : {}) },
    };
    const answer = await this.call(body, 'leaveGroup');
    return { error: typeof answer === 'string' ? answer : null };
  }

  partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    return this.counts(topics);
  }

  /** Drops the connection (a parked JoinGroup fails as a lost connection); the next request connects again. */
  interrupt(): void {
    this.conn?.destroy();
    this.conn = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting?.catch(() => undefined);
    const conn = this.conn;
    this.conn = undefined;
    await conn?.close();
  }

  /** The response body of kind `kind`, or the group error code the broker answered. */
  private async call<K extends ResponseBody['case']>(body: RequestBody, kind: K, timeoutMs?: number): Promise<BodyOf<K> | ErrorCodeValue> {
    const conn = await this.connection();
    try {
      const response = await conn.request(body, undefined, timeoutMs);
      const got = response.header.body;
      if (got?.case !== kind) throw new CommitLogError(ErrorCode.BAD_FRAME, `${kind} response from ${conn.address} carries no ${kind} body`);
      return (got as { value: unknown }).value as BodyOf<K>;
    } catch (err) {
      if (err instanceof CommitLogError && GROUP_ANSWERS.has(err.code)) return err.code;
      throw err;
    }
  }

  private connection(): Promise<Connection> {
    if (this.closed) return Promise.reject(new CommitLogError(ErrorCode.LOG_CLOSED, 'group transport is closed'));
    if (this.conn !== undefined && this.conn.isOpen) return Promise.resolve(this.conn);
    this.connecting ??= Connection.connect(this.options).then((conn) => {
      this.conn = conn;
      return conn;
    }).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }
}

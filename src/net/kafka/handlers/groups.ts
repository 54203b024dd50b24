/**
 * Kafka handlers of the classic consumer-group APIs: JoinGroup (11, v0-7), SyncGroup
 * (14, v0-4), Heartbeat (12, v0-4), LeaveGroup (13, v0-4), DescribeGroups (15, v0-5)
 * and ListGroups (16, v0-4). Thin: each turns the decoded body (apis/groups.ts) into a
 * call of the broker core's GroupCoordinator and its result into the response body;
 * commitlog's error codes become Kafka's through the one table (error-codes.ts).
 *
 * Version rules kept here, not in the coordinator:
 * - JoinGroup v4+ with an empty member id and no group.instance.id is answered
 *   MEMBER_ID_REQUIRED (79) with the new id; v0-3 clients get their id at once.
 * - JoinGroup before v7 cannot carry a null protocol name: '' on error.
 * - LeaveGroup v0-2 names one member and answers one top-level error (the member's).
 * - DescribeGroups shows member metadata and assignments only for a Stable group (as
 *   Kafka does); a group the coordinator does not hold is Dead, or Empty when it has
 *   committed offsets. ListGroups lists those offsets-only groups as Empty too.
 *
 * Parked requests (JoinGroup, SyncGroup) resolve when the coordinator answers them;
 * the listener answers every request of a connection in order, so a parked one holds
 * the requests behind it on the same connection, as it does with Kafka.
 */
import type { OffsetsStore } from '../../../index/offsets-store.js';
import type { GroupCoordinator, GroupError, GroupState } from '../../broker/coordinator.js';
import type { Message } from '../codec.js';
import { KAFKA_ERROR_FOR, KafkaError } from '../error-codes.js';

export const JOIN_GROUP = 11;
export const HEARTBEAT = 12;
export const LEAVE_GROUP = 13;
export const SYNC_GROUP = 14;
export const DESCRIBE_GROUPS = 15;
export const LIST_GROUPS = 16;

/** What the group handlers need from the listener's context. */
export interface GroupHandlerContext {
  coordinator: GroupCoordinator;
  offsets?: OffsetsStore;
  /** The request header's client id. */
  clientId?: string | null;
  /** The client's address as Kafka shows it ("/127.0.0.1"). */
  clientHost?: string;
}

const EMPTY = Buffer.alloc(0);

function code(error: GroupError | null): number {
  return error === null ? KafkaError.NONE : (KAFKA_ERROR_FOR[error] ?? KafkaError.UNKNOWN_SERVER_ERROR);
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const nullableStr = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number => (typeof v === 'number' ? v : -1);
const bytes = (v: unknown): Buffer => (v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : EMPTY);
const list = (v: unknown): Message[] => (Array.isArray(v) ? (v as Message[]) : []);

export async function handleJoinGroup(ctx: GroupHandlerContext, version: number, body: Message): Promise<Message> {
  const groupInstanceId = version >= 5 ? nullableStr(body.groupInstanceId) : null;
  const r = await ctx.coordinator.join({
    groupId: str(body.groupId),
    memberId: str(body.memberId),
    groupInstanceId,
    clientId: ctx.clientId ?? '',
    clientHost: ctx.clientHost ?? '',
    sessionTimeoutMs: int(body.sessionTimeoutMs),
    rebalanceTimeoutMs: version >= 1 ? int(body.rebalanceTimeoutMs) : undefined,
    protocolType: str(body.protocolType),
    protocols: list(body.protocols).map((p) => ({ name: str(p.name), metadata: bytes(p.metadata) })),
    requireKnownMemberId: version >= 4,
  });
  return {
    throttleTimeMs: 0,
    errorCode: code(r.error),
    generationId: r.generationId,
    protocolType: r.protocolType,
    protocolName: version >= 7 ? r.protocolName : (r.protocolName ?? ''),
    leader: r.leaderId,
    memberId: r.memberId,
    members: r.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, metadata: m.metadata })),
  };
}

export async function handleSyncGroup(ctx: GroupHandlerContext, version: number, body: Message): Promise<Message> {
  const r = await ctx.coordinator.sync({
    groupId: str(body.groupId),
    memberId: str(body.memberId),
    generationId: int(body.generationId),
    groupInstanceId: version >= 3 ? nullableStr(body.groupInstanceId) : null,
    assignments: list(body.assignments).map((a) => ({ memberId: str(a.memberId), assignment: bytes(a.assignment) })),
  });
  return { throttleTimeMs: 0, errorCode: code(r.error), assignment: r.assignment };
}

export function handleHeartbeat(ctx: GroupHandlerContext, version: number, body: Message): Message {
  const r = ctx.coordinator.heartbeat({
    groupId: str(body.groupId),
    memberId: str(body.memberId),
    generationId: int(body.generationId),
    groupInstanceId: version >= 3 ? nullableStr(body.groupInstanceId) : null,
  });
  return { throttleTimeMs: 0, errorCode: code(r.error) };
}

export function handleLeaveGroup(ctx: GroupHandlerContext, version: number, body: Message): Message {
  const leaving = version >= 3
    ? list(body.members).map((m) => ({ memberId: str(m.memberId), groupInstanceId: nullableStr(m.groupInstanceId) }))
    : [{ memberId: str(body.memberId), groupInstanceId: null }];
  const r = ctx.coordinator.leave(str(body.groupId), leaving);
  const members = r.members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId, errorCode: code(m.error) }));
  let errorCode = code(r.error);
  // Before v3 the one member's error is the answer.
  if (version < 3 && errorCode === KafkaError.NONE) errorCode = members[0]?.errorCode ?? KafkaError.NONE;
  return { throttleTimeMs: 0, errorCode, members };
}

function offsetsGroups(ctx: GroupHandlerContext): string[] {
  try {
    return ctx.offsets?.listGroups() ?? [];
  } catch {
    return [];
  }
}

export function handleDescribeGroups(ctx: GroupHandlerContext, _version: number, body: Message): Message {
  const withOffsets = new Set<string>();
  const names = Array.isArray(body.groups) ? (body.groups as unknown[]).map(str) : [];
  if (names.some((g) => ctx.coordinator.describeGroup(g) === null)) for (const g of offsetsGroups(ctx)) withOffsets.add(g);
  const groups = names.map((groupId) => {
    const d = ctx.coordinator.describeGroup(groupId);
    if (d === null) {
      return { errorCode: 0, groupId, groupState: withOffsets.has(groupId) ? 'Empty' : 'Dead', protocolType: '', protocolData: '', members: [] };
    }
    const stable = d.state === 'Stable';
    return {
      errorCode: 0,
      groupId,
      groupState: d.state,
      protocolType: d.protocolType,
      protocolData: stable ? d.protocolName : '',
      members: d.members.map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: stable ? m.metadata : EMPTY,
        memberAssignment: stable ? m.assignment : EMPTY,
      })),
    };
  });
  return { throttleTimeMs: 0, groups };
}

export function handleListGroups(ctx: GroupHandlerContext, version: number, body: Message): Message {
  const filter = version >= 4 && Array.isArray(body.statesFilter) ? (body.statesFilter as unknown[]).map(str) : [];
  // Kafka matches state names case-insensitively.
  const wanted = new Set(filter.map((s) => s.toLowerCase()));
  const keep = (state: GroupState) => wanted.size === 0 || wanted.has(state.toLowerCase());
  const groups = ctx.coordinator.listGroups().filter((g) => keep(g.state))
    .map((g) => ({ groupId: g.groupId, protocolType: g.protocolType, groupState: g.state }));
  if (keep('Empty')) {
    const held = new Set(ctx.coordinator.listGroups().map((g) => g.groupId));
    for (const groupId of offsetsGroups(ctx)) {
      if (!held.has(groupId)) groups.push({ groupId, protocolType: '', groupState: 'Empty' });
    }
  }
  return { throttleTimeMs: 0, errorCode: 0, groups };
}

/**
 * The generation check of an OffsetCommit (Kafka's rules, GroupCoordinator.validateCommit):
 * the Kafka error code every partition of the request gets, 0 when the commit may be stored.
 */
export function offsetCommitError(coordinator: GroupCoordinator | undefined, version: number, body: Message): number {
  if (coordinator === undefined) return KafkaError.NONE;
  const generationId = version >= 1 ? int(body.generationIdOrMemberEpoch) : -1;
  const memberId = version >= 1 ? str(body.memberId) : '';
  const groupInstanceId = version >= 7 ? nullableStr(body.groupInstanceId) : null;
  return code(coordinator.validateCommit(str(body.groupId), memberId, generationId, groupInstanceId));
}

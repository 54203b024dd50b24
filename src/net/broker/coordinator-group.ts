/**
 * The in-memory state of one consumer group (classic protocol) and the pure rules on
 * it: which protocols a joining member shares with the group, which protocol the
 * members vote for, whether a rejoin changed anything. coordinator.ts owns the
 * transitions and timers; nothing here schedules or answers anything.
 *
 * Kept in memory only, as Kafka keeps membership: after a broker restart members
 * find their ids unknown and join again; committed offsets live in the OffsetsStore.
 */
import type { GroupProtocol, GroupState, JoinGroupRequest, JoinGroupResult, SyncGroupResult } from './coordinator-types.js';

export const EMPTY = Buffer.alloc(0);

export interface Member {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: GroupProtocol[];
  assignment: Buffer;
  /** A parked JoinGroup, answered when the rebalance completes. */
  joinWaiter: ((r: JoinGroupResult) => void) | null;
  /** A parked SyncGroup, answered when the leader's SyncGroup arrives. */
  syncWaiter: ((r: SyncGroupResult) => void) | null;
  /** Session timer; none while the member is parked (a parked request keeps it alive). */
  sessionTimer: unknown;
}

export interface Group {
  readonly groupId: string;
  state: GroupState;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  /** In join order. */
  readonly members: Map<string, Member>;
  /** group.instance.id -> its current member id. */
  readonly staticMembers: Map<string, string>;
  /** Ids handed out with ERR_MEMBER_ID_REQUIRED and not yet used to join -> their expiry timer. */
  readonly pending: Map<string, unknown>;
  /** The running rebalance's deadline (or initial-delay step) timer. */
  joinTimer: unknown;
  /** Set while a new group's initial delay runs (Kafka's InitialDelayedJoin). */
  initialDelay: { remainingMs: number; newMemberAdded: boolean } | null;
  /** Members of this generation that have not sent SyncGroup yet, and the timer that removes them. */
  readonly pendingSync: Set<string>;
  syncTimer: unknown;
}

export function newGroup(groupId: string): Group {
  return {
    groupId, state: 'Empty', generationId: 0, protocolType: null, protocolName: null, leaderId: null,
    members: new Map(), staticMembers: new Map(), pending: new Map(),
    joinTimer: null, initialDelay: null, pendingSync: new Set(), syncTimer: null,
  };
}

/** Copies the request's protocols (decoded requests may be views into a frame buffer); the first of a repeated name wins. */
export function copyProtocols(protocols: readonly GroupProtocol[]): GroupProtocol[] {
  const seen = new Set<string>();
  const out: GroupProtocol[] = [];
  for (const p of protocols) {
    if (seen.has(p.name)) continue;
    seen.add(p.name);
    out.push({ name: p.name, metadata: Buffer.from(p.metadata) });
  }
  return out;
}

/**
 * Whether a member joining with `req` can be in the group: a protocol type, at least
 * one protocol, and (when other members exist) their protocol type and a protocol
 * name every one of them supports.
 */
export function supportsProtocols(group: Group, req: JoinGroupRequest, self: string | null): boolean {
  if (req.protocolType === '' || req.protocols.length === 0) return false;
  const others = [...group.members.values()].filter((m) => m.memberId !== self);
  if (others.length === 0) return true;
  if (others[0]!.protocolType !== req.protocolType) return false;
  return req.protocols.some((p) => others.every((m) => m.protocols.some((q) => q.name === p.name)));
}

/** Whether a rejoin carries exactly the protocols (names, order, metadata) the member had. */
export function sameProtocols(member: Member, protocols: readonly GroupProtocol[]): boolean {
  if (member.protocols.length !== protocols.length) return false;
  return member.protocols.every((p, i) => p.name === protocols[i]!.name && p.metadata.equals(protocols[i]!.metadata));
}

/**
 * Kafka's choice: among the protocols every member supports, each member votes for
 * the first of its own list; most votes wins, a tie going to the candidate listed
 * first by the earliest member. Undefined only when there is no common protocol
 * (the join checks prevent it).
 */
export function selectProtocol(members: readonly Member[]): string | undefined {
  if (members.length === 0) return undefined;
  const candidates = members[0]!.protocols.map((p) => p.name)
    .filter((name) => members.every((m) => m.protocols.some((q) => q.name === name)));
  const votes = new Map<string, number>(candidates.map((c) => [c, 0]));
  for (const m of members) {
    const vote = m.protocols.find((p) => votes.has(p.name));
    if (vote !== undefined) votes.set(vote.name, votes.get(vote.name)! + 1);
  }
  let best: string | undefined;
  for (const c of candidates) if (best === undefined || votes.get(c)! > votes.get(best)!) best = c;
  return best;
}

export function metadataFor(member: Member, protocolName: string | null): Buffer {
  if (protocolName === null) return EMPTY;
  return member.protocols.find((p) => p.name === protocolName)?.metadata ?? EMPTY;
}

/** A static member whose instance id now belongs to another member id (Kafka's isStaticMemberFenced). */
export function isFenced(group: Group, memberId: string, groupInstanceId: string | null | undefined): boolean {
  if (groupInstanceId === null || groupInstanceId === undefined) return false;
  const current = group.staticMembers.get(groupInstanceId);
  return current !== undefined && current !== memberId;
}

export function joinError(error: JoinGroupResult['error'], memberId: string): JoinGroupResult {
  return { error, memberId, generationId: -1, protocolType: null, protocolName: null, leaderId: '', members: [] };
}

export function syncError(error: SyncGroupResult['error']): SyncGroupResult {
  return { error, assignment: EMPTY, protocolType: null, protocolName: null };
}

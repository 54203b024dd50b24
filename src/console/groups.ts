/**
 * Consumer groups as the console shows them: committed offsets and lag from the
 * offsets store (every group that committed), and members with their assignments
 * from the group coordinator when the broker has one (`broker.coordinator`, the
 * classic protocol of the broker core). Without a coordinator, members are not
 * tracked and the answer says so (`membersTracked: false`).
 *
 * A member's assignment is decoded as Kafka's consumer protocol Assignment when the
 * group's protocol type is `consumer`; bytes that do not decode are shown by size.
 */
import { CommitLogError, ErrorCode } from '../errors.js';
import type { CommitLog } from '../log/commit-log.js';
import type { OffsetsStore } from '../index/offsets-store.js';
import { CONSUMER_PROTOCOL_TYPE, decodeAssignment } from '../net/groups/consumer-protocol.js';
import { lagOf } from './rates.js';

/** What the console reads of a group coordinator (src/net/broker/coordinator.ts's GroupCoordinator fits). */
export interface CoordinatorView {
  listGroups(): readonly { groupId: string; protocolType: string; state: string }[];
  describeGroup(groupId: string): {
    groupId: string;
    state: string;
    generationId: number;
    protocolType: string;
    protocolName: string;
    leaderId: string;
    members: readonly { memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; assignment: Buffer }[];
  } | null;
}

export interface GroupSummary {
  name: string;
  /** The coordinator's state ('Stable', 'Empty', ...); null when members are not tracked or the coordinator has no such group. */
  state: string | null;
  members: number | null;
  topics: string[];
  totalLag: number;
}

export interface GroupPartition {
  topic: string;
  partition: number;
  /** -1: nothing committed. */
  committedOffset: number;
  latestOffset: number | null;
  lag: number | null;
  /** The member the coordinator assigned it to, if any. */
  memberId: string | null;
}

export interface GroupMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** Decoded consumer-protocol assignment; null when it does not decode. */
  assignment: { topic: string; partitions: number[] }[] | null;
  assignmentBytes: number;
}

export interface GroupDetail {
  name: string;
  membersTracked: boolean;
  state: string | null;
  generationId: number | null;
  protocolType: string | null;
  protocolName: string | null;
  leaderId: string | null;
  members: GroupMember[];
  partitions: GroupPartition[];
  totalLag: number;
}

export function listGroups(log: CommitLog, offsets: OffsetsStore, coordinator: CoordinatorView | undefined): GroupSummary[] {
  const names = new Set(offsets.listGroups());
  const live = new Map((coordinator?.listGroups() ?? []).map((g) => [g.groupId, g]));
  for (const name of live.keys()) names.add(name);
  return [...names].sort().map((name) => {
    const d = describeGroup(log, offsets, coordinator, name);
    return { name, state: live.get(name)?.state ?? null, members: coordinator === undefined ? null : d.members.length, topics: [...new Set(d.partitions.map((p) => p.topic))], totalLag: d.totalLag };
  });
}

/** ERR_UNKNOWN_GROUP when neither the offsets store nor the coordinator knows it. */
export function describeGroup(log: CommitLog, offsets: OffsetsStore, coordinator: CoordinatorView | undefined, name: string): GroupDetail {
  const committed = offsets.describe(name);
  const live = coordinator?.describeGroup(name) ?? null;
  if (committed === null && live === null) throw new CommitLogError(ErrorCode.UNKNOWN_GROUP, `unknown consumer group ${name}: it has no committed offsets and no members`);
  const members: GroupMember[] = (live?.members ?? []).map((m) => ({
    memberId: m.memberId,
    groupInstanceId: m.groupInstanceId,
    clientId: m.clientId,
    clientHost: m.clientHost,
    assignment: live!.protocolType === CONSUMER_PROTOCOL_TYPE ? decodeOrNull(m.assignment) : null,
    assignmentBytes: m.assignment.length,
  }));
  const owner = new Map<string, string>();
  for (const m of members) for (const tp of m.assignment ?? []) for (const p of tp.partitions) owner.set(`${tp.topic}\0${p}`, m.memberId);
  const partitions: GroupPartition[] = [];
  const seen = new Set<string>();
  for (const [topic, byPartition] of Object.entries(committed?.topics ?? {})) {
    for (const [p, c] of Object.entries(byPartition)) {
      partitions.push(partitionRow(log, topic, Number(p), c.offset, owner));
      seen.add(`${topic}\0${p}`);
    }
  }
  // Assigned partitions the group has not committed yet.
  for (const key of owner.keys()) {
    if (seen.has(key)) continue;
    const [topic, p] = key.split('\0');
    partitions.push(partitionRow(log, topic!, Number(p), -1, owner));
  }
  partitions.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  return {
    name,
    membersTracked: coordinator !== undefined,
    state: live?.state ?? null,
    generationId: live?.generationId ?? null,
    protocolType: live?.protocolType ?? null,
    protocolName: live?.protocolName ?? null,
    leaderId: live?.leaderId ?? null,
    members,
    partitions,
    totalLag: partitions.reduce((n, p) => n + (p.lag ?? 0), 0),
  };
}

function partitionRow(log: CommitLog, topic: string, partition: number, committedOffset: number, owner: Map<string, string>): GroupPartition {
  let latestOffset: number | null = null;
  try {
    latestOffset = log.latestOffset(topic, partition);
  } catch {
    // the topic was deleted after the group committed
  }
  return { topic, partition, committedOffset, latestOffset, lag: latestOffset === null ? null : lagOf(log, topic, partition, committedOffset), memberId: owner.get(`${topic}\0${partition}`) ?? null };
}

function decodeOrNull(bytes: Buffer): { topic: string; partitions: number[] }[] | null {
  if (bytes.length === 0) return [];
  try {
    return decodeAssignment(bytes).partitions.map((tp) => ({ topic: tp.topic, partitions: [...tp.partitions] }));
  } catch {
    return null;
  }
}

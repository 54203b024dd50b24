/**
 * The broker protocol's consumer-group requests, translated onto the broker core's
 * GroupCoordinator (coordinator.ts): the same coordinator, groups and generations the
 * Kafka listener's JoinGroup/SyncGroup/... use. An error value from the coordinator
 * becomes a CommitLogError, answered in the header's error_code by the caller.
 */
import { CommitLogError, type ErrorCodeValue } from '../../errors.js';
import type { OffsetsStore } from '../../index/offsets-store.js';
import type { GroupCoordinator } from './coordinator.js';
import type { GroupRequestBody, GroupResponseBody } from '../protocol/group-messages.js';

export interface GroupHandlerContext {
  coordinator: GroupCoordinator;
  offsets: OffsetsStore;
  clientId: string;
  clientHost: string;
}

function fail(error: ErrorCodeValue, what: string, group: string): never {
  throw new CommitLogError(error, `${what} for group ${group} refused: ${error}`);
}

const orNull = (s: string | undefined): string | null => (s === undefined || s === '' ? null : s);

export async function handleGroupRequest(ctx: GroupHandlerContext, body: GroupRequestBody): Promise<GroupResponseBody> {
  const c = ctx.coordinator;
  switch (body.case) {
    case 'joinGroup': {
      const r = body.value;
      const joined = await c.join({
        groupId: r.group, memberId: r.memberId, groupInstanceId: orNull(r.groupInstanceId), clientId: ctx.clientId, clientHost: ctx.clientHost,
        sessionTimeoutMs: r.sessionTimeoutMs, rebalanceTimeoutMs: r.rebalanceTimeoutMs > 0 ? r.rebalanceTimeoutMs : r.sessionTimeoutMs,
        protocolType: r.protocolType, protocols: r.protocols, requireKnownMemberId: false,
      });
      if (joined.error !== null) fail(joined.error, 'join', r.group);
      return {
        case: 'joinGroup',
        value: {
          memberId: joined.memberId, generationId: joined.generationId, protocolName: joined.protocolName ?? '', leaderId: joined.leaderId,
          members: joined.members.map((m) => ({ memberId: m.memberId, ...(m.groupInstanceId === null ? {} : { groupInstanceId: m.groupInstanceId }), metadata: m.metadata })),
        },
      };
    }
    case 'syncGroup': {
      const r = body.value;
      const synced = await c.sync({ groupId: r.group, memberId: r.memberId, generationId: r.generationId, groupInstanceId: orNull(r.groupInstanceId), assignments: r.assignments });
      if (synced.error !== null) fail(synced.error, 'sync', r.group);
      return { case: 'syncGroup', value: { assignment: synced.assignment, protocolName: synced.protocolName ?? '' } };
    }
    case 'heartbeat': {
      const r = body.value;
      const { error } = c.heartbeat({ groupId: r.group, memberId: r.memberId, generationId: r.generationId, groupInstanceId: orNull(r.groupInstanceId) });
      if (error !== null) fail(error, 'heartbeat', r.group);
      return { case: 'heartbeat', value: {} };
    }
    case 'leaveGroup': {
      const r = body.value;
      const left = c.leave(r.group, [{ memberId: r.memberId, groupInstanceId: orNull(r.groupInstanceId) }]);
      const error = left.error ?? left.members[0]?.error ?? null;
      if (error !== null) fail(error, 'leave', r.group);
      return { case: 'leaveGroup', value: {} };
    }
    case 'describeGroup': {
      const r = body.value;
      const d = c.describeGroup(r.group);
      if (d === null) {
        return { case: 'describeGroup', value: { group: r.group, state: ctx.offsets.listGroups().includes(r.group) ? 'Empty' : 'Dead', generationId: -1, protocolType: '', protocolName: '', leaderId: '', members: [] } };
      }
      return {
        case: 'describeGroup',
        value: {
          group: d.groupId, state: d.state, generationId: d.generationId, protocolType: d.protocolType, protocolName: d.protocolName, leaderId: d.leaderId,
          members: d.members.map((m) => ({
            memberId: m.memberId, ...(m.groupInstanceId === null ? {} : { groupInstanceId: m.groupInstanceId }), clientId: m.clientId,
            clientHost: m.clientHost, sessionTimeoutMs: m.sessionTimeoutMs, metadata: m.metadata, assignment: m.assignment,
          })),
        },
      };
    }
    case 'listGroups': {
      const known = new Map(c.listGroups().map((g) => [g.groupId, g]));
      const names = new Set([...known.keys(), ...ctx.offsets.listGroups()]);
      const groups = [...names].sort().map((group) => {
        const g = known.get(group);
        return { group, state: g?.state ?? 'Empty', protocolType: g?.protocolType ?? '' };
      });
      return { case: 'listGroups', value: { groups } };
    }
  }
}

/** The coordinator's check of a member's OffsetCommit (absent member id: a commit from outside the membership). */
export function checkGroupCommit(coordinator: GroupCoordinator, req: { group: string; memberId?: string; generationId?: number; groupInstanceId?: string }): void {
  const error = coordinator.validateCommit(req.group, req.memberId ?? '', req.generationId ?? -1, orNull(req.groupInstanceId));
  if (error !== null) fail(error, 'offset commit', req.group);
}

/**
 * The consumer-group messages of the broker protocol (commitlog.proto, "consumer
 * groups"), as the TypeScript objects messages.ts converts them to. Optional proto
 * fields are absent (undefined) when not set; bytes are Buffers.
 */

export interface GroupProtocolEntry {
  name: string;
  metadata: Buffer;
}

export interface JoinGroupRequest {
  group: string;
  memberId: string;
  groupInstanceId?: string;
  sessionTimeoutMs: number;
  /** 0: the session timeout. */
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: GroupProtocolEntry[];
}

export interface JoinGroupMember {
  memberId: string;
  groupInstanceId?: string;
  metadata: Buffer;
}

export interface JoinGroupResponse {
  memberId: string;
  generationId: number;
  protocolName: string;
  leaderId: string;
  /** The leader only. */
  members: JoinGroupMember[];
}

export interface SyncGroupAssignment {
  memberId: string;
  assignment: Buffer;
}

export interface SyncGroupRequest {
  group: string;
  memberId: string;
  generationId: number;
  groupInstanceId?: string;
  assignments: SyncGroupAssignment[];
}

export interface SyncGroupResponse {
  assignment: Buffer;
  protocolName: string;
}

export interface HeartbeatRequest {
  group: string;
  memberId: string;
  generationId: number;
  groupInstanceId?: string;
}

export type HeartbeatResponse = Record<string, never>;

export interface LeaveGroupRequest {
  group: string;
  memberId: string;
  groupInstanceId?: string;
}

export type LeaveGroupResponse = Record<string, never>;

export interface DescribeGroupRequest {
  group: string;
}

export interface GroupMemberDescription {
  memberId: string;
  groupInstanceId?: string;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  metadata: Buffer;
  assignment: Buffer;
}

export interface DescribeGroupResponse {
  group: string;
  state: string;
  generationId: number;
  protocolType: string;
  protocolName: string;
  leaderId: string;
  members: GroupMemberDescription[];
}

export type ListGroupsRequest = Record<string, never>;

export interface GroupListingEntry {
  group: string;
  state: string;
  protocolType: string;
}

export interface ListGroupsResponse {
  groups: GroupListingEntry[];
}

export type GroupRequestBody =
  | { case: 'joinGroup'; value: JoinGroupRequest }
  | { case: 'syncGroup'; value: SyncGroupRequest }
  | { case: 'heartbeat'; value: HeartbeatRequest }
  | { case: 'leaveGroup'; value: LeaveGroupRequest }
  | { case: 'describeGroup'; value: DescribeGroupRequest }
  | { case: 'listGroups'; value: ListGroupsRequest };

export type GroupResponseBody =
  | { case: 'joinGroup'; value: JoinGroupResponse }
  | { case: 'syncGroup'; value: SyncGroupResponse }
  | { case: 'heartbeat'; value: HeartbeatResponse }
  | { case: 'leaveGroup'; value: LeaveGroupResponse }
  | { case: 'describeGroup'; value: DescribeGroupResponse }
  | { case: 'listGroups'; value: ListGroupsResponse };

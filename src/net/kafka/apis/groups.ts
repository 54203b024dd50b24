/**
 * Message tables of the consumer-group APIs (classic protocol): FindCoordinator,
 * JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
 * DescribeGroups, ListGroups. Member metadata and assignments are opaque bytes.
 * Written from the Kafka protocol spec for the windows this codec speaks.
 */
import { api, array, field, structs } from '../schema.js';

const throttleTimeMs = (v: string) => field('throttleTimeMs', 'int32', { v });
const groupInstanceId = (v: string) => field('groupInstanceId', 'string', { v, nullable: v, default: null });

export const FindCoordinator = api(10, 'FindCoordinator', '0-4', 3, [
  field('key', 'string', { v: '0-3' }),
  field('keyType', 'int8', { v: '1+', default: 0 }),
  array('coordinatorKeys', 'string', { v: '4+' }),
], [
  throttleTimeMs('1+'),
  field('errorCode', 'int16', { v: '0-3' }),
  field('errorMessage', 'string', { v: '1-3', nullable: '1-3', default: null }),
  field('nodeId', 'int32', { v: '0-3' }),
  field('host', 'string', { v: '0-3' }),
  field('port', 'int32', { v: '0-3' }),
  structs('coordinators', [
    field('key', 'string', { v: '4+' }),
    field('nodeId', 'int32', { v: '4+' }),
    field('host', 'string', { v: '4+' }),
    field('port', 'int32', { v: '4+' }),
    field('errorCode', 'int16', { v: '4+' }),
    field('errorMessage', 'string', { v: '4+', nullable: '4+', default: null }),
  ], { v: '4+' }),
]);

export const JoinGroup = api(11, 'JoinGroup', '0-7', 6, [
  field('groupId', 'string'),
  field('sessionTimeoutMs', 'int32'),
  field('rebalanceTimeoutMs', 'int32', { v: '1+', default: -1 }),
  field('memberId', 'string'),
  groupInstanceId('5+'),
  field('protocolType', 'string'),
  structs('protocols', [
    field('name', 'string'),
    field('metadata', 'bytes'),
  ]),
], [
  throttleTimeMs('2+'),
  field('errorCode', 'int16'),
  field('generationId', 'int32', { default: -1 }),
  field('protocolType', 'string', { v: '7+', nullable: '7+', default: null }),
  field('protocolName', 'string', { nullable: '7+' }),
  field('leader', 'string'),
  field('memberId', 'string'),
  structs('members', [
    field('memberId', 'string'),
    groupInstanceId('5+'),
    field('metadata', 'bytes'),
  ]),
]);

export const SyncGroup = api(14, 'SyncGroup', '0-4', 4, [
  field('groupId', 'string'),
  field('generationId', 'int32'),
  field('memberId', 'string'),
  groupInstanceId('3+'),
  structs('assignments', [
    field('memberId', 'string'),
    field('assignment', 'bytes'),
  ]),
], [
  throttleTimeMs('1+'),
  field('errorCode', 'int16'),
  field('assignment', 'bytes'),
]);

export const Heartbeat = api(12, 'Heartbeat', '0-4', 4, [
  field('groupId', 'string'),
  field('generationId', 'int32'),
  field('memberId', 'string'),
  groupInstanceId('3+'),
], [
  throttleTimeMs('1+'),
  field('errorCode', 'int16'),
]);

export const LeaveGroup = api(13, 'LeaveGroup', '0-4', 4, [
  field('groupId', 'string'),
  field('memberId', 'string', { v: '0-2' }),
  structs('members', [
    field('memberId', 'string', { v: '3+' }),
    groupInstanceId('3+'),
  ], { v: '3+' }),
], [
  throttleTimeMs('1+'),
  field('errorCode', 'int16'),
  structs('members', [
    field('memberId', 'string', { v: '3+' }),
    field('groupInstanceId', 'string', { v: '3+', nullable: '3+' }),
    field('errorCode', 'int16', { v: '3+' }),
  ], { v: '3+' }),
]);

export const OffsetCommit = api(8, 'OffsetCommit', '2-8', 8, [
  field('groupId', 'string'),
  field('generationIdOrMemberEpoch', 'int32', { v: '1+', default: -1 }),
  field('memberId', 'string', { v: '1+' }),
  groupInstanceId('7+'),
  field('retentionTimeMs', 'int64', { v: '2-4', default: -1 }),
  structs('topics', [
    field('name', 'string'),
    structs('partitions', [
      field('partitionIndex', 'int32'),
      field('committedOffset', 'int64'),
      field('committedLeaderEpoch', 'int32', { v: '6+', default: -1 }),
      field('committedMetadata', 'string', { nullable: '0+' }),
    ]),
  ]),
], [
  throttleTimeMs('3+'),
  structs('topics', [
    field('name', 'string'),
    structs('partitions', [
      field('partitionIndex', 'int32'),
      field('errorCode', 'int16'),
    ]),
  ]),
]);

const offsetFetchPartition = (v: string) => [
  field('partitionIndex', 'int32', { v }),
  field('committedOffset', 'int64', { v }),
  field('committedLeaderEpoch', 'int32', { v: v === '8+' ? '8+' : '5-7', default: -1 }),
  field('metadata', 'string', { v, nullable: v }),
  field('errorCode', 'int16', { v }),
];

export const OffsetFetch = api(9, 'OffsetFetch', '1-8', 6, [
  field('groupId', 'string', { v: '0-7' }),
  structs('topics', [
    field('name', 'string', { v: '0-7' }),
    array('partitionIndexes', 'int32', { v: '0-7' }),
  ], { v: '0-7', nullable: '2-7' }),
  structs('groups', [
    field('groupId', 'string', { v: '8+' }),
    structs('topics', [
      field('name', 'string', { v: '8+' }),
      array('partitionIndexes', 'int32', { v: '8+' }),
    ], { v: '8+', nullable: '8+' }),
  ], { v: '8+' }),
  field('requireStable', 'bool', { v: '7+', default: false }),
], [
  throttleTimeMs('3+'),
  structs('topics', [
    field('name', 'string', { v: '0-7' }),
    structs('partitions', offsetFetchPartition('0-7'), { v: '0-7' }),
  ], { v: '0-7' }),
  field('errorCode', 'int16', { v: '2-7', default: 0 }),
  structs('groups', [
    field('groupId', 'string', { v: '8+' }),
    structs('topics', [
      field('name', 'string', { v: '8+' }),
      structs('partitions', offsetFetchPartition('8+'), { v: '8+' }),
    ], { v: '8+' }),
    field('errorCode', 'int16', { v: '8+', default: 0 }),
  ], { v: '8+' }),
]);

export const DescribeGroups = api(15, 'DescribeGroups', '0-5', 5, [
  array('groups', 'string'),
  field('includeAuthorizedOperations', 'bool', { v: '3+' }),
], [
  throttleTimeMs('1+'),
  structs('groups', [
    field('errorCode', 'int16'),
    field('groupId', 'string'),
    field('groupState', 'string'),
    field('protocolType', 'string'),
    field('protocolData', 'string'),
    structs('members', [
      field('memberId', 'string'),
      groupInstanceId('4+'),
      field('clientId', 'string'),
      field('clientHost', 'string'),
      field('memberMetadata', 'bytes'),
      field('memberAssignment', 'bytes'),
    ]),
    field('authorizedOperations', 'int32', { v: '3+', default: -2147483648 }),
  ]),
]);

export const ListGroups = api(16, 'ListGroups', '0-4', 3, [
  array('statesFilter', 'string', { v: '4+' }),
], [
  throttleTimeMs('1+'),
  field('errorCode', 'int16'),
  structs('groups', [
    field('groupId', 'string'),
    field('protocolType', 'string'),
    field('groupState', 'string', { v: '4+' }),
  ]),
]);

export const groupApis = [FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups];

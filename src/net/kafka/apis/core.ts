/**
 * Message tables of the data-path APIs: ApiVersions, Metadata, Produce, Fetch,
 * ListOffsets. Written from the Kafka protocol spec for the version windows this
 * codec speaks (fields that exist only in later versions are left out). Records
 * fields are opaque byte ranges (see codec.ts).
 */
import { api, array, field, struct, structs } from '../schema.js';

const throttleTimeMs = (v: string) => field('throttleTimeMs', 'int32', { v });

export const ApiVersions = api(18, 'ApiVersions', '0-3', 3, [
  field('clientSoftwareName', 'string', { v: '3+' }),
  field('clientSoftwareVersion', 'string', { v: '3+' }),
], [
  field('errorCode', 'int16'),
  structs('apiKeys', [
    field('apiKey', 'int16'),
    field('minVersion', 'int16'),
    field('maxVersion', 'int16'),
  ]),
  throttleTimeMs('1+'),
  structs('supportedFeatures', [
    field('name', 'string', { v: '3+' }),
    field('minVersion', 'int16', { v: '3+' }),
    field('maxVersion', 'int16', { v: '3+' }),
  ], { v: '3+', tag: 0 }),
  field('finalizedFeaturesEpoch', 'int64', { v: '3+', tag: 1, default: -1 }),
  structs('finalizedFeatures', [
    field('name', 'string', { v: '3+' }),
    field('maxVersionLevel', 'int16', { v: '3+' }),
    field('minVersionLevel', 'int16', { v: '3+' }),
  ], { v: '3+', tag: 2 }),
  field('zkMigrationReady', 'bool', { v: '3+', tag: 3, default: false }),
]);

export const Metadata = api(3, 'Metadata', '0-9', 9, [
  structs('topics', [
    field('name', 'string'),
  ], { nullable: '1+' }),
  field('allowAutoTopicCreation', 'bool', { v: '4+', default: true }),
  field('includeClusterAuthorizedOperations', 'bool', { v: '8+' }),
  field('includeTopicAuthorizedOperations', 'bool', { v: '8+' }),
], [
  throttleTimeMs('3+'),
  structs('brokers', [
    field('nodeId', 'int32'),
    field('host', 'string'),
    field('port', 'int32'),
    field('rack', 'string', { v: '1+', nullable: '1+', default: null }),
  ]),
  field('clusterId', 'string', { v: '2+', nullable: '2+', default: null }),
  field('controllerId', 'int32', { v: '1+', default: -1 }),
  structs('topics', [
    field('errorCode', 'int16'),
    field('name', 'string'),
    field('isInternal', 'bool', { v: '1+', default: false }),
    structs('partitions', [
      field('errorCode', 'int16'),
      field('partitionIndex', 'int32'),
      field('leaderId', 'int32'),
      field('leaderEpoch', 'int32', { v: '7+', default: -1 }),
      array('replicaNodes', 'int32'),
      array('isrNodes', 'int32'),
      array('offlineReplicas', 'int32', { v: '5+' }),
    ]),
    field('topicAuthorizedOperations', 'int32', { v: '8+', default: -2147483648 }),
  ]),
  field('clusterAuthorizedOperations', 'int32', { v: '8+', default: -2147483648 }),
]);

export const Produce = api(0, 'Produce', '3-8', 9, [
  field('transactionalId', 'string', { v: '3+', nullable: '3+', default: null }),
  field('acks', 'int16'),
  field('timeoutMs', 'int32'),
  structs('topicData', [
    field('name', 'string'),
    structs('partitionData', [
      field('index', 'int32'),
      field('records', 'records', { nullable: '0+' }),
    ]),
  ]),
], [
  structs('responses', [
    field('name', 'string'),
    structs('partitionResponses', [
      field('index', 'int32'),
      field('errorCode', 'int16'),
      field('baseOffset', 'int64'),
      field('logAppendTimeMs', 'int64', { v: '2+', default: -1 }),
      field('logStartOffset', 'int64', { v: '5+', default: -1 }),
      structs('recordErrors', [
        field('batchIndex', 'int32', { v: '8+' }),
        field('batchIndexErrorMessage', 'string', { v: '8+', nullable: '8+', default: null }),
      ], { v: '8+' }),
      field('errorMessage', 'string', { v: '8+', nullable: '8+', default: null }),
    ]),
  ]),
  throttleTimeMs('1+'),
]);

export const Fetch = api(1, 'Fetch', '4-12', 12, [
  field('clusterId', 'string', { v: '12+', nullable: '12+', tag: 0, default: null }),
  field('replicaId', 'int32', { default: -1 }),
  field('maxWaitMs', 'int32'),
  field('minBytes', 'int32'),
  field('maxBytes', 'int32', { v: '3+', default: 0x7fffffff }),
  field('isolationLevel', 'int8', { v: '4+', default: 0 }),
  field('sessionId', 'int32', { v: '7+', default: 0 }),
  field('sessionEpoch', 'int32', { v: '7+', default: -1 }),
  structs('topics', [
    field('topic', 'string'),
    structs('partitions', [
      field('partition', 'int32'),
      field('currentLeaderEpoch', 'int32', { v: '9+', default: -1 }),
      field('fetchOffset', 'int64'),
      field('lastFetchedEpoch', 'int32', { v: '12+', default: -1 }),
      field('logStartOffset', 'int64', { v: '5+', default: -1 }),
      field('partitionMaxBytes', 'int32'),
    ]),
  ]),
  structs('forgottenTopicsData', [
    field('topic', 'string', { v: '7+' }),
    array('partitions', 'int32', { v: '7+' }),
  ], { v: '7+' }),
  field('rackId', 'string', { v: '11+', default: '' }),
], [
  throttleTimeMs('1+'),
  field('errorCode', 'int16', { v: '7+' }),
  field('sessionId', 'int32', { v: '7+', default: 0 }),
  structs('responses', [
    field('topic', 'string'),
    structs('partitions', [
      field('partitionIndex', 'int32'),
      field('errorCode', 'int16'),
      field('highWatermark', 'int64'),
      field('lastStableOffset', 'int64', { v: '4+', default: -1 }),
      field('logStartOffset', 'int64', { v: '5+', default: -1 }),
      struct('divergingEpoch', [
        field('epoch', 'int32', { v: '12+', default: -1 }),
        field('endOffset', 'int64', { v: '12+', default: -1 }),
      ], { v: '12+', tag: 0 }),
      struct('currentLeader', [
        field('leaderId', 'int32', { v: '12+', default: -1 }),
        field('leaderEpoch', 'int32', { v: '12+', default: -1 }),
      ], { v: '12+', tag: 1 }),
      struct('snapshotId', [
        field('endOffset', 'int64', { default: -1 }),
        field('epoch', 'int32', { default: -1 }),
      ], { v: '12+', tag: 2 }),
      structs('abortedTransactions', [
        field('producerId', 'int64', { v: '4+' }),
        field('firstOffset', 'int64', { v: '4+' }),
      ], { v: '4+', nullable: '4+' }),
      field('preferredReadReplica', 'int32', { v: '11+', default: -1 }),
      field('records', 'records', { nullable: '0+' }),
    ]),
  ]),
]);

export const ListOffsets = api(2, 'ListOffsets', '1-5', 6, [
  field('replicaId', 'int32'),
  field('isolationLevel', 'int8', { v: '2+' }),
  structs('topics', [
    field('name', 'string'),
    structs('partitions', [
      field('partitionIndex', 'int32'),
      field('currentLeaderEpoch', 'int32', { v: '4+', default: -1 }),
      field('timestamp', 'int64'),
    ]),
  ]),
], [
  throttleTimeMs('2+'),
  structs('topics', [
    field('name', 'string'),
    structs('partitions', [
      field('partitionIndex', 'int32'),
      field('errorCode', 'int16'),
      field('timestamp', 'int64', { v: '1+', default: -1 }),
      field('offset', 'int64', { v: '1+', default: -1 }),
      field('leaderEpoch', 'int32', { v: '4+', default: -1 }),
    ]),
  ]),
]);

export const coreApis = [ApiVersions, Metadata, Produce, Fetch, ListOffsets];

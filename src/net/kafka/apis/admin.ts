/**
 * Message tables of the admin APIs: CreateTopics, DeleteTopics, InitProducerId,
 * DescribeConfigs, DescribeCluster, CreatePartitions. Written from the Kafka
 * protocol spec for the windows this codec speaks.
 */
import { api, array, field, structs } from '../schema.js';

const throttleTimeMs = (v: string) => field('throttleTimeMs', 'int32', { v });

export const CreateTopics = api(19, 'CreateTopics', '0-7', 5, [
  structs('topics', [
    field('name', 'string'),
    field('numPartitions', 'int32'),
    field('replicationFactor', 'int16'),
    structs('assignments', [
      field('partitionIndex', 'int32'),
      array('brokerIds', 'int32'),
    ]),
    structs('configs', [
      field('name', 'string'),
      field('value', 'string', { nullable: '0+' }),
    ]),
  ]),
  field('timeoutMs', 'int32', { default: 60000 }),
  field('validateOnly', 'bool', { v: '1+', default: false }),
], [
  throttleTimeMs('2+'),
  structs('topics', [
    field('name', 'string'),
    field('topicId', 'uuid', { v: '7+' }),
    field('errorCode', 'int16'),
    field('errorMessage', 'string', { v: '1+', nullable: '0+', default: null }),
    field('topicConfigErrorCode', 'int16', { v: '5+', tag: 0 }),
    field('numPartitions', 'int32', { v: '5+', default: -1 }),
    field('replicationFactor', 'int16', { v: '5+', default: -1 }),
    structs('configs', [
      field('name', 'string', { v: '5+' }),
      field('value', 'string', { v: '5+', nullable: '5+' }),
      field('readOnly', 'bool', { v: '5+' }),
      field('configSource', 'int8', { v: '5+', default: -1 }),
      field('isSensitive', 'bool', { v: '5+' }),
    ], { v: '5+', nullable: '5+' }),
  ]),
]);

export const DeleteTopics = api(20, 'DeleteTopics', '0-6', 4, [
  structs('topics', [
    field('name', 'string', { v: '6+', nullable: '6+', default: null }),
    field('topicId', 'uuid', { v: '6+' }),
  ], { v: '6+' }),
  array('topicNames', 'string', { v: '0-5' }),
  field('timeoutMs', 'int32'),
], [
  throttleTimeMs('1+'),
  structs('responses', [
    field('name', 'string', { nullable: '6+' }),
    field('topicId', 'uuid', { v: '6+' }),
    field('errorCode', 'int16'),
    field('errorMessage', 'string', { v: '5+', nullable: '5+', default: null }),
  ]),
]);

export const InitProducerId = api(22, 'InitProducerId', '0-4', 2, [
  field('transactionalId', 'string', { nullable: '0+' }),
  field('transactionTimeoutMs', 'int32'),
  field('producerId', 'int64', { v: '3+', default: -1 }),
  field('producerEpoch', 'int16', { v: '3+', default: -1 }),
], [
  throttleTimeMs('0+'),
  field('errorCode', 'int16'),
  field('producerId', 'int64', { default: -1 }),
  field('producerEpoch', 'int16'),
]);

export const DescribeConfigs = api(32, 'DescribeConfigs', '0-4', 4, [
  structs('resources', [
    field('resourceType', 'int8'),
    field('resourceName', 'string'),
    array('configurationKeys', 'string', { nullable: '0+' }),
  ]),
  field('includeSynonyms', 'bool', { v: '1+', default: false }),
  field('includeDocumentation', 'bool', { v: '3+', default: false }),
], [
  throttleTimeMs('0+'),
  structs('results', [
    field('errorCode', 'int16'),
    field('errorMessage', 'string', { nullable: '0+' }),
    field('resourceType', 'int8'),
    field('resourceName', 'string'),
    structs('configs', [
      field('name', 'string'),
      field('value', 'string', { nullable: '0+' }),
      field('readOnly', 'bool'),
      field('isDefault', 'bool', { v: '0' }),
      field('configSource', 'int8', { v: '1+', default: -1 }),
      field('isSensitive', 'bool'),
      structs('synonyms', [
        field('name', 'string', { v: '1+' }),
        field('value', 'string', { v: '1+', nullable: '0+' }),
        field('source', 'int8', { v: '1+' }),
      ], { v: '1+' }),
      field('configType', 'int8', { v: '3+', default: 0 }),
      field('documentation', 'string', { v: '3+', nullable: '0+' }),
    ]),
  ]),
]);

export const DescribeCluster = api(60, 'DescribeCluster', '0-1', 0, [
  field('includeClusterAuthorizedOperations', 'bool'),
  field('endpointType', 'int8', { v: '1+', default: 1 }),
], [
  throttleTimeMs('0+'),
  field('errorCode', 'int16'),
  field('errorMessage', 'string', { nullable: '0+', default: null }),
  field('endpointType', 'int8', { v: '1+', default: 1 }),
  field('clusterId', 'string'),
  field('controllerId', 'int32', { default: -1 }),
  structs('brokers', [
    field('brokerId', 'int32'),
    field('host', 'string'),
    field('port', 'int32'),
    field('rack', 'string', { nullable: '0+', default: null }),
  ]),
  field('clusterAuthorizedOperations', 'int32', { default: -2147483648 }),
]);

export const CreatePartitions = api(37, 'CreatePartitions', '0-3', 2, [
  structs('topics', [
    field('name', 'string'),
    field('count', 'int32'),
    structs('assignments', [
      array('brokerIds', 'int32'),
    ], { nullable: '0+' }),
  ]),
  field('timeoutMs', 'int32'),
  field('validateOnly', 'bool'),
], [
  throttleTimeMs('0+'),
  structs('results', [
    field('name', 'string'),
    field('errorCode', 'int16'),
    field('errorMessage', 'string', { nullable: '0+', default: null }),
  ]),
]);

export const adminApis = [CreateTopics, DeleteTopics, InitProducerId, DescribeConfigs, DescribeCluster, CreatePartitions];

/**
 * commitlog's public surface: the embedded log, its record types and errors.
 */
export { CommitLog } from './log/commit-log.js';
export type { CommitLogOptions, Logger, RecoveryReport, TopicDescription, PartitionDescription, TailOptions, StartPosition } from './log/commit-log.js';
export type { AppendResult, FlushPolicy, FlushHooks, LogSlice } from './log/partition-log.js';
export type { PartitionRecoveryReport } from './log/recovery.js';
export type { TopicConfig } from './log/topic-config.js';
export type { ProducerRecord, LogRecord, RecordHeader } from './log/record.js';
export { encodeBatch, decodeBatches, verifyBatch, readBatchHeader } from './log/batch.js';
export { CommitLogError, ErrorCode } from './errors.js';
export type { ErrorCodeValue } from './errors.js';
export { Producer } from './net/client/producer.js';
export type { ProducerOptions, SendOptions, Acks, Partitioner, PartitionerFn } from './net/client/producer.js';
export { Consumer } from './net/client/consumer.js';
export type { ConsumerOptions, ConsumerStart } from './net/client/consumer.js';
export type { AutoOffsetReset, OffsetReset } from './net/client/consumer-fetcher.js';
export { Admin } from './net/client/admin.js';
export type { AdminOptions, CreateTopicOptions, RemoteTopicDescription, RemotePartitionDescription, OffsetQuery, GroupDescription, GroupPartitionOffsets } from './net/client/admin.js';
export { isConnectionError, isRetriable } from './net/client/client-types.js';
export type { BrokerAddress, ClientOptions, ConsumerRecord, RecordMetadata, RetryOptions } from './net/client/client-types.js';
export { startBroker, DEFAULT_PORT } from './net/broker/server.js';
export type { Broker, BrokerOptions, BrokerStats } from './net/broker/server.js';
export { startKafkaListener, DEFAULT_KAFKA_PORT } from './net/kafka/listener.js';
export type { KafkaListener, KafkaListenerOptions, KafkaListenerStats, KafkaObserver, KafkaRequestObservation } from './net/kafka/listener.js';
export { startConsole } from './console/server.js';
export type { ConsoleOptions, ConsoleServer, MetricsSource } from './console/server.js';
export { RateSampler, combineFlushHooks, combineObservers } from './console/rates.js';
export type { Sample, TopicRates } from './console/rates.js';

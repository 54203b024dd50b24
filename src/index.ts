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

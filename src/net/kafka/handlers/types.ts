/**
 * The contract between the Kafka listener (listener.ts) and its request handlers.
 *
 * A handler gets the decoded request body (codec.ts: every field of its table for
 * that version, strings decoded, bytes and records as views of the frame) and returns
 * the response body, or null for "send nothing" (Produce with acks 0). It may throw:
 * the listener then answers with the error's Kafka code where the response has a
 * top-level error code, and otherwise closes the connection (the request cannot be
 * answered in its own format). Handlers catch per-partition failures themselves and
 * put their code (kafkaErrorCode) in the partition's entry.
 *
 * Ordering: the listener starts handlers in request order and answers in request
 * order. A handler that changes the log does so synchronously, before its first await
 * (CommitLog.appendBatch copies the batch in the call), so pipelined produces get
 * offsets in request order.
 *
 * Resources held for the response (a fetch's LogSlices, sent with sendfile after the
 * handler returned) are handed to `ctx.defer`: the listener calls each once the
 * response is on the wire, or dropped.
 */
import type { OffsetsStore } from '../../../index/offsets-store.js';
import type { CommitLog, Logger } from '../../../log/commit-log.js';
import type { GroupCoordinator } from '../../broker/coordinator.js';
import type { Message } from '../codec.js';

/** Broker-wide settings the handlers read (Metadata, FindCoordinator, auto-creation). */
export interface KafkaSettings {
  /** This broker's node id in Metadata, FindCoordinator and DescribeCluster. */
  nodeId: number;
  /** The host clients are told to connect to. */
  advertisedHost: string;
  /** The port clients are told to connect to (the listener's, once it listens). */
  advertisedPort: number;
  /** A non-null cluster id (Kafka's 22-character base64 form). */
  clusterId: string;
  /** Create a topic a Metadata or Produce request names when it does not exist (Kafka's auto.create.topics.enable). */
  autoCreateTopics: boolean;
  /** Partitions of an auto-created topic (Kafka's num.partitions). */
  defaultPartitions: number;
}

export interface KafkaHandlerContext {
  log: CommitLog;
  offsets: OffsetsStore;
  /** The broker core's group coordinator; without one FindCoordinator answers COORDINATOR_NOT_AVAILABLE and the group APIs NOT_COORDINATOR. */
  coordinator?: GroupCoordinator;
  settings: KafkaSettings;
  /** The listener's id of the connection (logs, stats). */
  connectionId: number;
  /** The request header's client id. */
  clientId: string | null;
  /** The client's address as Kafka shows it ("/127.0.0.1"). */
  clientHost: string;
  /** Aborted when the connection closes or the listener stops: long polls end early. */
  signal: AbortSignal;
  logger: Logger;
  /** Runs `release` once this request's response has been sent or dropped. */
  defer(release: () => void): void;
}

export type KafkaHandler = (ctx: KafkaHandlerContext, request: Message, version: number) => Message | null | Promise<Message | null>;

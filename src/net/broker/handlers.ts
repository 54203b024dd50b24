/**
 * One handler per request kind: turns a decoded request (and its raw payload) into
 * the response to send, using the CommitLog and the offsets store. Knows nothing of
 * sockets or ordering; server.ts owns the connection, the response queue and the
 * sendfile transfer.
 *
 * Contract: every handler that changes the log makes its change synchronously, before
 * its first await (appendBatch copies the batch into the mapping in the call), so
 * pipelined produces to one partition get offsets in request order. A handler that
 * throws is answered with the error's code by the caller; long-polls end early when
 * `signal` aborts (the connection closed or the broker is shutting down).
 */
import { CommitLogError, ErrorCode } from '../../errors.js';
import type { OffsetsStore } from '../../index/offsets-store.js';
import type { CommitLog } from '../../log/commit-log.js';
import type { LogSlice } from '../../log/partition-log.js';
import type { TopicConfig } from '../../log/topic-config.js';
import type { GroupCoordinator } from './coordinator.js';
import { fetch, multiFetch } from './fetch.js';
import { checkGroupCommit, handleGroupRequest } from './group-handlers.js';
import type {
  CreateTopicRequest,
  ListOffsetsRequest,
  MetadataRequest,
  OffsetCommitRequest,
  OffsetFetchRequest,
  ProduceRequest,
  RequestBody,
  ResponseBody,
} from '../protocol/messages.js';

export { DEFAULT_FETCH_MAX_BYTES } from './fetch.js';

export interface HandlerContext {
  log: CommitLog;
  offsets: OffsetsStore;
  /** The broker core's group coordinator (shared with the Kafka listener). */
  coordinator: GroupCoordinator;
  clientId: string;
  clientHost: string;
  /** Aborts long-polls: the connection closed or the broker is stopping. */
  signal: AbortSignal;
  /** The broker's cap on a fetch's max_wait_ms, and what to call when a request was clamped to it. */
  fetchLimits: { maxWaitMs: number; clamped(): void };
}

/**
 * What to send back: nothing (produce with acks NONE), a header, or a header whose
 * payload is held ranges of segments (sent with sendfile one after the other, released after).
 */
export type Reply =
  | { kind: 'none' }
  | { kind: 'body'; body: ResponseBody }
  | { kind: 'fetch'; body: ResponseBody; slices: LogSlice[]; /** multiFetch: each slice's topic. */ topics?: string[] };

export function handle(ctx: HandlerContext, body: RequestBody, payload: Buffer): Promise<Reply> {
  switch (body.case) {
    case 'produce':
      return produce(ctx, body.value, payload);
    case 'fetch':
      return fetch(ctx, body.value);
    case 'multiFetch':
      return multiFetch(ctx, body.value);
    case 'listOffsets':
      return Promise.resolve(listOffsets(ctx, body.value));
    case 'metadata':
      return Promise.resolve(metadata(ctx, body.value));
    case 'createTopic':
      return createTopic(ctx, body.value);
    case 'deleteTopic':
      return deleteTopic(ctx, body.value.name);
    case 'offsetCommit':
      return offsetCommit(ctx, body.value);
    case 'offsetFetch':
      return Promise.resolve(offsetFetch(ctx, body.value));
    case 'joinGroup':
    case 'syncGroup':
    case 'heartbeat':
    case 'leaveGroup':
    case 'describeGroup':
    case 'listGroups':
      return handleGroupRequest(ctx, body).then((reply) => ({ kind: 'body', body: reply }));
  }
}

async function produce(ctx: HandlerContext, req: ProduceRequest, payload: Buffer): Promise<Reply> {
  const { log } = ctx;
  const written = log.appendBatch(req.topic, req.partition, payload);
  if (req.acks === 'NONE') {
    await written;
    return { kind: 'none' };
  }
  const { baseOffset, lastOffset } = await written;
  // Under flush 'sync' the append already waited for its msync and this finds nothing
  // to do; under 'async'/'os' it flushes the partition up to (at least) this batch.
  if (req.acks === 'FLUSHED') await log.partition(req.topic, req.partition).flush();
  return { kind: 'body', body: { case: 'produce', value: { baseOffset, lastOffset } } };
}

function listOffsets(ctx: HandlerContext, req: ListOffsetsRequest): Reply {
  const { log } = ctx;
  let offset: number;
  if (req.spec === 'EARLIEST') offset = log.earliestOffset(req.topic, req.partition);
  else if (req.spec === 'LATEST') offset = log.latestOffset(req.topic, req.partition);
  else offset = log.offsetForTimestamp(req.topic, req.partition, req.timestamp) ?? -1;
  return { kind: 'body', body: { case: 'listOffsets', value: { offset } } };
}

function metadata(ctx: HandlerContext, req: MetadataRequest): Reply {
  const { log } = ctx;
  const names = req.topics.length === 0 ? log.listTopics() : req.topics;
  const topics = names.map((name) => {
    const d = log.describeTopic(name);
    return {
      name,
      // The latest offset a reader can see: the high watermark, not the log end.
      partitions: d.partitions.map((p) => ({ partition: p.partition, earliestOffset: p.logStartOffset, latestOffset: p.highWatermark, sizeBytes: p.sizeBytes, segments: p.segments })),
    };
  });
  return { kind: 'body', body: { case: 'metadata', value: { topics } } };
}

async function createTopic(ctx: HandlerContext, req: CreateTopicRequest): Promise<Reply> {
  const config: Partial<TopicConfig> = {};
  // proto3: 0 partitions means the field was left out.
  if (req.partitions > 0) config.partitions = req.partitions;
  if (req.segmentBytes !== undefined) config.segmentBytes = req.segmentBytes;
  if (req.retentionBytes !== undefined) config.retentionBytes = req.retentionBytes;
  if (req.retentionMs !== undefined) config.retentionMs = req.retentionMs;
  await ctx.log.createTopic(req.name, config);
  return { kind: 'body', body: { case: 'createTopic', value: {} } };
}

async function deleteTopic(ctx: HandlerContext, name: string): Promise<Reply> {
  await ctx.log.deleteTopic(name);
  // A topic created later under the same name must not inherit these offsets.
  await ctx.offsets.dropTopic(name);
  return { kind: 'body', body: { case: 'deleteTopic', value: {} } };
}

/**
 * Commits a group's offsets. An offset past the partition's high watermark names a
 * record no consumer could have seen: the whole request is refused with
 * ERR_OFFSET_OUT_OF_RANGE and nothing is stored (Kafka stores any offset; the Kafka
 * listener does as Kafka does).
 */
async function offsetCommit(ctx: HandlerContext, req: OffsetCommitRequest): Promise<Reply> {
  checkGroupCommit(ctx.coordinator, req);
  for (const e of req.offsets) {
    const hw = ctx.log.partition(e.topic, e.partition).highWatermark;
    if (e.offset > hw) {
      throw new CommitLogError(ErrorCode.OFFSET_OUT_OF_RANGE,
        `cannot commit offset ${e.offset} for ${e.topic}/${e.partition} of group ${req.group}: past the high watermark ${hw}`,
        { topic: e.topic, partition: e.partition, offset: e.offset });
    }
  }
  await ctx.offsets.commit(req.group, req.offsets);
  return { kind: 'body', body: { case: 'offsetCommit', value: {} } };
}

function offsetFetch(ctx: HandlerContext, req: OffsetFetchRequest): Reply {
  const { log } = ctx;
  // No partitions listed: all of the topic's.
  const partitions = req.partitions.length > 0 ? req.partitions : log.describeTopic(req.topic).partitions.map((p) => p.partition);
  for (const p of partitions) log.partition(req.topic, p);
  const offsets = ctx.offsets.fetch(req.group, req.topic, partitions);
  return { kind: 'body', body: { case: 'offsetFetch', value: { offsets } } };
}

/** The response fields for a failed request: the CommitLogError's code, anything else ERR_IO. */
export function errorFields(err: unknown): { errorCode: string; errorMessage: string } {
  if (err instanceof CommitLogError) return { errorCode: err.code, errorMessage: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { errorCode: ErrorCode.IO, errorMessage: `unexpected broker error: ${message}` };
}

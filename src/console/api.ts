/**
 * The console's JSON API under `/api/` (docs/console.md documents every call). Each
 * handler takes the parsed request and returns `{ status, body }` or throws; the
 * server turns a throw into `{ error: { code, message } }` (api-error.ts).
 *
 *   GET    /api/overview                       broker, topics, groups, rate history
 *   GET    /api/topics                         topic summaries
 *   POST   /api/topics                         { name, partitions?, retentionMs?, retentionBytes?, segmentBytes? }
 *   GET    /api/topics/NAME                    config, partitions, rates
 *   DELETE /api/topics/NAME                    deletes the topic and its committed offsets
 *   GET    /api/topics/NAME/records?partition=P&offset=O|time=ISO&limit=N
 *   GET    /api/groups                         group summaries
 *   GET    /api/groups/NAME                    members, assignments, offsets, lag
 *   GET    /api/events                         server-sent events: one `sample` per interval
 *
 * Mutating calls (POST, DELETE) are checked by the server first: same origin only,
 * `Content-Type: application/json`.
 */
import type { CommitLog, TopicDescription } from '../log/commit-log.js';
import type { TopicConfig } from '../log/topic-config.js';
import type { OffsetsStore } from '../index/offsets-store.js';
import { ApiError, CONSOLE_CODES, badRequest, notFound } from './api-error.js';
import { describeGroup, listGroups, type CoordinatorView } from './groups.js';
import type { RateSampler } from './rates.js';
import { parsePageQuery, readPage } from './records.js';

export interface ApiContext {
  log: CommitLog;
  broker: { host: string; port: number; offsets: OffsetsStore; stats(): { connections: number; connectionsAccepted: number } };
  sampler: RateSampler;
  coordinator: CoordinatorView | undefined;
  /** Extra facts shown on the overview (flush policy, version, listeners). */
  info: Record<string, string | number>;
}

export interface ApiRequest {
  method: string;
  /** Path segments after `/api/`, URI-decoded. */
  parts: string[];
  query: URLSearchParams;
  /** The parsed JSON body (mutating calls only). */
  body: unknown;
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

const CREATE_KEYS = ['name', 'partitions', 'retentionMs', 'retentionBytes', 'segmentBytes'] as const;

export async function handleApi(ctx: ApiContext, req: ApiRequest): Promise<ApiResponse> {
  const [first, name, sub, ...rest] = req.parts;
  if (first === 'overview' && name === undefined) return get(req, () => overview(ctx));
  if (first === 'topics') {
    if (name === undefined) {
      if (req.method === 'POST') return { status: 201, body: await createTopic(ctx, req.body) };
      return get(req, () => ({ topics: ctx.log.listTopics().map((t) => topicSummary(ctx, ctx.log.describeTopic(t))) }), 'GET, POST');
    }
    if (sub === undefined) {
      if (req.method === 'DELETE') {
        await ctx.log.deleteTopic(name);
        // A topic created later under the same name must not inherit these offsets.
        await ctx.broker.offsets.dropTopic(name);
        return { status: 200, body: { deleted: name } };
      }
      return get(req, () => topicDetail(ctx, name), 'GET, DELETE');
    }
    if (sub === 'records' && rest.length === 0) {
      if (req.method !== 'GET') throw methodNotAllowed('GET');
      const q = parsePageQuery(req.query);
      ctx.log.describeTopic(name); // ERR_UNKNOWN_TOPIC before the partition check
      return { status: 200, body: await readPage(ctx.log, name, q) };
    }
  }
  if (first === 'groups' && sub === undefined) {
    const coordinator = ctx.coordinator;
    if (name === undefined) return get(req, () => ({ membersTracked: coordinator !== undefined, groups: listGroups(ctx.log, ctx.broker.offsets, coordinator) }));
    return get(req, () => describeGroup(ctx.log, ctx.broker.offsets, coordinator, name));
  }
  throw notFound(`no API call ${req.method} /api/${req.parts.join('/')}`);
}

function get(req: ApiRequest, fn: () => unknown, allow = 'GET'): ApiResponse {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(allow);
  return { status: 200, body: fn() };
}

function methodNotAllowed(allow: string): ApiError {
  return new ApiError(405, CONSOLE_CODES.METHOD_NOT_ALLOWED, `method not allowed here; allowed: ${allow}`);
}

function overview(ctx: ApiContext): unknown {
  const { log, broker, sampler } = ctx;
  const topics = log.listTopics().map((t) => topicSummary(ctx, log.describeTopic(t)));
  const stats = broker.stats();
  return {
    broker: { host: broker.host, port: broker.port, dir: log.dir, ...ctx.info },
    connections: stats.connections,
    connectionsAccepted: stats.connectionsAccepted,
    topics,
    partitions: topics.reduce((n, t) => n + t.partitions, 0),
    sizeBytes: topics.reduce((n, t) => n + t.sizeBytes, 0),
    diskBytes: topics.reduce((n, t) => n + t.diskBytes, 0),
    groups: listGroups(log, broker.offsets, ctx.coordinator).length,
    intervalMs: sampler.intervalMs,
    // Totals only: per-topic rates of every sample would grow with topics x history (the topic call has its own).
    samples: sampler.samples().map(({ topics: _topics, ...totals }) => totals),
  };
}

function topicSummary(ctx: ApiContext, d: TopicDescription) {
  const last = ctx.sampler.samples().at(-1)?.topics[d.name];
  return {
    name: d.name,
    partitions: d.partitions.length,
    records: d.partitions.reduce((n, p) => n + (p.highWatermark - p.logStartOffset), 0),
    sizeBytes: d.partitions.reduce((n, p) => n + p.sizeBytes, 0),
    diskBytes: d.partitions.reduce((n, p) => n + p.diskBytes, 0),
    segments: d.partitions.reduce((n, p) => n + p.segments, 0),
    recordsInPerSec: last?.recordsInPerSec ?? 0,
    recordsOutPerSec: last?.recordsOutPerSec ?? 0,
  };
}

function topicDetail(ctx: ApiContext, name: string): unknown {
  const d = ctx.log.describeTopic(name);
  const rates = ctx.sampler.partitionRatesOf(name, d.partitions.length);
  return {
    ...topicSummary(ctx, d),
    config: d.config,
    partitionList: d.partitions.map((p) => ({
      partition: p.partition,
      earliestOffset: p.logStartOffset,
      latestOffset: p.highWatermark,
      highWatermark: p.highWatermark,
      logEndOffset: p.nextOffset,
      records: p.highWatermark - p.logStartOffset,
      sizeBytes: p.sizeBytes,
      diskBytes: p.diskBytes,
      segments: p.segments,
      recordsInPerSec: rates[p.partition] ?? 0,
    })),
    intervalMs: ctx.sampler.intervalMs,
    history: ctx.sampler.samples().map((s) => ({ time: s.time, in: s.topics[name]?.recordsInPerSec ?? 0, out: s.topics[name]?.recordsOutPerSec ?? 0 })),
  };
}

async function createTopic(ctx: ApiContext, body: unknown): Promise<unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, CONSOLE_CODES.BAD_BODY, 'the body must be a JSON object such as {"name":"orders","partitions":3}');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!(CREATE_KEYS as readonly string[]).includes(key)) throw new ApiError(400, CONSOLE_CODES.BAD_BODY, `unknown field ${JSON.stringify(key)} (known: ${CREATE_KEYS.join(', ')})`);
  }
  if (typeof b.name !== 'string') throw badRequest('name must be a string');
  const config: Partial<TopicConfig> = {};
  for (const key of ['partitions', 'retentionMs', 'retentionBytes', 'segmentBytes'] as const) {
    const v = b[key];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'number') throw badRequest(`${key} must be a number, got ${JSON.stringify(v)}`);
    config[key] = v;
  }
  return ctx.log.createTopic(b.name, config);
}

/**
 * Typed codec for the protocol's header messages (src/net/protocol/commitlog.proto, the single
 * source of truth; docs/protocol.md). Turns RequestHeader / ResponseHeader bytes
 * into the plain TypeScript objects below and back. Frames and payloads are
 * frame.ts's business: no record batch ever passes through this module.
 *
 * The .proto is loaded once, at import, with protobufjs (snake_case fields become
 * camelCase). Conversion is driven by the loaded schema, so a field added to the
 * .proto needs only its TypeScript interface here:
 * - 64-bit fields (offsets, byte counts, timestamps) are plain numbers; decoding a
 *   value past Number.MAX_SAFE_INTEGER is ERR_BAD_FRAME, encoding one is
 *   ERR_INVALID_ARGUMENT, as is any number outside its field's range (protobufjs
 *   alone would silently wrap -1 into a uint32).
 * - Enums are their value names ('WRITTEN', 'LATEST', ...); an unknown number is
 *   ERR_BAD_FRAME.
 * - A oneof body is `{ case, value }`; scalar fields at their proto3 default are left
 *   off the wire (canonical encoding); `optional` fields are present only when set.
 * - A request whose apiVersion is outside [MIN_API_VERSION, API_VERSION] decodes with
 *   `body: undefined`: its body may mean something else in that version, so only the
 *   header fields (enough to answer ERR_UNSUPPORTED_VERSION) are interpreted. Version
 *   2 added request kinds (VERSION_2_KINDS); a version 1 request of one of them is
 *   the broker's ERR_UNSUPPORTED_VERSION.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';
import type { GroupRequestBody, GroupResponseBody } from './group-messages.js';

export type * from './group-messages.js';

/**
 * The protocol version this codec implements and sends in every request. 2: MultiFetch
 * and the consumer-group requests (VERSION_2_KINDS); every version 1 request is served
 * unchanged.
 */
export const API_VERSION = 2;
/** The oldest version a broker of this codec serves. */
export const MIN_API_VERSION = 1;
/** The request kinds added in version 2. */
export const VERSION_2_KINDS: ReadonlySet<string> = new Set(['multiFetch', 'joinGroup', 'syncGroup', 'heartbeat', 'leaveGroup', 'describeGroup', 'listGroups']);

// ---- message types ---------------------------------------------------------------

export type Acks = 'WRITTEN' | 'NONE' | 'FLUSHED';

/** Payload: one record batch. */
export interface ProduceRequest {
  topic: string;
  partition: number;
  acks: Acks;
}

export interface ProduceResponse {
  baseOffset: number;
  lastOffset: number;
}

export interface FetchRequest {
  topic: string;
  partition: number;
  offset: number;
  maxBytes: number;
  maxWaitMs: number;
  minBytes: number;
}

/** Payload: whole record batches, concatenated as stored. */
export interface FetchResponse {
  highWatermark: number;
  logStartOffset: number;
}

export interface MultiFetchPartition {
  topic: string;
  partition: number;
  offset: number;
  /** 0: the broker's default (1 MiB). */
  maxBytes: number;
}

/** Many partitions in one long poll (docs/protocol.md, "MultiFetch"). */
export interface MultiFetchRequest {
  partitions: MultiFetchPartition[];
  /** Soft cap of the whole payload; 0: 50 MiB. */
  maxBytes: number;
  /** Clamped to the broker's BrokerOptions.maxWaitMs. */
  maxWaitMs: number;
  minBytes: number;
}

export interface MultiFetchPartitionResult {
  topic: string;
  partition: number;
  /** '' or this partition's error code. */
  errorCode: string;
  errorMessage: string;
  highWatermark: number;
  logStartOffset: number;
  /** This partition's bytes of the payload (results in order). */
  bytes: number;
}

/** Payload: every result's `bytes` of batches, concatenated in result order. */
export interface MultiFetchResponse {
  partitions: MultiFetchPartitionResult[];
  /** The wait the broker applied after clamping. */
  maxWaitMs: number;
}

export type OffsetSpec = 'EARLIEST' | 'LATEST' | 'TIMESTAMP';

export interface ListOffsetsRequest {
  topic: string;
  partition: number;
  spec: OffsetSpec;
  /** Milliseconds since the epoch; used with spec 'TIMESTAMP'. */
  timestamp: number;
}

export interface ListOffsetsResponse {
  /** -1 when there is none. */
  offset: number;
}

export interface MetadataRequest {
  /** Empty: every topic. */
  topics: string[];
}

export interface PartitionMetadata {
  partition: number;
  earliestOffset: number;
  latestOffset: number;
  /** Bytes of log data stored (0 from a broker that does not report it). */
  sizeBytes: number;
  /** Segment files (0 from a broker that does not report it). */
  segments: number;
}

export interface TopicMetadata {
  name: string;
  partitions: PartitionMetadata[];
}

export interface MetadataResponse {
  topics: TopicMetadata[];
}

export interface CreateTopicRequest {
  name: string;
  partitions: number;
  /** Absent: the broker's default. */
  segmentBytes?: number;
  /** -1: unlimited; absent: the broker's default. */
  retentionBytes?: number;
  /** -1: unlimited; absent: the broker's default. */
  retentionMs?: number;
}

export type CreateTopicResponse = Record<string, never>;

export interface DeleteTopicRequest {
  name: string;
}

export type DeleteTopicResponse = Record<string, never>;

export interface OffsetCommitEntry {
  topic: string;
  partition: number;
  offset: number;
  metadata: string;
}

export interface OffsetCommitRequest {
  group: string;
  offsets: OffsetCommitEntry[];
  /** Set by a group member (with generationId): the coordinator checks them. */
  memberId?: string;
  generationId?: number;
  groupInstanceId?: string;
}

export type OffsetCommitResponse = Record<string, never>;

export interface OffsetFetchRequest {
  group: string;
  topic: string;
  partitions: number[];
}

export interface CommittedOffset {
  partition: number;
  /** -1 when the group has committed nothing for the partition. */
  offset: number;
  metadata: string;
}

export interface OffsetFetchResponse {
  offsets: CommittedOffset[];
}

export type RequestBody =
  | { case: 'produce'; value: ProduceRequest }
  | { case: 'fetch'; value: FetchRequest }
  | { case: 'listOffsets'; value: ListOffsetsRequest }
  | { case: 'metadata'; value: MetadataRequest }
  | { case: 'createTopic'; value: CreateTopicRequest }
  | { case: 'deleteTopic'; value: DeleteTopicRequest }
  | { case: 'offsetCommit'; value: OffsetCommitRequest }
  | { case: 'offsetFetch'; value: OffsetFetchRequest }
  | { case: 'multiFetch'; value: MultiFetchRequest }
  | GroupRequestBody;

export type ResponseBody =
  | { case: 'produce'; value: ProduceResponse }
  | { case: 'fetch'; value: FetchResponse }
  | { case: 'listOffsets'; value: ListOffsetsResponse }
  | { case: 'metadata'; value: MetadataResponse }
  | { case: 'createTopic'; value: CreateTopicResponse }
  | { case: 'deleteTopic'; value: DeleteTopicResponse }
  | { case: 'offsetCommit'; value: OffsetCommitResponse }
  | { case: 'offsetFetch'; value: OffsetFetchResponse }
  | { case: 'multiFetch'; value: MultiFetchResponse }
  | GroupResponseBody;

export type RequestKind = RequestBody['case'];

export interface RequestHeader {
  apiVersion: number;
  correlationId: number;
  clientId: string;
  /** Undefined when absent, or when apiVersion is not API_VERSION (not interpreted). */
  body?: RequestBody;
}

export interface ResponseHeader {
  correlationId: number;
  /** '' on success, else an error code such as 'ERR_UNKNOWN_TOPIC'. */
  errorCode: string;
  errorMessage: string;
  /** Usually absent when errorCode is set. */
  body?: ResponseBody;
}

// ---- schema ------------------------------------------------------------------------

function loadSchema(): protobuf.Root {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // From src/net/protocol (tsx) the .proto sits beside this file. tsc does not copy
  // it, so compiled code (dist/net/protocol or dist/src/net/protocol, depending on
  // rootDir) reads the one in the package's src/net/protocol.
  const candidates = [
    path.join(here, 'commitlog.proto'),
    path.join(here, '..', '..', '..', 'src', 'net', 'protocol', 'commitlog.proto'),
    path.join(here, '..', '..', '..', '..', 'src', 'net', 'protocol', 'commitlog.proto'),
  ];
  const file = candidates.find((candidate) => existsSync(candidate));
  if (file === undefined) throw new Error(`commitlog: protocol schema not found, looked at ${candidates.join(', ')}`);
  const root = protobuf.loadSync(file);
  root.resolveAll();
  return root;
}

const schema = loadSchema();
const RequestHeaderType = schema.lookupType('commitlog.v1.RequestHeader');
const ResponseHeaderType = schema.lookupType('commitlog.v1.ResponseHeader');
const bodyFields = (type: protobuf.Type): Map<string, protobuf.Field> =>
  new Map(type.oneofs['body']!.fieldsArray.map((field) => [field.name, field]));
const requestBodyFields = bodyFields(RequestHeaderType);
const responseBodyFields = bodyFields(ResponseHeaderType);

// ---- public API ------------------------------------------------------------------

/** Encodes a request header; ERR_INVALID_ARGUMENT for a value its field cannot hold. */
export function encodeRequest(header: RequestHeader): Uint8Array {
  const wire: Record<string, unknown> = {};
  putScalar(wire, 'apiVersion', ensureUint32(header.apiVersion, 'apiVersion'));
  putScalar(wire, 'correlationId', ensureUint32(header.correlationId, 'correlationId'));
  putScalar(wire, 'clientId', ensureString(header.clientId, 'clientId'));
  if (header.body !== undefined) putBody(wire, header.body, requestBodyFields);
  return RequestHeaderType.encode(wire).finish();
}

/** Decodes a request header; ERR_BAD_FRAME when the bytes are not a valid one. */
export function decodeRequest(buf: Uint8Array): RequestHeader {
  const msg = parse(RequestHeaderType, buf);
  const header: RequestHeader = {
    apiVersion: msg['apiVersion'] as number,
    correlationId: msg['correlationId'] as number,
    clientId: msg['clientId'] as string,
  };
  if (header.apiVersion < MIN_API_VERSION || header.apiVersion > API_VERSION) return header;
  const body = getBody(msg, requestBodyFields);
  if (body !== undefined) header.body = body as RequestBody;
  return header;
}

/** Encodes a response header; ERR_INVALID_ARGUMENT for a value its field cannot hold. */
export function encodeResponse(header: ResponseHeader): Uint8Array {
  const wire: Record<string, unknown> = {};
  putScalar(wire, 'correlationId', ensureUint32(header.correlationId, 'correlationId'));
  putScalar(wire, 'errorCode', ensureString(header.errorCode, 'errorCode'));
  putScalar(wire, 'errorMessage', ensureString(header.errorMessage, 'errorMessage'));
  if (header.body !== undefined) putBody(wire, header.body, responseBodyFields);
  return ResponseHeaderType.encode(wire).finish();
}

/** Decodes a response header; ERR_BAD_FRAME when the bytes are not a valid one. */
export function decodeResponse(buf: Uint8Array): ResponseHeader {
  const msg = parse(ResponseHeaderType, buf);
  const header: ResponseHeader = {
    correlationId: msg['correlationId'] as number,
    errorCode: msg['errorCode'] as string,
    errorMessage: msg['errorMessage'] as string,
  };
  const body = getBody(msg, responseBodyFields);
  if (body !== undefined) header.body = body as ResponseBody;
  return header;
}

// ---- encoding ----------------------------------------------------------------------

type Wire = Record<string, unknown>;

function putBody(wire: Wire, body: { case: string; value: unknown }, fields: Map<string, protobuf.Field>): void {
  const field = typeof body === 'object' && body !== null ? fields.get(body.case) : undefined;
  if (field === undefined) throw invalidArgument(`unknown body case ${String((body as { case?: unknown } | null)?.case)}`);
  wire[field.name] = toWire(field.resolvedType as protobuf.Type, body.value, body.case);
}

/** Proto3 canonical form: a scalar at its default value is not written. */
function putScalar(wire: Wire, name: string, value: number | string): void {
  if (value !== 0 && value !== '') wire[name] = value;
}

function toWire(type: protobuf.Type, value: unknown, where: string): Wire {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidArgument(`${where} must be an object`);
  const source = value as Record<string, unknown>;
  const wire: Wire = {};
  for (const field of type.fieldsArray) {
    const name = `${where}.${field.name}`;
    const v = source[field.name];
    if (field.repeated) {
      if (!Array.isArray(v)) throw invalidArgument(`${name} must be an array`);
      if (v.length > 0) wire[field.name] = v.map((item, i) => valueToWire(field, item, `${name}[${i}]`));
    } else if (field.hasPresence) {
      if (v !== undefined) wire[field.name] = valueToWire(field, v, name);
    } else {
      const converted = valueToWire(field, v, name);
      if (converted !== 0 && converted !== '' && !(converted instanceof Uint8Array && converted.length === 0)) wire[field.name] = converted;
    }
  }
  return wire;
}

function valueToWire(field: protobuf.Field, value: unknown, where: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return toWire(resolved, value, where);
  if (resolved instanceof protobuf.Enum) {
    const number = typeof value === 'string' && Object.hasOwn(resolved.values, value) ? resolved.values[value] : undefined;
    if (number === undefined) throw invalidArgument(`${where} must be one of ${Object.keys(resolved.values).join(', ')}, got ${String(value)}`);
    return number;
  }
  switch (field.type) {
    case 'string':
      return ensureString(value, where);
    case 'uint32':
      return ensureUint32(value, where);
    case 'uint64':
      if (!Number.isSafeInteger(value) || (value as number) < 0) throw invalidArgument(`${where} must be a non-negative safe integer, got ${String(value)}`);
      return value;
    case 'int64':
      if (!Number.isSafeInteger(value)) throw invalidArgument(`${where} must be a safe integer, got ${String(value)}`);
      return value;
    case 'int32':
      if (!Number.isInteger(value) || (value as number) < -0x80000000 || (value as number) > 0x7fffffff) {
        throw invalidArgument(`${where} must be an integer in [-2147483648, 2147483647], got ${String(value)}`);
      }
      return value;
    case 'bytes':
      if (!(value instanceof Uint8Array)) throw invalidArgument(`${where} must be a Buffer or Uint8Array, got ${typeof value}`);
      return value;
    default:
      throw new Error(`messages.ts: field type ${field.type} of ${where} is not supported`);
  }
}

function ensureUint32(value: unknown, where: string): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 0xffffffff) {
    throw invalidArgument(`${where} must be an integer in [0, 4294967295], got ${String(value)}`);
  }
  return value as number;
}

function ensureString(value: unknown, where: string): string {
  if (typeof value !== 'string') throw invalidArgument(`${where} must be a string, got ${typeof value}`);
  return value;
}

// ---- decoding ----------------------------------------------------------------------

function parse(type: protobuf.Type, buf: Uint8Array): Record<string, unknown> {
  if (!(buf instanceof Uint8Array)) throw invalidArgument('buf must be a Uint8Array');
  try {
    // The plain Reader, not the Buffer one protobufjs picks for a Buffer: the latter
    // silently truncates a string whose length runs past the end.
    return type.decode(new protobuf.Reader(buf)) as unknown as Record<string, unknown>;
  } catch (err) {
    throw badFrame(`${type.name} does not parse: ${err instanceof Error ? err.message : String(err)}`, err);
  }
}

function getBody(msg: Record<string, unknown>, fields: Map<string, protobuf.Field>): { case: string; value: unknown } | undefined {
  // protobufjs' virtual oneof property names the member that was set, if any.
  const name = msg['body'];
  if (typeof name !== 'string') return undefined;
  const field = fields.get(name)!;
  return { case: name, value: fromWire(field.resolvedType as protobuf.Type, msg[name] as Record<string, unknown>, name) };
}

function fromWire(type: protobuf.Type, msg: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const name = `${where}.${field.name}`;
    const v = msg[field.name];
    if (field.repeated) {
      out[field.name] = (v as unknown[]).map((item, i) => valueFromWire(field, item, `${name}[${i}]`));
    } else if (field.hasPresence && !Object.hasOwn(msg, field.name)) {
      // Decoded messages inherit defaults from their prototype; only fields that
      // were on the wire are own properties.
      continue;
    } else {
      out[field.name] = valueFromWire(field, v, name);
    }
  }
  return out;
}

function valueFromWire(field: protobuf.Field, value: unknown, where: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return fromWire(resolved, value as Record<string, unknown>, where);
  if (resolved instanceof protobuf.Enum) {
    const name = resolved.valuesById[value as number];
    if (name === undefined) throw badFrame(`${where} has unknown value ${String(value)}`);
    return name;
  }
  if (field.type === 'uint64' || field.type === 'int64') {
    // protobufjs yields a Long (or a number when Long is unavailable).
    const n = typeof value === 'number' ? value : (value as { toNumber(): number }).toNumber();
    if (!Number.isSafeInteger(n)) throw badFrame(`${where} = ${String(value)} is beyond 2^53`);
    return n;
  }
  if (field.type === 'bytes') {
    // A copy: group metadata is small and may outlive the frame (a parked join).
    return Buffer.from(value as Uint8Array);
  }
  return value;
}

function badFrame(message: string, cause?: unknown): CommitLogError {
  return new CommitLogError(ErrorCode.BAD_FRAME, message, cause === undefined ? {} : { cause });
}

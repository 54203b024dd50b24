/**
 * Whole Kafka messages: header plus body, with the int32 size prefix.
 *
 *   request  = size:int32 | header | body      response = size:int32 | header | body
 *   request header v1  api_key:int16 api_version:int16 correlation_id:int32
 *                      client_id:nullable int16 string
 *   request header v2  v1 + tagged fields (client_id stays an int16 string)
 *   response header v0 correlation_id:int32;  v1 = v0 + tagged fields
 *
 * A request uses header v2 from its API's first flexible version, v1 before; its
 * response header v1 likewise, v0 before, except ApiVersions, whose response header
 * is always v0 (a client must read it before it knows what the broker speaks).
 *
 * Responses encode to parts: Buffers with ExternalRecords placeholders between them,
 * and `byteLength` (size prefix included) is known before anything is sent, so a
 * listener writes the first Buffer, sendfiles each placeholder's range, and so on.
 */
import { CommitLogError, ErrorCode, invalidArgument } from '../../errors.js';
import { PartSink, decodeStruct, encodeStruct, type Message, type Part } from './codec.js';
import { Reader, Writer, badRequest } from './primitives.js';
import { apiSpec } from './registry.js';
import { field, type ApiSpec, type Field } from './schema.js';

const API_VERSIONS_KEY = 18;

/** The request header's table; header v2 is its flexible version. */
const REQUEST_HEADER: readonly Field[] = [
  field('apiKey', 'int16'),
  field('apiVersion', 'int16'),
  field('correlationId', 'int32'),
  field('clientId', 'string', { v: '1+', nullable: '1+', default: null, compact: false }),
];
const RESPONSE_HEADER: readonly Field[] = [field('correlationId', 'int32')];

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
  _unknownTags?: unknown;
}

export function requestHeaderVersion(spec: ApiSpec, version: number): 1 | 2 {
  return version >= spec.flexibleFrom ? 2 : 1;
}

export function responseHeaderVersion(spec: ApiSpec, version: number): 0 | 1 {
  if (spec.key === API_VERSIONS_KEY) return 0;
  return version >= spec.flexibleFrom ? 1 : 0;
}

function specFor(key: number, version: number): ApiSpec {
  const spec = apiSpec(key);
  if (spec === undefined || version < spec.minVersion || version > spec.maxVersion) {
    throw new CommitLogError(ErrorCode.UNSUPPORTED_VERSION, `Kafka API ${key} version ${version} is not supported`);
  }
  return spec;
}

export type DecodedRequest =
  | { supported: true; header: RequestHeader; spec: ApiSpec; body: Message }
  /** Unknown key or version: the header is read as v1 (its tags, if any, are not). */
  | { supported: false; header: RequestHeader };

/**
 * Decodes one request frame (without its size prefix). The body is a set of views of
 * `frame` (strings decoded, bytes and records not copied). Throws ERR_KAFKA_BAD_REQUEST
 * when the frame is malformed or has bytes left over after the body.
 */
export function decodeRequest(frame: Buffer): DecodedRequest {
  const r = new Reader(frame);
  const header = decodeStruct(r, REQUEST_HEADER, 1, false) as unknown as RequestHeader;
  const spec = apiSpec(header.apiKey);
  if (spec === undefined || header.apiVersion < spec.minVersion || header.apiVersion > spec.maxVersion) {
    return { supported: false, header };
  }
  if (requestHeaderVersion(spec, header.apiVersion) === 2) {
    const tags = decodeStruct(r, [], 2, true);
    if (tags._unknownTags !== undefined) header._unknownTags = tags._unknownTags;
  }
  const body = decodeStruct(r, spec.request, header.apiVersion, header.apiVersion >= spec.flexibleFrom);
  if (r.remaining !== 0) throw badRequest(`${r.remaining} bytes left after the ${spec.name} v${header.apiVersion} request`, r.pos);
  return { supported: true, header, spec, body };
}

/** A request frame, size prefix included (for clients and tests). */
export function encodeRequest(header: RequestHeader, body: Message): Buffer {
  const spec = specFor(header.apiKey, header.apiVersion);
  const sink = new PartSink(new Writer(256));
  sink.w.int32(0);
  const hv = requestHeaderVersion(spec, header.apiVersion);
  encodeStruct(sink, REQUEST_HEADER, hv, hv === 2, header as unknown as Message);
  encodeStruct(sink, spec.request, header.apiVersion, header.apiVersion >= spec.flexibleFrom, body);
  return single(finishFrame(sink.finish()));
}

export interface EncodedFrame {
  /** Total bytes on the wire, the 4-byte size prefix included. */
  byteLength: number;
  /**
   * Wire order, strictly alternating: Buffer, ExternalRecords, Buffer, ..., Buffer.
   * parts[0] holds the size prefix; the Buffers between and after may be empty.
   */
  parts: Part[];
}

/**
 * A response frame for `version` of API `key`. `version` must be one this codec
 * speaks; for an ApiVersions request of another version use apiVersionsAnswer(),
 * whose version is 0 then.
 */
export function encodeResponse(key: number, version: number, correlationId: number, body: Message): EncodedFrame {
  const spec = specFor(key, version);
  const sink = new PartSink(new Writer(256));
  sink.w.int32(0);
  const hv = responseHeaderVersion(spec, version);
  encodeStruct(sink, RESPONSE_HEADER, hv, hv === 1, { correlationId });
  encodeStruct(sink, spec.response, version, version >= spec.flexibleFrom, body);
  return finishFrame(sink.finish());
}

function finishFrame(parts: Part[]): EncodedFrame {
  let byteLength = 0;
  for (const p of parts) byteLength += p.byteLength;
  if (byteLength - 4 > 0x7fffffff) throw invalidArgument(`frame of ${byteLength} bytes exceeds the int32 size`);
  (parts[0] as Buffer).writeInt32BE(byteLength - 4, 0);
  return { byteLength, parts };
}

function single(f: EncodedFrame): Buffer {
  if (f.parts.length !== 1) throw invalidArgument('a request cannot carry external records');
  return f.parts[0] as Buffer;
}

/**
 * One Buffer of the whole frame; `resolve` supplies the bytes of each external
 * placeholder (tests, small responses).
 */
export function flattenFrame(f: EncodedFrame, resolve?: (e: Exclude<Part, Buffer>) => Buffer): Buffer {
  const bufs = f.parts.map((p) => {
    if (p instanceof Uint8Array) return p;
    if (resolve === undefined) throw invalidArgument('frame has external records and no resolver');
    const b = resolve(p);
    if (b.length !== p.byteLength) throw invalidArgument(`external records resolved to ${b.length} bytes, expected ${p.byteLength}`);
    return b;
  });
  return Buffer.concat(bufs, f.byteLength);
}

export interface DecodedResponse {
  correlationId: number;
  body: Message;
}

/** Decodes a response frame (without its size prefix) of a known API and version. */
export function decodeResponse(key: number, version: number, frame: Buffer): DecodedResponse {
  const spec = specFor(key, version);
  const r = new Reader(frame);
  const hv = responseHeaderVersion(spec, version);
  const header = decodeStruct(r, RESPONSE_HEADER, hv, hv === 1);
  const body = decodeStruct(r, spec.response, version, version >= spec.flexibleFrom);
  if (r.remaining !== 0) throw badRequest(`${r.remaining} bytes left after the ${spec.name} v${version} response`, r.pos);
  return { correlationId: header.correlationId as number, body };
}

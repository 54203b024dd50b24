/**
 * The one generic encoder/decoder: walks a message table (schema.ts) for one version
 * and reads or writes a plain object. No API has code of its own here.
 *
 * Rules it implements (KIP-482 for the flexible part):
 * - A field outside the version is neither read nor written; the decoder sets it to
 *   its default so every decoded object has every field of its table. The encoder
 *   takes a missing (undefined) field as its default and ignores fields the version
 *   lacks, whatever their value.
 * - In a flexible version strings, bytes, records and arrays are compact (uvarint
 *   length+1, 0 = null) and every struct, array element and the message itself ends
 *   with a tagged-field section. A tagged field is written only when it differs from
 *   its default, in ascending tag order. Tags the table does not know are kept on the
 *   decoded struct as `_unknownTags` ({ tag, data }) and written back when encoding,
 *   so a decode/encode round trip is byte-identical.
 * - null is accepted only where the field's nullable versions say so.
 * - Records are never parsed: decoding gives a view of the frame; encoding takes a
 *   Buffer, or an ExternalRecords placeholder that ends the current byte chunk (the
 *   caller sends its bytes itself, e.g. with sendfile).
 *
 * Decoding throws only ERR_KAFKA_BAD_REQUEST (malformed input); encoding throws
 * ERR_INVALID_ARGUMENT for a value the table cannot hold.
 */
import { invalidArgument } from '../../errors.js';
import { Reader, Writer, badRequest } from './primitives.js';
import { inRange, type Field } from './schema.js';

export type Message = Record<string, unknown>;

export interface UnknownTag {
  readonly tag: number;
  readonly data: Buffer;
}

export const UNKNOWN_TAGS = '_unknownTags';

/** Record bytes that are not in memory: the encoder leaves a gap of byteLength bytes. */
export interface ExternalRecords {
  readonly external: true;
  readonly byteLength: number;
  /** Whatever the sender needs to produce the bytes (file descriptor, positions...). */
  readonly source?: unknown;
}

export function isExternal(v: unknown): v is ExternalRecords {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && (v as ExternalRecords).external === true;
}

/** Encoded bytes as chunks, with external record ranges between them. */
export type Part = Buffer | ExternalRecords;

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

export function defaultOf(f: Field, element = false): unknown {
  if (!element && 'default' in f) return f.default;
  if (f.array && !element) return [];
  switch (f.type) {
    case 'struct': return defaults(f.fields!);
    case 'bool': return false;
    case 'string': return '';
    case 'bytes': return Buffer.alloc(0);
    case 'uuid': return ZERO_UUID;
    case 'records': return null;
    default: return 0;
  }
}

export function defaults(fields: readonly Field[]): Message {
  const o: Message = {};
  for (const f of fields) o[f.name] = defaultOf(f);
  return o;
}

function isDefault(f: Field, v: unknown, version: number): boolean {
  if (v === undefined) return true;
  if (f.array) return Array.isArray(v) && v.length === 0;
  if (f.type === 'struct') {
    if (typeof v !== 'object' || v === null) return false;
    const o = v as Message;
    if (Array.isArray(o[UNKNOWN_TAGS]) && (o[UNKNOWN_TAGS] as unknown[]).length > 0) return false;
    return f.fields!.every((c) => !inRange(c.versions, version) || isDefault(c, o[c.name], version));
  }
  const d = defaultOf(f);
  if (v instanceof Uint8Array) return d instanceof Uint8Array && v.length === d.length && v.length === 0;
  return v === d;
}

function minBytes(f: Field, compact: boolean): number {
  switch (f.type) {
    case 'int16': case 'uint16': return 2;
    case 'int32': case 'uint32': return 4;
    case 'int64': case 'float64': return 8;
    case 'uuid': return 16;
    case 'string': return compact ? 1 : 2;
    case 'bytes': case 'records': return compact ? 1 : 4;
    default: return 1;
  }
}

// ---------------------------------------------------------------- decoding

export function decodeStruct(r: Reader, fields: readonly Field[], version: number, flexible: boolean): Message {
  const o: Message = {};
  for (const f of fields) {
    if (f.tag !== null || !inRange(f.versions, version)) o[f.name] = defaultOf(f);
    else o[f.name] = readValue(r, f, version, flexible);
  }
  if (flexible) readTags(r, fields, version, o);
  return o;
}

function readValue(r: Reader, f: Field, version: number, flexible: boolean): unknown {
  const compact = flexible && f.compact;
  const nullable = inRange(f.nullable, version);
  if (!f.array) return readOne(r, f, version, flexible, compact, nullable);
  const at = r.pos;
  const n = r.arrayCount(compact, minBytes(f, compact));
  if (n === -1) {
    if (!nullable) throw badRequest(`non-nullable array ${f.name} is null`, at);
    return null;
  }
  const items: unknown[] = [];
  for (let i = 0; i < n; i++) items.push(readOne(r, f, version, flexible, compact, false));
  return items;
}

function readOne(r: Reader, f: Field, version: number, flexible: boolean, compact: boolean, nullable: boolean): unknown {
  switch (f.type) {
    case 'int8': return r.int8();
    case 'int16': return r.int16();
    case 'uint16': return r.uint16();
    case 'int32': return r.int32();
    case 'uint32': return r.uint32();
    case 'int64': return r.int64();
    case 'float64': return r.float64();
    case 'bool': return r.bool();
    case 'uuid': return r.uuid();
    case 'struct': return decodeStruct(r, f.fields!, version, flexible);
    case 'records': return r.bytes(compact);
    case 'string': case 'bytes': {
      const at = r.pos;
      const v = f.type === 'string' ? r.string(compact) : r.bytes(compact);
      if (v === null && !nullable) throw badRequest(`non-nullable ${f.name} is null`, at);
      return v;
    }
  }
}

function readTags(r: Reader, fields: readonly Field[], version: number, o: Message): void {
  const at = r.pos;
  const count = r.uvarint();
  // Each tagged field takes at least two bytes (tag and size).
  if (count * 2 > r.remaining) throw badRequest(`${count} tagged fields cannot fit in ${r.remaining} bytes`, at);
  let last = -1;
  const unknown: UnknownTag[] = [];
  for (let i = 0; i < count; i++) {
    const tagAt = r.pos;
    const tag = r.uvarint();
    if (tag <= last) throw badRequest(`tag ${tag} after tag ${last} (tags must ascend)`, tagAt);
    last = tag;
    const size = r.uvarint();
    const start = r.take(size, `tagged field ${tag}`);
    const f = fields.find((x) => x.tag === tag && inRange(x.versions, version));
    if (f === undefined) {
      unknown.push({ tag, data: r.buf.subarray(start, start + size) });
      continue;
    }
    const sub = new Reader(r.buf, start, start + size);
    o[f.name] = readValue(sub, f, version, true);
    if (sub.remaining !== 0) throw badRequest(`tagged field ${tag} (${f.name}) has ${sub.remaining} trailing bytes`, sub.pos);
  }
  if (unknown.length > 0) o[UNKNOWN_TAGS] = unknown;
}

// ---------------------------------------------------------------- encoding

/** Collects chunks and external placeholders in order while a Writer fills. */
export class PartSink {
  readonly parts: Part[] = [];
  constructor(readonly w: Writer) {}
  external(e: ExternalRecords): void {
    this.parts.push(this.w.cut(), e);
  }
  finish(): Part[] {
    this.parts.push(this.w.cut());
    return this.parts;
  }
}

export function encodeStruct(sink: PartSink, fields: readonly Field[], version: number, flexible: boolean, o: Message): void {
  if (typeof o !== 'object' || o === null) throw invalidArgument(`struct expected, got ${String(o)}`);
  for (const f of fields) {
    if (f.tag !== null || !inRange(f.versions, version)) continue;
    const v = o[f.name];
    writeValue(sink, f, version, flexible, v === undefined ? defaultOf(f) : v);
  }
  if (flexible) writeTags(sink.w, fields, version, o);
}

function writeValue(sink: PartSink, f: Field, version: number, flexible: boolean, v: unknown): void {
  const compact = flexible && f.compact;
  const nullable = inRange(f.nullable, version);
  if (!f.array) return writeOne(sink, f, version, flexible, compact, nullable, v);
  if (v === null) {
    if (!nullable) throw invalidArgument(`${f.name} is not nullable in version ${version}`);
    return sink.w.length(compact ? 'compact' : 'int32', -1);
  }
  if (!Array.isArray(v)) throw invalidArgument(`${f.name} must be an array, got ${String(v)}`);
  sink.w.length(compact ? 'compact' : 'int32', v.length);
  for (const item of v) writeOne(sink, f, version, flexible, compact, false, item);
}

function writeOne(sink: PartSink, f: Field, version: number, flexible: boolean, compact: boolean, nullable: boolean, v: unknown): void {
  const w = sink.w;
  if (v === null && f.type !== 'records' && !((f.type === 'string' || f.type === 'bytes') && nullable)) {
    throw invalidArgument(`${f.name} is not nullable in version ${version}`);
  }
  switch (f.type) {
    case 'int8': return w.int8(v as number);
    case 'int16': return w.int16(v as number);
    case 'uint16': return w.uint16(v as number);
    case 'int32': return w.int32(v as number);
    case 'uint32': return w.uint32(v as number);
    case 'int64': return w.int64(v as number);
    case 'float64': return w.float64(v as number);
    case 'bool': return w.bool(v as boolean);
    case 'uuid': return w.uuid(v as string);
    case 'string': return w.string(v as string | null, compact);
    case 'bytes': return w.bytes(v as Buffer | null, compact);
    case 'struct': return encodeStruct(sink, f.fields!, version, flexible, v as Message);
    case 'records':
      if (isExternal(v)) {
        if (!Number.isSafeInteger(v.byteLength) || v.byteLength < 0 || v.byteLength > 0x7fffffff) {
          throw invalidArgument(`external records length ${v.byteLength} out of range`);
        }
        w.length(compact ? 'compact' : 'int32', v.byteLength);
        return sink.external(v);
      }
      return w.bytes((v ?? null) as Buffer | null, compact);
  }
}

function writeTags(w: Writer, fields: readonly Field[], version: number, o: Message): void {
  const out: { tag: number; data: Buffer }[] = [];
  for (const f of fields) {
    if (f.tag === null || !inRange(f.versions, version) || isDefault(f, o[f.name], version)) continue;
    const sub = new PartSink(new Writer(64));
    writeValue(sub, f, version, true, o[f.name]);
    const parts = sub.finish();
    if (parts.length !== 1) throw invalidArgument(`tagged field ${f.name} cannot hold external records`);
    out.push({ tag: f.tag, data: parts[0] as Buffer });
  }
  const unknown = o[UNKNOWN_TAGS];
  if (Array.isArray(unknown)) {
    for (const u of unknown as UnknownTag[]) {
      if (out.some((x) => x.tag === u.tag)) throw invalidArgument(`tag ${u.tag} given twice`);
      out.push({ tag: u.tag, data: u.data });
    }
  }
  out.sort((a, b) => a.tag - b.tag);
  w.uvarint(out.length);
  for (const t of out) {
    w.uvarint(t.tag);
    w.uvarint(t.data.length);
    w.raw(t.data);
  }
}

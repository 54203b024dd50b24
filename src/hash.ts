/**
 * XXH3 through xxhash-addon: the hash for key -> partition and the checksum of our
 * own small files (checkpoints, topic metadata). xxhash-addon crashes the process on
 * a wrong argument type, so every call goes through here with its input checked.
 */
import { createRequire } from 'node:module';
import { invalidArgument } from './errors.js';

interface XXHash3Static {
  hash(data: Buffer): Buffer;
}
const require = createRequire(import.meta.url);
const { XXHash3 } = require('xxhash-addon') as { XXHash3: XXHash3Static };

/** XXH3-64 of the bytes, as 16 lowercase hex digits. */
export function xxh3Hex(data: Buffer | string): string {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (!Buffer.isBuffer(buf)) throw invalidArgument('xxh3: expected a Buffer or string');
  return XXHash3.hash(buf).toString('hex');
}

/** XXH3-64 of the bytes, its low 32 bits as an unsigned number (for key -> partition). */
export function xxh3Low32(data: Buffer | string): number {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (!Buffer.isBuffer(buf)) throw invalidArgument('xxh3: expected a Buffer or string');
  return XXHash3.hash(buf).readUInt32BE(4);
}

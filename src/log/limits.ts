/**
 * What a data directory costs the process, and the check that it fits before anything
 * is opened: every partition holds its active segment open (one file descriptor, the
 * .log, and three mappings: .log, .cq, .tix; index files keep no descriptor), the
 * sealed-segment cache up to `maxOpenSegments` more of each, and a partition whose
 * active segment is close to full one prepared segment more (1 fd, 3 mappings) for a
 * while. The limits are RLIMIT_NOFILE (Node raises its soft limit to the hard one at
 * start) and vm.max_map_count. Opening past them would fail later with EMFILE or
 * ENOMEM in the middle of an open or a roll; ERR_LIMIT at open names the number to
 * raise instead. Linux only (/proc); elsewhere the check is skipped.
 */
import fs from 'node:fs';
import { CommitLogError, ErrorCode } from '../errors.js';

/** ERR_LIMIT: the directory needs more file descriptors or mappings than the process may have. */
export const LIMIT_CODE = ErrorCode.LIMIT;

export const FDS_PER_PARTITION = 1;
export const MAPS_PER_PARTITION = 3;
/** Room kept for sockets, the lock file, checkpoint writes and prepared segments. */
const SPARE_FDS = 256;
const SPARE_MAPS = 1024;

export interface ProcessLimits {
  /** Soft RLIMIT_NOFILE, and the descriptors open now. */
  maxFds: number;
  openFds: number;
  /** vm.max_map_count, and the mappings of the process now. */
  maxMaps: number;
  maps: number;
}

/** The limits and current use, or null where /proc does not tell them. */
export function readProcessLimits(): ProcessLimits | null {
  try {
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const line = limits.split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line === undefined ? NaN : Number(line.slice('Max open files'.length).trim().split(/\s+/)[0]);
    const maxMaps = Number(fs.readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim());
    const openFds = fs.readdirSync('/proc/self/fd').length;
    const maps = countLines(fs.readFileSync('/proc/self/maps', 'utf8'));
    if (!Number.isFinite(maxMaps)) return null;
    return { maxFds: Number.isFinite(soft) ? soft : Infinity, openFds, maxMaps, maps };
  } catch {
    return null;
  }
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Throws ERR_LIMIT when `partitions` more partitions (and a segment cache of
 * `cacheSegments`) would not fit the process's descriptor or mapping limit.
 */
export function ensureLimitsFor(partitions: number, cacheSegments: number, what: string, limits = readProcessLimits()): void {
  if (limits === null || partitions === 0) return;
  const needFds = limits.openFds + (partitions + cacheSegments) * FDS_PER_PARTITION + SPARE_FDS;
  const needMaps = limits.maps + (partitions + cacheSegments) * MAPS_PER_PARTITION + SPARE_MAPS;
  if (needFds > limits.maxFds) {
    throw new CommitLogError(LIMIT_CODE,
      `${what}: ${partitions} partitions need about ${needFds} file descriptors (${limits.openFds} open now, ${FDS_PER_PARTITION} per partition, ${cacheSegments} for the segment cache, ${SPARE_FDS} spare), but the limit is ${limits.maxFds}: raise it (ulimit -n, or LimitNOFILE= in the systemd unit)`);
  }
  if (needMaps > limits.maxMaps) {
    throw new CommitLogError(LIMIT_CODE,
      `${what}: ${partitions} partitions need about ${needMaps} memory mappings (${limits.maps} now, ${MAPS_PER_PARTITION} per partition, ${cacheSegments * MAPS_PER_PARTITION} for the segment cache, ${SPARE_MAPS} spare), but vm.max_map_count is ${limits.maxMaps}: raise it (sysctl -w vm.max_map_count=${Math.max(262144, needMaps * 2)})`);
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; after a failure starts no more, and rejects with it once those in flight settled. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown = null;
  const worker = async (): Promise<void> => {
    while (next < items.length && firstError === null) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        if (firstError === null) firstError = err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstError !== null) throw firstError;
}

/**
 * Producer ids for idempotent producers (CommitLog.initProducerId, Kafka's
 * InitProducerId): unique within a data directory and never handed out twice, across
 * restarts and kills. Ids are reserved in blocks of 1000, as Kafka's ProducerIdManager
 * does: `<dir>/.producer-ids` (the XXH3-guarded two-line format of checkpoint.ts)
 * holds `{"v":1,"next":N}`, the first id of no block yet reserved, written (fsynced,
 * renamed) before any id of the new block is handed out. A kill loses the rest of the
 * block, never reuses it. A missing or damaged file starts after both what it said and
 * the largest producer id any partition's state knows (`floor`).
 */
import path from 'node:path';
import { readGuardedJson, writeGuardedJsonAsync } from '../index/checkpoint.js';

export const PRODUCER_IDS_FILE = '.producer-ids';
export const PRODUCER_ID_BLOCK = 1000;

export class ProducerIdAllocator {
  private readonly file: string;
  private next = -1;
  private limit = -1;
  private chain: Promise<unknown> = Promise.resolve();

  /** `floor`: called once, before the first id: one past the largest id in use (damaged-file fallback). */
  constructor(dir: string, private readonly floor: () => number) {
    this.file = path.join(dir, PRODUCER_IDS_FILE);
  }

  /** The next id; ids are handed out in call order. */
  allocate(): Promise<number> {
    const id = this.chain.then(async () => {
      if (this.next < 0) {
        const stored = readGuardedJson(this.file) as { next?: unknown } | null;
        const n = stored !== null && Number.isSafeInteger(stored.next) && (stored.next as number) >= 0 ? (stored.next as number) : 0;
        this.next = this.limit = Math.max(n, this.floor());
      }
      if (this.next >= this.limit) {
        const limit = this.next + PRODUCER_ID_BLOCK;
        await writeGuardedJsonAsync(this.file, { v: 1, next: limit }, 'reserving producer ids failed');
        this.limit = limit;
      }
      return this.next++;
    });
    this.chain = id.catch(() => undefined);
    return id;
  }

  /** Resolves once no reservation is being written. */
  idle(): Promise<void> {
    return this.chain.then(() => undefined);
  }
}

/**
 * Keeps at most `maxOpen` sealed segments open (file descriptor + mappings) across all
 * partitions of a CommitLog; the least recently used one that nobody holds is closed
 * when another must open. Active segments are never in the cache: they stay open.
 * This bounds file descriptors and vm.max_map_count use however many segments exist.
 */
import type { Segment } from './segment.js';

export class SegmentCache {
  readonly maxOpen: number;
  // Map keeps insertion order: the first key is the least recently used.
  private readonly open = new Map<Segment, true>();

  constructor(maxOpen: number) {
    this.maxOpen = maxOpen;
  }

  /** Opens the sealed segment if needed and marks it most recently used. */
  use(segment: Segment): Segment {
    if (this.open.delete(segment)) {
      this.open.set(segment, true);
      return segment;
    }
    if (!segment.isOpen) segment.open(false);
    this.open.set(segment, true);
    // Never the segment just opened: its caller is about to read it.
    this.evict(segment);
    return segment;
  }

  /** A segment sealed while open joins the cache. */
  adopt(segment: Segment): void {
    this.open.delete(segment);
    this.open.set(segment, true);
    this.evict();
  }

  forget(segment: Segment): void {
    this.open.delete(segment);
  }

  private evict(keep?: Segment): void {
    if (this.open.size <= this.maxOpen) return;
    for (const segment of this.open.keys()) {
      if (this.open.size <= this.maxOpen) break;
      if (segment.refs > 0 || segment === keep) continue;
      this.open.delete(segment);
      segment.closeFiles();
    }
  }
}

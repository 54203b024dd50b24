/**
 * Record-level validation of a produced batch (Kafka's LogValidator, without building
 * record objects). Placeholder: filled in by the validation work of issue 8.3.
 */
import type { BatchHeader } from './batch.js';

/** Throws ERR_CORRUPT_BATCH when a record of the CRC-checked batch at `position` is malformed. */
export function validateRecords(_buf: Buffer, _position: number, _header: BatchHeader): void {
  // filled in by issue 8.3
}

/**
 * Child process of offline-read.test.ts: reads a data directory with the offline API
 * and truncates the files under it midway, as a broker sealing its active segment
 * does (ftruncate of the .log to its data, the indexes to their entries). Prints the
 * outcome as JSON on stdout. Run as a child so that a SIGBUS kills only it, and the
 * test sees a signal exit.
 *
 *   scan DIR LOG_BYTES          scanSegment over the last segment of topic t, partition 0
 *   verify DIR LOG_BYTES CQ_BYTES TIX_BYTES   verifyTarget(DIR), truncating at its first progress report
 */
import fs from 'node:fs';
import { FileReader, locate, scanSegment } from '../../src/ops/data-dir.js';
import { verifyTarget } from '../../src/ops/verify.js';

const [mode, dir, logBytes, cqBytes, tixBytes] = process.argv.slice(2);
const segment = locate(dir!).topics[0]!.partitions[0]!.segments.at(-1)!;

function seal(): void {
  fs.truncateSync(segment.log, Number(logBytes));
  if (cqBytes !== undefined) fs.truncateSync(segment.cq, Number(cqBytes));
  if (tixBytes !== undefined) fs.truncateSync(segment.tix, Number(tixBytes));
}

if (mode === 'scan') {
  const file = FileReader.open(segment.log)!;
  seal();
  const outcome = scanSegment(file, segment.baseOffset);
  file.close();
  process.stdout.write(JSON.stringify(outcome));
} else {
  let sealed = false;
  const report = verifyTarget(dir!, {
    onProgress: () => {
      if (sealed) return;
      sealed = true;
      seal();
    },
  });
  process.stdout.write(JSON.stringify({ sealed, report }));
}

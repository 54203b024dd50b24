/** Disk space a directory tree really takes (what du counts): the sum of st_blocks * 512. */
import fs from 'node:fs';
import path from 'node:path';

export function diskUsage(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) total += diskUsage(file);
    else total += fs.statSync(file).blocks * 512;
  }
  return total;
}

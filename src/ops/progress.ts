/**
 * A one-line progress bar on stderr for long operations (verify, dump, bench). It is
 * drawn only when stderr is a terminal; piped or redirected, every call is a no-op, so
 * scripts and logs never see carriage returns. Redrawn at most every 100 ms; `clear()`
 * removes it so other output can be written, and the next update draws it again.
 */

export interface Progress {
  /** `done` of `total` units (bytes); `detail` is shown after the bar (a file name). */
  update(done: number, detail?: string): void;
  /** Writes `text` to stderr above the bar. */
  note(text: string): void;
  /** Removes the bar from the screen (it comes back on the next update). */
  clear(): void;
  /** Removes the bar for good. */
  done(): void;
}

type TtyStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

const NOOP: Progress = { update: () => undefined, note: (text) => void process.stderr.write(text), clear: () => undefined, done: () => undefined };
const REDRAW_MS = 100;

/** A bar labelled `label` over `total` units (0: unknown, shown as a count and a spinner). */
export function createProgress(label: string, total: number, options: { stream?: TtyStream; unit?: 'bytes' | 'count'; enabled?: boolean } = {}): Progress {
  const stream = options.stream ?? (process.stderr as TtyStream);
  if (stream.isTTY !== true || options.enabled === false) return options.stream === undefined ? NOOP : { ...NOOP, note: (text) => void stream.write(text) };
  const unit = options.unit ?? 'bytes';
  const started = performance.now();
  let shown = false;
  let lastDraw = 0;
  let lastDone = 0;
  let lastDetail = '';
  let spin = 0;

  const draw = (force: boolean): void => {
    const now = performance.now();
    if (!force && now - lastDraw < REDRAW_MS) return;
    lastDraw = now;
    const width = stream.columns !== undefined && stream.columns > 0 ? Math.max(40, stream.columns) : 80;
    const amount = unit === 'bytes' ? formatBytes(lastDone) : String(lastDone);
    const elapsed = `${((now - started) / 1000).toFixed(1)}s`;
    let line: string;
    if (total > 0) {
      const fraction = Math.min(1, lastDone / total);
      const barWidth = Math.max(10, Math.min(30, width - 50));
      const filled = Math.round(fraction * barWidth);
      const of = unit === 'bytes' ? formatBytes(total) : String(total);
      line = `${label} [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${amount}/${of} ${elapsed}`;
    } else {
      line = `${label} ${'|/-\\'[spin++ % 4]} ${amount} ${elapsed}`;
    }
    // The detail (a file name) goes first when the terminal is narrow.
    if (lastDetail !== '') line += ` ${lastDetail}`;
    if (line.length > width - 1) line = line.slice(0, width - 1);
    stream.write(`\r\x1b[K${line}`);
    shown = true;
  };
  const clear = (): void => {
    if (!shown) return;
    stream.write('\r\x1b[K');
    shown = false;
  };
  return {
    update(done, detail) {
      lastDone = done;
      if (detail !== undefined) lastDetail = detail;
      draw(false);
    },
    note(text) {
      clear();
      stream.write(text);
      draw(true);
    },
    clear,
    done() {
      clear();
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

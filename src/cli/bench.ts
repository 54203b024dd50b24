/**
 * `commitlog bench NAME [-- ARGS]`: runs `bench/NAME.ts` of the installed package (the
 * same files as `npm run bench:NAME`) in a child Node process with tsx's loader, from
 * the package directory, passing ARGS through. Its output is forwarded as it comes;
 * on a terminal a one-line timer on stderr shows that it is still running. Exits with
 * the benchmark's exit code. Benchmarks never gate CI: docs/benchmarks.md.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createProgress } from '../ops/progress.js';
import { UsageError, guard } from './args.js';

/** The package's root: the nearest directory above this file with commitlog's package.json. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      try {
        if ((JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string }).name === 'commitlog') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the commitlog package directory');
    dir = up;
  }
}

/** Benchmarks shipped in bench/: every .ts file but the helpers (lib.ts, _*.ts). */
function listBenchmarks(root = packageRoot()): string[] {
  const dir = path.join(root, 'bench');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir)
    .filter((n) => n.endsWith('.ts') && n !== 'lib.ts' && !n.startsWith('_') && !n.endsWith('.d.ts'))
    .map((n) => n.slice(0, -3))
    .sort();
}

function usage(): string {
  let names: string[] = [];
  try {
    names = listBenchmarks();
  } catch {
    // listed as none
  }
  return `usage: commitlog bench NAME [-- ARGS]

Runs bench/NAME.ts of the installed package (as npm run bench:NAME does) and passes
ARGS to it, e.g. 'commitlog bench append -- --json'. Needs tsx (a dev dependency of
commitlog: run from a clone after npm install, or npm install tsx next to it).

benchmarks: ${names.length > 0 ? names.join(', ') : '(none found in bench/)'}
Figures and how to read them: docs/benchmarks.md.
`;
}

export function run(args: string[]): Promise<number> {
  const text = usage();
  return guard('bench', text, async () => {
    const [name, ...rest] = args;
    if (name === undefined || name === '--help' || name === '-h') {
      process.stdout.write(text);
      return name === undefined ? 2 : 0;
    }
    const root = packageRoot();
    if (!listBenchmarks(root).includes(name)) throw new UsageError(`unknown benchmark ${JSON.stringify(name)}`);
    const passed = rest[0] === '--' ? rest.slice(1) : rest;
    let loader: string;
    try {
      loader = createRequire(path.join(root, 'package.json')).resolve('tsx');
    } catch {
      throw new Error('the benchmarks are TypeScript and need tsx: npm install tsx (it is a dev dependency of commitlog)');
    }
    return runChild(root, [`--import=${pathToFileURL(loader).href}`, path.join(root, 'bench', `${name}.ts`), ...passed], name);
  });
}

function runChild(cwd: string, argv: string[], name: string): Promise<number> {
  const bar = createProgress(`bench ${name}`, 0, { unit: 'count' });
  const child = spawn(process.execPath, argv, { cwd, stdio: ['inherit', 'pipe', 'pipe'] });
  let lines = 0;
  const forward = (to: NodeJS.WriteStream) => (chunk: Buffer): void => {
    bar.clear();
    to.write(chunk);
    for (const byte of chunk) if (byte === 0x0a) lines++;
    bar.update(lines, 'lines of output');
  };
  child.stdout.on('data', forward(process.stdout));
  child.stderr.on('data', forward(process.stderr));
  const timer = setInterval(() => bar.update(lines), 250);
  // The terminal's Ctrl-C reaches the child too; this process only waits for it.
  const ignore = (): void => undefined;
  process.on('SIGINT', ignore);
  return new Promise<number>((resolve) => {
    child.once('close', (code, signal) => {
      clearInterval(timer);
      bar.done();
      process.removeListener('SIGINT', ignore);
      resolve(code ?? (signal === null ? 1 : 128 + 2));
    });
  });
}

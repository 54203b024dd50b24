// The body of the `commitlog` command, loaded by bin/commitlog.js once the thread pool
// size is set. From a clone (TypeScript sources present, tsx installed as
// a dev dependency) it runs src/cli/main.ts through tsx, so no build step is needed;
// from the published package it runs the compiled dist/src/cli/main.js.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'src', 'cli', 'main.ts');
const built = path.join(root, 'dist', 'src', 'cli', 'main.js');

async function load() {
  if (existsSync(source)) {
    let tsx;
    try {
      tsx = await import('tsx/esm/api');
    } catch (err) {
      if (!existsSync(built)) {
        process.stderr.write(`commitlog: ${source} needs tsx to run (npm install), or build with npm run build: ${err.message}\n`);
        process.exit(1);
      }
    }
    if (tsx !== undefined) {
      tsx.register();
      return import(pathToFileURL(source).href);
    }
  }
  return import(pathToFileURL(built).href);
}

const { main } = await load();
process.exitCode = await main(process.argv.slice(2));

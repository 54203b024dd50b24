import test from 'ava';
import { runCli } from './helpers.js';

const SUBCOMMANDS = ['broker', 'topics', 'produce', 'consume', 'dump', 'verify', 'bench'];

test('commitlog --help lists every subcommand; no command is a usage error', async (t) => {
  const help = await runCli(['--help']);
  t.is(help.code, 0);
  for (const name of SUBCOMMANDS) t.regex(help.stdout.toString(), new RegExp(`^  ${name} `, 'm'));
  const none = await runCli([]);
  t.is(none.code, 2);
  const unknown = await runCli(['serve']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown command "serve"/);
});

test('every subcommand answers --help with its usage and exit code 0', async (t) => {
  const results = await Promise.all([...SUBCOMMANDS.map((name) => runCli([name, '--help'])), runCli(['topics', 'create', '--help'])]);
  results.forEach((r, i) => {
    const name = SUBCOMMANDS[i] ?? 'topics';
    t.is(r.code, 0, `${name}: ${r.stderr}`);
    t.regex(r.stdout.toString(), new RegExp(`^usage: commitlog ${name}`), name);
  });
  t.regex(results[SUBCOMMANDS.indexOf('bench')]!.stdout.toString(), /benchmarks: .*append.*net/);
});

test('commitlog bench refuses an unknown benchmark', async (t) => {
  const r = await runCli(['bench', 'nosuch']);
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown benchmark "nosuch"/);
});

/**
 * The `commitlog` command: parses the subcommand and hands the rest of argv to its
 * module (one module per subcommand, each exporting `run(args): Promise<number>`,
 * loaded only when used so that `commitlog produce` never loads the metrics code).
 * The CLI only parses flags and calls the library; it never asks anything
 * interactively. bin/commitlog.js loads this module and exits with main()'s result.
 *
 * Exit codes: 0 success, 1 failure (message on stderr), 2 usage error (see args.ts).
 */

type Subcommand = (args: string[]) => Promise<number>;

interface Entry {
  load: () => Promise<{ run: Subcommand }>;
  summary: string;
}

const SUBCOMMANDS: Record<string, Entry> = {
  broker: { load: () => import('./broker.js'), summary: 'serve a data directory over TCP (Kafka: kafka-server-start)' },
  topics: { load: () => import('./topics.js'), summary: 'create, list, describe and delete topics (kafka-topics)' },
  groups: { load: () => import('./groups.js'), summary: 'list consumer groups; describe members, partitions and lag (kafka-consumer-groups)' },
  produce: { load: () => import('./produce.js'), summary: 'send stdin lines as records (kafka-console-producer)' },
  consume: { load: () => import('./consume.js'), summary: 'print records on stdout (kafka-console-consumer)' },
  dump: { load: () => import('./dump.js'), summary: 'print segments, batches and records of a data directory, offline (kafka-dump-log)' },
  verify: { load: () => import('./verify.js'), summary: 'check every checksum and index of a data directory, offline; --repair' },
  bench: { load: () => import('./bench.js'), summary: 'run the benchmarks of bench/' },
};

function usage(): string {
  const lines = Object.entries(SUBCOMMANDS).map(([name, s]) => `  ${name.padEnd(10)} ${s.summary}`);
  return `usage: commitlog <command> [options]

commands:
${lines.join('\n')}

Run 'commitlog <command> --help' for a command's options. Client commands (topics,
produce, consume) reach the broker at --broker HOST:PORT (default 127.0.0.1:7070).
Docs: docs/operations.md in the package.
`;
}

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage());
    return command === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[command];
  if (sub === undefined || !Object.hasOwn(SUBCOMMANDS, command)) {
    process.stderr.write(`commitlog: unknown command ${JSON.stringify(command)}\n\n${usage()}`);
    return 2;
  }
  const { run } = await sub.load();
  return run(rest);
}

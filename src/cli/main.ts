/**
 * The `commitlog` command: parses the subcommand and hands the rest of argv to its
 * module (one module per subcommand, each exporting `run(args): Promise<number>`).
 * The CLI only parses flags and calls the library; it never asks anything
 * interactively. bin/commitlog.js loads this module and exits with main()'s result.
 */
import { run as runBroker } from './broker.js';

type Subcommand = (args: string[]) => Promise<number>;

const SUBCOMMANDS: Record<string, { run: Subcommand; summary: string }> = {
  broker: { run: runBroker, summary: 'serve a data directory over TCP' },
};

export function usage(): string {
  const lines = Object.entries(SUBCOMMANDS).map(([name, s]) => `  ${name.padEnd(10)} ${s.summary}`);
  return `usage: commitlog <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'commitlog <command> --help' for a command's options.\n`;
}

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage());
    return command === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[command];
  if (sub === undefined) {
    process.stderr.write(`commitlog: unknown command ${JSON.stringify(command)}\n\n${usage()}`);
    return 2;
  }
  return sub.run(rest);
}

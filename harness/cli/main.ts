import { EXIT_USAGE } from './command.ts';
import { reportError, reportInternal, wantsJson, type ErrorOutput } from './errors.ts';
import { commands } from './registry.ts';
import { versionText } from './version.ts';
import './commands.ts';

function globalHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: xtv [--debug] COMMAND [options]      (xtv COMMAND --help for its options)',
    '       xtv --version                        (xtv and Node.js versions)',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'global options (before or after COMMAND):',
    '  --debug   on an error, print its stack and its causes too (also: XTV_DEBUG=1)',
    '',
    'exit codes: 0 ok, 1 a check failed (or the toolstack refused; xtv run: a case',
    'failed), 2 usage error, or the host or something xtv needs here could not be',
    'reached, 3 (xtv run) no case failed but some could not be decided (errors),',
    '70 internal error: a bug in xtv (run again with --debug and report what it',
    'prints)',
  ].join('\n');
}

/**
 * --debug is xtv's, wherever it stands before `--` (what follows `--` belongs
 * to another program, e.g. `xtv host exec -- CMD`); XTV_DEBUG=1 says the same.
 */
export function takeDebugFlag(argv: readonly string[], env: NodeJS.ProcessEnv): { debug: boolean; argv: string[] } {
  const end = argv.indexOf('--');
  const options = end < 0 ? argv : argv.slice(0, end);
  const passedOn = end < 0 ? [] : argv.slice(end);
  const fromEnv = env.XTV_DEBUG !== undefined && env.XTV_DEBUG !== '' && env.XTV_DEBUG !== '0';
  return { debug: options.includes('--debug') || fromEnv, argv: [...options.filter((a) => a !== '--debug'), ...passedOn] };
}

function stdio(command: string, json: boolean, debug: boolean): ErrorOutput {
  return { command, json, debug, out: (t) => process.stdout.write(t), err: (l) => process.stderr.write(`${l}\n`) };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { debug, argv: args } = takeDebugFlag(argv, env);
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(globalHelp());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version') {
    console.log(versionText());
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    console.error(`xtv: unknown command '${name}'\n\n${globalHelp()}`);
    return EXIT_USAGE;
  }
  try {
    const command = await entry.load();
    // Only before `--`: what follows belongs to another program (xtv host exec -- ls -h).
    const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    if (own.includes('--help') || own.includes('-h')) {
      console.log(command.usage);
      return 0;
    }
    return await command.run(rest, { debug });
  } catch (err) {
    // The one place where what a command threw becomes a message and an exit code (errors.ts).
    return reportError(err, stdio(name, wantsJson(rest), debug));
  }
}

/**
 * For bin/xtv.js: an error that escaped every await (an 'error' event nobody
 * listens to, a promise nobody awaits) is a bug whatever its class. It exits
 * 70 like any other, not with Node's 1, which would read as "a check failed".
 */
export function exitOnUncaught(argv: string[], env: NodeJS.ProcessEnv = process.env): (err: unknown) => void {
  const { debug, argv: args } = takeDebugFlag(argv, env);
  return (err) => {
    process.exit(reportInternal(err, stdio(args[0] ?? 'xtv', false, debug)));
  };
}

import { EXIT_USAGE, UsageError } from './command.ts';
import { commands } from './registry.ts';
import './commands.ts';

function globalHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: xtv COMMAND [options]      (xtv COMMAND --help for its options)',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'exit codes: 0 ok, 1 a check failed, 2 usage or connection error',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(globalHelp());
    return name === undefined ? EXIT_USAGE : 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    console.error(`xtv: unknown command '${name}'\n\n${globalHelp()}`);
    return EXIT_USAGE;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`xtv ${name}: ${err.message}\n(see: xtv ${name} --help)`);
      return EXIT_USAGE;
    }
    console.error(`xtv ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT_USAGE;
  }
}

// `xtv --version` and `xtv version`: the package's version (package.json)
// and Node's, for bug reports.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EXIT_OK, UsageError, type Command } from './command.ts';

/** The version in the repository's package.json ("unknown" when it cannot be read). */
export function xtvVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** "xtv 0.1.0 (Node.js v20.11.1)". */
export function versionText(): string {
  return `xtv ${xtvVersion()} (Node.js ${process.version})`;
}

export const VERSION_USAGE = `usage: xtv version [--json]      (also: xtv --version)

Prints xtv's version (package.json) and Node.js's, e.g.
  xtv 0.1.0 (Node.js v20.11.1)
  --json   {"xtv":"0.1.0","node":"v20.11.1"}

exit codes: 0 ok, 2 usage error`;

export const versionCommand: Command = {
  name: 'version',
  summary: "print xtv's version and Node.js's (also: xtv --version)",
  usage: VERSION_USAGE,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true, allowPositionals: false }));
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
    process.stdout.write(values.json ? `${JSON.stringify({ xtv: xtvVersion(), node: process.version })}\n` : `${versionText()}\n`);
    return EXIT_OK;
  },
};

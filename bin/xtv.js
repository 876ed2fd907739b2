#!/usr/bin/env node
// The `xtv` command: loads the TypeScript CLI through tsx so that no build
// step stands between a checkout and a working command.
import { register } from 'tsx/esm/api';

register();
const argv = process.argv.slice(2);
let cli;
try {
  cli = await import('../harness/cli/main.ts');
} catch (err) {
  // The CLI itself did not load: a broken checkout or install, so the stack is the useful part.
  console.error('xtv: internal error: the CLI did not load:', err);
  process.exit(70);
}
// An error that escapes main's await is a bug too: exit 70 with its stack under --debug, not Node's 1.
const crashed = cli.exitOnUncaught(argv);
process.on('uncaughtException', crashed);
process.on('unhandledRejection', crashed);
process.exitCode = await cli.main(argv);

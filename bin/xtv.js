#!/usr/bin/env node
// The `xtv` command: loads the TypeScript CLI through tsx so that no build
// step stands between a checkout and a working command.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../harness/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

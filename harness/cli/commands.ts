// The list of subcommands. Add a line here when adding a command module.
import { registerCommand } from './registry.ts';

registerCommand('host', 'boot, inspect and stop the embedded Xen host (up, status, exec, down)', async () => (await import('../host/command.ts')).hostCommand);
registerCommand('run', 'run the scenario matrix against a toolstack and report it (TAP, JUnit XML, HTML)', async () => (await import('./run-command.ts')).runCommand);

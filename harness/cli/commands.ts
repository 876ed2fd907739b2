// The list of subcommands. Add a line here when adding a command module.
import { registerCommand } from './registry.ts';

registerCommand('host', 'boot, inspect and stop the embedded Xen host (up, status, exec, down)', async () => (await import('./host-command.ts')).hostCommand);
registerCommand('doctor', 'check that a host can run xtv, with the fix for each failure', async () => (await import('./doctor-command.ts')).doctorCommand);
registerCommand(
  'run',
  'run the scenario matrix against a toolstack and report it (TAP, JUnit XML, HTML)',
  async () => (await import('./run-command.ts')).runCommand,
);
registerCommand(
  'soak',
  'take one VM through N loops of suspend/resume (and pause), timed, checking it stays the same guest',
  async () => (await import('./soak-command.ts')).soakCommand,
);
registerCommand('install', 'copy the test image to a host and register the VM (idempotent)', async () => (await import('./install-command.ts')).installCommand);
registerCommand('uninstall', 'remove a VM and everything xtv install made for it', async () => (await import('./uninstall-command.ts')).uninstallCommand);
registerCommand('start', 'start a halted VM (--paused: created paused)', async () => (await import('./power-command.ts')).powerCommand('start'));
registerCommand('shutdown', 'ask the guest to power off (--hard: destroy it)', async () => (await import('./power-command.ts')).powerCommand('shutdown'));
registerCommand('reboot', 'ask the guest to reboot (--hard: destroy and start again)', async () => (await import('./power-command.ts')).powerCommand('reboot'));
registerCommand('suspend', 'suspend the VM to disk (xl save; XAPI suspend)', async () => (await import('./power-command.ts')).powerCommand('suspend'));
registerCommand('resume', 'resume a suspended VM (xl restore; XAPI resume)', async () => (await import('./power-command.ts')).powerCommand('resume'));
registerCommand('pause', "pause the VM's vCPUs", async () => (await import('./power-command.ts')).powerCommand('pause'));
registerCommand('unpause', 'unpause the VM', async () => (await import('./power-command.ts')).powerCommand('unpause'));
registerCommand('migrate', 'live-migrate the VM to its own host (xl migrate NAME localhost; XAPI VM.pool_migrate)', async () =>
  (await import('./power-command.ts')).powerCommand('migrate'),
);
registerCommand('destroy', "destroy the VM's domain at once (= shutdown --hard)", async () => (await import('./power-command.ts')).powerCommand('destroy'));
registerCommand('send', 'send a test instruction to the guest agent (control/testing or vm-data)', async () => (await import('./send-command.ts')).sendCommand);
registerCommand('watch', "stream a VM's power state and guest report changes until Ctrl-C", async () => (await import('./watch-command.ts')).watchCommand);
registerCommand('console', "print the end of a VM's guest console, as dom0 logged it", async () => (await import('./console-command.ts')).consoleCommand);
registerCommand('list', 'list the VMs xtv made on a host, with their power states', async () => (await import('./list-command.ts')).listCommand);
registerCommand(
  'gc',
  "destroy and remove the VMs xtv made on a host: one run's (--prefix) or all (--all)",
  async () => (await import('./gc-command.ts')).gcCommand,
);
registerCommand('version', "print xtv's version and Node.js's (also: xtv --version)", async () => (await import('./version.ts')).versionCommand);

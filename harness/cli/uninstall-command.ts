// `xtv uninstall`: removes everything `xtv install` made for one VM, like
// xen-delete-image (a running domain of it is destroyed first).
import type { Command } from './command.ts';
import { CONNECT_HELP, EXIT_OK, output, parseCli, withDriver } from './common.ts';

export const UNINSTALL_USAGE = `usage: xtv uninstall [VM] [--host H] [--toolstack xl|xapi]

Destroys the VM's domain if it runs, then removes what xtv install made: xl:
its config, its save image, and image files no other xtv VM uses. Uninstalling
a VM that is not there is not an error. VM defaults to xtv-test.

${CONNECT_HELP}`;

export const uninstallCommand: Command = {
  name: 'uninstall',
  summary: 'remove a VM and everything xtv install made for it',
  usage: UNINSTALL_USAGE,
  async run(argv) {
    const { values, positionals } = parseCli(argv, {}, { min: 0, max: 1, names: 'VM' });
    const name = positionals[0] ?? 'xtv-test';
    return withDriver('uninstall', values, async (driver) => {
      const vm = (await driver.listOwned()).find((v) => v.name === name || v.id === name);
      if (!vm) {
        output(values.json, { ok: true, vm: { name }, removed: false }, `${name}: not installed; nothing to remove`);
        return EXIT_OK;
      }
      await driver.uninstall(vm);
      output(values.json, { ok: true, vm, removed: true }, `uninstalled ${vm.name}`);
      return EXIT_OK;
    });
  },
};

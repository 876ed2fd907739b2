// `xtv install`: registers the test VM on a host, like xen-create-image (xl:
// the image copied into dom0 and a config file written) or `xe vm-create` +
// PV-kernel (XAPI). Idempotent: run it again and nothing changes.
import { join, resolve } from 'node:path';
import type { Command } from './command.ts';
import { loadImage } from './run-command.ts';
import { REPO_ROOT } from '../embedded/paths.ts';
import { CONNECT_HELP, EXIT_OK, oneOf, output, parseCli, positiveInt, withDriver } from './common.ts';
import type { InstallOptions } from '../toolstack/driver.ts';

export const INSTALL_USAGE = `usage: xtv install [--host H] [--toolstack xl|xapi] [--name NAME]
                   [--domain-type pv|pvh] [--memory MIB] [--image-dir DIR]
                   [--kernel-args ARGS] [--on-poweroff A] [--on-reboot A] [--on-crash A]

Copies the test image (kernel and initrd) to the host and registers the VM.
xl: /var/lib/xtv/images/<sha256>/ and /etc/xen/xtv/NAME.cfg (marked "made by
xtv"). Run it again: nothing is copied twice and an unchanged config stays.

  --name NAME         the VM's name (default xtv-test)
  --domain-type T     pv (default) or pvh
  --memory MIB        guest memory (default: the image's minMemoryMiB, else 32)
  --image-dir DIR     the test image (default dist/image: npm run build:image)
  --kernel-args ARGS  kernel command line (default: the image manifest's kernelArgs)
  --on-poweroff A, --on-reboot A, --on-crash A
                      what the toolstack does after the guest's own shutdown
                      (xl: destroy, restart, preserve, ...; default: the toolstack's)

${CONNECT_HELP}`;

export const installCommand: Command = {
  name: 'install',
  summary: 'copy the test image to a host and register the VM (idempotent)',
  usage: INSTALL_USAGE,
  async run(argv) {
    const { values } = parseCli(
      argv,
      {
        name: { type: 'string' },
        'domain-type': { type: 'string' },
        memory: { type: 'string' },
        'image-dir': { type: 'string' },
        'kernel-args': { type: 'string' },
        'on-poweroff': { type: 'string' },
        'on-reboot': { type: 'string' },
        'on-crash': { type: 'string' },
      },
      { min: 0, max: 0, names: '' },
    );
    const domainType = oneOf('domain-type', values['domain-type'], ['pv', 'pvh'] as const) ?? 'pv';
    const memoryMiB = positiveInt('memory', values.memory);
    const imageDir = resolve(typeof values['image-dir'] === 'string' ? values['image-dir'] : join(REPO_ROOT, 'dist', 'image'));
    const name = typeof values.name === 'string' ? values.name : 'xtv-test';
    return withDriver('install', values, async (driver, conn) => {
      const image = loadImage({ imageDir, domainType, memoryMiB });
      const actions: NonNullable<InstallOptions['actions']> = {};
      if (typeof values['on-poweroff'] === 'string') actions.afterShutdown = values['on-poweroff'];
      if (typeof values['on-reboot'] === 'string') actions.afterReboot = values['on-reboot'];
      if (typeof values['on-crash'] === 'string') actions.afterCrash = values['on-crash'];
      const opts: InstallOptions = {
        name,
        domainType,
        memoryMiB: image.memoryMiB,
        kernelPath: image.kernelPath,
        initrdPath: image.initrdPath,
        kernelArgs: typeof values['kernel-args'] === 'string' ? values['kernel-args'] : image.kernelArgs,
        ...(Object.keys(actions).length ? { actions } : {}),
      };
      const t0 = Date.now();
      const vm = await driver.install(opts);
      const elapsedMs = Date.now() - t0;
      output(
        values.json,
        { ok: true, vm, host: conn.host, toolstack: driver.kind, domainType, memoryMiB: opts.memoryMiB, kernelArgs: opts.kernelArgs, elapsedMs },
        `installed ${vm.name} on ${conn.host} (${driver.kind}, ${domainType}, ${opts.memoryMiB} MiB) in ${(elapsedMs / 1000).toFixed(1)} s; start it with: xtv start ${vm.name}`,
      );
      return EXIT_OK;
    });
  },
};

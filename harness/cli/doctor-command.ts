// `xtv doctor`: a preflight for a host, before a run or a CI job: one line per
// check with the step that fixes each failure (harness/toolstack/preflight.ts).
import type { Command } from './command.ts';
import { CONNECT_HELP, EXIT_FAILED, EXIT_OK, connectOptions, oneOf, output, parseCli, positiveInt, resolveEmbedded } from './common.ts';
import { imageManifest } from './run-command.ts';
import { connectToolstack } from '../toolstack/connect.ts';
import { formatChecks, preflightFailed, type Check, type PreflightOptions } from '../toolstack/preflight.ts';
import type { XapiDriver } from '../toolstack/xapi/xapi-driver.ts';
import { xapiUserOf } from '../toolstack/xapi/xapi-connect.ts';
import { xapiConnectChecks, xapiPreflight } from '../toolstack/xapi/xapi-preflight.ts';
import type { XlDriver } from '../toolstack/xl/xl-driver.ts';
import { xlConnectChecks, xlPreflight } from '../toolstack/xl/xl-preflight.ts';

export const DOCTOR_USAGE = `usage: xtv doctor [--vms N] [--memory MIB] [--domain-type pv|pvh] [--host H] [--toolstack xl|xapi] [--json]

Checks that a host can run xtv, one line per check, each failure with the
step that fixes it. XAPI hosts: the API answers (TLS), login, the XAPI version
and what the driver does for it, dom0 over SSH, the kernel directory, a
suspend SR, PVH, free memory, console logs, the toolstack's timeouts, xtv
VMs already there. xl hosts: dom0 over SSH, xl, the driver's directories,
PVH, free memory, console logs, xtv VMs already there.

  --vms N          test VMs that must fit in memory at once (default 2: a run's --parallel)
  --memory MIB     memory of each (default: the test image's minimum, else 32)
  --domain-type T  pv (default) or pvh: with pvh, a host that cannot run PVH fails

Exit 0 when every check holds (warnings allowed), 1 when one fails,
2 on a usage error (or --host embedded with no host up), 70 on a bug in xtv.

${CONNECT_HELP}`;

/** The test image's minimum memory, else 32 MiB (the image is not needed to check a host). */
function imageMinMemoryMiB(): number {
  const m = imageManifest().minMemoryMiB;
  return typeof m === 'number' ? m : 32;
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check that a host can run xtv, with the fix for each failure',
  usage: DOCTOR_USAGE,
  async run(argv) {
    const { values } = parseCli(
      argv,
      { vms: { type: 'string' }, memory: { type: 'string' }, 'domain-type': { type: 'string' } },
      { min: 0, max: 0, names: '' },
    );
    const o: PreflightOptions = {
      vms: positiveInt('vms', values.vms) ?? 2,
      memoryMiB: positiveInt('memory', values.memory) ?? imageMinMemoryMiB(),
      domainType: oneOf('domain-type', values['domain-type'], ['pv', 'pvh'] as const) ?? 'pv',
    };
    // --host embedded with no host running is a ConnectionError: main says it, exit 2.
    const opts = resolveEmbedded(connectOptions(values));
    const user = xapiUserOf(opts, opts.env ?? process.env);
    let checks: Check[];
    let driver;
    try {
      driver = await connectToolstack({ ...opts, onProgress: () => undefined });
    } catch (err) {
      checks = opts.toolstack === 'xapi' ? xapiConnectChecks(err, opts.host, user) : xlConnectChecks(err, opts.host);
    }
    try {
      if (driver) {
        checks = driver.kind === 'xapi' ? await xapiPreflight(driver as XapiDriver, opts.host, user, o) : await xlPreflight(driver as XlDriver, o);
      }
    } finally {
      await driver?.close().catch(() => undefined);
    }
    const failed = preflightFailed(checks!);
    output(values.json, { ok: !failed, host: opts.host, toolstack: opts.toolstack, checks: checks! }, formatChecks(checks!));
    return failed ? EXIT_FAILED : EXIT_OK;
  },
};

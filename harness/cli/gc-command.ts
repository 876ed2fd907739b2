// `xtv gc`: destroys and removes every VM on a host that xtv made (xl: the
// configs marked "made by xtv"; XAPI: VMs tagged in other_config), e.g. after
// an interrupted run.
import { UsageError, type Command } from './command.ts';
import { CONNECT_HELP, EXIT_FAILED, EXIT_OK, output, parseCli, seconds, withDriver } from './common.ts';
import { ToolstackError } from '../toolstack/driver.ts';

export const GC_USAGE = `usage: xtv gc [--prefix P] [--dry-run] [--timeout SEC] [--host H] [--toolstack xl|xapi] [--json]

Finds every VM xtv made on the host, destroys its domain (a suspended one's
save image too) and uninstalls it. Nothing else on the host is touched.

  --prefix P     only the VMs whose names start with P (others sharing the
                 host keep theirs)
  --dry-run      list them, change nothing
  --timeout SEC  bound on each destroy (default 60)

Exit 0 when everything was removed, 1 when something could not be.

${CONNECT_HELP}`;

export const gcCommand: Command = {
  name: 'gc',
  summary: 'destroy and remove every VM xtv made on a host',
  usage: GC_USAGE,
  async run(argv) {
    const { values } = parseCli(
      argv,
      { 'dry-run': { type: 'boolean' }, timeout: { type: 'string' }, prefix: { type: 'string' } },
      { min: 0, max: 0, names: '' },
    );
    const timeoutMs = seconds('timeout', values.timeout, 60);
    const prefix = typeof values.prefix === 'string' ? values.prefix : undefined;
    if (prefix !== undefined && prefix === '') throw new UsageError('--prefix needs a non-empty name prefix (leave it out for every VM)');
    return withDriver('gc', values, async (driver) => {
      const owned = (await driver.listOwned()).filter((vm) => prefix === undefined || vm.name.startsWith(prefix));
      const results: Array<{ vm: { name: string; id: string }; state: string; removed: boolean; error?: string }> = [];
      for (const vm of owned) {
        const s = await driver.state(vm);
        if (values['dry-run']) {
          results.push({ vm, state: s.powerState, removed: false });
          continue;
        }
        try {
          if (s.domid !== null || s.powerState === 'Suspended') await driver.request(vm, 'hard_shutdown', { timeoutMs });
          await driver.uninstall(vm);
          results.push({ vm, state: s.powerState, removed: true });
        } catch (err) {
          // The toolstack refusing one VM leaves the others to try; anything else (the host gone, a bug) ends gc.
          if (!(err instanceof ToolstackError)) throw err;
          results.push({ vm, state: s.powerState, removed: false, error: err.message });
        }
      }
      const failed = results.filter((r) => !values['dry-run'] && !r.removed);
      const lines = results.map(
        (r) => `${r.vm.name.padEnd(40)} ${r.state.padEnd(9)} ${values['dry-run'] ? 'would remove' : r.removed ? 'removed' : `NOT removed: ${r.error}`}`,
      );
      output(
        values.json,
        { ok: failed.length === 0, dryRun: values['dry-run'] === true, vms: results },
        results.length === 0 ? `nothing made by xtv on this host${prefix !== undefined ? ` named ${prefix}*` : ''}` : lines.join('\n'),
      );
      return failed.length === 0 ? EXIT_OK : EXIT_FAILED;
    });
  },
};

// `xtv gc`: destroys and removes the VMs on a host that xtv made (xl: the
// configs marked "made by xtv"; XAPI: VMs tagged in other_config), e.g. after
// an interrupted run: those of one run (--prefix P: named P-...) or all of
// them (--all), never one whose owner (vm-owner.ts) still runs.
import { UsageError, type Command } from './command.ts';
import { CONNECT_HELP, EXIT_FAILED, EXIT_OK, connectOptions, output, parseCli, seconds, withDriver } from './common.ts';
import { ToolstackError, type ToolstackDriver, type VmRef } from '../toolstack/driver.ts';
import { ownerVerdict } from '../toolstack/vm-owner.ts';

export const GC_USAGE = `usage: xtv gc (--prefix P | --all) [--force] [--dry-run] [--timeout SEC] [--host H] [--toolstack xl|xapi] [--json]

Finds the VMs xtv made on the host, destroys their domains (a suspended one's
save image too) and uninstalls them. Nothing else on the host is touched. Say
which, one of:

  --prefix P     the VMs of one run: named P-<anything> (xtv run --vm-prefix
                 P), and one named P itself; 'ci' never takes 'ci2-x'
                 (P- means the same as P)
  --all          every VM xtv made on the host

Each VM records who made it (user@host pid N started TIME). One whose owner
still runs on this machine is left alone, whatever the options (stop that
run first); one made on another machine cannot be checked from here and is
left unless --force. gc says which it left and why. A VM without a record
(made by an older xtv) is removed.

  --force        also remove VMs whose owner cannot be checked (another
                 machine's, or an unreadable record)
  --dry-run      list them, change nothing
  --timeout SEC  bound on each destroy (default 60)

Exit 0 when everything chosen was removed or left for the reasons above, 1
when something could not be removed.

${CONNECT_HELP}`;

/** Which VMs gc takes: one run's (the prefix, without a trailing '-') or every one (undefined). */
export function matchesPrefix(name: string, prefix: string | undefined): boolean {
  if (prefix === undefined) return true;
  const p = prefix.endsWith('-') ? prefix.slice(0, -1) : prefix;
  return name === p || name.startsWith(`${p}-`);
}

export interface GcOptions {
  /** undefined: every VM xtv made (--all). */
  prefix: string | undefined;
  force: boolean;
  dryRun: boolean;
  timeoutMs: number;
  /** This machine's hostname (default os.hostname()): owners elsewhere cannot be checked. */
  here?: string;
}

export interface GcResult {
  vm: VmRef;
  state: string;
  removed: boolean;
  /** Why it was left alone (its owner runs, or cannot be checked). */
  left?: string;
  error?: string;
}

/** gc's work on a connected driver: what it removed, left (and why) or failed to remove. */
export async function collectGarbage(driver: ToolstackDriver, o: GcOptions): Promise<GcResult[]> {
  const owned = (await driver.listOwned()).filter((vm) => matchesPrefix(vm.name, o.prefix));
  const results: GcResult[] = [];
  for (const vm of owned) {
    const s = await driver.state(vm);
    const v = ownerVerdict(vm.owner, o.here);
    if (v.kind === 'alive') {
      results.push({ vm, state: s.powerState, removed: false, left: `its owner ${v.why}` });
      continue;
    }
    if (v.kind === 'unknown' && !o.force) {
      results.push({ vm, state: s.powerState, removed: false, left: `${v.why}; --force to remove it` });
      continue;
    }
    if (o.dryRun) {
      results.push({ vm, state: s.powerState, removed: false });
      continue;
    }
    try {
      if (s.domid !== null || s.powerState === 'Suspended') await driver.request(vm, 'hard_shutdown', { timeoutMs: o.timeoutMs });
      await driver.uninstall(vm);
      results.push({ vm, state: s.powerState, removed: true });
    } catch (err) {
      // The toolstack refusing one VM leaves the others to try; anything else (the host gone, a bug) ends gc.
      if (!(err instanceof ToolstackError)) throw err;
      results.push({ vm, state: s.powerState, removed: false, error: err.message });
    }
  }
  return results;
}

/** One line per VM: name, power state, what gc did (or would do). */
export function gcLine(r: GcResult, dryRun: boolean): string {
  const what = r.left !== undefined ? `left: ${r.left}` : dryRun ? 'would remove' : r.removed ? 'removed' : `NOT removed: ${r.error ?? 'unknown error'}`;
  return `${r.vm.name.padEnd(40)} ${r.state.padEnd(9)} ${what}`;
}

export const gcCommand: Command = {
  name: 'gc',
  summary: 'destroy and remove every VM xtv made on a host',
  usage: GC_USAGE,
  async run(argv) {
    const { values } = parseCli(
      argv,
      {
        'dry-run': { type: 'boolean' },
        timeout: { type: 'string' },
        prefix: { type: 'string' },
        all: { type: 'boolean' },
        force: { type: 'boolean' },
      },
      { min: 0, max: 0, names: '' },
    );
    const timeoutMs = seconds('timeout', values.timeout, 60);
    const prefix = typeof values.prefix === 'string' ? values.prefix : undefined;
    if (prefix !== undefined && (prefix === '' || prefix === '-')) throw new UsageError('--prefix needs a non-empty name prefix (or --all for every VM)');
    // A bad --host is said before a missing choice, as by every other command.
    connectOptions(values);
    if (prefix !== undefined && values.all) throw new UsageError('--prefix and --all do not go together: choose one');
    if (prefix === undefined && !values.all)
      throw new UsageError("choose which VMs: --prefix P (one run's, named P-...) or --all (every VM xtv made on this host)");
    const dryRun = values['dry-run'] === true;
    return withDriver('gc', values, async (driver) => {
      const results = await collectGarbage(driver, { prefix, force: values.force === true, dryRun, timeoutMs });
      const failed = results.filter((r) => !dryRun && !r.removed && r.left === undefined);
      output(
        values.json,
        { ok: failed.length === 0, dryRun, vms: results },
        results.length === 0
          ? `nothing made by xtv on this host${prefix !== undefined ? ` named ${prefix.replace(/-$/, '')}-*` : ''}`
          : results.map((r) => gcLine(r, dryRun)).join('\n'),
      );
      return failed.length === 0 ? EXIT_OK : EXIT_FAILED;
    });
  },
};

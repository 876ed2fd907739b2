// `xtv list`: the VMs xtv made on a host (xl: the configs marked "made by
// xtv"; XAPI: VMs tagged in other_config), each with its power state.
import type { Command } from './command.ts';
import { CONNECT_HELP, EXIT_OK, output, parseCli, withDriver } from './common.ts';
import { ToolstackError, type ToolstackDriver, type VmRef } from '../toolstack/driver.ts';
import { FakeToolstackDriver } from '../../testing/fake-driver.ts';
import { matchesPrefix } from './gc-command.ts';

export const LIST_USAGE = `usage: xtv list [--prefix P] [--host H] [--toolstack xl|xapi] [--json]

Lists every VM xtv made on the host, one line each: its name, its power state
(Running, Paused, Suspended, Halted), its domain id (- when it has no domain)
and its toolstack id. Changes nothing (xtv gc removes them).

  --prefix P   only one run's VMs: named P-<anything> (or P), as xtv gc --prefix
  --host fake  the in-memory FAKE toolstack (empty: for trying the command)

${CONNECT_HELP}`;

/** One VM as listed (what listOwned says of it, and its state); powerState null when the toolstack could not say (error tells why). */
export interface ListedVm extends VmRef {
  powerState: string | null;
  domid: number | null;
  error?: string;
}

/** The VMs xtv made on the host behind `driver`, with their power states, by name. */
export async function listVms(driver: ToolstackDriver, prefix?: string): Promise<ListedVm[]> {
  const owned = (await driver.listOwned()).filter((vm) => matchesPrefix(vm.name, prefix));
  const rows: ListedVm[] = [];
  for (const vm of owned) {
    try {
      const s = await driver.state(vm);
      rows.push({ ...vm, powerState: s.powerState, domid: s.domid });
    } catch (err) {
      // A VM removed while being listed (or one the toolstack refuses to describe) leaves the others listed.
      if (!(err instanceof ToolstackError)) throw err;
      rows.push({ ...vm, powerState: null, domid: null, error: err.message });
    }
  }
  return rows.sort((a, b) => a.name.localeCompare(b.name));
}

/** One line per VM: name, power state, domid, id. */
export function listVmsText(rows: readonly ListedVm[], prefix?: string): string {
  if (rows.length === 0) return `nothing made by xtv on this host${prefix !== undefined ? ` named ${prefix}*` : ''}`;
  const w = Math.max(4, ...rows.map((r) => r.name.length));
  return rows
    .map((r) =>
      r.powerState === null
        ? `${r.name.padEnd(w)}  ?          -      ${r.id}  (${r.error ?? 'state unknown'})`
        : `${r.name.padEnd(w)}  ${r.powerState.padEnd(9)}  ${String(r.domid ?? '-').padEnd(5)}  ${r.id}`,
    )
    .join('\n');
}

export const listCommand: Command = {
  name: 'list',
  summary: 'list the VMs xtv made on a host, with their power states',
  usage: LIST_USAGE,
  async run(argv) {
    const { values } = parseCli(argv, { prefix: { type: 'string' } }, { min: 0, max: 0, names: '' });
    const prefix = typeof values.prefix === 'string' && values.prefix !== '' ? values.prefix : undefined;
    const show = async (driver: ToolstackDriver): Promise<number> => {
      const vms = await listVms(driver, prefix);
      output(values.json, { ok: true, vms }, listVmsText(vms, prefix));
      return EXIT_OK;
    };
    if (values.host === 'fake') {
      const driver = new FakeToolstackDriver({ kind: values.toolstack === 'xapi' ? 'xapi' : 'xl' });
      try {
        return await show(driver);
      } finally {
        await driver.close();
      }
    }
    return withDriver('list', values, show);
  },
};

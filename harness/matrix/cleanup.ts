// Every VM a run creates is registered here the moment install returns and
// removed once it is gone. Whatever ends the run (success, failure, timeout,
// SIGINT, SIGTERM, SIGHUP), draining the registry destroys what is left, within a
// bound, so a run never leaves VMs on the host. What it cannot see (kill -9)
// the journal (journal.ts) covers: each VM is written there before install and
// again once removed, here, so the next run can remove what a dead one left.
import { ToolstackError, type ToolstackDriver, type VmRef } from '../toolstack/driver.ts';
import { NO_JOURNAL, type VmJournal } from './journal.ts';
import { bounded } from './wait.ts';

export class CleanupRegistry {
  private readonly vms = new Map<string, { driver: ToolstackDriver; vm: VmRef }>();

  /** Installs the run stopped waiting for, which may still make their VM. */
  private readonly late = new Set<Promise<unknown>>();

  constructor(private readonly journal: VmJournal = NO_JOURNAL) {}

  /** Before each install: the VM is journaled before it can exist. */
  installing(name: string): void {
    this.journal.installing(name);
  }

  add(driver: ToolstackDriver, vm: VmRef): void {
    this.vms.set(vm.name, { driver, vm });
  }

  /**
   * An install whose caller gave up on it (interrupted, or past its bound)
   * but which may still complete: its VM is registered when it does, and
   * drain waits for it first.
   */
  addLate(driver: ToolstackDriver, installing: Promise<VmRef>): void {
    const p = installing
      .then(
        (vm) => this.add(driver, vm),
        () => undefined,
      )
      .finally(() => this.late.delete(p));
    this.late.add(p);
  }

  /** The VM is gone from the host. */
  remove(vm: VmRef): void {
    this.vms.delete(vm.name);
    this.journal.removed(vm.name);
  }

  get size(): number {
    return this.vms.size + this.late.size;
  }

  /**
   * Destroys and uninstalls every VM still registered, all at once, giving up
   * after `timeoutMs`. Returns the names it could not remove, with why.
   */
  async drain(timeoutMs: number): Promise<Array<{ name: string; error: string }>> {
    if (this.late.size > 0) await bounded(Promise.all(this.late), timeoutMs, 'installs still running').catch(() => undefined);
    const entries = [...this.vms.values()];
    const outcomes = await Promise.all(
      entries.map(async ({ driver, vm }) => {
        try {
          await bounded(destroyVm(driver, vm, timeoutMs), timeoutMs, `cleaning up ${vm.name}`);
          this.remove(vm);
          return null;
        } catch (e) {
          return { name: vm.name, error: e instanceof Error ? e.message : String(e) };
        }
      }),
    );
    return outcomes.filter((o): o is { name: string; error: string } => o !== null);
  }
}

/**
 * Stops a VM whatever its state, then removes everything install made. A hard
 * shutdown refused because the VM is already down is not an error; a failed
 * uninstall is.
 */
export async function destroyVm(driver: ToolstackDriver, vm: VmRef, timeoutMs: number): Promise<void> {
  let down = false;
  try {
    const st = await driver.state(vm);
    down = st.powerState === 'Halted' && st.domid === null;
  } catch {
    // Unknown state: try the hard shutdown anyway.
  }
  if (!down) {
    try {
      await driver.request(vm, 'hard_shutdown', { timeoutMs });
    } catch (e) {
      if (!(e instanceof ToolstackError)) throw e;
    }
  }
  await driver.uninstall(vm);
}

export interface SignalCleanupOptions {
  registry: CleanupRegistry;
  /** Asked to stop the run on the first signal; the run then cleans up itself. */
  controller: AbortController;
  /** If the run has not finished this long after the first signal (or at a second signal), drain and exit. */
  graceMs: number;
  drainMs: number;
  log: (line: string) => void;
  exit: (code: number) => void;
  signals?: NodeJS.Signals[];
}

/**
 * Installs SIGINT/SIGTERM/SIGHUP handlers (SIGHUP: the terminal or the SSH
 * session is gone, and the run with it); returns a function that removes them.
 */
export function installSignalCleanup(o: SignalCleanupOptions): () => void {
  const signals = o.signals ?? ['SIGINT', 'SIGTERM', 'SIGHUP'];
  let forced = false;
  let timer: NodeJS.Timeout | undefined;
  const force = async (why: string): Promise<void> => {
    if (forced) return;
    forced = true;
    o.log(`xtv: ${why}: destroying ${o.registry.size} VM(s) now`);
    const left = await o.registry.drain(o.drainMs);
    for (const l of left) o.log(`xtv: could not remove ${l.name}: ${l.error} (run \`xtv gc --prefix ${l.name}\`)`);
    o.exit(130);
  };
  const handler = (sig: NodeJS.Signals): void => {
    if (!o.controller.signal.aborted) {
      o.log(`xtv: ${sig}: stopping; cleaning up the running cases (again to force)`);
      o.controller.abort(new Error(`interrupted by ${sig}`));
      timer = setTimeout(() => void force(`cleanup took longer than ${o.graceMs} ms`), o.graceMs);
      timer.unref();
      return;
    }
    void force(`second ${sig}`);
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    if (timer) clearTimeout(timer);
    for (const s of signals) process.off(s, handler);
  };
}

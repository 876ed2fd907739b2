// xl save and xl restore of the guest, and xl migrate to the same host, timed
// in dom0 (#17): from just before `xl save` to its return (the guest
// acknowledged "suspend", suspended, and its memory is on disk), from just
// before `xl restore` (or `xl migrate`) to its return, and to the arrival of
// the watch event that shows the agent's data/xtv/state = resumed in the new
// domain.
import { rmSync } from 'node:fs';
import { REPORT_DIR } from '../../protocol/control.ts';
import type { XenstoreClient } from '../../xenstore/client.ts';
import { domidOf, runXl } from './boot.ts';
import { NodeWatch, type Clock } from './node-watch.ts';

export interface SaveRestoreSample {
  saveMs: number;
  restoreMs: number;
  /** xl restore started → state=resumed seen in dom0. */
  resumedMs: number;
  /** The domain restored into. */
  domid: number;
}

export async function saveRestoreOnce(xs: XenstoreClient, opts: { name: string; saveFile: string; timeoutMs: number; now: Clock }): Promise<SaveRestoreSample> {
  const t0 = opts.now();
  try {
    await runXl(['save', opts.name, opts.saveFile], opts.timeoutMs);
    const saveMs = opts.now() - t0;
    const t1 = opts.now();
    await runXl(['restore', opts.saveFile], opts.timeoutMs);
    const restoreMs = opts.now() - t1;
    const { domid, at } = await resumedIn(xs, opts.name, `xl restore ${opts.saveFile}`, opts.timeoutMs, opts.now);
    return { saveMs, restoreMs, resumedMs: at - t1, domid };
  } finally {
    rmSync(opts.saveFile, { force: true });
  }
}

export interface MigrateSample {
  /** xl migrate NAME localhost, to its return (the sender destroyed the old domain). */
  migrateMs: number;
  /** xl migrate started → state=resumed seen in dom0. */
  resumedMs: number;
  /** The domain migrated into. */
  domid: number;
}

/**
 * One live migration to the same host, as the xl driver asks for it (`xl migrate NAME localhost`,
 * over dom0's own ssh; tools/xl/xl_migrate.c): the guest is asked to suspend once its memory is
 * copied and resumes in a new domain.
 */
export async function migrateOnce(xs: XenstoreClient, opts: { name: string; timeoutMs: number; now: Clock }): Promise<MigrateSample> {
  const t0 = opts.now();
  await runXl(['migrate', opts.name, 'localhost'], opts.timeoutMs);
  const migrateMs = opts.now() - t0;
  const { domid, at } = await resumedIn(xs, opts.name, `xl migrate ${opts.name} localhost`, opts.timeoutMs, opts.now);
  return { migrateMs, resumedMs: at - t0, domid };
}

/** The domain now named `name`, and when its agent was seen reporting state=resumed. */
async function resumedIn(xs: XenstoreClient, name: string, after: string, timeoutMs: number, now: Clock): Promise<{ domid: number; at: number }> {
  const domid = await domidOf(name, 10_000);
  if (domid === null) throw new Error(`${after} returned but no domain ${name} exists`);
  // The new domain's home is new: its state node appears when the agent has resumed (the watch
  // fires once at registration, so a state already there counts, at the registration's time).
  const path = `/local/domain/${domid}/${REPORT_DIR}/state`;
  const w = await NodeWatch.open(xs, path, `xtv-bench:resumed:${domid}`, now);
  try {
    const resumed = w.waitFor((v) => v === 'resumed', timeoutMs, `domain ${domid} reporting state=resumed`);
    if ((await xs.tryRead(path)) === 'resumed') {
      w.cancel('already resumed');
      resumed.catch(() => undefined);
      return { domid, at: now() };
    }
    return { domid, at: await resumed };
  } finally {
    await w.close();
  }
}

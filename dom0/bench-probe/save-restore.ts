// xl save and xl restore of the guest, timed in dom0 (#17): from just before
// `xl save` to its return (the guest acknowledged "suspend", suspended, and
// its memory is on disk), from just before `xl restore` to its return, and to
// the arrival of the watch event that shows the restored agent's
// data/xtv/state = resumed in the new domain.
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
    const domid = await domidOf(opts.name, 10_000);
    if (domid === null) throw new Error(`xl restore ${opts.saveFile} returned but no domain ${opts.name} exists`);
    // The restored domain's home is new: its state node appears when the agent has resumed (the
    // watch fires once at registration, so a state already there counts, at the registration's time).
    const path = `/local/domain/${domid}/${REPORT_DIR}/state`;
    const w = await NodeWatch.open(xs, path, `xtv-bench:restore:${domid}`, opts.now);
    try {
      const resumed = w.waitFor((v) => v === 'resumed', opts.timeoutMs, `domain ${domid} reporting state=resumed`);
      if ((await xs.tryRead(path)) === 'resumed') {
        w.cancel('already resumed');
        resumed.catch(() => undefined);
        return { saveMs, restoreMs, resumedMs: opts.now() - t1, domid };
      }
      return { saveMs, restoreMs, resumedMs: (await resumed) - t1, domid };
    } finally {
      await w.close();
    }
  } finally {
    rmSync(opts.saveFile, { force: true });
  }
}

// Guest boot-to-ready, timed in dom0: from just before `xl create` to the
// arrival of the watch event that shows data/xtv/state = ready.
import { execFile } from 'node:child_process';
import { REPORT_DIR } from '../../protocol/control.ts';
import type { XenstoreClient } from '../../xenstore/client.ts';
import { NodeWatch, type Clock } from './node-watch.ts';

export interface BootSample {
  /** xl create's own run time (it returns once the domain is built and unpaused). */
  createMs: number;
  /** xl create started → the agent's state=ready seen in dom0. */
  readyMs: number;
  domid: number;
}

/** Runs a program in dom0, bounded; rejects with its stderr on a non-zero exit. */
export function runXl(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('xl', args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const why = (err as { killed?: boolean }).killed
          ? `no answer within ${timeoutMs} ms`
          : String(stderr).trim().split('\n').slice(-3).join(' | ') || err.message;
        reject(new Error(`xl ${args.join(' ')}: ${why}`));
      } else {
        resolve(String(stdout));
      }
    });
  });
}

export async function domidOf(name: string, timeoutMs: number): Promise<number | null> {
  try {
    const id = Number((await runXl(['domid', name], timeoutMs)).trim());
    return Number.isInteger(id) ? id : null;
  } catch {
    return null;
  }
}

/** Destroys domain `name` if it exists. */
export async function destroyIfRunning(name: string, timeoutMs: number): Promise<void> {
  if ((await domidOf(name, timeoutMs)) === null) return;
  await runXl(['destroy', name], timeoutMs);
}

export async function bootOnce(
  xs: XenstoreClient,
  opts: {
    configPath: string;
    name: string;
    timeoutMs: number;
    now: Clock;
  },
): Promise<BootSample> {
  const t0 = opts.now();
  await runXl(['create', opts.configPath], opts.timeoutMs);
  const createMs = opts.now() - t0;
  const domid = await domidOf(opts.name, 10_000);
  if (domid === null) throw new Error(`xl create ${opts.configPath} returned but no domain ${opts.name} exists`);
  // The watch fires once at registration, so a state already "ready" counts
  // (its time is then the registration's: an upper bound).
  const w = await NodeWatch.open(xs, `/local/domain/${domid}/${REPORT_DIR}/state`, `xtv-bench:boot:${domid}`, opts.now);
  try {
    const left = Math.max(1000, opts.timeoutMs - (opts.now() - t0));
    const ready = w.waitFor((v) => v === 'ready', left, `domain ${domid} booting to state=ready`);
    // Re-check after arming, for a "ready" that landed between open() and waitFor().
    const now = await xs.tryRead(`/local/domain/${domid}/${REPORT_DIR}/state`);
    if (now === 'ready') {
      w.cancel('already ready');
      ready.catch(() => undefined);
      return { createMs, readyMs: opts.now() - t0, domid };
    }
    return { createMs, readyMs: (await ready) - t0, domid };
  } finally {
    await w.close();
  }
}

// What a case needs to know before it runs: the test image to install, and
// every bound the runner and a case use. Its own module so that runner.ts
// (the matrix) and case-run.ts (one case) both read it without importing
// each other.
import type { DomainType } from '../toolstack/driver.ts';
import type { DurationClass } from './model.ts';

export interface RunnerImage {
  kernelPath: string;
  initrdPath: string;
  kernelArgs: string;
  domainType: DomainType;
  memoryMiB: number;
}

/** Every bound the runner uses (ms). Tests shrink them; the defaults suit TCG-emulated Xen. */
export interface Timing {
  install: number;
  /** start until the agent reports state=ready. */
  boot: number;
  /** testing message written until the agent has acknowledged it and reports the command pending. */
  prime: number;
  /** Bound on the request call, by the model's duration class (delayed: the ack-timeout bound). */
  request: Record<Exclude<DurationClass, 'delayed'>, number>;
  /** After the call: how long the state may take to reach the expectation. */
  settle: number;
  /** A matching state must hold this long (outlasts xl's 2 s restart delay). */
  confirm: number;
  /** Unmodelled cases: the state counts as settled once unchanged this long (outlasts XAPI's 15 s restart delay).
   *  A modelled case that does not match waits for the whole `settle` bound instead: a slow transition
   *  (a restarted domain still paused while xl builds it) must not pass for a final state. */
  quiet: number;
  /** Bound on each cleanup (hard shutdown + uninstall). */
  cleanup: number;
  /** Polling intervals. */
  pollMin: number;
  pollMax: number;
  /** Duration classes of an observed call: below fastMax is fast (default: 90% of the request's ack timeout
   *  on this host, so a slow but timeout-free call under emulation still counts as fast). */
  fastMax?: number;
  /** At least this long is the total timeout (default: 90% of the host's shorter total timeout, at most 300 s). */
  totalMin?: number;
  /** Bound on each evidence read (console, logs, report). */
  evidence: number;
  /** Overrides the model's restart delay (tests with a scaled-down fake). */
  restartDelay?: number;
  /**
   * How long a lifecycle case's VM runs before its guest crashes, on a model with a short-run crash
   * rule (default: the model's crashShortRunMs and 20 s). Tests with a scaled-down fake set it (0:
   * no wait, and the model answers for a VM that crashed soon).
   */
  crashShortRun?: number;
}

// Bounds, never sleeps: generous, because `--parallel` on an emulated host starves dom0 and the
// guests (a full-matrix run at --parallel 10 saw testing messages take over 20 s to be acknowledged).
export const DEFAULT_TIMING: Timing = {
  install: 120_000,
  // The XenAPI double's own bound on an xl create is 300 s too: with every e2e file booting guests on
  // one emulated host, one VM.start of three begun together took over 180 s in a CI run.
  boot: 300_000,
  prime: 60_000,
  request: { fast: 120_000, 'ack-timeout': 240_000, 'total-timeout': 1_500_000 },
  // A restarted xl domain has taken over 90 s to appear on a busy emulated host (the daemon's xl create).
  settle: 150_000,
  confirm: 4_000,
  quiet: 20_000,
  cleanup: 90_000,
  pollMin: 100,
  pollMax: 2_000,
  evidence: 30_000,
};

// `xtv soak`'s loop (#17): one running VM taken through the same operations
// again and again, each timed, and after each the guest's own word that it is
// the same guest (continuity-check.ts). This is what osstest's "localmigrate
// x10" and XenRT's suspend/resume loops do, with the guest stating its
// continuity instead of the harness inferring it. The VM is made and removed
// by the caller; this only drives it. No I/O of its own beyond the driver.
import { readReport } from '../matrix/guest-report.ts';
import { checkContinuity, readContinuity, type ContinuityIo } from '../matrix/continuity-check.ts';
import { bounded, fmtMs, poll } from '../matrix/wait.ts';
import type { DomainInfo, HostRequest, PowerState, ToolstackDriver, VmRef } from '../toolstack/driver.ts';

/**
 * An operation the guest lives through, as the requests that make it, each
 * with the state it leaves: suspend = xl save + xl restore, XAPI VM.suspend +
 * VM.resume (a save to disk and back: what XAPI calls suspend is xl's save);
 * pause = pause + unpause; migrate = xl migrate NAME localhost, XAPI
 * VM.pool_migrate to its own host (one request: the guest suspends and runs
 * on in a new domain). `resumes`: the suspends the guest sees on the way.
 */
export const SOAK_OPS = {
  suspend: {
    requests: [
      ['suspend', 'Suspended'],
      ['resume', 'Running'],
    ],
    resumes: 1,
  },
  pause: {
    requests: [
      ['pause', 'Paused'],
      ['unpause', 'Running'],
    ],
    resumes: 0,
  },
  migrate: { requests: [['migrate', 'Running']], resumes: 1 },
} as const satisfies Record<string, { requests: ReadonlyArray<readonly [HostRequest, PowerState]>; resumes: number }>;
export type SoakOp = keyof typeof SOAK_OPS;

export interface SoakTiming {
  /** Bound on each request (the toolstack's own call). */
  requestMs: number;
  /** Bound on the agent answering again after the operation. */
  agentMs: number;
  io: ContinuityIo;
}

export interface SoakIteration {
  loop: number;
  op: SoakOp;
  /** ms per step: each request, and the agent back (its report says it runs again) after the last. */
  durations: Record<string, number>;
  /** The continuity line (continuity-check.ts), or why it was not checked. */
  continuity: string;
  /** Domids before and after. */
  domids: [number | null, number | null];
  /** What broke: continuity problems, or the operation's failure. Empty: it passed. */
  problems: string[];
  /** The operation did not complete: the VM's state is unknown and the soak stops. */
  fatal?: boolean;
}

export interface SoakStats {
  step: string;
  n: number;
  minMs: number;
  medianMs: number;
  maxMs: number;
}

/** min / median / max per step, over the iterations that measured it, in the order steps first appear. */
export function soakStats(iterations: readonly SoakIteration[]): SoakStats[] {
  const by = new Map<string, number[]>();
  for (const it of iterations) for (const [step, ms] of Object.entries(it.durations)) by.set(step, [...(by.get(step) ?? []), ms]);
  return [...by].map(([step, all]) => {
    const v = [...all].sort((a, b) => a - b);
    const mid = v.length >> 1;
    const medianMs = v.length % 2 ? v[mid]! : Math.round((v[mid - 1]! + v[mid]!) / 2);
    return { step, n: v.length, minMs: v[0]!, medianMs, maxMs: v.at(-1)! };
  });
}

/**
 * The agent runs again: its report says so ("resumed" after a restore, "ready"
 * after a boot: a guest that booted afresh is back too, and continuity then
 * says what broke) from the domain the toolstack now shows, so that nothing
 * the report held before the operation passes for an answer.
 */
const agentBack = (r: { state: string | null; domid: string | null }, domid: number | null): boolean =>
  (r.state === 'ready' || r.state === 'resumed') && domid !== null && r.domid === String(domid);

/**
 * Runs `loops` rounds of `ops` on a running VM whose agent is ready. Every
 * iteration is handed to `onIteration` as it ends. A continuity break is a
 * failed iteration and the loop goes on; an operation that fails stops it.
 */
export async function soak(
  driver: ToolstackDriver,
  vm: VmRef,
  o: { loops: number; ops: readonly SoakOp[]; timing: SoakTiming; signal?: AbortSignal; onIteration?: (it: SoakIteration) => void },
): Promise<SoakIteration[]> {
  const done: SoakIteration[] = [];
  for (let loop = 1; loop <= o.loops; loop++) {
    for (const op of o.ops) {
      o.signal?.throwIfAborted();
      const it = await iteration(driver, vm, loop, op, o.timing, o.signal);
      done.push(it);
      o.onIteration?.(it);
      if (it.fatal) return done;
    }
  }
  return done;
}

async function iteration(
  driver: ToolstackDriver,
  vm: VmRef,
  loop: number,
  op: SoakOp,
  timing: SoakTiming,
  signal: AbortSignal | undefined,
): Promise<SoakIteration> {
  const spec = SOAK_OPS[op];
  const it: SoakIteration = { loop, op, durations: {}, continuity: '', domids: [null, null], problems: [] };
  const fail = (what: string): SoakIteration => ({ ...it, problems: [...it.problems, what], fatal: true });
  const state = (): Promise<DomainInfo> => bounded(driver.state(vm), timing.io.evidenceMs, 'reading the state', signal);
  const before = await readContinuity(driver, vm, timing.io);
  it.domids[0] = (await state()).domid;

  for (const [req, want] of spec.requests) {
    const t0 = Date.now();
    try {
      await bounded(driver.request(vm, req, { timeoutMs: timing.requestMs }), timing.requestMs + 5_000, req, signal);
    } catch (e) {
      if (signal?.aborted) throw e;
      return fail(`${req} failed after ${fmtMs(Date.now() - t0)}: ${e instanceof Error ? e.message : String(e)}`);
    }
    it.durations[req] = Date.now() - t0;
    const now = await state();
    if (now.powerState !== want) return fail(`after ${req} the toolstack says ${now.powerState}, not ${want}`);
    it.domids[1] = now.domid;
  }

  const t1 = Date.now();
  const back = await poll(
    () => readReport(driver, vm, ['state', 'domid']),
    (r) => agentBack(r, it.domids[1]),
    { timeoutMs: timing.agentMs, minMs: timing.io.pollMinMs, maxMs: timing.io.pollMaxMs, signal, what: 'the agent running again' },
  );
  if (!back.done)
    return fail(
      `the agent did not report itself running in domain ${it.domids[1]} within ${fmtMs(timing.agentMs)} (state ${back.value?.state ?? 'unread'}, domid ${back.value?.domid ?? 'unread'})`,
    );
  it.durations['agent back'] = Date.now() - t1;

  if ('unchecked' in before) return { ...it, continuity: `not checked (${before.unchecked})` };
  const c = await checkContinuity(driver, vm, before.snapshot, spec.resumes, timing.io);
  return { ...it, continuity: c.line, problems: c.problems };
}

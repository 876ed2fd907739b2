// Runs the cases of a matrix against one toolstack driver (injected), N at a
// time. Each case: install its VM, bring it to the initial state, prime the
// guest (and wait for its acknowledgement), issue the request with a bound,
// observe until the state settles, read what the guest says, compare with the
// model, check the invariants, clean up. Every wait is bounded; every VM is
// registered for cleanup the moment it exists.
import { encodeTesting, encodeCommand, decodeTesting, REPORT_DIR, SHUTDOWN_NODE, TESTING_NODE } from '../../protocol/control.ts';
import {
  ConnectionError, ToolstackError, type ConsoleText, type DomainType, type HostFacts, type HostRequest, type ToolstackDriver, type VmRef,
} from '../toolstack/driver.ts';
import { CleanupRegistry, destroyVm } from './cleanup.ts';
import {
  lastAgentLine, readReport, shutdownEventFromConsole, shutdownEventFromReport, testingAcknowledged,
  type GuestShutdownEvent, type ReportSnapshot,
} from './guest-report.ts';
import { describeExpectation, guestExpectation, type DurationClass, type Expectation, type ModelAnswer, type ModelContext, type ToolstackModel } from './model.ts';
import type { CaseResult, Evidence, RunSummary } from './result.ts';
import { summarise } from './result.ts';
import { BOGUS_ACK_VALUE, powerStateOf, type AckKind, type Case, type MatrixName, type Scenario } from './scenarios.ts';
import {
  compare, domidChange, durationClassOf, guestInvariant, renderDiff, stateInvariant, worst,
  type ObservedDomain, type ObservedResult, type Observation, type Verdict,
} from './verdict.ts';
import { Aborted, bounded, delay, fmtMs, poll, WaitTimeout } from './wait.ts';

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
}

// Bounds, never sleeps: generous, because `--parallel` on an emulated host starves dom0 and the
// guests (a full-matrix run at --parallel 10 saw testing messages take over 20 s to be acknowledged).
export const DEFAULT_TIMING: Timing = {
  install: 120_000,
  boot: 180_000,
  prime: 60_000,
  request: { fast: 120_000, 'ack-timeout': 240_000, 'total-timeout': 1_500_000 },
  settle: 90_000,
  confirm: 4_000,
  quiet: 20_000,
  cleanup: 90_000,
  pollMin: 100,
  pollMax: 2_000,
  evidence: 30_000,
};

/** Below the total timeout of the default 1200 s by far, above any ack timeout by far. */
const TOTAL_MIN_CAP_MS = 300_000;

export interface RunOptions {
  driver: ToolstackDriver;
  model: ToolstackModel;
  cases: readonly Case[];
  image: RunnerImage;
  matrix?: MatrixName | 'custom';
  host?: string;
  parallel?: number;
  timing?: Partial<Timing>;
  /** VM names are `${prefix}-${case name}`. */
  vmPrefix?: string;
  /**
   * Install one never-started VM (`${prefix}-image-hold`) for the whole run, so
   * the image stays on the host between cases instead of being copied again
   * after each case's uninstall. Cases still get a fresh VM each; default true
   * when more than one case runs.
   */
  holdImage?: boolean;
  signal?: AbortSignal;
  registry?: CleanupRegistry;
  /** Progress lines (the CLI sends them to stderr). */
  progress?: (line: string) => void;
  /** Called as each case ends (the CLI streams TAP from it). */
  onResult?: (r: CaseResult) => void;
}

/** The value a testing message's ack field takes for each ack kind. */
export function ackFieldOf(ack: AckKind): string {
  return ack === 'bogus' ? BOGUS_ACK_VALUE : ack;
}

/** The testing message a case writes: the command for the next request, or (no_request) an action now. */
export function primingMessage(s: Scenario): string {
  if (s.request === 'no_request') return encodeTesting({ form: 'json', when: 'now', action: s.action });
  return encodeTesting({ form: 'json', when: 'onshutdown', ack: ackFieldOf(s.ack), action: s.action });
}

export function vmNameOf(prefix: string, caseName: string): string {
  return `${prefix}-${caseName}`;
}

/** The guest's console, when the host keeps it (null otherwise). */
async function readConsole(driver: ToolstackDriver, vm: VmRef): Promise<ConsoleText | null> {
  return driver.consoleLog ? driver.consoleLog(vm) : null;
}

/** The last non-empty line of a text (null: none). */
export function lastLine(text: string): string | null {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.at(-1) ?? null;
}

/** What follows the last occurrence of `anchor` (all of it when the anchor is null or gone). */
export function textAfter(text: string, anchor: string | null): string {
  if (anchor === null) return text;
  const lines = text.split('\n');
  const i = lines.lastIndexOf(anchor);
  return i < 0 ? text : lines.slice(i + 1).join('\n');
}

/**
 * Where a call's duration classes change on this host: 90% of the request's
 * ack timeout, 90% of the shorter total timeout (capped), and 90% of the
 * toolstack's restart delay (the timing may pin each).
 */
function durationBounds(request: string, model: ToolstackModel, ctx: Pick<CaseContext, 'timing' | 'facts'>): { fastMaxMs: number; totalMinMs: number; delayedMinMs: number } {
  const t = ctx.facts?.timeouts;
  const ack = model.ackTimeoutMsOf(request as HostRequest, t);
  const total = t ? Math.min(t.shutdownTotalMs, t.suspendTotalMs) : Infinity;
  return {
    fastMaxMs: ctx.timing.fastMax ?? Math.round(ack * 0.9),
    // Above the ack timeout however the host sets the two.
    totalMinMs: ctx.timing.totalMin ?? Math.max(Math.round(ack * 1.1), Math.min(TOTAL_MIN_CAP_MS, Math.round(total * 0.9))),
    delayedMinMs: Math.round((ctx.timing.restartDelay ?? model.restartDelayMs) * 0.9),
  };
}

/**
 * Bound on a request of the model's duration class: the timing's, or longer
 * on a host whose own timeouts are longer (a call may take them, then a
 * little more), so that a tuned host is not cut short and called a timeout.
 */
function requestBound(cls: DurationClass, request: string, model: ToolstackModel, ctx: Pick<CaseContext, 'timing' | 'facts'>): number {
  const base = ctx.timing.request[cls === 'delayed' ? 'ack-timeout' : cls];
  const t = ctx.facts?.timeouts;
  if (!t || cls === 'fast') return base;
  const longest = cls === 'total-timeout' ? Math.max(t.shutdownTotalMs, t.suspendAckMs + t.suspendTotalMs) : model.ackTimeoutMsOf(request as HostRequest, t);
  return Math.max(base, Math.round(longest * 1.2) + 60_000);
}

function errText(e: unknown): string {
  return e instanceof Error ? `${e.name === 'Error' ? '' : e.name + ': '}${e.message}` : String(e);
}

/** Result of a case that was not run. */
function notRun(c: Case, model: ToolstackModel, verdict: Verdict, summary: string): CaseResult {
  const answer = model.expect(c.scenario);
  return {
    name: c.scenario.name,
    toolstack: model.kind,
    scenario: c.scenario,
    verdict,
    summary,
    ...(c.run ? {} : { skipReason: c.skipReason }),
    model: answer,
    expected: describeExpectation(answer),
    diffs: [],
    invariantProblems: [],
    errors: verdict === 'error' ? [summary] : [],
    evidence: { steps: [] },
  };
}

/** Runs the cases; resolves when all have ended and every VM is gone (or reported as left). */
export async function runMatrix(o: RunOptions): Promise<RunSummary> {
  const timing: Timing = { ...DEFAULT_TIMING, ...o.timing, request: { ...DEFAULT_TIMING.request, ...o.timing?.request } };
  const registry = o.registry ?? new CleanupRegistry();
  const progress = o.progress ?? (() => undefined);
  const prefix = o.vmPrefix ?? 'xtv';
  const startedAt = new Date().toISOString();
  const results: Array<CaseResult | undefined> = new Array(o.cases.length);
  const runnable = o.cases.map((c, i) => ({ c, i })).filter((x) => x.c.run);
  const total = runnable.length;
  let done = 0;

  const finish = (i: number, r: CaseResult): void => {
    results[i] = r;
    o.onResult?.(r);
  };
  o.cases.forEach((c, i) => {
    if (!c.run) finish(i, notRun(c, o.model, 'skip', c.skipReason));
  });

  // What this host offers (console logs, its toolstack's timeouts): every case reads its evidence
  // and classes its durations by these. Without them, the toolstack's defaults and no console.
  let facts: HostFacts | null = null;
  if (total > 0 && !o.signal?.aborted) {
    try {
      facts = await bounded(o.driver.hostFacts(), timing.evidence, 'finding out what the host offers', o.signal);
      for (const n of facts.notes) progress(`host: ${n}`);
    } catch (e) {
      if (e instanceof Aborted) throw e;
      progress(`could not find out what the host offers (no console log, the toolstack's default timeouts are assumed): ${errText(e)}`);
    }
  }

  // Reused between cases: the image on the host, held by a VM that never starts (it cannot change any result).
  let holder: VmRef | undefined;
  if ((o.holdImage ?? true) && total > 1 && !o.signal?.aborted) {
    try {
      holder = await bounded(o.driver.install({
        name: `${prefix}-image-hold`, domainType: o.image.domainType, memoryMiB: o.image.memoryMiB,
        kernelPath: o.image.kernelPath, initrdPath: o.image.initrdPath, kernelArgs: o.image.kernelArgs,
      }), timing.install, 'installing the image holder', o.signal);
      registry.add(o.driver, holder);
    } catch (e) {
      progress(`could not install the image holder (each case will copy the image): ${errText(e)}`);
    }
  }

  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (o.signal?.aborted) return;
      const k = next++;
      const item = runnable[k];
      if (!item) return;
      const tag = `[${k + 1}/${total}] ${item.c.scenario.name}`;
      const r = await runCase(item.c.scenario, { ...o, timing, registry, prefix, facts, progress: (l) => progress(`${tag}: ${l}`) });
      done++;
      progress(`${tag}: ${r.verdict}${r.verdict === 'pass' ? '' : ' - ' + r.summary} (${done}/${total} done)`);
      finish(item.i, r);
    }
  };
  const n = Math.max(1, Math.min(o.parallel ?? 1, total || 1));
  await Promise.all(Array.from({ length: n }, worker));

  // Cases never started because the run was interrupted: each reports nothing, which is an error.
  o.cases.forEach((c, i) => {
    if (!results[i]) finish(i, notRun(c, o.model, 'error', `not run: ${o.signal?.reason instanceof Error ? o.signal.reason.message : 'the run was interrupted'}`));
  });
  if (holder) {
    try {
      await bounded(destroyVm(o.driver, holder, timing.cleanup), timing.cleanup, `removing ${holder.name}`);
      registry.remove(holder);
    } catch (e) {
      progress(`could not remove ${holder.name}: ${errText(e)}`);
    }
  }
  // Anything a case could not remove is tried once more.
  if (registry.size > 0) {
    progress(`cleaning up ${registry.size} VM(s) left by interrupted cases`);
    const left = await registry.drain(timing.cleanup);
    for (const l of left) progress(`could not remove ${l.name}: ${l.error}`);
  }
  return summarise(results as CaseResult[], {
    toolstack: o.model.kind,
    matrix: o.matrix ?? 'custom',
    ...(o.host !== undefined ? { host: o.host } : {}),
    ...(facts ? { hostFacts: facts } : {}),
    startedAt,
    finishedAt: new Date().toISOString(),
    aborted: o.signal?.aborted ?? false,
  });
}

interface CaseContext extends RunOptions {
  timing: Timing;
  registry: CleanupRegistry;
  prefix: string;
  /** What the host offers; null when it could not be found out. */
  facts: HostFacts | null;
  progress: (line: string) => void;
}

/** A harness/environment failure at a named step: the case's verdict is error. */
class StepError extends Error {
  override name = 'StepError';
}

async function runCase(s: Scenario, ctx: CaseContext): Promise<CaseResult> {
  const { driver, model, timing, signal } = ctx;
  const t0 = Date.now();
  // The expectation before the case runs; rules that depend on what happened (how long the VM had
  // run) are asked again once it is known.
  let answer: ModelAnswer = model.expect(s);
  let expect: Expectation | undefined = answer.kind === 'expect' ? answer.expect : undefined;
  const hasConsole = !!ctx.facts?.consoleLogDir && !!driver.consoleLog;
  /** When the VM's current domain started running (set by bringToInitial). */
  let runningSince: number | undefined;
  const evidence: Evidence = { steps: [] };
  const errors: string[] = [];
  const problems: string[] = [];
  let observation: Observation | undefined;
  let vm: VmRef | undefined;
  let consoleStart: string | null = null;
  const step = (what: string): void => {
    evidence.steps.push(`+${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);
    ctx.progress(what);
  };
  // A call this case stops waiting for (Ctrl-C, a bound) still runs on the host: a VM.start that
  // finishes after the cleanup leaves a domain behind (seen with the XenAPI test double). Calls that
  // make a domain are tracked (`creates`), and the cleanup waits for them first, bounded.
  const creating = new Set<Promise<unknown>>();
  const within = <T>(p: Promise<T>, ms: number, what: string, creates = false): Promise<T> => {
    if (creates) {
      const settled: Promise<unknown> = p.then(() => undefined, () => undefined).finally(() => creating.delete(settled));
      creating.add(settled);
    }
    return bounded(p, ms, what, signal);
  };
  const pollOpts = (timeoutMs: number, what: string) => ({ timeoutMs, minMs: timing.pollMin, maxMs: timing.pollMax, signal, what });

  const waitState = async (want: string, ms: number): Promise<ObservedDomain> => {
    const r = await poll(() => driver.state(vm!), (d) => d.powerState === want, pollOpts(ms, `waiting for ${want}`));
    if (!r.done) throw new StepError(`${vm!.name} did not reach ${want} within ${fmtMs(ms)} (last: ${r.value ? r.value.powerState : errText(r.lastError)})`);
    return r.value!;
  };

  const waitReady = async (): Promise<void> => {
    step('waiting for the agent to report ready');
    const r = await poll(() => driver.readGuest(vm!, `${REPORT_DIR}/state`), (v) => v === 'ready', pollOpts(timing.boot, 'agent ready'));
    if (!r.done) throw new StepError(`the guest did not report state=ready within ${fmtMs(timing.boot)} (state: ${r.value ?? 'absent'})`);
    // The guest's report names the domid the toolstack shows.
    const both = await poll(() => Promise.all([driver.state(vm!), driver.readGuest(vm!, `${REPORT_DIR}/domid`)]), () => true, pollOpts(timing.evidence, 'reading the domid'));
    if (!both.done) throw new StepError(`could not read the domid: ${errText(both.lastError)}`);
    const [st, reported] = both.value!;
    if (reported !== null && st.domid !== null && reported !== String(st.domid)) {
      problems.push(`guest reports domid ${reported}, the toolstack says ${st.domid}`);
    }
  };

  const prime = async (): Promise<void> => {
    const msg = primingMessage(s);
    evidence.primedWith = msg;
    step(`priming: ${msg}`);
    await within(driver.writeGuest(vm!, TESTING_NODE, msg, { guestWritable: true }), timing.prime, 'writing control/testing');
    if (s.request === 'no_request') {
      // The guest acts at once; its domain may be gone before the ack can be read (absent counts as read).
      const r = await poll(() => testingAcknowledged(driver, vm!), (ok) => ok, pollOpts(timing.prime, 'guest acknowledging the testing message'));
      if (!r.done) throw new StepError(`the guest did not acknowledge the testing message within ${fmtMs(timing.prime)}`);
      return;
    }
    const decoded = decodeTesting(msg);
    const wantPending = decoded.kind === 'message' ? encodeCommand(decoded.value) : '';
    let report: ReportSnapshot | undefined;
    const r = await poll(async () => {
      if (!(await testingAcknowledged(driver, vm!))) return false;
      report = await readReport(driver, vm!);
      return report.pending === wantPending;
    }, (ok) => ok, pollOpts(timing.prime, 'guest acknowledging the testing message'));
    if (report) evidence.reportAfterPrime = report;
    if (!r.done) {
      if (report) problems.push(`the guest acknowledged ${msg} but reports pending ${JSON.stringify(report.pending)} (expected ${JSON.stringify(wantPending)})`);
      else throw new StepError(`the guest did not acknowledge the testing message within ${fmtMs(timing.prime)}`);
    }
  };

  const request = async (req: HostRequest, ms: number): Promise<void> => {
    await within(driver.request(vm!, req, { timeoutMs: ms }), ms + 5_000, `${req}`, req === 'resume' || req === 'hard_reboot');
  };

  /** Brings the fresh (Halted) VM to the case's initial state. */
  const bringToInitial = async (): Promise<void> => {
    if (s.initial === 'halted') return;
    step('starting');
    await within(driver.start(vm!), timing.boot, 'start', true);
    // The domain runs from here (the toolstack's own clock started a little earlier, while building it).
    runningSince = Date.now();
    await waitReady();
    if (s.initial === 'suspended') {
      step('suspending to reach the initial state');
      await request('suspend', timing.request.fast);
      await waitState('Suspended', timing.settle);
      return;
    }
    if (s.request !== 'no_request') await prime();
    if (s.initial === 'paused') {
      step('pausing to reach the initial state');
      await request('pause', timing.request.fast);
      await waitState('Paused', timing.settle);
    }
  };

  /** Polls the state until it matches the expectation for `confirm` (unmodelled: is unchanged for `quiet`), or the bound. */
  const settle = async (initialDomid: number | null): Promise<ObservedDomain> => {
    const deadline = Date.now() + timing.settle;
    // A Halted VM may yet be restarted by the toolstack (xl after 2 s, XAPI after up to 15 s): hold longer.
    const confirm = expect?.finalState === 'Halted' ? (timing.restartDelay ?? model.restartDelayMs) + timing.confirm : timing.confirm;
    const matchesExpect = (d: ObservedDomain): boolean => !!expect
      && d.powerState === expect.finalState
      && domidChange(initialDomid, d.domid) === expect.domid
      && (expect.shutdownReason === undefined || d.shutdownReason === expect.shutdownReason);
    let last: ObservedDomain | undefined;
    let lastKey = '';
    let since = Date.now();
    let interval = timing.pollMin;
    let lastError: unknown;
    for (;;) {
      let d: ObservedDomain;
      try {
        d = await within(driver.state(vm!), Math.max(deadline - Date.now(), timing.pollMin), 'reading the state');
      } catch (e) {
        // A read can fail while the toolstack is busy with the domain (xl list racing a destroy): try again.
        if (e instanceof Aborted) throw e;
        lastError = e;
        if (Date.now() >= deadline) {
          if (last) return last;
          throw new StepError(`could not read the state within ${fmtMs(timing.settle)}: ${errText(lastError)}`);
        }
        step(`state read failed, retrying: ${errText(e)}`);
        await delay(Math.min(interval, Math.max(deadline - Date.now(), 1)), signal);
        interval = Math.min(timing.pollMax, interval * 1.5);
        continue;
      }
      const key = `${d.powerState}/${d.domid}/${d.shutdownReason ?? ''}/${d.paused ?? ''}`;
      if (key !== lastKey) { lastKey = key; since = Date.now(); }
      last = d;
      const held = Date.now() - since;
      if (expect ? matchesExpect(d) && held >= confirm : held >= timing.quiet) return d;
      if (Date.now() >= deadline) return last;
      await delay(Math.min(interval, Math.max(deadline - Date.now(), 1)), signal);
      interval = Math.min(timing.pollMax, interval * 1.5);
    }
  };

  /** Why the guest's account of the request could not be seen, when it could not. */
  let guestEventUnseen: string | undefined;
  const guestEventAfter = async (final: ObservedDomain, initialDomid: number | null, consoleMark: string | undefined): Promise<GuestShutdownEvent | null | undefined> => {
    if (final.domid !== null && final.domid === initialDomid) {
      const report = await within(readReport(driver, vm!), timing.evidence, 'reading the guest report');
      evidence.reportAfter = report;
      return shutdownEventFromReport(report);
    }
    if (consoleMark !== undefined) {
      const c = await within(readConsole(driver, vm!), timing.evidence, 'reading the console').catch(() => null);
      if (c) return shutdownEventFromConsole(c.text, consoleMark);
    }
    guestEventUnseen = !hasConsole
      ? 'its domain is gone and this host keeps no console log (the toolstack\'s answer and state are the evidence)'
      : consoleMark === undefined
        ? 'its domain is gone and its console log showed none of the agent\'s lines before the request'
        : 'its domain is gone and its console log could not be read';
    return undefined;
  };

  try {
    step('installing');
    const installing = driver.install({
      name: vmNameOf(ctx.prefix, s.name),
      domainType: ctx.image.domainType,
      memoryMiB: ctx.image.memoryMiB,
      kernelPath: ctx.image.kernelPath,
      initrdPath: ctx.image.initrdPath,
      kernelArgs: ctx.image.kernelArgs,
      actions: { ...model.actions },
    });
    try {
      vm = await within(installing, timing.install, 'install');
    } catch (e) {
      // Stopping the wait does not stop the install (Ctrl-C, the bound): once it has made
      // the VM, the registry removes it with the rest, instead of leaving it on the host.
      ctx.registry.addLate(driver, installing);
      throw e;
    }
    ctx.registry.add(driver, vm);
    // The host may keep the console log of an earlier VM of the same name: remember where this case's part starts.
    if (hasConsole) {
      const c = await within(readConsole(driver, vm), timing.evidence, 'reading the console').catch(() => null);
      if (c) consoleStart = lastLine(c.text);
    }

    await bringToInitial();
    const beforeRead = await poll(() => driver.state(vm!), () => true, pollOpts(timing.evidence, 'reading the state'));
    if (!beforeRead.done) throw new StepError(`could not read the state: ${errText(beforeRead.lastError)}`);
    const before: ObservedDomain = beforeRead.value!;
    if (before.powerState !== powerStateOf(s.initial)) throw new StepError(`could not bring the VM to ${powerStateOf(s.initial)} (it is ${before.powerState})`);
    // The console's last agent line before the request: what follows it is this case's doing. A
    // console that shows none of the agent's lines (a log that does not capture this guest) tells nothing.
    let consoleMark: string | undefined;
    if (hasConsole && before.domid !== null) {
      const c = await within(readConsole(driver, vm), timing.evidence, 'reading the console').catch(() => null);
      consoleMark = (c && lastAgentLine(c.text)) ?? undefined;
    }

    // The request, bounded by what the model expects (unmodelled: the longest the toolstack could take).
    const cls: DurationClass = expect?.duration ?? (model.kind === 'xapi' ? 'total-timeout' : 'ack-timeout');
    const bound = requestBound(cls, s.request, model, ctx);
    const tReq = Date.now();
    // How long the VM had run when the guest acted: at the request, or (the guest acting on its own)
    // once it has read its message, which it acts on at once. Rules that depend on it are asked again.
    const reexpect = (at: number): void => {
      const modelCtx: ModelContext = runningSince !== undefined ? { ranForMs: at - runningSince } : {};
      answer = model.expect(s, modelCtx);
      expect = answer.kind === 'expect' ? answer.expect : undefined;
    };
    reexpect(tReq);
    let result: ObservedResult;
    if (s.request === 'no_request') {
      step(`guest acts on its own: ${s.action}`);
      await prime();
      reexpect(Date.now());
      result = { kind: 'ok' };
    } else {
      step(`request ${s.request} (bound ${fmtMs(bound)})`);
      try {
        await request(s.request, bound);
        result = { kind: 'ok' };
      } catch (e) {
        if (e instanceof ToolstackError) result = { kind: 'error', code: e.code, message: e.message };
        else if (e instanceof WaitTimeout || (e instanceof ConnectionError && e.timedOut)) result = { kind: 'timeout', message: e.message };
        else throw e;
      }
    }
    const durationMs = Date.now() - tReq;
    step(`answer: ${result.kind === 'ok' ? 'ok' : result.kind === 'error' ? result.code : 'timeout'} after ${fmtMs(durationMs)}`);

    step('observing');
    const final = await settle(before.domid);
    const controlShutdown = final.domid !== null
      ? await within(driver.readGuest(vm, SHUTDOWN_NODE), timing.evidence, 'reading control/shutdown')
      : undefined;
    const guestEvent = await guestEventAfter(final, before.domid, consoleMark);
    observation = {
      result,
      durationMs,
      durationClass: durationClassOf(durationMs, durationBounds(s.request, model, ctx), expect?.duration),
      initialDomid: before.domid,
      final,
      domid: domidChange(before.domid, final.domid),
      ...(controlShutdown !== undefined ? { controlShutdown } : {}),
      ...(guestEvent !== undefined ? { guestEvent } : guestEventUnseen ? { guestEventUnseen } : {}),
    };
    step(`observed: ${final.powerState}, domid ${final.domid ?? '-'}${final.shutdownReason ? `, shut down (${final.shutdownReason})` : ''}`);
    problems.push(...stateInvariant(final).map((p) => `state: ${p}`));
    problems.push(...guestInvariant(guestExpectation(s), guestEvent).map((p) => `guest: ${p}`));
  } catch (e) {
    if (e instanceof Aborted) errors.push(`interrupted: ${e.message}`);
    else if (e instanceof StepError || e instanceof WaitTimeout) errors.push(e.message);
    else errors.push(`${errText(e)}`);
  }

  // Evidence, then cleanup: both bounded and never allowed to hide the case's result.
  if (vm) {
    if (hasConsole) {
      const c = await bounded(readConsole(driver, vm), timing.evidence, 'console').catch(() => null);
      if (c) {
        evidence.console = textAfter(c.text, consoleStart).split('\n').slice(-40).join('\n');
        if (c.path) evidence.consolePath = c.path;
      }
    }
    if (driver.toolstackLog) {
      const l = await bounded(driver.toolstackLog(vm, t0), timing.evidence, 'toolstack log').catch(() => null);
      if (l) evidence.toolstackLog = l.split('\n').slice(-60).join('\n');
    }
    step('cleaning up');
    if (creating.size > 0) await bounded(Promise.all(creating), timing.cleanup, 'calls that make a domain, still running').catch(() => undefined);
    try {
      await bounded(destroyVm(driver, vm, timing.cleanup), timing.cleanup, `cleaning up ${vm.name}`);
      ctx.registry.remove(vm);
      const owned = await poll(() => driver.listOwned(), () => true, pollOpts(timing.evidence, 'listing owned VMs'));
      if (!owned.done) errors.push(`could not check for leaks: ${errText(owned.lastError)}`);
      else if (owned.value!.some((v) => v.name === vm!.name)) errors.push(`leak: ${vm.name} is still on the host after cleanup`);
    } catch (e) {
      errors.push(`cleanup failed, ${vm.name} may be left on the host: ${errText(e)}`);
    }
  }

  const diffs = expect && observation ? compare(expect, observation) : [];
  const verdicts: Verdict[] = [];
  if (errors.length > 0) verdicts.push('error');
  if (problems.length > 0) verdicts.push('fail');
  if (diffs.length > 0) verdicts.push('fail');
  if (observation && errors.length === 0) verdicts.push(expect ? 'pass' : 'unmodelled');
  const verdict = worst(verdicts);
  const summary = errors[0]
    ?? (diffs.length > 0 ? renderDiff(diffs).split('\n').slice(0, 2).join(' / ').replace(/\s+/g, ' ') : undefined)
    ?? problems[0]
    ?? (verdict === 'unmodelled' ? `observed ${observation ? `${observation.result.kind === 'error' ? observation.result.code : observation.result.kind}; ${observation.final.powerState}` : 'nothing'}; ${answer.kind === 'unmodelled' ? answer.reason : ''}` : 'as the model says');
  step(`verdict ${verdict}`);
  return {
    name: s.name,
    toolstack: model.kind,
    scenario: s,
    verdict,
    summary,
    model: answer,
    expected: describeExpectation(answer),
    ...(observation ? { observation } : {}),
    diffs,
    invariantProblems: problems,
    errors,
    evidence,
    startedAt: new Date(t0).toISOString(),
    elapsedMs: Date.now() - t0,
  };
}

// One case of a matrix, step by step: install its VM, bring it to the initial
// state, prime the guest (and wait for its acknowledgement), issue the request
// with a bound, observe until the state settles, read what the guest says,
// collect the evidence, clean up. The steps only record; the verdict is
// judge() in verdict.ts, from what they recorded. Every wait is bounded; the
// VM is registered for cleanup the moment it exists.
import {
  encodeTesting,
  encodeCommand,
  encodeUtf8,
  decodeTesting,
  controlProtocolVersion,
  isCommand,
  MAX_DELAY_MS,
  PROTOCOL_WITH_TIME_AND_FEATURES,
  REPORT_DIR,
  SHUTDOWN_NODE,
  TESTING_NODE,
} from '../../protocol/control.ts';
import {
  ConnectionError,
  ToolstackError,
  type ConsoleText,
  type HostFacts,
  type HostRequest,
  type ToolstackDriver,
  type ToolstackTimeouts,
  type VmRef,
  type XenstoredDomain,
} from '../toolstack/driver.ts';
import { fnv1a64 } from '../../protocol/report-limits.ts';
import { destroyVm, type CleanupRegistry } from './cleanup.ts';
import type { ContinuitySnapshot } from './continuity.ts';
import { checkContinuity, readContinuity, type ContinuityIo } from './continuity-check.ts';
import {
  lastAgentLine,
  readReport,
  waitAgentReady,
  shutdownEventFromConsole,
  shutdownEventFromReport,
  testingAcknowledged,
  type ReportSnapshot,
} from './guest-report.ts';
import {
  describeExpectation,
  guestExpectation,
  type DurationClass,
  type Expectation,
  type ModelAnswer,
  type ModelActions,
  type ModelContext,
  type ToolstackModel,
} from './model.ts';
import type { CaseResult, Evidence } from './result.ts';
import type { RunnerImage, Timing } from './timing.ts';
import { BOGUS_ACK_VALUE, CANT_SUSPEND_REASON, powerStateOf, type AckKind, type Scenario } from './scenarios.ts';
import {
  domidChange,
  durationClassOf,
  guestInvariant,
  judge,
  stateInvariant,
  xenstoredInvariant,
  type ObservedDomain,
  type ObservedResult,
  type Observation,
} from './verdict.ts';
import { Aborted, bounded, fmtMs, poll, WaitTimeout, type PollOptions } from './wait.ts';

/** What a case needs from the run it is part of. */
export interface CaseContext {
  driver: ToolstackDriver;
  model: ToolstackModel;
  image: RunnerImage;
  timing: Timing;
  registry: CleanupRegistry;
  /** VM names are `${prefix}-${case name}`. */
  prefix: string;
  /** What the host offers; null when it could not be found out. */
  facts: HostFacts | null;
  signal?: AbortSignal;
  progress: (line: string) => void;
}

/** The value a testing message's ack field takes for each ack kind. */
export function ackFieldOf(ack: AckKind): string {
  return ack === 'bogus' ? BOGUS_ACK_VALUE : ack;
}

/** A timing case's delays, in ms, and the window they straddle. */
export interface CaseDelays {
  ackAfterMs?: number;
  actAfterMs?: number;
  /** The window the delay is set against (the model's, on this host), and how far inside or outside. */
  windowMs: number;
  marginMs: number;
}

/**
 * How far inside or outside a window a timing case's guest acts: a quarter of
 * the window, at least 2 s (a watch event and a xenstore write under
 * emulation take a second or so, and "inside" must stay inside) but never
 * more than half the window (a scaled fake's 1 s), and at most 15 s (a late
 * ack need not wait long to be late).
 */
export function windowMargin(windowMs: number): number {
  return Math.min(15_000, Math.round(Math.max(windowMs / 4, Math.min(2_000, windowMs / 2))));
}

/**
 * The delays a timing case gives the guest, from the model's windows on this
 * host (its declared timeouts; absent: the toolstack's defaults). null for a
 * prompt case. The ack windows count from the request, which the guest reads
 * at once; the window after the ack counts from it (xl's suspend) or from the
 * request (XAPI's total timeout): a prompt ack makes the two the same.
 */
export function caseDelays(s: Scenario, model: ToolstackModel, timeouts?: ToolstackTimeouts): CaseDelays | null {
  if (s.timing === 'prompt') return null;
  const req = s.request as HostRequest;
  const windowMs = s.timing.startsWith('ack-') ? model.ackTimeoutMsOf(req, timeouts) : model.actTimeoutMsOf(req, timeouts);
  const marginMs = windowMargin(windowMs);
  const ms = Math.min(MAX_DELAY_MS, s.timing.endsWith('-inside') ? windowMs - marginMs : windowMs + marginMs);
  return s.timing.startsWith('ack-') ? { ackAfterMs: ms, windowMs, marginMs } : { actAfterMs: ms, windowMs, marginMs };
}

/** How long a case's guest waits on purpose before its ack or action (0: a prompt guest). */
function guestDelayMs(d: CaseDelays | null): number {
  return (d?.ackAfterMs ?? 0) + (d?.actAfterMs ?? 0);
}

/** The capabilities message a feature case writes before its command (null: a guest that advertises everything). */
export function capabilityMessage(s: Scenario): string | null {
  switch (s.features) {
    case 'all':
      return null;
    case 'cant-suspend':
      return encodeTesting({ form: 'capabilities', cantSuspendReason: CANT_SUSPEND_REASON });
    default:
      return encodeTesting({ form: 'capabilities', features: { [s.features.slice('no-feature-'.length)]: false } });
  }
}

/** The testing message a case writes: the command for the next request (with a timing case's delays), or (no_request) an action now. */
export function primingMessage(s: Scenario, delays: CaseDelays | null = null): string {
  if (s.request === 'no_request') return encodeTesting({ form: 'json', when: 'now', action: s.action });
  return encodeTesting({
    form: 'json',
    when: 'onshutdown',
    ack: ackFieldOf(s.ack),
    action: s.action,
    ...(delays?.ackAfterMs !== undefined ? { ackAfterMs: delays.ackAfterMs } : {}),
    ...(delays?.actAfterMs !== undefined ? { actAfterMs: delays.actAfterMs } : {}),
  });
}

/** xl's longest domain name (harness/toolstack/xl: checkVmName); XAPI's name-labels take it too. */
const VM_NAME_MAX = 64;

/**
 * PREFIX-CASE, or, when that would pass xl's 64 characters (a long prefix
 * with the longest case names, such as the feature cases' 58), the case name
 * cut short and ended with 8 hex digits of its hash: still unique, still
 * under the prefix (gc --prefix), and readable from the start.
 */
export function vmNameOf(prefix: string, caseName: string): string {
  const full = `${prefix}-${caseName}`;
  if (full.length <= VM_NAME_MAX) return full;
  const hash = fnv1a64(encodeUtf8(caseName)).slice(0, 8);
  return `${prefix}-${caseName.slice(0, VM_NAME_MAX - prefix.length - 1 - 9).replace(/[.-]+$/, '')}-${hash}`;
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

/** How far past a toolstack's short-run window a lifecycle case's guest crashes: the XAPI model calls 10 s either side of it unsure. */
const CRASH_RUN_MARGIN_MS = 20_000;

/** Below the total timeout of the default 1200 s by far, above any ack timeout by far. */
const TOTAL_MIN_CAP_MS = 300_000;

/**
 * Where a call's duration classes change on this host: 90% of the request's
 * ack timeout, 90% of the shorter total timeout (capped), and 90% of the
 * toolstack's restart delay (the timing may pin each).
 */
function durationBounds(
  request: string,
  model: ToolstackModel,
  ctx: Pick<CaseContext, 'timing' | 'facts'>,
  guestDelay = 0,
): { fastMaxMs: number; totalMinMs: number; delayedMinMs: number } {
  const t = ctx.facts?.timeouts;
  const ack = model.ackTimeoutMsOf(request as HostRequest, t);
  const total = t ? Math.min(t.shutdownTotalMs, t.suspendTotalMs) : Infinity;
  return {
    fastMaxMs: ctx.timing.fastMax ?? Math.round(ack * 0.9),
    // Above the ack timeout however the host sets the two.
    totalMinMs: ctx.timing.totalMin ?? Math.max(Math.round(ack * 1.1), Math.min(TOTAL_MIN_CAP_MS, Math.round(total * 0.9))),
    // 'delayed': the call waits out the toolstack's restart delay, or (a timing case) the guest's own delay.
    delayedMinMs: Math.round((guestDelay > 0 ? guestDelay : (ctx.timing.restartDelay ?? model.restartDelayMs)) * 0.9),
  };
}

/**
 * Bound on a request of the model's duration class: the timing's, or longer
 * on a host whose own timeouts are longer (a call may take them, then a
 * little more), so that a tuned host is not cut short and called a timeout.
 */
function requestBound(cls: DurationClass, request: string, model: ToolstackModel, ctx: Pick<CaseContext, 'timing' | 'facts'>, guestDelay = 0): number {
  // A guest told to wait may make the call wait as long (xl save, XAPI's total timeout): never cut that short.
  // A live migration copies the guest's memory before it asks the guest anything, which takes a big guest,
  // or an emulated host's dom0 encrypting it for ssh under load, minutes: it gets the ack-timeout bound at least.
  const own = ctx.timing.request[cls === 'delayed' || (request === 'migrate' && cls === 'fast') ? 'ack-timeout' : cls];
  const base = Math.max(own, guestDelay > 0 ? Math.round(guestDelay * 1.2) + 60_000 : 0);
  const t = ctx.facts?.timeouts;
  if (!t || cls === 'fast') return base;
  const longest = cls === 'total-timeout' ? Math.max(t.shutdownTotalMs, t.suspendAckMs + t.suspendTotalMs) : model.ackTimeoutMsOf(request as HostRequest, t);
  return Math.max(base, Math.round(longest * 1.2) + 60_000);
}

export function errText(e: unknown): string {
  return e instanceof Error ? `${e.name === 'Error' ? '' : e.name + ': '}${e.message}` : String(e);
}

/** A harness/environment failure at a named step: the case's verdict is error. */
class StepError extends Error {
  override name = 'StepError';
}

/** A step's failure as the case records it among its errors. */
function failureLine(e: unknown): string {
  if (e instanceof Aborted) return `interrupted: ${e.message}`;
  if (e instanceof StepError || e instanceof WaitTimeout) return e.message;
  return errText(e);
}

/** Xen's view of the state, as one key: a change of any part of it starts a hold again. */
function stateKey(d: ObservedDomain): string {
  return `${d.powerState}/${d.domid}/${d.shutdownReason ?? ''}/${d.paused ?? ''}`;
}

/** Requests a guest lives through when they succeed, with the suspends it sees on the way (its resumes after). */
const LIVED_THROUGH: Partial<Record<Scenario['request'], number>> = { resume: 1, migrate: 1, unpause: 0 };

/** One case, run once: `new CaseRun(scenario, ctx).run()`. */
export class CaseRun {
  private readonly t0 = Date.now();
  /**
   * The model's answer. Asked before the case runs; rules that depend on what happened (how long
   * the VM had run) are asked again once it is known (reexpect).
   */
  private answer: ModelAnswer;
  private readonly hasConsole: boolean;
  /** When the VM's current domain started running (set by reachInitial). */
  private runningSince: number | undefined;
  private readonly evidence: Evidence = { steps: [] };
  private readonly errors: string[] = [];
  private readonly problems: string[] = [];
  private observation: Observation | undefined;
  /** The case's VM, once it exists. */
  private vm: VmRef | undefined;
  /** The console's last line before this case's VM: what follows is this case's part. */
  private consoleStart: string | null = null;
  // A call this case stops waiting for (Ctrl-C, a bound) still runs on the host: a VM.start that
  // finishes after the cleanup leaves a domain behind (seen with the XenAPI test double). Calls that
  // make a domain are tracked (`creates`), and the cleanup waits for them first, bounded.
  private readonly creating = new Set<Promise<unknown>>();

  /**
   * The guest's continuity report before the operation that brought it to a suspended or paused initial
   * state (undefined: not read, or its agent predates continuity): checked after a resume or unpause.
   */
  private continuityBefore: ContinuitySnapshot | undefined;

  /** The name the toolstack gave the VM's domain, as xenstored showed it (undefined: not seen yet). */
  private domainName: string | undefined;

  /** A timing case's delays on this host (null: a prompt guest). */
  private readonly delays: CaseDelays | null;

  constructor(
    private readonly s: Scenario,
    private readonly ctx: CaseContext,
  ) {
    this.answer = ctx.model.expect(s, this.hostContext());
    this.hasConsole = !!ctx.facts?.consoleLogDir && !!ctx.driver.consoleLog;
    this.delays = caseDelays(s, ctx.model, ctx.facts?.timeouts);
  }

  /** Runs every step; resolves with the case's result (a step's failure is in it, never thrown). */
  async run(): Promise<CaseResult> {
    try {
      const vm = await this.install();
      const before = await this.bringToInitial(vm);
      await this.requestAndObserve(vm, before);
    } catch (e) {
      this.errors.push(failureLine(e));
    }
    // Evidence, then cleanup: both bounded and never allowed to hide the case's result.
    if (this.vm) {
      await this.collectEvidence(this.vm);
      await this.cleanUp(this.vm);
    }
    return this.result();
  }

  // ---- Step 1: install ----

  /** The case's VM, registered for cleanup the moment it exists. */
  private async install(): Promise<VmRef> {
    const { driver, image, timing, registry } = this.ctx;
    this.step('installing');
    const name = vmNameOf(this.ctx.prefix, this.s.name);
    // Journaled before it may exist: a run killed now still leaves a trace for the next to sweep.
    registry.installing(name);
    const installing = driver.install({
      name,
      domainType: image.domainType,
      memoryMiB: image.memoryMiB,
      kernelPath: image.kernelPath,
      initrdPath: image.initrdPath,
      kernelArgs: image.kernelArgs,
      actions: this.actions(),
    });
    let vm: VmRef;
    try {
      vm = await this.within(installing, timing.install, 'install');
    } catch (e) {
      // Stopping the wait does not stop the install (Ctrl-C, the bound): once it has made
      // the VM, the registry removes it with the rest, instead of leaving it on the host.
      registry.addLate(driver, installing);
      throw e;
    }
    this.vm = vm;
    registry.add(driver, vm);
    // The host may keep the console log of an earlier VM of the same name: remember where this case's part starts.
    if (this.hasConsole) {
      const c = await this.within(readConsole(driver, vm), timing.evidence, 'reading the console').catch(() => null);
      if (c) this.consoleStart = lastLine(c.text);
    }
    return vm;
  }

  /** The VM actions this case installs: the model's own, or its lifecycle's (the runner skips one the toolstack cannot take). */
  private actions(): ModelActions {
    const a = this.ctx.model.lifecycleActionsOf(this.s.lifecycle, this.ctx.image.domainType);
    if ('unsupported' in a) throw new StepError(`this toolstack cannot run ${this.s.name}: ${a.unsupported}`);
    return a;
  }

  // ---- Step 2: the initial state ----

  /** The fresh (Halted) VM brought to the case's initial state, and its state read back there. */
  private async bringToInitial(vm: VmRef): Promise<ObservedDomain> {
    const { driver, timing } = this.ctx;
    await this.reachInitial(vm);
    const read = await poll(
      () => driver.state(vm),
      () => true,
      this.pollOpts(timing.evidence, 'reading the state'),
    );
    if (!read.done) throw new StepError(`could not read the state: ${errText(read.lastError)}`);
    const before: ObservedDomain = read.value!;
    if (before.powerState !== powerStateOf(this.s.initial)) {
      throw new StepError(`could not bring the VM to ${powerStateOf(this.s.initial)} (it is ${before.powerState})`);
    }
    return before;
  }

  private async reachInitial(vm: VmRef): Promise<void> {
    const { driver, timing } = this.ctx;
    const s = this.s;
    if (s.initial === 'halted') return;
    this.step('starting');
    // The call's own bound is the case's boot bound: a busy host (an emulated one running several
    // boots) has taken over 120 s, the drivers' default, for VM.start / xl create.
    await this.within(driver.start(vm, { timeoutMs: timing.boot }), timing.boot, 'start', true);
    // The domain runs from here (the toolstack's own clock started a little earlier, while building it).
    this.runningSince = Date.now();
    await this.waitReady(vm);
    if (s.initial === 'suspended' || s.initial === 'paused' || (s.initial === 'running' && s.request === 'migrate'))
      this.continuityBefore = await this.readContinuity(vm);
    if (s.initial === 'suspended') {
      this.step('suspending to reach the initial state');
      await this.request(vm, 'suspend', timing.request.fast);
      await this.waitState(vm, 'Suspended', timing.settle);
      return;
    }
    if (s.request !== 'no_request') await this.prime(vm);
    if (s.initial === 'paused') {
      this.step('pausing to reach the initial state');
      await this.request(vm, 'pause', timing.request.fast);
      await this.waitState(vm, 'Paused', timing.settle);
    }
  }

  private async waitState(vm: VmRef, want: string, ms: number): Promise<ObservedDomain> {
    const r = await poll(
      () => this.ctx.driver.state(vm),
      (d) => d.powerState === want,
      this.pollOpts(ms, `waiting for ${want}`),
    );
    if (!r.done) throw new StepError(`${vm.name} did not reach ${want} within ${fmtMs(ms)} (last: ${r.value ? r.value.powerState : errText(r.lastError)})`);
    return r.value!;
  }

  private async waitReady(vm: VmRef): Promise<void> {
    const { driver, timing } = this.ctx;
    this.step('waiting for the agent to report ready');
    const notReady = await waitAgentReady(driver, vm, this.pollOpts(timing.boot, 'agent ready'));
    if (notReady) throw new StepError(notReady);
    // The guest's report names the domid the toolstack shows. The same read takes the name the
    // toolstack gave the domain (its xenstore home's `name`), which checkAgainstXenstored looks for.
    const withName = !!driver.xenstoredDomains;
    const domidAndName = async (): Promise<[string | null, string | null]> => {
      if (!driver.readGuestMany)
        return Promise.all([driver.readGuest(vm, `${REPORT_DIR}/domid`), withName ? driver.readGuest(vm, 'name') : Promise.resolve(null)]);
      const r = await driver.readGuestMany(vm, [`${REPORT_DIR}/domid`, ...(withName ? ['name'] : [])]);
      return [r[`${REPORT_DIR}/domid`] ?? null, r['name'] ?? null];
    };
    const stateAndDomid = (): Promise<[ObservedDomain, [string | null, string | null]]> => Promise.all([driver.state(vm), domidAndName()]);
    const both = await poll(stateAndDomid, () => true, this.pollOpts(timing.evidence, 'reading the domid'));
    if (!both.done) throw new StepError(`could not read the domid: ${errText(both.lastError)}`);
    const [st, [reported, name]] = both.value!;
    if (name !== null) this.domainName = name;
    if (reported !== null && st.domid !== null && reported !== String(st.domid)) {
      this.problems.push(`guest reports domid ${reported}, the toolstack says ${st.domid}`);
    }
  }

  /** Writes the case's testing message and waits until the guest has acknowledged it (and reports its command pending). */
  private async prime(vm: VmRef): Promise<void> {
    await this.advertise(vm);
    const { driver, timing } = this.ctx;
    const msg = primingMessage(this.s, this.delays);
    this.evidence.primedWith = msg;
    if (this.delays)
      this.step(
        `timing ${this.s.timing}: ${this.delays.ackAfterMs !== undefined ? `ack after ${fmtMs(this.delays.ackAfterMs)}` : `action after ${fmtMs(this.delays.actAfterMs!)}`} (window ${fmtMs(this.delays.windowMs)} on this host, margin ${fmtMs(this.delays.marginMs)})`,
      );
    this.step(`priming: ${msg}`);
    await this.within(driver.writeGuest(vm, TESTING_NODE, msg, { guestWritable: true }), timing.prime, 'writing control/testing');
    const acking = this.pollOpts<boolean>(timing.prime, 'guest acknowledging the testing message');
    if (this.s.request === 'no_request') {
      // The guest acts at once; its domain may be gone before the ack can be read (absent counts as read).
      const r = await poll(
        () => testingAcknowledged(driver, vm),
        (ok) => ok,
        acking,
      );
      if (!r.done) throw new StepError(`the guest did not acknowledge the testing message within ${fmtMs(timing.prime)}`);
      return;
    }
    const decoded = decodeTesting(msg);
    const wantPending = decoded.kind === 'message' && isCommand(decoded.value) ? encodeCommand(decoded.value) : '';
    let report: ReportSnapshot | undefined;
    const r = await poll(
      async () => {
        if (!(await testingAcknowledged(driver, vm))) return false;
        report = await readReport(driver, vm);
        return report.pending === wantPending;
      },
      (ok) => ok,
      acking,
    );
    if (report) this.evidence.reportAfterPrime = report;
    if (!r.done) {
      if (!report) throw new StepError(`the guest did not acknowledge the testing message within ${fmtMs(timing.prime)}`);
      this.problems.push(`the guest acknowledged ${msg} but reports pending ${JSON.stringify(report.pending)} (expected ${JSON.stringify(wantPending)})`);
    }
  }

  /**
   * A timing or feature case needs an agent that speaks xtv-control/2: an older image would reject
   * the message as an unknown field and act at once, and the case would fail for the wrong reason.
   */
  private async checkAgentProtocol(vm: VmRef): Promise<void> {
    if (this.s.timing === 'prompt' && this.s.features === 'all') return;
    const { protocols } = await readReport(this.ctx.driver, vm, ['protocols']);
    const v = controlProtocolVersion(protocols);
    if (v === null || v < PROTOCOL_WITH_TIME_AND_FEATURES)
      throw new StepError(
        `this case needs an agent that speaks xtv-control/${PROTOCOL_WITH_TIME_AND_FEATURES} (delays, capabilities); the guest's speaks ${JSON.stringify(protocols ?? 'nothing')}: install a newer image (npm run build:image, then xtv install)`,
      );
  }

  /** A feature case's capabilities message, first: written, and waited for until the guest reports the flags it wrote. */
  private async advertise(vm: VmRef): Promise<void> {
    await this.checkAgentProtocol(vm);
    const msg = capabilityMessage(this.s);
    if (msg === null) return;
    const { driver, timing } = this.ctx;
    this.evidence.advertisedWith = msg;
    this.step(`advertising: ${msg}`);
    const want = this.s.features === 'cant-suspend' ? 'cant-suspend-reason=' : `${this.s.features.slice('no-feature-'.length)}=0`;
    const before = (await readReport(driver, vm))['event-seq'] ?? '0';
    await this.within(driver.writeGuest(vm, TESTING_NODE, msg, { guestWritable: true }), timing.prime, 'writing control/testing');
    const r = await poll(
      () => readReport(driver, vm),
      (rep) => rep['event-seq'] !== before && (rep.features ?? '').includes(want),
      this.pollOpts<ReportSnapshot>(timing.prime, 'guest advertising its features'),
    );
    if (!r.done)
      throw new StepError(`the guest did not report "${want}" among its features within ${fmtMs(timing.prime)} (features: ${r.value?.features ?? 'unread'})`);
    if (r.value?.['event-note']) this.step(`guest: ${r.value['event-note']}`);
  }

  // ---- Step 3: request and observe ----

  /** The request (or the guest's own action), then the toolstack's and the guest's account once the state has settled. */
  private async requestAndObserve(vm: VmRef, before: ObservedDomain): Promise<void> {
    const { driver, model, timing } = this.ctx;
    const s = this.s;
    const consoleMark = await this.consoleMark(vm, before);
    const { result, durationMs } = await this.sendRequest(vm);
    this.step('observing');
    const final = await this.observeUntilSettled(vm, before.domid);
    const controlShutdown =
      final.domid !== null ? await this.within(driver.readGuest(vm, SHUTDOWN_NODE), timing.evidence, 'reading control/shutdown') : undefined;
    const guest = await this.guestAccount(vm, final, before.domid, consoleMark);
    this.observation = {
      result,
      durationMs,
      durationClass: durationClassOf(durationMs, durationBounds(s.request, model, this.ctx, guestDelayMs(this.delays)), this.expect?.duration),
      initialDomid: before.domid,
      final,
      domid: domidChange(before.domid, final.domid),
      ...(controlShutdown !== undefined ? { controlShutdown } : {}),
      ...guest,
    };
    this.step(`observed: ${final.powerState}, domid ${final.domid ?? '-'}${final.shutdownReason ? `, shut down (${final.shutdownReason})` : ''}`);
    this.problems.push(...stateInvariant(final).map((p) => `state: ${p}`));
    // The model's account of what reaches the guest, when the toolstack keeps the request from it.
    this.problems.push(...guestInvariant(this.expect?.guest ?? guestExpectation(s), guest.guestEvent).map((p) => `guest: ${p}`));
    await this.checkAgainstXenstored(final);
    // The guest lived through its suspend (resume, migrate) or pause (unpause): it must be the same guest.
    const resumes = LIVED_THROUGH[s.request];
    if (this.continuityBefore && resumes !== undefined && final.powerState === 'Running' && result.kind === 'ok')
      await this.checkContinuity(vm, this.continuityBefore, resumes);
  }

  /** The guest's continuity keys, when its agent reports them (xtv-control/3); undefined otherwise, said once. */
  private async readContinuity(vm: VmRef): Promise<ContinuitySnapshot | undefined> {
    const r = await readContinuity(this.ctx.driver, vm, this.continuityIo());
    if ('unchecked' in r) {
      this.step(`continuity: not checked (${r.unchecked})`);
      return undefined;
    }
    return r.snapshot;
  }

  /** The guest after the operation against its report before it (continuity-check.ts). */
  private async checkContinuity(vm: VmRef, before: ContinuitySnapshot, resumes: number): Promise<void> {
    const c = await checkContinuity(this.ctx.driver, vm, before, resumes, this.continuityIo());
    this.step(`continuity: ${c.line}`);
    this.problems.push(...c.problems.map((p) => `continuity: ${p}`));
  }

  private continuityIo(): ContinuityIo {
    const { timing, signal } = this.ctx;
    return { evidenceMs: timing.evidence, primeMs: timing.prime, pollMinMs: timing.pollMin, pollMaxMs: timing.pollMax, ...(signal ? { signal } : {}) };
  }

  /** xenstored's list of domains, read without the toolstack; null when the driver or dom0 cannot give it (a step says why). */
  private async xenstoredView(): Promise<XenstoredDomain[] | null> {
    const { driver, timing } = this.ctx;
    if (!driver.xenstoredDomains) return null;
    try {
      return await this.within(driver.xenstoredDomains(), timing.evidence, "reading xenstored's list of domains");
    } catch (e) {
      if (e instanceof Aborted) throw e;
      this.step(`xenstored: could not read its list of domains: ${errText(e)}`);
      return null;
    }
  }

  /**
   * The settled state held against xenstored's list of domains (verdict.ts xenstoredInvariant). A
   * toolstack removes a home a moment after the domain, or before it: a disagreement counts only
   * if it lasts (three more looks, 2 s apart).
   */
  private async checkAgainstXenstored(final: ObservedDomain): Promise<void> {
    if (!this.ctx.driver.xenstoredDomains) return;
    let view = await this.xenstoredView();
    if (view === null) {
      this.step("xenstored: not checked (dom0's xenstore cannot be read)");
      return;
    }
    if (this.domainName === undefined && final.domid !== null) this.domainName = view.find((d) => d.domid === final.domid)?.name ?? undefined;
    const name = this.domainName;
    if (name === undefined) {
      this.step("xenstored: not checked (the VM's domain was never seen there, so its name is unknown)");
      return;
    }
    let problems = xenstoredInvariant(final, name, view);
    for (let i = 0; i < 3 && problems.length > 0; i++) {
      await bounded(new Promise((r) => setTimeout(r, 2000)), 3000, 'waiting to look at xenstored again', this.ctx.signal);
      view = (await this.xenstoredView()) ?? view;
      problems = xenstoredInvariant(final, name, view);
    }
    const homes = view.filter((d) => d.name === name).map((d) => d.domid);
    this.step(
      `xenstored: ${homes.length ? `domain ${homes.join(', ')}` : 'no domain'} named ${JSON.stringify(name)}${problems.length ? '' : ', as the toolstack says'}`,
    );
    this.problems.push(...problems.map((p) => `xenstored: ${p}`));
  }

  /**
   * The console's last agent line before the request: what follows it is this case's doing. A
   * console that shows none of the agent's lines (a log that does not capture this guest) tells nothing.
   */
  private async consoleMark(vm: VmRef, before: ObservedDomain): Promise<string | undefined> {
    if (!this.hasConsole || before.domid === null) return undefined;
    const c = await this.within(readConsole(this.ctx.driver, vm), this.ctx.timing.evidence, 'reading the console').catch(() => null);
    return (c && lastAgentLine(c.text)) ?? undefined;
  }

  /** The request, bounded by what the model expects (unmodelled: the longest the toolstack could take). */
  private async sendRequest(vm: VmRef): Promise<{ result: ObservedResult; durationMs: number }> {
    const { model } = this.ctx;
    const s = this.s;
    const cls: DurationClass = this.expect?.duration ?? (model.kind === 'xapi' ? 'total-timeout' : 'ack-timeout');
    const bound = requestBound(cls, s.request, model, this.ctx, guestDelayMs(this.delays));
    // Before the clock starts: the wait is the case's doing, not the toolstack's.
    if (s.request === 'no_request') await this.waitOutShortRun();
    const tReq = Date.now();
    // How long the VM had run when the guest acted: at the request, or (the guest acting on its own)
    // once it has read its message, which it acts on at once. Rules that depend on it are asked again.
    this.reexpect(tReq);
    let result: ObservedResult;
    if (s.request === 'no_request') {
      this.step(`guest acts on its own: ${s.action}`);
      await this.prime(vm);
      this.reexpect(Date.now());
      result = { kind: 'ok' };
    } else {
      this.step(`request ${s.request} (bound ${fmtMs(bound)})`);
      result = await this.answerTo(vm, s.request, bound);
    }
    const durationMs = Date.now() - tReq;
    this.step(`answer: ${result.kind === 'ok' ? 'ok' : result.kind === 'error' ? result.code : 'timeout'} after ${fmtMs(durationMs)}`);
    return { result, durationMs };
  }

  /** The toolstack's answer: ok, its error, or none within the bound. Anything else is the harness's failure. */
  private async answerTo(vm: VmRef, req: HostRequest, bound: number): Promise<ObservedResult> {
    try {
      await this.request(vm, req, bound);
      return { kind: 'ok' };
    } catch (e) {
      if (e instanceof ToolstackError) return { kind: 'error', code: e.code, message: e.message };
      if (e instanceof WaitTimeout || (e instanceof ConnectionError && e.timedOut)) return { kind: 'timeout', message: e.message };
      throw e;
    }
  }

  /**
   * A lifecycle case about a crash, on a toolstack that ignores the crash action of a VM that has not
   * run long enough (XAPI's 120 s, ToolstackModel.crashShortRunMs): the guest crashes only once it
   * has run that long and a margin more, so that the setting under test decides.
   */
  private async waitOutShortRun(): Promise<void> {
    const short = this.ctx.model.crashShortRunMs;
    const run = this.ctx.timing.crashShortRun ?? (short === undefined ? 0 : short + CRASH_RUN_MARGIN_MS);
    if (!run || this.s.lifecycle === 'defaults' || this.s.action !== 'crash' || this.runningSince === undefined) return;
    const until = this.runningSince + run;
    if (Date.now() >= until) return;
    this.step(`letting the VM run ${fmtMs(run)} before it crashes (this toolstack ignores the crash action sooner)`);
    await bounded(new Promise((r) => setTimeout(r, until - Date.now())), until - Date.now() + 1000, 'waiting out the short run', this.ctx.signal);
  }

  private reexpect(at: number): void {
    const modelCtx: ModelContext = { ...this.hostContext(), ...(this.runningSince !== undefined ? { ranForMs: at - this.runningSince } : {}) };
    this.answer = this.ctx.model.expect(this.s, modelCtx);
  }

  /** What the model may ask of the host (HostFacts it has rules about). */
  private hostContext(): ModelContext {
    const r = this.ctx.facts?.refusesNonSuspendable;
    return r !== undefined ? { refusesNonSuspendable: r } : {};
  }

  /** Polls the state until it matches the expectation for `confirm` (unmodelled: is unchanged for `quiet`), or the bound. */
  private async observeUntilSettled(vm: VmRef, initialDomid: number | null): Promise<ObservedDomain> {
    const { driver, model, timing } = this.ctx;
    const expect = this.expect;
    // A Halted VM may yet be restarted by the toolstack (xl after 2 s, XAPI after up to 15 s): hold longer.
    const confirm = expect?.finalState === 'Halted' ? (timing.restartDelay ?? model.restartDelayMs) + timing.confirm : timing.confirm;
    const matchesExpect = (d: ObservedDomain): boolean =>
      !!expect &&
      d.powerState === expect.finalState &&
      domidChange(initialDomid, d.domid) === expect.domid &&
      (expect.shutdownReason === undefined || d.shutdownReason === expect.shutdownReason);
    // At the bound, the last state read is the observation, settled or not.
    const r = await poll(() => driver.state(vm), expect ? matchesExpect : () => true, {
      // A late guest acts after the call answered: give it that long on top.
      ...this.pollOpts<ObservedDomain>(timing.settle + guestDelayMs(this.delays), 'reading the state'),
      hold: { ms: expect ? confirm : timing.quiet, key: stateKey },
      // A read can fail while the toolstack is busy with the domain (xl list racing a destroy): try again.
      onRetry: (e) => this.step(`state read failed, retrying: ${errText(e)}`),
    });
    if (r.value !== undefined) return r.value;
    throw new StepError(`could not read the state within ${fmtMs(timing.settle)}: ${errText(r.lastError)}`);
  }

  /** The guest's account of the request: its report while its domain is there, else its console; or why it cannot be seen. */
  private async guestAccount(
    vm: VmRef,
    final: ObservedDomain,
    initialDomid: number | null,
    consoleMark: string | undefined,
  ): Promise<Pick<Observation, 'guestEvent' | 'guestEventUnseen'>> {
    const { driver, timing } = this.ctx;
    if (final.domid !== null && final.domid === initialDomid) {
      const report = await this.within(readReport(driver, vm), timing.evidence, 'reading the guest report');
      this.evidence.reportAfter = report;
      return { guestEvent: shutdownEventFromReport(report) };
    }
    if (consoleMark !== undefined) {
      const c = await this.within(readConsole(driver, vm), timing.evidence, 'reading the console').catch(() => null);
      if (c) return { guestEvent: shutdownEventFromConsole(c.text, consoleMark) };
    }
    const guestEventUnseen = !this.hasConsole
      ? "its domain is gone and this host keeps no console log (the toolstack's answer and state are the evidence)"
      : consoleMark === undefined
        ? "its domain is gone and its console log showed none of the agent's lines before the request"
        : 'its domain is gone and its console log could not be read';
    return { guestEventUnseen };
  }

  // ---- Step 4: evidence ----

  /**
   * This case's part of the guest's console and the toolstack's log since the case began. A read
   * that fails is no evidence, not an error. (The guest's reports are kept as the steps read them.)
   */
  private async collectEvidence(vm: VmRef): Promise<void> {
    const { driver, timing } = this.ctx;
    if (this.hasConsole) {
      const c = await bounded(readConsole(driver, vm), timing.evidence, 'console').catch(() => null);
      if (c) {
        this.evidence.console = textAfter(c.text, this.consoleStart).split('\n').slice(-40).join('\n');
        if (c.path) this.evidence.consolePath = c.path;
      }
    }
    if (driver.toolstackLog) {
      const l = await bounded(driver.toolstackLog(vm, this.t0), timing.evidence, 'toolstack log').catch(() => null);
      if (l) this.evidence.toolstackLog = l.split('\n').slice(-60).join('\n');
    }
  }

  // ---- Step 5: clean up ----

  /** Removes the VM (once the calls that make a domain have ended) and checks that it is gone. */
  private async cleanUp(vm: VmRef): Promise<void> {
    const { driver, timing, registry } = this.ctx;
    this.step('cleaning up');
    if (this.creating.size > 0) {
      await bounded(Promise.all(this.creating), timing.cleanup, 'calls that make a domain, still running').catch(() => undefined);
    }
    try {
      await bounded(destroyVm(driver, vm, timing.cleanup), timing.cleanup, `cleaning up ${vm.name}`);
      registry.remove(vm);
      const owned = await poll(
        () => driver.listOwned(),
        () => true,
        this.pollOpts(timing.evidence, 'listing owned VMs'),
      );
      if (!owned.done) this.errors.push(`could not check for leaks: ${errText(owned.lastError)}`);
      else if (owned.value!.some((v) => v.name === vm.name)) this.errors.push(`leak: ${vm.name} is still on the host after cleanup`);
    } catch (e) {
      this.errors.push(`cleanup failed, ${vm.name} may be left on the host: ${errText(e)}`);
    }
  }

  // ---- The result ----

  private result(): CaseResult {
    const s = this.s;
    const { verdict, summary, diffs } = judge({ answer: this.answer, observation: this.observation, errors: this.errors, problems: this.problems });
    this.step(`verdict ${verdict}`);
    return {
      name: s.name,
      toolstack: this.ctx.model.kind,
      scenario: s,
      verdict,
      summary,
      model: this.answer,
      expected: describeExpectation(this.answer),
      ...(this.observation ? { observation: this.observation } : {}),
      diffs,
      invariantProblems: this.problems,
      errors: this.errors,
      evidence: this.evidence,
      startedAt: new Date(this.t0).toISOString(),
      elapsedMs: Date.now() - this.t0,
    };
  }

  // ---- Helpers of every step ----

  private get expect(): Expectation | undefined {
    return this.answer.kind === 'expect' ? this.answer.expect : undefined;
  }

  /** Records a step in the evidence (time relative to the case's start) and reports it as progress. */
  private step(what: string): void {
    this.evidence.steps.push(`+${((Date.now() - this.t0) / 1000).toFixed(1)}s ${what}`);
    this.ctx.progress(what);
  }

  /** A host call, bounded; `creates`: the call makes a domain, and the cleanup waits for it (see `creating`). */
  private within<T>(p: Promise<T>, ms: number, what: string, creates = false): Promise<T> {
    if (creates) {
      const settled: Promise<unknown> = p
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => this.creating.delete(settled));
      this.creating.add(settled);
    }
    return bounded(p, ms, what, this.ctx.signal);
  }

  private async request(vm: VmRef, req: HostRequest, ms: number): Promise<void> {
    // These make a domain: a call cut short by the bound may still make one, which cleanup waits for.
    await this.within(
      this.ctx.driver.request(vm, req, { timeoutMs: ms }),
      ms + 5_000,
      `${req}`,
      req === 'resume' || req === 'hard_reboot' || req === 'migrate',
    );
  }

  private pollOpts<T>(timeoutMs: number, what: string): PollOptions<T> {
    const { timing, signal } = this.ctx;
    return { timeoutMs, minMs: timing.pollMin, maxMs: timing.pollMax, signal, what };
  }
}

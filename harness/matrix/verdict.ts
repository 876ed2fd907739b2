// Verdicts, in XTF's way: a fixed order, a meaning for each, the worst wins.
// Also the comparison of what the model expected with what was observed, the
// invariants checked on every case whatever the model says, and a case's
// verdict from all of these (pure: the runner only records).
import type { DomainInfo, PowerState, XenstoredDomain } from '../toolstack/driver.ts';
import type { DomidChange, DurationClass, Expectation, GuestExpectation, ModelAnswer } from './model.ts';
import type { GuestShutdownEvent } from './guest-report.ts';
import { ackKindOf } from './guest-report.ts';

/** Best to worst. */
export const VERDICTS = ['pass', 'skip', 'unmodelled', 'error', 'fail'] as const;
export type Verdict = (typeof VERDICTS)[number];

export const VERDICT_MEANING: Record<Verdict, string> = {
  pass: 'the toolstack and the guest did what the model says, and every invariant held',
  skip: 'not run, for a reason of configuration (impossible, meaningless, or equivalent to another case)',
  unmodelled: 'run and recorded; the model makes no claim about this case',
  error: 'the harness or the environment failed (VM did not boot, host unreachable, no result): says nothing about the toolstack',
  fail: 'the toolstack or the guest behaved differently from the model, or an invariant was broken',
};

export function verdictRank(v: Verdict): number {
  return VERDICTS.indexOf(v);
}

/** The worst of several verdicts; nothing at all is an error (a case that reports nothing). */
export function worst(verdicts: Iterable<Verdict>): Verdict {
  let w: Verdict | null = null;
  for (const v of verdicts) if (w === null || verdictRank(v) > verdictRank(w)) w = v;
  return w ?? 'error';
}

/** The call's observed answer. */
export type ObservedResult =
  | { kind: 'ok' }
  | { kind: 'error'; code: string; message: string }
  /** The toolstack did not answer within the harness's bound. */
  | { kind: 'timeout'; message: string };

/** Xen's view as the driver reports it; `paused` when the driver knows Xen's paused flag. */
export type ObservedDomain = DomainInfo & { paused?: boolean };

export interface Observation {
  result: ObservedResult;
  durationMs: number;
  durationClass: DurationClass;
  initialDomid: number | null;
  final: ObservedDomain;
  domid: DomidChange;
  /** control/shutdown as dom0 read it after the call; undefined when it could not be read (no domain). */
  controlShutdown?: string | null;
  /** The guest's account of the request; null: it reports none; undefined: not observable (domain gone, no console). */
  guestEvent?: GuestShutdownEvent | null;
  /** Why guestEvent is undefined, when it is. */
  guestEventUnseen?: string;
}

export function domidChange(before: number | null, after: number | null): DomidChange {
  if (after === null) return 'none';
  return before === after ? 'same' : 'new';
}

export interface DurationBounds {
  /** Calls shorter than this are fast. */
  fastMaxMs: number;
  /** Calls at least this long hit the total timeout; between the two, an ack timeout. */
  totalMinMs: number;
  /** A call expected to wait out the toolstack's restart delay: at least this long (and below totalMinMs) is 'delayed'. */
  delayedMinMs?: number;
}

/**
 * A call's duration class. Time alone cannot tell a restart delay (15 s and
 * a rebuild) from a fast call or an ack timeout on a loaded host, so
 * 'delayed' is only given when the model expects it (`expected`) and the
 * call took at least the delay without reaching the total timeout.
 */
export function durationClassOf(ms: number, b: DurationBounds, expected?: DurationClass): DurationClass {
  if (expected === 'delayed' && b.delayedMinMs !== undefined && ms >= b.delayedMinMs && ms < b.totalMinMs) return 'delayed';
  if (ms < b.fastMaxMs) return 'fast';
  if (ms < b.totalMinMs) return 'ack-timeout';
  return 'total-timeout';
}

/** One field where expectation and observation differ. */
export interface FieldDiff {
  field: string;
  expected: string;
  observed: string;
}

function showResult(r: Expectation['result'] | ObservedResult): string {
  if (r.kind === 'ok') return 'ok';
  if (r.kind === 'timeout') return 'no answer within the bound';
  return `error ${r.code ?? '(any code)'}`;
}

const show = (v: string | null | undefined): string => (v === undefined ? '(not read)' : v === null ? '(absent)' : JSON.stringify(v));

/** Model vs observation, field by field. */
export function compare(e: Expectation, o: Observation): FieldDiff[] {
  const d: FieldDiff[] = [];
  const resultOk =
    e.result.kind === 'ok' ? o.result.kind === 'ok' : o.result.kind === 'error' && (e.result.code === undefined || e.result.code === o.result.code);
  if (!resultOk) d.push({ field: 'result', expected: showResult(e.result), observed: showResult(o.result) });
  if (e.finalState !== o.final.powerState) d.push({ field: 'power state', expected: e.finalState, observed: o.final.powerState });
  if (e.domid !== o.domid) d.push({ field: 'domid', expected: e.domid, observed: `${o.domid} (${o.initialDomid ?? '-'} -> ${o.final.domid ?? '-'})` });
  if (e.shutdownReason !== undefined && e.shutdownReason !== o.final.shutdownReason) {
    d.push({ field: 'shutdown reason', expected: e.shutdownReason, observed: o.final.shutdownReason ?? '(none)' });
  }
  if (e.controlShutdown !== undefined && o.controlShutdown !== undefined && e.controlShutdown !== o.controlShutdown) {
    d.push({ field: 'control/shutdown', expected: show(e.controlShutdown), observed: show(o.controlShutdown) });
  }
  // A success cannot have waited out an ack timeout (the toolstack answers that with its error), so a
  // success slower than 90 % of the ack timeout is a slow host, not another outcome: it matters where
  // hosts shorten the timeout (a tuned xenopsd.conf) and run slowly (an emulated host under load).
  // Likewise a success that waited for a late guest ('delayed': the guest acked or acted just inside a
  // window) and then took the host's time to finish (a reboot's new domain, a suspend's image under
  // emulation) past the mark of a total timeout: the toolstack would have answered a timeout with its error.
  const slowSuccess =
    e.result.kind === 'ok' &&
    o.result.kind === 'ok' &&
    ((e.duration === 'fast' && o.durationClass === 'ack-timeout') ||
      (e.duration === 'delayed' && (o.durationClass === 'ack-timeout' || o.durationClass === 'total-timeout')));
  if (e.duration !== o.durationClass && !slowSuccess)
    d.push({ field: 'duration', expected: e.duration, observed: `${o.durationClass} (${(o.durationMs / 1000).toFixed(1)} s)` });
  return d;
}

/** A readable diff: one "- expected / + observed" pair per field. */
export function renderDiff(diffs: readonly FieldDiff[]): string {
  if (diffs.length === 0) return '(no difference)';
  const w = Math.max(...diffs.map((x) => x.field.length));
  return diffs.map((x) => `${x.field.padEnd(w)}  - expected ${x.expected}\n${' '.repeat(w)}  + observed ${x.observed}`).join('\n');
}

/** What a case recorded, as the verdict needs it. */
export interface CaseOutcome {
  /** The model's answer, as last asked (rules that depend on how long the VM had run are asked again). */
  answer: ModelAnswer;
  /** Undefined: the case did not get as far as observing. */
  observation: Observation | undefined;
  /** Harness or environment failures. */
  errors: readonly string[];
  /** Broken invariants. */
  problems: readonly string[];
}

export interface Judgement {
  verdict: Verdict;
  /** One line: why this verdict. */
  summary: string;
  diffs: FieldDiff[];
}

/**
 * A case's verdict: the worst of what it recorded (an error, a broken
 * invariant, a difference from the model), else pass, or unmodelled where the
 * model makes no claim. The summary names the first reason, in that order.
 */
export function judge(o: CaseOutcome): Judgement {
  const { answer, observation, errors, problems } = o;
  const expect = answer.kind === 'expect' ? answer.expect : undefined;
  const diffs = expect && observation ? compare(expect, observation) : [];
  const verdicts: Verdict[] = [];
  if (errors.length > 0) verdicts.push('error');
  if (problems.length > 0) verdicts.push('fail');
  if (diffs.length > 0) verdicts.push('fail');
  if (observation && errors.length === 0) verdicts.push(expect ? 'pass' : 'unmodelled');
  const verdict = worst(verdicts);
  const summary =
    errors[0] ??
    (diffs.length > 0 ? renderDiff(diffs).split('\n').slice(0, 2).join(' / ').replace(/\s+/g, ' ') : undefined) ??
    problems[0] ??
    (verdict === 'unmodelled' ? unmodelledSummary(answer, observation) : 'as the model says');
  return { verdict, summary, diffs };
}

/** What was observed, and why the model makes no claim. */
function unmodelledSummary(answer: ModelAnswer, observation: Observation | undefined): string {
  const seen = observation
    ? `${observation.result.kind === 'error' ? observation.result.code : observation.result.kind}; ${observation.final.powerState}`
    : 'nothing';
  return `observed ${seen}; ${answer.kind === 'unmodelled' ? answer.reason : ''}`;
}

/**
 * The toolstack's power state agrees with the hypervisor's view: a domain
 * exists exactly when the VM is Running or Paused (or a domain left shut
 * down: a self-suspended xl domain, Suspended; one kept by on_*=preserve,
 * Halted with its reason), Xen's paused flag matches Paused, and a shut-down
 * domain is not reported as running.
 */
export function stateInvariant(d: ObservedDomain): string[] {
  const p: string[] = [];
  const has = d.domid !== null;
  const live: PowerState[] = ['Running', 'Paused'];
  if (live.includes(d.powerState)) {
    if (!has) p.push(`toolstack says ${d.powerState} but no domain exists`);
    if (d.shutdownReason) p.push(`toolstack says ${d.powerState} but Xen says the domain is shut down (${d.shutdownReason})`);
  } else if (d.powerState === 'Halted') {
    if (has && !d.shutdownReason) p.push(`toolstack says Halted but domain ${d.domid} exists and is not shut down`);
  } else if (d.powerState === 'Suspended') {
    if (has && d.shutdownReason !== 'suspend')
      p.push(`toolstack says Suspended but domain ${d.domid} exists and is not suspended (${d.shutdownReason ?? 'running'})`);
  }
  if (d.paused !== undefined && d.paused !== (d.powerState === 'Paused')) {
    p.push(`Xen's paused flag is ${d.paused} but the toolstack says ${d.powerState}`);
  }
  return p;
}

/**
 * The toolstack's account of the VM agrees with xenstored's list of domains,
 * which the toolstack under test does not give (read in dom0 with
 * xenstore-list; ToolstackDriver.xenstoredDomains): the domain it names has a
 * home there under the VM's domain name (`name`, the one the toolstack gave
 * it, as xenstored showed it during the case), and no other home carries
 * that name. Both toolstacks make the home with the domain and remove it with
 * it (libxl libxl__domain_make / devices_destroy_cb; xenopsd domain.ml make /
 * destroy), and xenstored never removes it on its own: a domain the
 * toolstack forgot, or one it reports that is not there, shows here.
 */
export function xenstoredInvariant(d: ObservedDomain, name: string, view: readonly XenstoredDomain[]): string[] {
  const p: string[] = [];
  if (d.domid !== null) {
    const home = view.find((x) => x.domid === d.domid);
    if (!home) p.push(`toolstack says ${d.powerState} with domain ${d.domid} but xenstored holds no /local/domain/${d.domid}`);
    else if (home.name !== name)
      p.push(
        `toolstack says domain ${d.domid}, which xenstored names ${home.name === null ? '(no name)' : JSON.stringify(home.name)}, not ${JSON.stringify(name)}`,
      );
  }
  for (const x of view)
    if (x.name === name && x.domid !== d.domid)
      p.push(
        `xenstored holds domain ${x.domid} named ${JSON.stringify(name)}, which the toolstack does not report (it says ${d.powerState}${d.domid !== null ? ` with domain ${d.domid}` : ''})`,
      );
  return p;
}

/**
 * The guest's account agrees with what it was told: it received what the
 * toolstack writes for this request (or nothing, for requests that do not go
 * through it), acknowledged as its command said, and did the command's action.
 */
export function guestInvariant(g: GuestExpectation, ev: GuestShutdownEvent | null | undefined): string[] {
  if (ev === undefined) return [];
  const p: string[] = [];
  if (g.received === null) {
    if (ev !== null) p.push(`guest received ${JSON.stringify(ev.received)} on control/shutdown, but this request writes nothing there`);
    return p;
  }
  if (ev === null) return [`guest reports no control/shutdown event, but the toolstack should have written ${JSON.stringify(g.received)}`];
  if (ev.received !== g.received) p.push(`guest received ${JSON.stringify(ev.received)}, the toolstack should write ${JSON.stringify(g.received)}`);
  const ack = ackKindOf(ev);
  if (g.ack !== null && ack !== g.ack) p.push(`guest acknowledged with ${ack}, its command said ${g.ack}`);
  if (g.action !== null && ev.action !== g.action) p.push(`guest did ${ev.action || '(nothing)'}, its command said ${g.action}`);
  return p;
}

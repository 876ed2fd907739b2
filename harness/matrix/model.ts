// What a model of a toolstack says about a case, and the small rule engine
// both models share. A model is an ordered table of rules; the first rule
// whose pattern matches the case gives the expectation, with its basis (a
// toolstack source file and function, or "inferred"). A case no rule covers
// is `unmodelled`: its observed outcome is recorded and nothing is claimed.
import type { DomainType, HostRequest, PowerState, ToolstackKind, ToolstackTimeouts } from '../toolstack/driver.ts';
import {
  type Case,
  BOGUS_ACK_VALUE,
  GUEST_VISIBLE_REQUESTS,
  shutdownWordOf,
  type AckKind,
  type CaseFeatures,
  type CaseLifecycle,
  type CaseTiming,
  type GuestAction,
  type InitialState,
  type MatrixRequest,
  type Scenario,
} from './scenarios.ts';

/**
 * How long the toolstack's call takes: at once; after the toolstack's restart
 * delay (XAPI: 15 s, then the rebuild), but before any ack timeout would have
 * told; one ack timeout (30 to 60 s by default); or the total timeout (~20 min).
 */
export const DURATION_CLASSES = ['fast', 'delayed', 'ack-timeout', 'total-timeout'] as const;
export type DurationClass = (typeof DURATION_CLASSES)[number];

/**
 * What is known about a case only once it has run, and that a rule may
 * depend on: how long the VM had been running when the guest acted (or the
 * request was made). XAPI treats a domain that dies in its first 120 s
 * differently. Absent: the case has not run (e.g. `xtv run --list`); rules
 * then answer for the common case, a VM that acts within seconds of starting.
 * And what the host offers where rules depend on it (HostFacts; absent: the
 * toolstack's current line).
 */
export interface ModelContext {
  ranForMs?: number;
  /** HostFacts.refusesNonSuspendable: the host refuses to suspend a guest that says why it cannot. */
  refusesNonSuspendable?: boolean;
}

/** The call's answer. `code` absent on an error: any ToolstackError (xl exits 1 for every failure). */
export type ExpectedResult = { kind: 'ok' } | { kind: 'error'; code?: string };

/** The domain after the case compared with the one before: same domid, a new one, or none at all. */
export type DomidChange = 'same' | 'new' | 'none';

/** What the guest reports, derived from what the case told it (the same for every toolstack). */
export interface GuestExpectation {
  /** The word it found in control/shutdown; null when the toolstack writes nothing. */
  received: 'poweroff' | 'reboot' | 'suspend' | null;
  /** How it acknowledged that request; null when there was none. */
  ack: AckKind | null;
  /** What it did; null when it had no reason to act. */
  action: GuestAction | null;
}

export interface Expectation {
  result: ExpectedResult;
  finalState: PowerState;
  domid: DomidChange;
  /** Xen's shutdown reason of a domain left shut down but not destroyed (xl: a self-suspended domain). */
  shutdownReason?: string;
  /** What dom0 reads in control/shutdown afterwards, when the domain is still there: a string, null for
   *  absent; undefined = no claim. */
  controlShutdown?: string | null;
  guest: GuestExpectation;
  duration: DurationClass;
  /** Where each part of the rule comes from. */
  basis: string[];
}

export type ModelAnswer = { kind: 'expect'; expect: Expectation; rule: string } | { kind: 'unmodelled'; reason: string };

/** The VM actions each model assumes; the runner installs VMs with exactly these (in the toolstack's spelling). */
export interface ModelActions {
  afterShutdown: string;
  afterReboot: string;
  afterCrash: string;
}

/** Which of ModelActions each lifecycle event's setting is. */
export const ACTION_FIELD = { poweroff: 'afterShutdown', reboot: 'afterReboot', crash: 'afterCrash' } as const;

/** A lifecycle the toolstack cannot be set to, and why (the case is skipped on it). */
export interface UnsupportedLifecycle {
  unsupported: string;
}

export interface ToolstackModel {
  kind: ToolstackKind;
  /** The actions of a `defaults` case: the ones the model's plain rules assume. */
  actions: ModelActions;
  /** The actions a case of this lifecycle installs on a VM of this type, in the toolstack's spelling, or why it cannot. */
  lifecycleActionsOf(l: CaseLifecycle, domainType?: DomainType): ModelActions | UnsupportedLifecycle;
  /**
   * The ack timeout of one request on a host with these timeouts (absent:
   * the toolstack's defaults): a call shorter than (most of) it did not wait
   * for one. XAPI: 60 s for shutdown and reboot, 30 s for suspend, tunable per host.
   */
  ackTimeoutMsOf(request: HostRequest | 'no_request', timeouts?: ToolstackTimeouts): number;
  /**
   * The window that follows a prompt ack, on a host with these timeouts: how
   * long the toolstack waits for the domain to shut down or suspend before it
   * gives up (the act-inside / act-late cases straddle it). XAPI: the total
   * timeouts; xl: libxl's 60 s wait for the suspend, and for shutdown and
   * reboot, which return at the ack, the same 60 s as a yardstick.
   */
  actTimeoutMsOf(request: HostRequest | 'no_request', timeouts?: ToolstackTimeouts): number;
  /**
   * How long a VM must have run for its crash to follow the crash action at all (XAPI: 120 s, sooner
   * it is shut down whatever the action); absent: no such rule. A lifecycle case about a crash lets the
   * guest run that long first, so that the setting, not this rule, decides.
   */
  crashShortRunMs?: number;
  /**
   * The initial states from which the toolstack starts a live migration (and so reaches Xen's log-dirty
   * mode, which a host may lack for a domain type: HostFacts.cannotMigrate); from the others it refuses first.
   */
  migratesFrom: readonly ('running' | 'paused')[];
  /** The longest the toolstack waits before restarting a domain; a Halted result is confirmed for longer than this. */
  restartDelayMs: number;
  /** Each rule's id, for tests and the report. */
  rules: readonly Rule[];
  expect(s: Scenario, ctx?: ModelContext): ModelAnswer;
}

/**
 * A rule's pattern: each listed dimension must contain the case's value; an
 * absent one matches all, except `timing`: a rule that names no timing is
 * about prompt guests only, so the timing cases never fall into rules written
 * before they existed.
 */
export interface Pattern {
  initial?: readonly InitialState[];
  request?: readonly MatrixRequest[];
  ack?: readonly AckKind[];
  action?: readonly GuestAction[];
  timing?: readonly CaseTiming[];
  /** As timing: absent, only a guest that advertises everything (`all`). */
  features?: readonly CaseFeatures[];
  /** As timing: absent, only the model's own actions (`defaults`). */
  lifecycle?: readonly CaseLifecycle[];
}

/** What a rule says, before the parts common to every rule (guest expectation) are added. */
export interface Outcome {
  result: ExpectedResult;
  finalState: PowerState;
  domid: DomidChange;
  duration: DurationClass;
  shutdownReason?: string;
  /** 'word': the request word is left in control/shutdown; 'bogus': the bogus ack value; '' or null as is. */
  controlShutdown?: 'word' | 'bogus' | '' | null;
  /** What the guest sees, when the toolstack keeps the request from it (refused before writing it); absent: guestExpectation. */
  guest?: GuestExpectation;
  basis: string[];
}

export interface Rule {
  id: string;
  when: Pattern;
  then: Outcome | ((s: Scenario, ctx: ModelContext) => Outcome | { unmodelled: string }) | { unmodelled: string };
}

export function matches(p: Pattern, s: Scenario): boolean {
  return (
    (!p.initial || p.initial.includes(s.initial)) &&
    (!p.request || p.request.includes(s.request)) &&
    (!p.ack || p.ack.includes(s.ack)) &&
    (!p.action || p.action.includes(s.action)) &&
    (p.timing ? p.timing.includes(s.timing) : s.timing === 'prompt') &&
    (p.features ? p.features.includes(s.features) : s.features === 'all') &&
    (p.lifecycle ? p.lifecycle.includes(s.lifecycle) : s.lifecycle === 'defaults')
  );
}

/** The guest's part, from what the case tells it; the agent's contract, not a toolstack's. */
export function guestExpectation(s: Scenario): GuestExpectation {
  if (s.initial !== 'running') return { received: null, ack: null, action: null };
  if (s.request === 'no_request') return { received: null, ack: null, action: s.action };
  if (GUEST_VISIBLE_REQUESTS.includes(s.request)) return { received: shutdownWordOf(s.request), ack: s.ack, action: s.action };
  return { received: null, ack: null, action: null };
}

function resolveControl(c: Outcome['controlShutdown'], s: Scenario): string | null | undefined {
  if (c === 'word') return shutdownWordOf(s.request);
  if (c === 'bogus') return BOGUS_ACK_VALUE;
  return c;
}

export function evaluate(rules: readonly Rule[], s: Scenario, ctx: ModelContext = {}): ModelAnswer {
  for (const r of rules) {
    if (!matches(r.when, s)) continue;
    const o = typeof r.then === 'function' ? r.then(s, ctx) : r.then;
    if ('unmodelled' in o) return { kind: 'unmodelled', reason: o.unmodelled };
    const expect: Expectation = {
      result: o.result,
      finalState: o.finalState,
      domid: o.domid,
      guest: o.guest ?? guestExpectation(s),
      duration: o.duration,
      basis: o.basis,
    };
    if (o.shutdownReason !== undefined) expect.shutdownReason = o.shutdownReason;
    const cs = resolveControl(o.controlShutdown, s);
    if (cs !== undefined) expect.controlShutdown = cs;
    return { kind: 'expect', expect, rule: r.id };
  }
  return { kind: 'unmodelled', reason: 'no rule of this model covers the case' };
}

/**
 * What the same case says with a prompt guest that advertises everything,
 * on a VM with the model's own actions (timing 'prompt', features 'all',
 * lifecycle 'defaults'), as a rule's Outcome: for the rules whose answer is
 * "as the plain case, later", "as the plain case: the flag is not read" or
 * "as the plain case: the setting is not consulted". `duration` replaces the plain case's; `basis`
 * goes before its basis.
 */
export function asPlainCase(
  rules: readonly Rule[],
  s: Scenario,
  ctx: ModelContext,
  duration: DurationClass | undefined,
  basis: string[],
): Outcome | { unmodelled: string } {
  const plain = evaluate(rules, { ...s, timing: 'prompt', features: 'all', lifecycle: 'defaults' }, ctx);
  if (plain.kind === 'unmodelled') return { unmodelled: plain.reason };
  const e = plain.expect;
  return {
    result: e.result,
    finalState: e.finalState,
    domid: e.domid,
    ...(e.shutdownReason !== undefined ? { shutdownReason: e.shutdownReason } : {}),
    duration: duration ?? e.duration,
    basis: [...basis, ...e.basis],
  };
}

/**
 * The case as this toolstack runs it: skipped, with the model's reason, when its lifecycle is one the
 * toolstack cannot be set to (XAPI has no `preserve` after a poweroff). The matrix stays the same for
 * every toolstack; only this says no.
 */
export function caseFor(model: ToolstackModel, c: Case, domainType?: DomainType): Case {
  if (!c.run) return c;
  const a = model.lifecycleActionsOf(c.scenario.lifecycle, domainType);
  return 'unsupported' in a ? { scenario: c.scenario, run: false, skipReason: a.unsupported } : c;
}

/** One line for --list and the report: "ok; Halted; domid none; fast". */
export function describeExpectation(a: ModelAnswer): string {
  if (a.kind === 'unmodelled') return `unmodelled (${a.reason})`;
  const e = a.expect;
  const res = e.result.kind === 'ok' ? 'ok' : `error ${e.result.code ?? '(any)'}`;
  const extra = [
    e.shutdownReason ? `shut down (${e.shutdownReason})` : '',
    e.controlShutdown !== undefined ? `control/shutdown=${e.controlShutdown === null ? 'absent' : JSON.stringify(e.controlShutdown)}` : '',
  ].filter(Boolean);
  return [res, e.finalState, `domid ${e.domid}`, e.duration, ...extra].join('; ');
}

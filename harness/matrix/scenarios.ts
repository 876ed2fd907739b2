// The scenario matrix as data: every case the harness knows, with one stable
// name used everywhere (VM name suffix, log file, report cell, --filter).
//
// Dimensions: initial state × host request × ack × guest action, and, for the
// requests that go through the guest, the timing of its ack or action against
// the toolstack's windows (CASE_TIMINGS), what it advertises (CASE_FEATURES),
// and what the toolstack is set to do after the guest's own shutdown
// (CASE_LIFECYCLES). Cases that cannot be run, or that would only repeat
// another case, are kept in the list as skipped with the reason, so the
// report shows the whole matrix and the reader can see why a cell is empty.
import { HOST_REQUESTS, type PowerState } from '../toolstack/driver.ts';

export const INITIAL_STATES = ['running', 'paused', 'suspended', 'halted'] as const;
export type InitialState = (typeof INITIAL_STATES)[number];

/** The host requests, plus `no_request`: the guest acts at once on its own
 *  (testing message with when=now), which is how each toolstack's reaction
 *  to an unrequested shutdown is observed. */
export const MATRIX_REQUESTS = [...HOST_REQUESTS, 'no_request'] as const;
export type MatrixRequest = (typeof MATRIX_REQUESTS)[number];

/** How the guest acknowledges the next control/shutdown request. */
export const ACK_KINDS = ['ok', 'none', 'delete', 'bogus'] as const;
export type AckKind = (typeof ACK_KINDS)[number];
/** The string a `bogus` ack writes into control/shutdown. Not "" and not a request word. */
export const BOGUS_ACK_VALUE = 'xtv-bogus-ack';

export const GUEST_ACTIONS = ['poweroff', 'reboot', 'halt', 'crash', 'suspend', 'ignore'] as const;
export type GuestAction = (typeof GUEST_ACTIONS)[number];

/**
 * When the guest acknowledges or acts, against the toolstack's windows on the
 * host at hand (the model's ackTimeoutMsOf and actTimeoutMsOf, read from the
 * host's declared timeouts; case-run.ts caseDelays turns them into ms):
 * `prompt` at once; `ack-inside` just before the ack window closes, `ack-late`
 * just after; `act-inside` / `act-late` likewise for the action after a prompt
 * ack, against the window that follows the ack.
 */
export const CASE_TIMINGS = ['prompt', 'ack-inside', 'ack-late', 'act-inside', 'act-late'] as const;
export type CaseTiming = (typeof CASE_TIMINGS)[number];

/**
 * What the guest advertises before the request (#16; a capabilities message,
 * protocol/control.ts): `all` as Linux does (feature-poweroff, -reboot,
 * -suspend = 1); `no-feature-X` with control/feature-X = 0 (the guest says it
 * cannot); `cant-suspend` with data/cant_suspend_reason set beside
 * feature-suspend. Who reads which: docs/toolstack-behaviour.md#guest-features.
 */
export const CASE_FEATURES = ['all', 'no-feature-poweroff', 'no-feature-reboot', 'no-feature-suspend', 'cant-suspend'] as const;
export type CaseFeatures = (typeof CASE_FEATURES)[number];

/** Each request that reaches the guest, and the flag that says the guest can take it. */
export const FEATURE_OF_REQUEST: Readonly<Record<'clean_shutdown' | 'clean_reboot' | 'suspend', CaseFeatures>> = {
  clean_shutdown: 'no-feature-poweroff',
  clean_reboot: 'no-feature-reboot',
  suspend: 'no-feature-suspend',
};

/**
 * What the toolstack is told to do after the guest's own poweroff, reboot or
 * crash (#16 step 4): xl's on_poweroff / on_reboot / on_crash, XAPI's
 * actions_after_shutdown / _reboot / _crash. `defaults` installs each model's
 * own set (ToolstackModel.actions); every other value changes one of the
 * three, named in xl's spelling (`on-crash-rename-restart`); the model says
 * how its toolstack spells it, or why it cannot (lifecycleActionsOf).
 */
export const LIFECYCLE_ACTIONS = ['destroy', 'restart', 'rename-restart', 'preserve', 'coredump-destroy', 'coredump-restart'] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];
/** The guest's own shutdowns an action can follow, as xl names the setting. */
export const LIFECYCLE_EVENTS = ['poweroff', 'reboot', 'crash'] as const;
export type LifecycleEvent = (typeof LIFECYCLE_EVENTS)[number];

export const CASE_LIFECYCLES = [
  'defaults',
  'on-poweroff-restart',
  'on-poweroff-preserve',
  'on-reboot-destroy',
  'on-reboot-preserve',
  'on-crash-restart',
  'on-crash-destroy',
  'on-crash-preserve',
  'on-crash-rename-restart',
  'on-crash-coredump-destroy',
  'on-crash-coredump-restart',
] as const;
export type CaseLifecycle = (typeof CASE_LIFECYCLES)[number];
export type LifecycleSetting = Exclude<CaseLifecycle, 'defaults'>;
/** Every lifecycle but `defaults`: the cases of this dimension. */
export const LIFECYCLE_SETTINGS = CASE_LIFECYCLES.filter((l): l is LifecycleSetting => l !== 'defaults');

/** The event and the action a lifecycle other than `defaults` sets. */
export function lifecycleSetting(l: LifecycleSetting): { event: LifecycleEvent; action: LifecycleAction } {
  const m = /^on-(poweroff|reboot|crash)-(.+)$/.exec(l)!;
  return { event: m[1] as LifecycleEvent, action: m[2] as LifecycleAction };
}

/** The reason a cant-suspend case's guest gives (written to data/cant_suspend_reason). */
export const CANT_SUSPEND_REASON = 'xtv: this guest says it cannot suspend';

export interface Scenario {
  /** e.g. running.clean_shutdown.ack-none.poweroff, running.clean_shutdown.ack-ok-late.poweroff, running.suspend.cant-suspend.ack-ok.suspend,
   *  running.no_request.on-crash-preserve.ack-ok.crash */
  name: string;
  initial: InitialState;
  request: MatrixRequest;
  ack: AckKind;
  action: GuestAction;
  timing: CaseTiming;
  features: CaseFeatures;
  lifecycle: CaseLifecycle;
}

export type Case = { scenario: Scenario; run: true } | { scenario: Scenario; run: false; skipReason: string; equivalentTo?: string };

/** The name part a timing adds to the ack or the action it delays: "-inside", "-late", or nothing. */
function timingSuffix(timing: CaseTiming, part: 'ack' | 'act'): string {
  if (!timing.startsWith(`${part}-`)) return '';
  return timing === `${part}-inside` ? '-inside' : '-late';
}

export function caseName(
  initial: InitialState,
  request: MatrixRequest,
  ack: AckKind,
  action: GuestAction,
  timing: CaseTiming = 'prompt',
  features: CaseFeatures = 'all',
  lifecycle: CaseLifecycle = 'defaults',
): string {
  const f = features === 'all' ? '' : `.${features}`;
  const l = lifecycle === 'defaults' ? '' : `.${lifecycle}`;
  return `${initial}.${request}${f}${l}.ack-${ack}${timingSuffix(timing, 'ack')}.${action}${timingSuffix(timing, 'act')}`;
}

/** The action each guest-visible request asks for: what a timing case has the guest do. */
export const NATURAL_ACTION: Readonly<Record<'clean_shutdown' | 'clean_reboot' | 'suspend', GuestAction>> = {
  clean_shutdown: 'poweroff',
  clean_reboot: 'reboot',
  suspend: 'suspend',
};

export function powerStateOf(initial: InitialState): PowerState {
  return (initial.charAt(0).toUpperCase() + initial.slice(1)) as PowerState;
}

/** Requests the toolstack passes to the guest through control/shutdown. */
export const GUEST_VISIBLE_REQUESTS: readonly MatrixRequest[] = ['clean_shutdown', 'clean_reboot', 'suspend', 'migrate'];

/** The guest-visible requests crossed with the timing and feature dimensions (#16); migrate (#17) is not, yet. */
export const TIMED_REQUESTS = ['clean_shutdown', 'clean_reboot', 'suspend'] as const satisfies readonly MatrixRequest[];

/** The word a guest-visible request writes into control/shutdown. */
export function shutdownWordOf(request: MatrixRequest): 'poweroff' | 'reboot' | 'suspend' | null {
  switch (request) {
    case 'clean_shutdown':
      return 'poweroff';
    case 'clean_reboot':
      return 'reboot';
    case 'suspend':
    case 'migrate':
      return 'suspend';
    default:
      return null;
  }
}

/** The case run in place of all the ack/action variants of a (state, request)
 *  pair in which the guest's ack and action can play no part. `ignore` keeps
 *  the guest passive, so anything it reports receiving is the toolstack's doing. */
export const REPRESENTATIVE_ACK: AckKind = 'ok';
export const REPRESENTATIVE_ACTION: GuestAction = 'ignore';

const WHY_NO_GUEST: Record<Exclude<InitialState, 'running'>, string> = {
  paused: 'the guest cannot acknowledge or act while Paused (its vCPUs do not run)',
  suspended: 'the guest cannot acknowledge or act while Suspended (no domain exists)',
  halted: 'the guest cannot acknowledge or act while Halted (no domain exists)',
};

/** Classifies one combination; pure, so the list is the same for every toolstack. */
export function classify(s: Scenario): Case {
  const rep = caseName(s.initial, s.request, REPRESENTATIVE_ACK, REPRESENTATIVE_ACTION);
  const isRep = s.ack === REPRESENTATIVE_ACK && s.action === REPRESENTATIVE_ACTION;
  if (s.request === 'no_request') {
    if (s.initial !== 'running') return { scenario: s, run: false, skipReason: `${WHY_NO_GUEST[s.initial]}, so it cannot act on its own` };
    if (s.action === 'ignore') return { scenario: s, run: false, skipReason: 'meaningless: no request and the guest does nothing' };
    if (s.ack !== REPRESENTATIVE_ACK) {
      const eq = caseName(s.initial, s.request, REPRESENTATIVE_ACK, s.action);
      return { scenario: s, run: false, skipReason: `equivalent to ${eq}: with no request there is nothing to acknowledge`, equivalentTo: eq };
    }
    return { scenario: s, run: true };
  }
  if (s.initial !== 'running') {
    if (isRep) return { scenario: s, run: true };
    return { scenario: s, run: false, skipReason: `equivalent to ${rep}: ${WHY_NO_GUEST[s.initial]}`, equivalentTo: rep };
  }
  if (!GUEST_VISIBLE_REQUESTS.includes(s.request)) {
    if (isRep) return { scenario: s, run: true };
    return {
      scenario: s,
      run: false,
      skipReason: `equivalent to ${rep}: ${s.request} does not go through the guest, so its ack and action are never used`,
      equivalentTo: rep,
    };
  }
  return { scenario: s, run: true };
}

/**
 * Every combination, in a stable order (state, request, ack, action), then
 * the timing cases: each guest-visible request of a running VM, acknowledged
 * `ok` and followed by its own action, at each timing; then the feature
 * cases, the same with a guest that advertises less; then the lifecycle
 * cases. Only these: the ack's form and another action are the other
 * dimensions' business, and all need a guest that runs.
 */
export function allCases(): Case[] {
  const out: Case[] = [];
  for (const initial of INITIAL_STATES)
    for (const request of MATRIX_REQUESTS)
      for (const ack of ACK_KINDS)
        for (const action of GUEST_ACTIONS)
          out.push(
            classify({
              name: caseName(initial, request, ack, action),
              initial,
              request,
              ack,
              action,
              timing: 'prompt',
              features: 'all',
              lifecycle: 'defaults',
            }),
          );
  const timed = (request: (typeof TIMED_REQUESTS)[number], timing: CaseTiming, features: CaseFeatures): Case => {
    const action = NATURAL_ACTION[request];
    return {
      scenario: {
        name: caseName('running', request, 'ok', action, timing, features),
        initial: 'running',
        request,
        ack: 'ok',
        action,
        timing,
        features,
        lifecycle: 'defaults',
      },
      run: true,
    };
  };
  for (const request of TIMED_REQUESTS) for (const timing of CASE_TIMINGS.filter((t) => t !== 'prompt')) out.push(timed(request, timing, 'all'));
  // Features: each request against a guest without its flag, and suspend with a reason not to.
  for (const request of TIMED_REQUESTS) out.push(timed(request, 'prompt', FEATURE_OF_REQUEST[request]));
  out.push(timed('suspend', 'prompt', 'cant-suspend'));
  // Lifecycle actions: each setting against the guest's own shutdown of its kind, and, for poweroff and
  // reboot, against the request that asks the guest for it (acknowledged, then done): whether the
  // toolstack applies the setting to a shutdown it asked for is where xl and XAPI part.
  for (const lifecycle of LIFECYCLE_SETTINGS) {
    const { event } = lifecycleSetting(lifecycle);
    const request = LIFECYCLE_REQUEST[event];
    for (const r of request ? (['no_request', request] as const) : (['no_request'] as const))
      out.push({
        scenario: {
          name: caseName('running', r, 'ok', event, 'prompt', 'all', lifecycle),
          initial: 'running',
          request: r,
          ack: 'ok',
          action: event,
          timing: 'prompt',
          features: 'all',
          lifecycle,
        },
        run: true,
      });
  }
  return out;
}

/** The request that asks the guest for each lifecycle event (a crash is never asked for). */
const LIFECYCLE_REQUEST: Readonly<Record<LifecycleEvent, MatrixRequest | null>> = { poweroff: 'clean_shutdown', reboot: 'clean_reboot', crash: null };

/**
 * The smoke matrix: fast, informative cases whose outcome differs between
 * toolstacks or guards a basic path. None may cost XAPI's 20-minute total
 * timeout (a unit test checks this against both models); one costs an ack
 * timeout (60 s) because that path is the point of the test VM.
 */
export const SMOKE_CASES: readonly string[] = [
  'running.clean_shutdown.ack-ok.poweroff', // the baseline
  'running.clean_reboot.ack-ok.reboot',
  'running.clean_shutdown.ack-ok.reboot', // XAPI: Halted; xl: the daemon restarts it
  'running.clean_shutdown.ack-delete.poweroff', // deleting the node is an ack
  'running.suspend.ack-ok.suspend',
  'suspended.resume.ack-ok.ignore',
  'running.pause.ack-ok.ignore',
  'paused.unpause.ack-ok.ignore',
  'running.hard_shutdown.ack-ok.ignore',
  'halted.clean_shutdown.ack-ok.ignore', // refused at once
  'running.no_request.ack-ok.suspend', // XAPI: Halted; xl: stays suspended
  'running.no_request.ack-ok.crash',
  'running.clean_shutdown.ack-none.ignore', // the one ack-timeout case
];

export const MATRICES = ['smoke', 'full'] as const;
export type MatrixName = (typeof MATRICES)[number];

/** The cases of a matrix. `full` lists skipped ones too; `smoke` only runnable ones. */
export function matrixCases(matrix: MatrixName): Case[] {
  const all = allCases();
  if (matrix === 'full') return all;
  const byName = new Map(all.map((c) => [c.scenario.name, c]));
  return SMOKE_CASES.map((n) => {
    const c = byName.get(n);
    if (!c) throw new Error(`smoke matrix names an unknown case: ${n}`);
    return c;
  });
}

/** Turns a glob (`*`, `?`) into an anchored regular expression. */
function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * --filter: comma-separated patterns; a case matches if any pattern does. A
 * pattern with `*` or `?` is a glob over the whole name; a case's whole name
 * is that case only (running.suspend.ack-ok.suspend is not also its timing
 * variants, running.suspend.ack-ok.suspend-late, which take minutes);
 * anything else a substring.
 */
export function makeFilter(pattern: string | undefined): (name: string) => boolean {
  if (pattern === undefined || pattern.trim() === '') return () => true;
  const known = new Set(allCases().map((c) => c.scenario.name));
  const tests = pattern
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      if (/[*?]/.test(p)) {
        const re = globToRegExp(p);
        return (n: string) => re.test(n);
      }
      if (known.has(p)) return (n: string) => n === p;
      return (n: string) => n.includes(p);
    });
  return (name) => tests.some((t) => t(name));
}

export function findCase(name: string): Case | undefined {
  return allCases().find((c) => c.scenario.name === name);
}

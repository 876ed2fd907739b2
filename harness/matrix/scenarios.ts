// The scenario matrix as data: every case the harness knows, with one stable
// name used everywhere (VM name suffix, log file, report cell, --filter).
//
// Dimensions: initial state × host request × ack × guest action. Cases that
// cannot be run, or that would only repeat another case, are kept in the list
// as skipped with the reason, so the report shows the whole matrix and the
// reader can see why a cell is empty.
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

export interface Scenario {
  /** e.g. running.clean_shutdown.ack-none.poweroff */
  name: string;
  initial: InitialState;
  request: MatrixRequest;
  ack: AckKind;
  action: GuestAction;
}

export type Case = { scenario: Scenario; run: true } | { scenario: Scenario; run: false; skipReason: string; equivalentTo?: string };

export function caseName(initial: InitialState, request: MatrixRequest, ack: AckKind, action: GuestAction): string {
  return `${initial}.${request}.ack-${ack}.${action}`;
}

export function powerStateOf(initial: InitialState): PowerState {
  return (initial.charAt(0).toUpperCase() + initial.slice(1)) as PowerState;
}

/** Requests the toolstack passes to the guest through control/shutdown. */
export const GUEST_VISIBLE_REQUESTS: readonly MatrixRequest[] = ['clean_shutdown', 'clean_reboot', 'suspend'];

/** The word a guest-visible request writes into control/shutdown. */
export function shutdownWordOf(request: MatrixRequest): 'poweroff' | 'reboot' | 'suspend' | null {
  switch (request) {
    case 'clean_shutdown':
      return 'poweroff';
    case 'clean_reboot':
      return 'reboot';
    case 'suspend':
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

/** Every combination, in a stable order (state, request, ack, action). */
export function allCases(): Case[] {
  const out: Case[] = [];
  for (const initial of INITIAL_STATES)
    for (const request of MATRIX_REQUESTS)
      for (const ack of ACK_KINDS)
        for (const action of GUEST_ACTIONS) out.push(classify({ name: caseName(initial, request, ack, action), initial, request, ack, action }));
  return out;
}

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
 * pattern with `*` or `?` is a glob over the whole name, otherwise a substring.
 */
export function makeFilter(pattern: string | undefined): (name: string) => boolean {
  if (pattern === undefined || pattern.trim() === '') return () => true;
  const tests = pattern
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      if (/[*?]/.test(p)) {
        const re = globToRegExp(p);
        return (n: string) => re.test(n);
      }
      return (n: string) => n.includes(p);
    });
  return (name) => tests.some((t) => t(name));
}

export function findCase(name: string): Case | undefined {
  return allCases().find((c) => c.scenario.name === name);
}

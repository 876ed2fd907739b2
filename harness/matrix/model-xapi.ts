// The model of XAPI (xapi + xenopsd) with the blank template's VM actions
// (actions_after_shutdown destroy, after_reboot restart, after_crash restart).
// Facts and their sources: /work/shared/toolstack-behaviour.md, section XAPI.
// Rules are tried in order; the first match wins.
import { evaluate, type Outcome, type Rule, type ToolstackModel } from './model.ts';
import type { GuestAction } from './scenarios.ts';

const B = {
  states: 'xapi ocaml/xapi/xapi_vm_lifecycle.ml allowed_power_states (clean_*/suspend/pause: Running; hard_reboot: Paused, Running; hard_shutdown: Paused, Suspended, Running; unpause: Paused; resume: Suspended)',
  ack: 'xenopsd ocaml/xenopsd/xc/domain.ml Domain.shutdown_wait_for_ack (PV/PVH must ack; ack = value "" or node gone; any other string is no ack)',
  shutdownWrite: 'xenopsd xc/domain.ml Domain.shutdown (writes poweroff/reboot/suspend to control/shutdown)',
  ackTimeout: 'xapi ocaml/xapi/xapi_globs.ml domain_shutdown_ack_timeout = 60 s -> VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT, request left in control/shutdown',
  suspendAckTimeout: 'xapi_globs.ml vm_suspend_ack_timeout = 30 s -> VM_FAILED_SUSPEND_ACKNOWLEDGMENT',
  totalTimeout: 'xapi_globs.ml domain_shutdown_total_timeout = 1200 s -> VM_SHUTDOWN_TIMEOUT',
  suspendTimeout: 'xapi_globs.ml vm_suspend_timeout = 1200 s -> VM_SUSPEND_TIMEOUT',
  anyReason: 'xenopsd waits only for the domain to shut down, not for the reason: clean_shutdown ends Halted, clean_reboot Running (new domid)',
  clearedIsAck: 'xenopsd: a node removed at domain shutdown counts as the ack (Domain.shutdown_wait_for_ack)',
  checkState: 'xenopsd VM_check_state: poweroff -> actions_after_shutdown, reboot -> actions_after_reboot, crash -> actions_after_crash',
  crash120: 'xenopsd VM_check_state: restart after a crash within 120 s of start becomes shutdown',
  selfSuspend: 'xenopsd VM_check_state: a domain that suspends unasked is shut down ("unexpectedly suspended"), no image',
  halt: 'Xen has no halt shutdown code: a halt is a poweroff (xen/include/public/sched.h SHUTDOWN_*)',
  template: 'blank template defaults: actions_after_shutdown destroy, after_reboot restart, after_crash restart',
  suspendWrongReason: 'inferred: the save fails ("Domain has not been suspended", INTERNAL_ERROR), then the actual reason\'s action applies',
} as const;

const ACKED = ['ok', 'delete'] as const;
const NO_ACK = ['none', 'bogus'] as const;
const SHUTDOWNS: readonly GuestAction[] = ['poweroff', 'halt', 'reboot', 'crash', 'suspend'];

const bad = (finalState: Outcome['finalState'], domid: Outcome['domid']): Outcome => ({
  result: { kind: 'error', code: 'VM_BAD_POWER_STATE' }, finalState, domid, duration: 'fast', basis: [B.states],
});

/** The guest acting on its own: what VM_check_state does with the template's actions. */
function ownAction(action: GuestAction): Outcome {
  switch (action) {
    case 'poweroff': case 'halt':
      return { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.checkState, B.template, B.halt] };
    case 'reboot':
      return { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.checkState, B.template] };
    case 'crash':
      return { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.checkState, B.template, B.crash120] };
    case 'suspend':
      return { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.selfSuspend] };
    case 'ignore':
      return { result: { kind: 'ok' }, finalState: 'Running', domid: 'same', duration: 'fast', basis: ['inferred: nothing happens'] };
  }
}

export const XAPI_RULES: readonly Rule[] = [
  // Power-state checks come first in xapi (check_operation_error).
  { id: 'halted-refuses-all', when: { initial: ['halted'] }, then: bad('Halted', 'none') },
  { id: 'suspended-resume', when: { initial: ['suspended'], request: ['resume'] }, then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.states] } },
  { id: 'suspended-hard-shutdown', when: { initial: ['suspended'], request: ['hard_shutdown'] }, then: { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.states] } },
  { id: 'suspended-refuses-others', when: { initial: ['suspended'] }, then: bad('Suspended', 'none') },
  { id: 'paused-unpause', when: { initial: ['paused'], request: ['unpause'] }, then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'same', duration: 'fast', basis: [B.states] } },
  { id: 'paused-hard-shutdown', when: { initial: ['paused'], request: ['hard_shutdown'] }, then: { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.states] } },
  { id: 'paused-hard-reboot', when: { initial: ['paused'], request: ['hard_reboot'] }, then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.states] } },
  { id: 'paused-refuses-others', when: { initial: ['paused'] }, then: bad('Paused', 'same') },
  { id: 'running-refuses-unpause-resume', when: { request: ['unpause', 'resume'] }, then: bad('Running', 'same') },
  { id: 'hard-shutdown', when: { request: ['hard_shutdown'] }, then: { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.states] } },
  { id: 'hard-reboot', when: { request: ['hard_reboot'] }, then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.states] } },
  { id: 'pause', when: { request: ['pause'] }, then: { result: { kind: 'ok' }, finalState: 'Paused', domid: 'same', duration: 'fast', basis: [B.states] } },

  // The guest acting on its own.
  { id: 'own-action', when: { request: ['no_request'] }, then: (s) => ownAction(s.action) },

  // clean_shutdown
  { id: 'clean-shutdown-acked-ignored', when: { request: ['clean_shutdown'], ack: ACKED, action: ['ignore'] },
    then: (s) => ({ result: { kind: 'error', code: 'VM_SHUTDOWN_TIMEOUT' }, finalState: 'Running', domid: 'same', duration: 'total-timeout', controlShutdown: s.ack === 'ok' ? '' : null, basis: [B.ack, B.totalTimeout] }) },
  { id: 'clean-shutdown-unacked-ignored', when: { request: ['clean_shutdown'], ack: NO_ACK, action: ['ignore'] },
    then: (s) => ({ result: { kind: 'error', code: 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT' }, finalState: 'Running', domid: 'same', duration: 'ack-timeout', controlShutdown: s.ack === 'none' ? 'word' : 'bogus', basis: [B.ack, B.ackTimeout] }) },
  { id: 'clean-shutdown-any-reason', when: { request: ['clean_shutdown'], action: SHUTDOWNS },
    then: (s) => ({ result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.shutdownWrite, B.anyReason, ...(s.ack === 'none' || s.ack === 'bogus' ? [B.clearedIsAck] : [])] }) },

  // clean_reboot
  { id: 'clean-reboot-acked-ignored', when: { request: ['clean_reboot'], ack: ACKED, action: ['ignore'] },
    then: (s) => ({ result: { kind: 'error', code: 'VM_SHUTDOWN_TIMEOUT' }, finalState: 'Running', domid: 'same', duration: 'total-timeout', controlShutdown: s.ack === 'ok' ? '' : null, basis: [B.ack, B.totalTimeout] }) },
  { id: 'clean-reboot-unacked-ignored', when: { request: ['clean_reboot'], ack: NO_ACK, action: ['ignore'] },
    then: (s) => ({ result: { kind: 'error', code: 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT' }, finalState: 'Running', domid: 'same', duration: 'ack-timeout', controlShutdown: s.ack === 'none' ? 'word' : 'bogus', basis: [B.ack, B.ackTimeout] }) },
  { id: 'clean-reboot-any-reason', when: { request: ['clean_reboot'], action: SHUTDOWNS },
    then: (s) => ({ result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.shutdownWrite, B.anyReason, ...(s.ack === 'none' || s.ack === 'bogus' ? [B.clearedIsAck, 'inferred: same rule as clean_shutdown'] : [])] }) },

  // suspend
  { id: 'suspend-acked-suspends', when: { request: ['suspend'], ack: ACKED, action: ['suspend'] },
    then: { result: { kind: 'ok' }, finalState: 'Suspended', domid: 'none', duration: 'fast', basis: [B.shutdownWrite, B.ack] } },
  { id: 'suspend-acked-ignored', when: { request: ['suspend'], ack: ACKED, action: ['ignore'] },
    then: { result: { kind: 'error', code: 'VM_SUSPEND_TIMEOUT' }, finalState: 'Running', domid: 'same', duration: 'total-timeout', basis: [B.ack, B.suspendTimeout] } },
  { id: 'suspend-unacked-ignored', when: { request: ['suspend'], ack: NO_ACK, action: ['ignore'] },
    then: (s) => ({ result: { kind: 'error', code: 'VM_FAILED_SUSPEND_ACKNOWLEDGMENT' }, finalState: 'Running', domid: 'same', duration: 'ack-timeout', controlShutdown: s.ack === 'none' ? 'word' : 'bogus', basis: [B.ack, B.suspendAckTimeout] }) },
  { id: 'suspend-acked-other-reason', when: { request: ['suspend'], ack: ACKED, action: ['poweroff', 'halt', 'reboot', 'crash'] },
    then: (s) => ({ ...ownAction(s.action), result: { kind: 'error', code: 'INTERNAL_ERROR' }, basis: [B.suspendWrongReason, ...ownAction(s.action).basis] }) },
  { id: 'suspend-unacked-acts', when: { request: ['suspend'], ack: NO_ACK },
    then: { unmodelled: 'suspend not acknowledged but the guest shuts down anyway: whether xenopsd sees the node vanish before VM_check_state acts is a race' } },
];

export const xapiModel: ToolstackModel = {
  kind: 'xapi',
  ackTimeoutMs: 30_000, // xapi_globs.ml vm_suspend_ack_timeout (shutdown: 60 s)
  // A clean reboot that took 28 s on a loaded host was classed ack-timeout with 30 s for every request.
  ackTimeoutMsOf: (request) => (request === 'suspend' ? 30_000 : 60_000), // vm_suspend_ack_timeout, domain_shutdown_ack_timeout
  restartDelayMs: 15_000, // xenopsd: a VM that ran less than 120 s restarts after 15 s
  actions: { afterShutdown: 'destroy', afterReboot: 'restart', afterCrash: 'restart' },
  rules: XAPI_RULES,
  expect: (s) => evaluate(XAPI_RULES, s),
};

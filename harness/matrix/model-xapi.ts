// The model of XAPI (xapi + xenopsd) with the blank template's VM actions
// (actions_after_shutdown destroy, after_reboot restart, after_crash restart).
// Facts and their sources: docs/toolstack-behaviour.md, per request (anchors
// below), and docs/xapi-behaviour.md in detail (xapi-project/xen-api, read at
// e2ee48d688 and at the tags it names). Short names below:
//   XS  = ocaml/xenopsd/lib/xenops_server.ml     XSX = ocaml/xenopsd/xc/xenops_server_xen.ml
//   DOM = ocaml/xenopsd/xc/domain.ml             CU  = ocaml/xenopsd/xc/cancel_utils.ml
//   LC  = ocaml/xapi/xapi_vm_lifecycle.ml
// Rules are tried in order; the first match wins.
import { ACTION_FIELD, asPlainCase, evaluate, type ModelActions, type ModelContext, type Outcome, type Rule, type ToolstackModel } from './model.ts';
import { LIFECYCLE_SETTINGS, lifecycleSetting, type GuestAction, type LifecycleAction, type LifecycleSetting, type Scenario } from './scenarios.ts';
import { XAPI_DEFAULT_TIMEOUTS } from '../toolstack/xapi/xapi-timeouts.ts';

// Each basis is summarised, with its upstream file and function, at the docs/toolstack-behaviour.md anchor after it.
const B = {
  states:
    'LC allowed_power_states (clean_*/suspend/pool_migrate/pause: Running; hard_reboot: Paused, Running; hard_shutdown: Paused, Suspended, Running; unpause: Paused; resume: Suspended)', // docs/toolstack-behaviour.md#power-states
  ack: 'DOM shutdown_wait_for_ack (PV/PVH must ack; ack = value "" or the node gone; any other string is no ack)', // docs/toolstack-behaviour.md#acknowledgement
  shutdownWrite: 'DOM shutdown (writes poweroff/reboot/suspend to control/shutdown, after removing the node)', // docs/toolstack-behaviour.md#acknowledgement
  ackTimeout: 'XS domain_shutdown_ack_timeout = 60 s (/etc/xenopsd.conf) -> VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT, request left in control/shutdown', // docs/toolstack-behaviour.md#timeouts
  suspendAckTimeout: 'ocaml/xenopsd/lib/xenopsd.ml vm_suspend_ack_timeout = 30 s (/etc/xenopsd.conf) -> VM_FAILED_SUSPEND_ACKNOWLEDGMENT', // docs/toolstack-behaviour.md#timeouts (a setting, vm-suspend-ack-timeout, only from v26.3.0)
  totalTimeout: 'ocaml/xapi/xapi_globs.ml domain_shutdown_total_timeout = 1200 s (/etc/xapi.conf) -> VM_SHUTDOWN_TIMEOUT', // docs/toolstack-behaviour.md#timeouts
  suspendTimeout: 'ocaml/xenopsd/lib/xenopsd.ml vm_suspend_timeout = 1200 s (/etc/xenopsd.conf) -> VM_SUSPEND_TIMEOUT', // docs/toolstack-behaviour.md#timeouts (a setting, vm-suspend-timeout, only from v26.3.0)
  anyReason:
    'XS VM_shutdown / VM_reboot wait for the domain to shut down, not for the reason (XSX ignores it): clean_shutdown ends Halted, clean_reboot Running (new domid)', // docs/toolstack-behaviour.md#clean_shutdown
  clearedIsAck: 'CU on_shutdown removes a non-empty control/shutdown when the domain shuts down, which DOM shutdown_wait_for_ack takes as the ack', // docs/toolstack-behaviour.md#acknowledgement
  checkState: 'XS VM_check_state: poweroff -> actions_after_shutdown, reboot -> actions_after_reboot, crash -> actions_after_crash', // docs/toolstack-behaviour.md#the-guest-acting-alone
  crashShort: 'XS VM_check_state: a crash less than 120 s after start turns restart into shutdown', // docs/toolstack-behaviour.md#guest-crash
  crashLong: 'XS VM_check_state: a crash 120 s or more after start follows actions_after_crash (restart)', // docs/toolstack-behaviour.md#guest-crash
  restartDelay: 'XS VM_check_state: a restart less than 120 s after start waits VM_delay 15 s first', // docs/toolstack-behaviour.md#guest-reboot
  selfSuspend: 'XS VM_check_state: a domain that suspends unasked is shut down ("unexpectedly suspended"), no image', // docs/toolstack-behaviour.md#guest-suspend
  halt: 'Xen has no halt shutdown code: a halt is a poweroff (xen/include/public/sched.h SHUTDOWN_*)', // docs/toolstack-behaviour.md#guest-halt
  template: 'blank template defaults: actions_after_shutdown destroy, after_reboot restart, after_crash restart', // docs/toolstack-behaviour.md#the-guest-acting-alone (the runner sets these; xe vm-create's crash default is destroy)
  pvFeatures:
    'LC check_op_for_feature: a PV or PVH guest counts as supporting every feature (has_definitely_booted_pv), so its control/feature-* flags are not read; xenopsd reads none (DOM shutdown_wait_for_ack)', // docs/toolstack-behaviour.md#guest-features
  nonSuspendable:
    'LC check_op_for_feature (from v25.24.0, commit c895469f54): suspend of a live VM whose guest has control/feature-suspend and data/cant_suspend_reason (ocaml/xapi/xapi_guest_agent.ml other: data-cant-suspend-reason) -> VM_NON_SUSPENDABLE [vm; reason], at call time, before the guest is asked', // docs/toolstack-behaviour.md#guest-features
  nonSuspendableOld: 'LC check_op_for_feature at v1.249.42: returns nothing for a PV VM, so data/cant_suspend_reason changes nothing', // docs/toolstack-behaviour.md#guest-features
  ackInside:
    "xtv: the guest acknowledges just before xenopsd's ack timeout (domain_shutdown_ack_timeout, vm_suspend_ack_timeout on this host), which DOM shutdown_wait_for_ack takes like a prompt one", // docs/toolstack-behaviour.md#timeouts
  actInside:
    'xtv: the guest acts just before the window after the ack closes (domain_shutdown_total_timeout, counted from the request; vm_suspend_timeout), so the call waits for it', // docs/toolstack-behaviour.md#timeouts
  lateAfterFailure: 'xtv: the guest acknowledges (or acts) after the call has failed, then does what it was asked, as a guest acting on its own would', // docs/toolstack-behaviour.md#the-guest-acting-alone
  actionMap:
    'ocaml/xapi/xapi_xenops.ml on_action_behaviour: destroy -> [Shutdown]; restart, rename_restart -> [Start]; coredump_and_destroy -> [Coredump; Shutdown]; coredump_and_restart -> [Coredump; Start]; preserve -> [Pause] (XS VM_check_state: Coredump does nothing, Pause is VM_pause: the domain is kept, the VM shows Paused)', // docs/toolstack-behaviour.md#lifecycle-actions
  crashShortAny: 'XS VM_check_state: a crash less than 120 s after start turns every Start of actions_after_crash into Shutdown (Pause stays)', // docs/toolstack-behaviour.md#guest-crash
  requestNotAction:
    "XS VM_shutdown / VM_reboot: a clean shutdown ends Halted and a clean reboot Running whatever the VM's actions_after_*; only VM_check_state (the guest acting alone) reads them", // docs/toolstack-behaviour.md#lifecycle-actions
  migrate:
    "ocaml/xapi/xapi_vm_migrate.ml pool_migrate allows the VM's own host (a localhost migration); XS VM_migrate asks the guest through XSX save, as VM.suspend does (same ack and suspend timeouts, same errors through ocaml/xapi/xapi_xenops.ml transform_xenops_exn), and XS VM_receive_memory makes the domain anew: Running, new domid", // docs/toolstack-behaviour.md#migrate
  suspendWrongReason:
    'XSX VM.save: the domain did not suspend ("Domain has not been suspended", INTERNAL_ERROR); VM_check_state runs the actual reason\'s action before the reply (XS)', // docs/toolstack-behaviour.md#suspend
} as const;

/** How close to xenopsd's 120 s the guest may act before the side of the rule it falls on is a guess. */
const RUN_TIME_MARGIN_MS = 10_000;
const SHORT_RUN_MS = 120_000;

/** Which side of xenopsd's 120 s a case fell on; unknown context: the common case, seconds after start. */
function ranFor(ctx: ModelContext): 'short' | 'long' | 'unsure' {
  if (ctx.ranForMs === undefined) return 'short';
  if (Math.abs(ctx.ranForMs - SHORT_RUN_MS) < RUN_TIME_MARGIN_MS) return 'unsure';
  return ctx.ranForMs < SHORT_RUN_MS ? 'short' : 'long';
}
const TOO_CLOSE = (ctx: ModelContext) => ({
  unmodelled: `the guest acted ${Math.round((ctx.ranForMs ?? 0) / 1000)} s after start, too close to xenopsd's 120 s rule to tell which side xenopsd saw`,
});

const ACKED = ['ok', 'delete'] as const;
const NO_ACK = ['none', 'bogus'] as const;
const SHUTDOWNS: readonly GuestAction[] = ['poweroff', 'halt', 'reboot', 'crash', 'suspend'];

const bad = (finalState: Outcome['finalState'], domid: Outcome['domid']): Outcome => ({
  result: { kind: 'error', code: 'VM_BAD_POWER_STATE' },
  finalState,
  domid,
  duration: 'fast',
  basis: [B.states],
});

/** Our spelling of an action in XAPI's (ocaml/idl/datamodel_vm.ml on_crash_behaviour). */
const XAPI_ACTION: Readonly<Record<LifecycleAction, string>> = {
  destroy: 'destroy',
  restart: 'restart',
  'rename-restart': 'rename_restart',
  preserve: 'preserve',
  'coredump-destroy': 'coredump_and_destroy',
  'coredump-restart': 'coredump_and_restart',
};
/** What actions_after_shutdown / _reboot take (on_normal_exit); actions_after_crash takes all six. */
const NORMAL_EXIT: readonly LifecycleAction[] = ['destroy', 'restart'];

/** What VM_check_state does after the guest's own shutdown of kind `event` with `action` set for it (xapi_xenops.ml on_action_behaviour). */
function lifecycleOutcome(event: 'poweroff' | 'reboot' | 'crash', action: LifecycleAction, ctx: ModelContext): Outcome | { unmodelled: string } {
  // Before the case has run (--list), the answer for what it will do: a lifecycle case's guest crashes
  // only after the VM has run past the 120 s (crashShortRunMs; case-run.ts waitOutShortRun).
  const run = ctx.ranForMs === undefined ? 'long' : ranFor(ctx);
  if (event === 'crash' && run === 'unsure') return TOO_CLOSE(ctx);
  const base = { result: { kind: 'ok' as const }, duration: 'fast' as const };
  if (action === 'preserve') return { ...base, finalState: 'Paused', domid: 'same', basis: [B.checkState, B.actionMap] };
  const starts = action === 'restart' || action === 'rename-restart' || action === 'coredump-restart';
  if (starts && event === 'crash' && run === 'short')
    return { ...base, finalState: 'Halted', domid: 'none', basis: [B.checkState, B.actionMap, B.crashShortAny] };
  if (starts)
    return {
      ...base,
      finalState: 'Running',
      domid: 'new',
      basis: [B.checkState, B.actionMap, ...(event === 'crash' ? [B.crashLong] : [B.restartDelay])],
    };
  return { ...base, finalState: 'Halted', domid: 'none', basis: [B.checkState, B.actionMap] };
}

/** The guest acting on its own: what VM_check_state does with the template's actions. */
function ownAction(action: GuestAction, ctx: ModelContext): Outcome | { unmodelled: string } {
  switch (action) {
    case 'poweroff':
    case 'halt':
      return { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.checkState, B.template, B.halt] };
    case 'reboot':
      return { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.checkState, B.template, B.restartDelay] };
    case 'crash': {
      const run = ranFor(ctx);
      if (run === 'unsure') return TOO_CLOSE(ctx);
      return run === 'short'
        ? { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.checkState, B.template, B.crashShort] }
        : { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.checkState, B.template, B.crashLong] };
    }
    case 'suspend':
      return { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.selfSuspend] };
    case 'ignore':
      return { result: { kind: 'ok' }, finalState: 'Running', domid: 'same', duration: 'fast', basis: ['inferred: nothing happens'] };
  }
}

/**
 * clean_shutdown and clean_reboot with a guest that ignores the request: the
 * same two rules for both (ids clean-shutdown-… / clean-reboot-…). Acked, the
 * call waits out the total timeout; not acked, the ack timeout, with the
 * request left in control/shutdown.
 */
function ignoredRules(request: 'clean_shutdown' | 'clean_reboot'): Rule[] {
  const id = request.replace('_', '-');
  return [
    {
      id: `${id}-acked-ignored`,
      when: { request: [request], ack: ACKED, action: ['ignore'] },
      then: (s) => ({
        result: { kind: 'error', code: 'VM_SHUTDOWN_TIMEOUT' },
        finalState: 'Running',
        domid: 'same',
        duration: 'total-timeout',
        controlShutdown: s.ack === 'ok' ? '' : null,
        basis: [B.ack, B.totalTimeout],
      }),
    },
    {
      id: `${id}-unacked-ignored`,
      when: { request: [request], ack: NO_ACK, action: ['ignore'] },
      then: (s) => ({
        result: { kind: 'error', code: 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT' },
        finalState: 'Running',
        domid: 'same',
        duration: 'ack-timeout',
        controlShutdown: s.ack === 'none' ? 'word' : 'bogus',
        basis: [B.ack, B.ackTimeout],
      }),
    },
  ];
}

export const XAPI_RULES: readonly Rule[] = [
  // Lifecycle actions (#16): read only when the guest acts alone; a request's own outcome wins.
  {
    id: 'lifecycle-own-shutdown',
    when: { lifecycle: LIFECYCLE_SETTINGS, request: ['no_request'] },
    then: (s, ctx) => {
      const { event, action } = lifecycleSetting(s.lifecycle as LifecycleSetting);
      return lifecycleOutcome(event, action, ctx);
    },
  },
  {
    id: 'lifecycle-requested',
    when: { lifecycle: LIFECYCLE_SETTINGS, request: ['clean_shutdown', 'clean_reboot'] },
    then: (s, ctx) => asPlainCase(XAPI_RULES, s, ctx, undefined, [B.requestNotAction]),
  },
  // Power-state checks come first in xapi (check_operation_error; docs/toolstack-behaviour.md#power-states).
  { id: 'halted-refuses-all', when: { initial: ['halted'] }, then: bad('Halted', 'none') },
  {
    id: 'suspended-resume',
    when: { initial: ['suspended'], request: ['resume'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.states] },
  },
  {
    id: 'suspended-hard-shutdown',
    when: { initial: ['suspended'], request: ['hard_shutdown'] },
    then: { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.states] },
  },
  { id: 'suspended-refuses-others', when: { initial: ['suspended'] }, then: bad('Suspended', 'none') },
  {
    id: 'paused-unpause',
    when: { initial: ['paused'], request: ['unpause'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'same', duration: 'fast', basis: [B.states] },
  },
  {
    id: 'paused-hard-shutdown',
    when: { initial: ['paused'], request: ['hard_shutdown'] },
    then: { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.states] },
  },
  {
    id: 'paused-hard-reboot',
    when: { initial: ['paused'], request: ['hard_reboot'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.states] },
  },
  { id: 'paused-refuses-others', when: { initial: ['paused'] }, then: bad('Paused', 'same') },
  { id: 'running-refuses-unpause-resume', when: { request: ['unpause', 'resume'] }, then: bad('Running', 'same') },
  {
    id: 'hard-shutdown',
    when: { request: ['hard_shutdown'] },
    then: { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.states] },
  },
  {
    id: 'hard-reboot',
    when: { request: ['hard_reboot'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.states] },
  },
  { id: 'pause', when: { request: ['pause'] }, then: { result: { kind: 'ok' }, finalState: 'Paused', domid: 'same', duration: 'fast', basis: [B.states] } },

  // The guest acting on its own.
  { id: 'own-action', when: { request: ['no_request'] }, then: (s, ctx) => ownAction(s.action, ctx) },

  // Features (#16).
  {
    id: 'features-pv-implicit',
    when: { features: ['no-feature-poweroff', 'no-feature-reboot', 'no-feature-suspend'] },
    then: (s, ctx) => asPrompt(s, ctx, [B.pvFeatures]),
  },
  {
    id: 'features-cant-suspend',
    when: { features: ['cant-suspend'] },
    then: (s, ctx) =>
      ctx.refusesNonSuspendable === false
        ? asPrompt(s, ctx, [B.nonSuspendableOld])
        : {
            result: { kind: 'error', code: 'VM_NON_SUSPENDABLE' },
            finalState: 'Running',
            domid: 'same',
            duration: 'fast',
            guest: { received: null, ack: null, action: null },
            basis: [B.nonSuspendable],
          },
  },
  // Timing (#16): the guest acks or acts at a time set against this host's windows (case-run.ts caseDelays).
  {
    id: 'timing-ack-inside',
    when: { timing: ['ack-inside'] },
    then: (s, ctx) => asPrompt(s, ctx, [s.request === 'suspend' ? B.suspendAckTimeout : B.ackTimeout, B.ackInside]),
  },
  {
    id: 'timing-act-inside',
    when: { timing: ['act-inside'] },
    then: (s, ctx) => asPrompt(s, ctx, [s.request === 'suspend' ? B.suspendTimeout : B.totalTimeout, B.actInside]),
  },
  {
    id: 'timing-ack-late',
    when: { timing: ['ack-late'] },
    then: (s, ctx) =>
      failedThenOwn(s, ctx, s.request === 'suspend' ? 'VM_FAILED_SUSPEND_ACKNOWLEDGMENT' : 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', 'ack-timeout', [
        B.ack,
        s.request === 'suspend' ? B.suspendAckTimeout : B.ackTimeout,
      ]),
  },
  {
    id: 'timing-act-late',
    when: { timing: ['act-late'] },
    then: (s, ctx) =>
      failedThenOwn(s, ctx, s.request === 'suspend' ? 'VM_SUSPEND_TIMEOUT' : 'VM_SHUTDOWN_TIMEOUT', 'total-timeout', [
        B.ack,
        s.request === 'suspend' ? B.suspendTimeout : B.totalTimeout,
      ]),
  },

  // clean_shutdown
  ...ignoredRules('clean_shutdown'),
  {
    id: 'clean-shutdown-any-reason',
    when: { request: ['clean_shutdown'], action: SHUTDOWNS },
    then: (s) => ({
      result: { kind: 'ok' },
      finalState: 'Halted',
      domid: 'none',
      duration: 'fast',
      basis: [B.shutdownWrite, B.anyReason, ...(s.ack === 'none' || s.ack === 'bogus' ? [B.clearedIsAck] : [])],
    }),
  },

  // clean_reboot
  ...ignoredRules('clean_reboot'),
  {
    id: 'clean-reboot-any-reason',
    when: { request: ['clean_reboot'], action: SHUTDOWNS },
    then: (s) => ({
      result: { kind: 'ok' },
      finalState: 'Running',
      domid: 'new',
      duration: 'fast',
      basis: [B.shutdownWrite, B.anyReason, ...(s.ack === 'none' || s.ack === 'bogus' ? [B.clearedIsAck, 'inferred: same rule as clean_shutdown'] : [])],
    }),
  },

  // suspend
  {
    id: 'suspend-acked-suspends',
    when: { request: ['suspend'], ack: ACKED, action: ['suspend'] },
    then: { result: { kind: 'ok' }, finalState: 'Suspended', domid: 'none', duration: 'fast', basis: [B.shutdownWrite, B.ack] },
  },
  {
    id: 'migrate-acked-suspends',
    when: { request: ['migrate'], ack: ACKED, action: ['suspend'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.migrate, B.shutdownWrite, B.ack] },
  },
  // From here on VM.pool_migrate fails as VM.suspend does, the VM left as the guest left it (XS trigger_cleanup_after_failure: VM_check_state only).
  {
    id: 'suspend-acked-ignored',
    when: { request: ['suspend', 'migrate'], ack: ACKED, action: ['ignore'] },
    then: (s) => ({
      result: { kind: 'error', code: 'VM_SUSPEND_TIMEOUT' },
      finalState: 'Running',
      domid: 'same',
      duration: 'total-timeout',
      basis: [...viaMigrate(s), B.ack, B.suspendTimeout],
    }),
  },
  {
    id: 'suspend-unacked-ignored',
    when: { request: ['suspend', 'migrate'], ack: NO_ACK, action: ['ignore'] },
    then: (s) => ({
      result: { kind: 'error', code: 'VM_FAILED_SUSPEND_ACKNOWLEDGMENT' },
      finalState: 'Running',
      domid: 'same',
      duration: 'ack-timeout',
      controlShutdown: s.ack === 'none' ? 'word' : 'bogus',
      basis: [...viaMigrate(s), B.ack, B.suspendAckTimeout],
    }),
  },
  {
    id: 'suspend-acked-other-reason',
    when: { request: ['suspend', 'migrate'], ack: ACKED, action: ['poweroff', 'halt', 'reboot', 'crash'] },
    then: (s, ctx) => {
      const own = ownAction(s.action, ctx);
      if ('unmodelled' in own) return own;
      // A restart the VM asked for in its first 120 s waits out VM_delay before the call can answer (docs/toolstack-behaviour.md#suspend).
      const delayed = own.finalState === 'Running' && own.domid === 'new' && ranFor(ctx) === 'short';
      return {
        ...own,
        result: { kind: 'error', code: 'INTERNAL_ERROR' },
        duration: delayed ? 'delayed' : 'fast',
        basis: [...viaMigrate(s), B.suspendWrongReason, ...own.basis],
      };
    },
  },
  {
    id: 'suspend-unacked-acts',
    when: { request: ['suspend', 'migrate'], ack: NO_ACK },
    then: { unmodelled: 'suspend not acknowledged but the guest shuts down anyway: whether xenopsd sees the node vanish before VM_check_state acts is a race' },
  },
];

/** A pool_migrate case's basis names the migration path before the suspend rules it shares. */
function viaMigrate(s: Scenario): string[] {
  return s.request === 'migrate' ? [B.migrate] : [];
}

/** A timing or feature case that ends as the plain one would (a timing case later: the call waits for the guest). */
function asPrompt(s: Scenario, ctx: ModelContext, basis: string[]): Outcome | { unmodelled: string } {
  return asPlainCase(XAPI_RULES, s, ctx, s.timing === 'prompt' ? undefined : 'delayed', basis);
}

/** A timing case whose call fails at the window, after which the guest acks and acts as it would on its own. */
function failedThenOwn(s: Scenario, ctx: ModelContext, code: string, duration: Outcome['duration'], basis: string[]): Outcome | { unmodelled: string } {
  const own = ownAction(s.action, ctx);
  if ('unmodelled' in own) return own;
  return { ...own, result: { kind: 'error', code }, duration, basis: [...basis, B.lateAfterFailure, ...own.basis] };
}

const XAPI_ACTIONS: ModelActions = { afterShutdown: 'destroy', afterReboot: 'restart', afterCrash: 'restart' };

export const xapiModel: ToolstackModel = {
  kind: 'xapi',
  // vm_suspend_ack_timeout for suspend, domain_shutdown_ack_timeout for the rest: each host's own
  // (/etc/xenopsd.conf), else xenopsd's defaults, 30 and 60 s (docs/toolstack-behaviour.md#timeouts).
  ackTimeoutMsOf: (request, t = XAPI_DEFAULT_TIMEOUTS) => (request === 'suspend' || request === 'migrate' ? t.suspendAckMs : t.shutdownAckMs),
  // After the ack: vm_suspend_timeout for suspend, domain_shutdown_total_timeout (from the request) for the rest.
  actTimeoutMsOf: (request, t = XAPI_DEFAULT_TIMEOUTS) => (request === 'suspend' || request === 'migrate' ? t.suspendTotalMs : t.shutdownTotalMs),
  // LC allowed_power_states: pool_migrate from Running only (a paused VM gets VM_BAD_POWER_STATE before xenopsd).
  migratesFrom: ['running'],
  restartDelayMs: 15_000, // XS VM_check_state: a VM that ran less than 120 s restarts after VM_delay 15 s (docs/toolstack-behaviour.md#guest-reboot)
  actions: XAPI_ACTIONS,
  lifecycleActionsOf: (l, domainType) => {
    if (l === 'defaults') return { ...XAPI_ACTIONS };
    const { event, action } = lifecycleSetting(l);
    if (event !== 'crash' && !NORMAL_EXIT.includes(action))
      return {
        unsupported: `XAPI's actions_after_${event === 'poweroff' ? 'shutdown' : 'reboot'} takes only destroy or restart (ocaml/idl/datamodel_vm.ml on_normal_exit)`,
      };
    // ocaml/xapi/xapi_vm_helpers.ml validate_actions_after_crash, at every VM.start (v1.249.42 and master):
    // the setter takes the value, the start refuses it with VALUE_NOT_SUPPORTED.
    if (action === 'rename-restart')
      return {
        unsupported:
          'XAPI refuses to start a VM with actions_after_crash rename_restart: VALUE_NOT_SUPPORTED, "option would leak a domain" (xapi_vm_helpers.ml validate_actions_after_crash)',
      };
    if ((action === 'coredump-destroy' || action === 'coredump-restart') && domainType !== undefined && domainType !== 'pv')
      return {
        unsupported: `XAPI refuses to start a ${domainType.toUpperCase()} VM with actions_after_crash ${XAPI_ACTION[action]}: VALUE_NOT_SUPPORTED, "cannot invoke a coredump of an HVM, PVH or PV-in-PVH domain" (xapi_vm_helpers.ml validate_actions_after_crash)`,
      };
    return { ...XAPI_ACTIONS, [ACTION_FIELD[event]]: XAPI_ACTION[action] };
  },
  /** xenopsd's 120 s: a crash sooner never restarts (XS VM_check_state, a literal). */
  crashShortRunMs: SHORT_RUN_MS,
  rules: XAPI_RULES,
  expect: (s, ctx) => evaluate(XAPI_RULES, s, ctx),
};

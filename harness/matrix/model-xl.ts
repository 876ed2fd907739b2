// The model of xl / libxl (Xen 4.17) with xl's default actions (on_poweroff
// destroy, on_reboot restart, on_crash destroy) and a domain created by a plain
// `xl create` (not -e, which turns the watcher off), so the xl daemon acts on
// every shutdown. Facts and their upstream sources: docs/toolstack-behaviour.md
// (per request, anchors below; line numbers in docs/xl-behaviour.md).
//
// What it assumes of the xl driver (harness/toolstack): clean_shutdown is
// `xl shutdown` and clean_reboot `xl reboot`, both WITHOUT -w (return after the
// ack); suspend is `xl save` to a file, resume `xl restore` of it;
// hard_shutdown is `xl destroy`; hard_reboot is destroy + create (xl has no
// hard reboot), and of a saved VM discards its save image; migrate is `xl
// migrate NAME localhost`; a domain shut down for `suspend` and not destroyed
// is reported as Suspended with its domid and shutdownReason "suspend".
// (harness/toolstack/xl/xl-driver.ts does exactly this.)
import { ACTION_FIELD, asPlainCase, evaluate, type ModelActions, type ModelContext, type Outcome, type Rule, type ToolstackModel } from './model.ts';
import { LIFECYCLE_SETTINGS, lifecycleSetting, type GuestAction, type LifecycleAction, type LifecycleSetting, type Scenario } from './scenarios.ts';

// Each basis is summarised, with its upstream file and function, at the docs/toolstack-behaviour.md anchor after it.
const B = {
  pvcontrol:
    'libxl tools/libs/light/libxl_domain.c libxl__domain_pvcontrol: writes poweroff/reboot, waits 60 s (a literal) for "" or node gone (pvcontrol_acked); no ack -> ERROR_TIMEDOUT -9, xl exits 1 (xl_vmcontrol.c shutdown_domain), node left as it is', // docs/toolstack-behaviour.md#clean_shutdown
  noSuchDomain: 'xl tools/xl/xl_utils.c find_domain: "NAME is an invalid domain identifier", exit 1', // docs/toolstack-behaviour.md#power-states
  daemon: 'xl tools/xl/xl_vmcontrol.c handle_domain_death: acts on the actual reason (on_poweroff/on_reboot/on_crash)', // docs/toolstack-behaviour.md#the-guest-acting-alone
  defaults: 'xl tools/xl/xl_parse.c parse_config_data defaults: on_poweroff destroy, on_reboot restart, on_crash destroy', // docs/toolstack-behaviour.md#the-guest-acting-alone
  selfSuspend:
    'xl tools/xl/xl_vmcontrol.c handle_domain_death: reason suspend logs "Domain has suspended." and the 4.17 daemon exits; the domain stays shut down (suspend)', // docs/toolstack-behaviour.md#guest-suspend
  halt: 'Xen has no halt shutdown code: a halt is a poweroff (xen/include/public/sched.h SHUTDOWN_*; the agent halts with poweroff -f)', // docs/toolstack-behaviour.md#guest-halt
  save: 'libxl tools/libs/light/libxl_dom_suspend.c: any value but "suspend" is the ack (domain_suspend_pvcontrol_acked); no ack in 60 s -> node reset to "", save fails; other shutdown reason -> error (suspend_common_wait_guest_check); no suspend within 60 s -> ERROR_GUEST_TIMEDOUT; xl save exits 1', // docs/toolstack-behaviour.md#suspend
  restore: 'xl tools/xl/xl_saverestore.c main_restore -> create_domain: the file xl save wrote becomes a new domain', // docs/toolstack-behaviour.md#resume
  noSave: 'xl driver (harness/toolstack/xl/xl-driver.ts requestScript): resume is xl restore of the save image; without one it fails', // docs/toolstack-behaviour.md#resume
  discard: 'xl driver (harness/toolstack/xl/xl-driver.ts requestScript): hard shutdown of a saved VM discards its save image', // docs/toolstack-behaviour.md#hard_shutdown
  destroy: 'xl tools/xl/xl_vmcontrol.c main_destroy -> libxl_domain_destroy', // docs/toolstack-behaviour.md#hard_shutdown
  pause: 'xl tools/xl/xl_vmcontrol.c main_pause / main_unpause -> libxl_domain_pause / unpause (xc_domain_pause/unpause)', // docs/toolstack-behaviour.md#pause
  hardReboot: 'xl has no hard reboot (tools/xl/xl_cmdtable.c: reboot -F is an ACPI reset for HVM only); the driver destroys and creates (new domid)', // docs/toolstack-behaviour.md#hard_reboot
  pausedNoAck: "inferred: a paused guest cannot ack, so libxl's 60 s ack wait runs out", // docs/toolstack-behaviour.md#acknowledgement
  unpauseRunning:
    "xl tools/xl/xl_vmcontrol.c main_unpause ignores libxl_domain_unpause's result and exits 0; Xen refuses (xen/common/domain.c domain_unpause_by_systemcontroller: -EINVAL), so nothing changes; checked on the embedded host (Xen 4.17, 2026-11-23)", // docs/toolstack-behaviour.md#unpause
  pauseTwice: 'xen/common/domain.c _domain_pause_by_systemcontroller counts controller pauses (up to 255), so a second pause succeeds', // docs/toolstack-behaviour.md#pause
  noFlags:
    'libxl tools/libs/light/libxl_create.c libxl__domain_make only creates control/feature-*; libxl_domain.c libxl__domain_pvcontrol_available reads no node (PV, PVH: always); nothing in libxl reads data/cant_suspend_reason', // docs/toolstack-behaviour.md#guest-features
  ackInside: "xtv: the guest acknowledges just before libxl's 60 s wait runs out, which libxl takes like a prompt ack", // docs/toolstack-behaviour.md#timeouts
  returnsAtAck:
    'libxl tools/libs/light/libxl_domain.c libxl__domain_pvcontrol: xl shutdown / xl reboot return once the request is acknowledged; nothing waits for the action, however late', // docs/toolstack-behaviour.md#clean_shutdown
  suspendWait:
    'libxl tools/libs/light/libxl_dom_suspend.c domain_suspend_common_wait_guest: after the ack, 60 s (a literal) for the domain to suspend; none -> "guest did not suspend, timed out", ERROR_GUEST_TIMEDOUT, xl save exits 1', // docs/toolstack-behaviour.md#suspend
  lateAfterFailure:
    'xtv: the guest acknowledges (or acts) after xl has given up, then does what it was asked; the xl daemon acts on it as on any shutdown of its own', // docs/toolstack-behaviour.md#the-guest-acting-alone
  nodeGone:
    "libxl tools/libs/light/libxl_domain.c devices_destroy_cb removes the domain's xenstore home when the daemon destroys it, and pvcontrol_acked takes the missing node as the ack", // docs/toolstack-behaviour.md#acknowledgement
  actionDestroy: 'xl tools/xl/xl_vmcontrol.c handle_domain_death: destroy -> libxl_domain_destroy; create_domain: the daemon exits', // docs/toolstack-behaviour.md#lifecycle-actions
  actionRestart:
    'xl tools/xl/xl_vmcontrol.c handle_domain_death: restart -> reload_domain_config, libxl_domain_destroy; create_domain: "Done. Rebooting now", sleep(2), the domain made again under its name (new domid)', // docs/toolstack-behaviour.md#lifecycle-actions
  actionRename:
    'xl tools/xl/xl_vmcontrol.c handle_domain_death: rename-restart -> DOMAIN_RESTART_RENAME; create_domain -> preserve_domain: libxl_domain_preserve renames the old domain (name + time suffix, new uuid) and keeps it shut down; a new domain is made under the name', // docs/toolstack-behaviour.md#lifecycle-actions
  actionPreserve: 'xl tools/xl/xl_vmcontrol.c handle_domain_death: preserve -> nothing; the domain stays shut down with its reason and the daemon exits', // docs/toolstack-behaviour.md#lifecycle-actions
  actionCoredump:
    'xl tools/xl/xl_vmcontrol.c handle_domain_death: coredump-* -> libxl_domain_core_dump to XEN_DUMP_DIR/NAME (a failed dump is logged and ignored), then destroy or restart', // docs/toolstack-behaviour.md#lifecycle-actions
  migrate:
    'xl tools/xl/xl_migrate.c migrate_domain: libxl_domain_suspend (live) into `ssh HOST xl migrate-receive`, which asks the guest to suspend as xl save does; once it has, the receiver makes the domain anew (new domid), the sender destroys the old one, exit 0', // docs/toolstack-behaviour.md#migrate
  migrateNoSuspend:
    'xl tools/xl/xl_migrate.c migrate_domain: ERROR_GUEST_TIMEDOUT -> "Migration failed, failed to suspend at sender.", exit 1, the domain left as it is; libxl tools/libs/light/libxl_stream_write.c libxl__xc_domain_save_done returns it when the guest did not acknowledge in 60 s (guest_responded 0; the node reset to "") or did not suspend in the 60 s after its ack', // docs/toolstack-behaviour.md#migrate
  migrateResume:
    'xl tools/xl/xl_migrate.c migrate_domain: any other failure (the guest shut down for another reason: ERROR_FAIL) -> "Migration failed, resuming at sender.", exit 1; libxl_domain_resume refuses a domain not shut down for suspend (tools/libs/guest/xg_resume.c modify_returncode)', // docs/toolstack-behaviour.md#migrate
  requestedAlike:
    "xl tools/xl/xl_vmcontrol.c handle_domain_death picks the action by Xen's shutdown reason only: a poweroff or reboot that xl shutdown / xl reboot asked for gets the same on_poweroff / on_reboot as one the guest chose", // docs/toolstack-behaviour.md#lifecycle-actions
} as const;

const ACKED = ['ok', 'delete'] as const;
const NO_ACK = ['none', 'bogus'] as const;
const ANY_ERROR = { kind: 'error' } as const;

/** What the xl daemon leaves after the guest's own shutdown of this kind. */
function daemonOutcome(action: GuestAction): Pick<Outcome, 'finalState' | 'domid' | 'shutdownReason' | 'basis'> {
  switch (action) {
    case 'poweroff':
    case 'halt':
      return { finalState: 'Halted', domid: 'none', basis: [B.daemon, B.defaults, B.halt] };
    case 'reboot':
      return { finalState: 'Running', domid: 'new', basis: [B.daemon, B.defaults] };
    case 'crash':
      return { finalState: 'Halted', domid: 'none', basis: [B.daemon, B.defaults] };
    case 'suspend':
      return { finalState: 'Suspended', domid: 'same', shutdownReason: 'suspend', basis: [B.selfSuspend] };
    case 'ignore':
      return { finalState: 'Running', domid: 'same', basis: ['inferred: nothing happens'] };
  }
}

/** What the xl daemon leaves when `action` is set for the guest's shutdown of kind `reason` (poweroff, reboot, crash). */
function lifecycleOutcome(reason: string, action: LifecycleAction): Pick<Outcome, 'finalState' | 'domid' | 'shutdownReason' | 'basis'> {
  switch (action) {
    case 'destroy':
      return { finalState: 'Halted', domid: 'none', basis: [B.actionDestroy] };
    case 'restart':
      return { finalState: 'Running', domid: 'new', basis: [B.actionRestart] };
    case 'rename-restart':
      return { finalState: 'Running', domid: 'new', basis: [B.actionRename] };
    case 'preserve':
      // The driver shows a domain shut down and kept as Halted with its domid and reason (xl-power-state.ts).
      return { finalState: 'Halted', domid: 'same', shutdownReason: reason, basis: [B.actionPreserve] };
    case 'coredump-destroy':
      return { finalState: 'Halted', domid: 'none', basis: [B.actionCoredump, B.actionDestroy] };
    case 'coredump-restart':
      return { finalState: 'Running', domid: 'new', basis: [B.actionCoredump, B.actionRestart] };
  }
}

const ok = (o: Pick<Outcome, 'finalState' | 'domid' | 'shutdownReason' | 'basis'>, extra: string[] = []): Outcome => ({
  result: { kind: 'ok' },
  duration: 'fast',
  ...o,
  basis: [...extra, ...o.basis],
});

/** A timing or feature case that ends as the plain one: the same outcome (later, with `duration`). */
function asPrompt(s: Scenario, ctx: ModelContext, duration: Outcome['duration'] | undefined, basis: string[]): Outcome | { unmodelled: string } {
  return asPlainCase(XL_RULES, s, ctx, duration, basis);
}

/** A timing case whose call fails (xl exits 1) at libxl's 60 s, after which the daemon acts on the guest's own late action. */
function failedThenDaemon(s: Scenario, basis: string[]): Outcome {
  return { ...daemonOutcome(s.action), result: ANY_ERROR, duration: 'ack-timeout', basis: [...basis, B.lateAfterFailure, ...daemonOutcome(s.action).basis] };
}

/** Acked libxl's "suspend" (any value but it), then did not suspend: the call fails after 60 s, the domain runs on, the node as the ack left it. */
const ackedNotSuspended =
  (basis: string[]) =>
  (s: Scenario): Outcome => ({
    result: ANY_ERROR,
    finalState: 'Running',
    domid: 'same',
    duration: 'ack-timeout',
    controlShutdown: s.ack === 'ok' ? '' : s.ack === 'delete' ? null : 'bogus',
    basis,
  });

/** xl migrate NAME localhost: the guest is asked as by xl save (the rules above); what differs is the end. */
const XL_MIGRATE_RULES: readonly Rule[] = [
  {
    id: 'migrate-acked-suspends',
    when: { request: ['migrate'], ack: ['ok', 'delete', 'bogus'], action: ['suspend'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.save, B.migrate] },
  },
  {
    id: 'migrate-acked-ignored',
    when: { request: ['migrate'], ack: ['ok', 'delete', 'bogus'], action: ['ignore'] },
    then: ackedNotSuspended([B.save, B.migrateNoSuspend]),
  },
  {
    id: 'migrate-unacked-ignored',
    when: { request: ['migrate'], ack: ['none'], action: ['ignore'] },
    then: { result: ANY_ERROR, finalState: 'Running', domid: 'same', duration: 'ack-timeout', controlShutdown: '', basis: [B.save, B.migrateNoSuspend] },
  },
  {
    id: 'migrate-acked-other-reason',
    when: { request: ['migrate'], ack: ['ok', 'delete', 'bogus'] },
    then: (s) => ({ ...ok(daemonOutcome(s.action), [B.save, B.migrateResume, 'inferred: the daemon acts on the actual reason']), result: ANY_ERROR }),
  },
  {
    id: 'migrate-unacked-acts',
    when: { request: ['migrate'], ack: ['none'] },
    then: { unmodelled: "xl migrate not acknowledged while the guest shuts down: libxl's ack wait and the domain's death race, as for xl save" },
  },
];

export const XL_RULES: readonly Rule[] = [
  // Lifecycle actions (#16): the daemon applies on_poweroff / on_reboot / on_crash to every shutdown
  // of that kind, whoever asked for it. (The cases: the guest's own shutdown, or one asked for and acked.)
  {
    id: 'lifecycle-action',
    when: { lifecycle: LIFECYCLE_SETTINGS, request: ['no_request', 'clean_shutdown', 'clean_reboot'], ack: ['ok'] },
    then: (s) => {
      const { event, action } = lifecycleSetting(s.lifecycle as LifecycleSetting);
      return ok(lifecycleOutcome(event, action), s.request === 'no_request' ? [B.daemon] : [B.pvcontrol, B.requestedAlike]);
    },
  },
  // Features (#16): libxl reads none of the guest's flags, nor data/cant_suspend_reason.
  {
    id: 'features-unread',
    when: { features: ['no-feature-poweroff', 'no-feature-reboot', 'no-feature-suspend', 'cant-suspend'] },
    then: (s, ctx) => asPrompt(s, ctx, undefined, [B.noFlags]),
  },
  // Timing (#16): the guest acks or acts at a time set against libxl's 60 s (case-run.ts caseDelays).
  {
    id: 'timing-ack-inside',
    when: { timing: ['ack-inside'] },
    then: (s, ctx) => asPrompt(s, ctx, 'delayed', [s.request === 'suspend' ? B.save : B.pvcontrol, B.ackInside]),
  },
  { id: 'timing-ack-late', when: { timing: ['ack-late'] }, then: (s) => failedThenDaemon(s, [s.request === 'suspend' ? B.save : B.pvcontrol]) },
  { id: 'timing-save-act-inside', when: { request: ['suspend'], timing: ['act-inside'] }, then: (s, ctx) => asPrompt(s, ctx, 'delayed', [B.suspendWait]) },
  { id: 'timing-save-act-late', when: { request: ['suspend'], timing: ['act-late'] }, then: (s) => failedThenDaemon(s, [B.suspendWait]) },
  {
    id: 'timing-clean-act-later',
    when: { request: ['clean_shutdown', 'clean_reboot'], timing: ['act-inside', 'act-late'] },
    then: (s, ctx) => asPrompt(s, ctx, 'fast', [B.returnsAtAck]),
  },

  // No domain: xl has nothing to talk to.
  {
    id: 'halted-resume',
    when: { initial: ['halted'], request: ['resume'] },
    then: { result: ANY_ERROR, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.noSave] },
  },
  {
    id: 'halted-refuses-all',
    when: { initial: ['halted'] },
    then: { result: ANY_ERROR, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.noSuchDomain] },
  },
  {
    id: 'suspended-resume',
    when: { initial: ['suspended'], request: ['resume'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.restore] },
  },
  {
    id: 'suspended-hard-shutdown',
    when: { initial: ['suspended'], request: ['hard_shutdown'] },
    then: { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.discard] },
  },
  {
    id: 'suspended-refuses-others',
    when: { initial: ['suspended'] },
    then: { result: ANY_ERROR, finalState: 'Suspended', domid: 'none', duration: 'fast', basis: [B.noSuchDomain] },
  },

  // Paused.
  {
    id: 'paused-unpause',
    when: { initial: ['paused'], request: ['unpause'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'same', duration: 'fast', basis: [B.pause] },
  },
  {
    id: 'paused-pause',
    when: { initial: ['paused'], request: ['pause'] },
    then: { result: { kind: 'ok' }, finalState: 'Paused', domid: 'same', duration: 'fast', basis: [B.pause, B.pauseTwice] },
  },
  {
    id: 'paused-clean',
    when: { initial: ['paused'], request: ['clean_shutdown', 'clean_reboot'] },
    then: { result: ANY_ERROR, finalState: 'Paused', domid: 'same', duration: 'ack-timeout', controlShutdown: 'word', basis: [B.pvcontrol, B.pausedNoAck] },
  },
  {
    id: 'paused-save',
    when: { initial: ['paused'], request: ['suspend'] },
    then: { result: ANY_ERROR, finalState: 'Paused', domid: 'same', duration: 'ack-timeout', controlShutdown: '', basis: [B.save, B.pausedNoAck] },
  },
  {
    id: 'paused-migrate',
    when: { initial: ['paused'], request: ['migrate'] },
    then: {
      result: ANY_ERROR,
      finalState: 'Paused',
      domid: 'same',
      duration: 'ack-timeout',
      controlShutdown: '',
      basis: [B.save, B.pausedNoAck, B.migrateNoSuspend],
    },
  },
  {
    id: 'paused-resume',
    when: { initial: ['paused'], request: ['resume'] },
    then: { result: ANY_ERROR, finalState: 'Paused', domid: 'same', duration: 'fast', basis: [B.noSave] },
  },

  // Both states with a domain.
  {
    id: 'hard-shutdown',
    when: { request: ['hard_shutdown'] },
    then: { result: { kind: 'ok' }, finalState: 'Halted', domid: 'none', duration: 'fast', basis: [B.destroy] },
  },
  {
    id: 'hard-reboot',
    when: { request: ['hard_reboot'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'new', duration: 'fast', basis: [B.hardReboot] },
  },

  // Running.
  { id: 'pause', when: { request: ['pause'] }, then: { result: { kind: 'ok' }, finalState: 'Paused', domid: 'same', duration: 'fast', basis: [B.pause] } },
  {
    id: 'running-unpause',
    when: { request: ['unpause'] },
    then: { result: { kind: 'ok' }, finalState: 'Running', domid: 'same', duration: 'fast', basis: [B.unpauseRunning] },
  },
  {
    id: 'running-resume',
    when: { request: ['resume'] },
    then: { result: ANY_ERROR, finalState: 'Running', domid: 'same', duration: 'fast', basis: [B.noSave] },
  },
  { id: 'own-action', when: { request: ['no_request'] }, then: (s) => ok(daemonOutcome(s.action)) },

  // xl shutdown / xl reboot: exit 0 once acked; then the daemon acts on the actual reason.
  {
    id: 'clean-acked',
    when: { request: ['clean_shutdown', 'clean_reboot'], ack: ACKED },
    then: (s) => ({
      ...ok(daemonOutcome(s.action), [B.pvcontrol]),
      ...(s.action === 'ignore' ? { controlShutdown: s.ack === 'ok' ? ('' as const) : null } : {}),
    }),
  },
  {
    id: 'clean-unacked-ignored',
    when: { request: ['clean_shutdown', 'clean_reboot'], ack: NO_ACK, action: ['ignore'] },
    then: (s) => ({
      result: ANY_ERROR,
      finalState: 'Running',
      domid: 'same',
      duration: 'ack-timeout',
      controlShutdown: s.ack === 'none' ? 'word' : 'bogus',
      basis: [B.pvcontrol],
    }),
  },
  {
    id: 'clean-unacked-suspends',
    when: { request: ['clean_shutdown', 'clean_reboot'], ack: NO_ACK, action: ['suspend'] },
    then: {
      result: ANY_ERROR,
      finalState: 'Suspended',
      domid: 'same',
      shutdownReason: 'suspend',
      duration: 'ack-timeout',
      basis: [B.pvcontrol, B.selfSuspend, 'inferred: the node stays while the domain does'],
    },
  },
  {
    id: 'clean-unacked-shuts-down',
    when: { request: ['clean_shutdown', 'clean_reboot'], ack: NO_ACK },
    then: (s) => ok(daemonOutcome(s.action), [B.pvcontrol, B.nodeGone]),
  },

  // xl save.
  {
    id: 'save-acked-suspends',
    when: { request: ['suspend'], ack: ['ok', 'delete', 'bogus'], action: ['suspend'] },
    then: { result: { kind: 'ok' }, finalState: 'Suspended', domid: 'none', duration: 'fast', basis: [B.save] },
  },
  {
    id: 'save-acked-ignored',
    when: { request: ['suspend'], ack: ['ok', 'delete', 'bogus'], action: ['ignore'] },
    then: ackedNotSuspended([B.save]),
  },
  {
    id: 'save-unacked-ignored',
    when: { request: ['suspend'], ack: ['none'], action: ['ignore'] },
    then: { result: ANY_ERROR, finalState: 'Running', domid: 'same', duration: 'ack-timeout', controlShutdown: '', basis: [B.save] },
  },
  {
    id: 'save-acked-other-reason',
    when: { request: ['suspend'], ack: ['ok', 'delete', 'bogus'] },
    then: (s) => ({ ...ok(daemonOutcome(s.action), [B.save, 'inferred: xl save fails, the daemon acts on the actual reason']), result: ANY_ERROR }),
  },
  {
    id: 'save-unacked-acts',
    when: { request: ['suspend'], ack: ['none'] },
    then: { unmodelled: "xl save not acknowledged while the guest shuts down: libxl's ack wait and the domain's death race" },
  },
  ...XL_MIGRATE_RULES,
];

const XL_ACTIONS: ModelActions = { afterShutdown: 'destroy', afterReboot: 'restart', afterCrash: 'destroy' };

export const xlModel: ToolstackModel = {
  kind: 'xl',
  // libxl_domain.c libxl__domain_pvcontrol: timeout_ms = 60 * 1000, a literal (shutdown, reboot, save), the same on every
  // xl host (docs/toolstack-behaviour.md#timeouts): real ones declare no timeouts; a scaled stand-in (the fake) declares its own.
  ackTimeoutMsOf: (request, t) => (request === 'suspend' || request === 'migrate' ? t?.suspendAckMs : t?.shutdownAckMs) ?? 60_000,
  // libxl_dom_suspend.c domain_suspend_common_wait_guest: 60 * 1000 for the suspend after the ack; shutdown and
  // reboot have no such wait (xl returns at the ack), so the same 60 s serves as their yardstick.
  actTimeoutMsOf: (request, t) => (request === 'suspend' || request === 'migrate' ? t?.suspendTotalMs : t?.shutdownAckMs) ?? 60_000,
  // xl_migrate.c migrate_domain sends any domain find_domain finds, a paused one too (its guest then cannot ack).
  migratesFrom: ['running', 'paused'],
  restartDelayMs: 2_000, // xl_vmcontrol.c create_domain: sleep(2) before creating the domain again (docs/toolstack-behaviour.md#guest-reboot)
  actions: XL_ACTIONS,
  // xl.cfg(5) spells the actions as the case names do.
  lifecycleActionsOf: (l) => {
    if (l === 'defaults') return { ...XL_ACTIONS };
    const { event, action } = lifecycleSetting(l);
    return { ...XL_ACTIONS, [ACTION_FIELD[event]]: action };
  },
  rules: XL_RULES,
  expect: (s, ctx) => evaluate(XL_RULES, s, ctx),
};

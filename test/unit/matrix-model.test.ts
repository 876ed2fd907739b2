import test from 'tape';
import { MODELS } from '../../harness/matrix/models.ts';
import { matches, type ModelAnswer, type ModelContext } from '../../harness/matrix/model.ts';
import { allCases, findCase, matrixCases } from '../../harness/matrix/scenarios.ts';
import type { ToolstackKind } from '../../harness/toolstack/driver.ts';
import { caseDelays, primingMessage, windowMargin } from '../../harness/matrix/case-run.ts';

const KINDS: ToolstackKind[] = ['xl', 'xapi'];

function expectOf(kind: ToolstackKind, name: string, ctx?: ModelContext): ModelAnswer {
  const c = findCase(name);
  if (!c) throw new Error(`no case ${name}`);
  return MODELS[kind].expect(c.scenario, ctx);
}

function short(a: ModelAnswer): string {
  if (a.kind === 'unmodelled') return 'unmodelled';
  const e = a.expect;
  return `${e.result.kind === 'ok' ? 'ok' : `error:${e.result.code ?? '*'}`} ${e.finalState} ${e.domid} ${e.duration}`;
}

/** "rule result state domid duration (shutdown reason)" of a case, or "unmodelled". */
function exp(kind: ToolstackKind, name: string, ctx?: ModelContext): string {
  const a = expectOf(kind, name, ctx);
  return a.kind === 'expect' ? `${a.rule} ${short(a)}${a.expect.shutdownReason ? ` (${a.expect.shutdownReason})` : ''}` : 'unmodelled';
}

test('every case of the full matrix is run-with-expectation, unmodelled, or skipped', (t) => {
  for (const kind of KINDS) {
    let expect = 0,
      unmodelled = 0,
      skip = 0;
    for (const c of allCases()) {
      if (!c.run) {
        skip++;
        continue;
      }
      const a = MODELS[kind].expect(c.scenario);
      if (a.kind === 'expect') {
        expect++;
        if (a.expect.basis.length === 0 || a.expect.basis.some((b) => b.trim() === '')) t.fail(`${kind} ${c.scenario.name}: rule ${a.rule} cites no basis`);
      } else if (a.kind === 'unmodelled') {
        unmodelled++;
        if (!a.reason) t.fail(`${kind} ${c.scenario.name}: unmodelled without a reason`);
      } else t.fail(`${kind} ${c.scenario.name}: no answer`);
    }
    t.ok(expect > unmodelled * 5, `${kind}: ${expect} expected, ${unmodelled} unmodelled, ${skip} skipped`);
  }
  t.end();
});

test('no rule is dead: each is the first match of some runnable case', (t) => {
  const runnable = allCases()
    .filter((c) => c.run)
    .map((c) => c.scenario);
  for (const kind of KINDS) {
    const rules = MODELS[kind].rules;
    rules.forEach((r, i) => {
      const used = runnable.some((s) => matches(r.when, s) && !rules.slice(0, i).some((p) => matches(p.when, s)));
      if (!used) t.fail(`${kind} rule ${r.id} never applies`);
    });
    t.equal(new Set(rules.map((r) => r.id)).size, rules.length, `${kind}: rule ids are unique`);
  }
  t.end();
});

test('the smoke matrix costs no 20-minute total timeout and few ack timeouts, on either toolstack', (t) => {
  for (const kind of KINDS) {
    let ackTimeouts = 0;
    for (const c of matrixCases('smoke')) {
      const a = MODELS[kind].expect(c.scenario);
      t.equal(a.kind, 'expect', `${kind} ${c.scenario.name} is modelled`);
      if (a.kind !== 'expect') continue;
      if (a.expect.duration === 'total-timeout') t.fail(`${kind} ${c.scenario.name} costs the total timeout`);
      if (a.expect.duration === 'ack-timeout') ackTimeouts++;
    }
    t.ok(ackTimeouts >= 1 && ackTimeouts <= 2, `${kind}: ${ackTimeouts} ack-timeout case(s)`);
  }
  t.end();
});

test('XAPI rows from docs/xapi-behaviour.md', (t) => {
  const x = (n: string): string => short(expectOf('xapi', n));
  t.equal(x('running.clean_shutdown.ack-ok.poweroff'), 'ok Halted none fast');
  t.equal(x('running.clean_shutdown.ack-ok.reboot'), 'ok Halted none fast', 'any reason ends Halted');
  t.equal(x('running.clean_shutdown.ack-ok.suspend'), 'ok Halted none fast');
  t.equal(x('running.clean_shutdown.ack-ok.ignore'), 'error:VM_SHUTDOWN_TIMEOUT Running same total-timeout');
  t.equal(x('running.clean_shutdown.ack-none.ignore'), 'error:VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT Running same ack-timeout');
  t.equal(x('running.clean_shutdown.ack-bogus.ignore'), 'error:VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT Running same ack-timeout', 'a bogus string is no ack');
  t.equal(x('running.clean_shutdown.ack-delete.ignore'), 'error:VM_SHUTDOWN_TIMEOUT Running same total-timeout', 'deleting is an ack');
  t.equal(x('running.clean_shutdown.ack-none.poweroff'), 'ok Halted none fast', 'shutting down counts as the ack');
  t.equal(x('running.clean_reboot.ack-ok.poweroff'), 'ok Running new fast', 'any reason ends Running');
  t.equal(x('running.clean_reboot.ack-none.ignore'), 'error:VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT Running same ack-timeout');
  t.equal(x('running.suspend.ack-ok.suspend'), 'ok Suspended none fast');
  t.equal(x('running.suspend.ack-none.ignore'), 'error:VM_FAILED_SUSPEND_ACKNOWLEDGMENT Running same ack-timeout');
  t.equal(x('running.suspend.ack-ok.ignore'), 'error:VM_SUSPEND_TIMEOUT Running same total-timeout');
  t.equal(x('running.suspend.ack-ok.poweroff'), 'error:INTERNAL_ERROR Halted none fast');
  t.equal(x('running.no_request.ack-ok.suspend'), 'ok Halted none fast', 'unexpected suspend ends Halted');
  t.equal(x('running.no_request.ack-ok.reboot'), 'ok Running new fast');
  t.equal(x('running.no_request.ack-ok.crash'), 'ok Halted none fast', 'crash within 120 s of start: shutdown');
  t.equal(x('halted.hard_shutdown.ack-ok.ignore'), 'error:VM_BAD_POWER_STATE Halted none fast');
  t.equal(x('paused.clean_shutdown.ack-ok.ignore'), 'error:VM_BAD_POWER_STATE Paused same fast');
  t.equal(x('paused.hard_reboot.ack-ok.ignore'), 'ok Running new fast');
  t.equal(x('suspended.resume.ack-ok.ignore'), 'ok Running new fast');
  t.equal(x('suspended.hard_reboot.ack-ok.ignore'), 'error:VM_BAD_POWER_STATE Suspended none fast');
  const cs = expectOf('xapi', 'running.clean_shutdown.ack-none.ignore');
  t.equal(cs.kind === 'expect' ? cs.expect.controlShutdown : undefined, 'poweroff', 'the request is left in control/shutdown');
  const bogus = expectOf('xapi', 'running.clean_shutdown.ack-bogus.ignore');
  t.equal(bogus.kind === 'expect' ? bogus.expect.controlShutdown : undefined, 'xtv-bogus-ack', 'dom0 sees the bogus ack');
  t.equal(expectOf('xapi', 'running.suspend.ack-none.poweroff').kind, 'unmodelled');
  t.end();
});

test("XAPI: what depends on how long the VM ran (xenopsd VM_check_state's 120 s)", (t) => {
  const x = (n: string, ranForMs?: number): string => short(expectOf('xapi', n, ranForMs === undefined ? {} : { ranForMs }));
  t.equal(x('running.no_request.ack-ok.crash', 20_000), 'ok Halted none fast', 'a crash 20 s after start: restart becomes shutdown');
  t.equal(x('running.no_request.ack-ok.crash', 200_000), 'ok Running new fast', 'a crash 200 s after start: actions_after_crash restart');
  t.equal(x('running.no_request.ack-ok.crash', 115_000), 'unmodelled', 'too close to 120 s to tell');
  t.equal(x('running.no_request.ack-ok.crash', 126_000), 'unmodelled', '  on either side');
  t.equal(x('running.no_request.ack-ok.crash'), 'ok Halted none fast', 'not run yet: the common case, seconds after start');
  t.equal(
    x('running.suspend.ack-ok.reboot', 20_000),
    'error:INTERNAL_ERROR Running new delayed',
    'suspend answered by a reboot: the error comes after VM_delay 15 s and the rebuild',
  );
  t.equal(x('running.suspend.ack-ok.reboot', 200_000), 'error:INTERNAL_ERROR Running new fast', '  no delay for a VM that ran 120 s');
  t.equal(x('running.suspend.ack-ok.crash', 20_000), 'error:INTERNAL_ERROR Halted none fast', 'suspend answered by an early crash: Halted');
  t.equal(x('running.suspend.ack-ok.crash', 200_000), 'error:INTERNAL_ERROR Running new fast', 'suspend answered by a late crash: restarted');
  t.equal(MODELS.xapi.ackTimeoutMsOf('suspend'), 30_000, "ack timeouts: xenopsd's defaults");
  t.equal(MODELS.xapi.ackTimeoutMsOf('clean_reboot'), 60_000);
  const tuned = { shutdownAckMs: 15_000, suspendAckMs: 20_000, shutdownTotalMs: 600_000, suspendTotalMs: 600_000 };
  t.deepEqual(
    [MODELS.xapi.ackTimeoutMsOf('clean_shutdown', tuned), MODELS.xapi.ackTimeoutMsOf('suspend', tuned)],
    [15_000, 20_000],
    "  or the host's own (xenopsd.conf)",
  );
  t.equal(MODELS.xl.ackTimeoutMsOf('clean_shutdown'), 60_000, "xl's is a literal in libxl: an xl host declares none");
  t.equal(MODELS.xl.ackTimeoutMsOf('clean_shutdown', tuned), 15_000, '  a host that declares its windows (a scaled stand-in) is taken at its word');
  t.deepEqual(
    [MODELS.xl.actTimeoutMsOf('suspend'), MODELS.xapi.actTimeoutMsOf('suspend'), MODELS.xapi.actTimeoutMsOf('clean_shutdown', tuned)],
    [60_000, 1_200_000, 600_000],
    "after the ack: libxl's 60 s for the suspend, xapi's total timeouts",
  );
  t.end();
});

test('xl rows from docs/xl-behaviour.md', (t) => {
  const x = (n: string): string => short(expectOf('xl', n));
  t.equal(x('running.clean_shutdown.ack-ok.poweroff'), 'ok Halted none fast');
  t.equal(x('running.clean_shutdown.ack-ok.reboot'), 'ok Running new fast', 'the daemon acts on the actual reason');
  t.equal(x('running.clean_reboot.ack-ok.poweroff'), 'ok Halted none fast', 'xl reboot + poweroff: destroyed, not restarted');
  t.equal(x('running.clean_shutdown.ack-ok.ignore'), 'ok Running same fast', 'no -w: returns after the ack');
  t.equal(x('running.clean_shutdown.ack-none.ignore'), 'error:* Running same ack-timeout');
  t.equal(x('running.clean_shutdown.ack-none.poweroff'), 'ok Halted none fast', 'the node goes with the domain');
  t.equal(x('running.clean_shutdown.ack-ok.suspend'), 'ok Suspended same fast', 'a self-suspended domain stays suspended');
  t.equal(x('running.clean_shutdown.ack-ok.crash'), 'ok Halted none fast', 'on_crash destroy');
  t.equal(x('running.suspend.ack-bogus.suspend'), 'ok Suspended none fast', 'xl save takes a bogus string as the ack');
  t.equal(x('running.suspend.ack-none.ignore'), 'error:* Running same ack-timeout');
  t.equal(x('running.suspend.ack-ok.poweroff'), 'error:* Halted none fast', 'wrong shutdown reason');
  t.equal(x('running.no_request.ack-ok.suspend'), 'ok Suspended same fast');
  t.equal(x('running.no_request.ack-ok.reboot'), 'ok Running new fast');
  t.equal(x('paused.clean_shutdown.ack-ok.ignore'), 'error:* Paused same ack-timeout', 'a paused guest cannot ack');
  t.equal(x('halted.pause.ack-ok.ignore'), 'error:* Halted none fast');
  t.equal(x('suspended.resume.ack-ok.ignore'), 'ok Running new fast');
  t.equal(x('suspended.hard_shutdown.ack-ok.ignore'), 'ok Halted none fast', 'the driver discards the save image');
  const ss = expectOf('xl', 'running.no_request.ack-ok.suspend');
  t.equal(ss.kind === 'expect' ? ss.expect.shutdownReason : undefined, 'suspend');
  t.deepEqual(MODELS.xl.actions, { afterShutdown: 'destroy', afterReboot: 'restart', afterCrash: 'destroy' }, 'xl defaults');
  t.deepEqual(MODELS.xapi.actions, { afterShutdown: 'destroy', afterReboot: 'restart', afterCrash: 'restart' }, 'blank template defaults');
  t.end();
});

test('the guest expectation follows what the case tells the guest', (t) => {
  const g = (k: ToolstackKind, n: string) => {
    const a = expectOf(k, n);
    return a.kind === 'expect' ? a.expect.guest : null;
  };
  t.deepEqual(g('xl', 'running.clean_reboot.ack-bogus.crash'), { received: 'reboot', ack: 'bogus', action: 'crash' });
  t.deepEqual(g('xapi', 'running.suspend.ack-delete.suspend'), { received: 'suspend', ack: 'delete', action: 'suspend' });
  t.deepEqual(g('xl', 'running.hard_shutdown.ack-ok.ignore'), { received: null, ack: null, action: null });
  t.deepEqual(g('xl', 'running.no_request.ack-ok.halt'), { received: null, ack: null, action: 'halt' });
  t.deepEqual(g('xapi', 'paused.clean_shutdown.ack-ok.ignore'), { received: null, ack: null, action: null });
  t.end();
});

test("#16 timing cases: each toolstack's answer, from its windows", (t) => {
  const exp = (kind: 'xl' | 'xapi', name: string) => {
    const a = MODELS[kind].expect(findCase(name)!.scenario);
    return a.kind === 'expect'
      ? [a.rule, a.expect.result.kind === 'ok' ? 'ok' : (a.expect.result.code ?? 'error'), a.expect.finalState, a.expect.domid, a.expect.duration].join(' ')
      : `unmodelled`;
  };
  const rows: Array<[string, string, string]> = [
    // name, xl, XAPI
    ['running.clean_shutdown.ack-ok-inside.poweroff', 'timing-ack-inside ok Halted none delayed', 'timing-ack-inside ok Halted none delayed'],
    [
      'running.clean_shutdown.ack-ok-late.poweroff',
      'timing-ack-late error Halted none ack-timeout',
      'timing-ack-late VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT Halted none ack-timeout',
    ],
    ['running.clean_shutdown.ack-ok.poweroff-inside', 'timing-clean-act-later ok Halted none fast', 'timing-act-inside ok Halted none delayed'],
    [
      'running.clean_shutdown.ack-ok.poweroff-late',
      'timing-clean-act-later ok Halted none fast',
      'timing-act-late VM_SHUTDOWN_TIMEOUT Halted none total-timeout',
    ],
    ['running.clean_reboot.ack-ok-inside.reboot', 'timing-ack-inside ok Running new delayed', 'timing-ack-inside ok Running new delayed'],
    [
      'running.clean_reboot.ack-ok-late.reboot',
      'timing-ack-late error Running new ack-timeout',
      'timing-ack-late VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT Running new ack-timeout',
    ],
    ['running.suspend.ack-ok-inside.suspend', 'timing-ack-inside ok Suspended none delayed', 'timing-ack-inside ok Suspended none delayed'],
    [
      'running.suspend.ack-ok-late.suspend',
      'timing-ack-late error Suspended same ack-timeout',
      'timing-ack-late VM_FAILED_SUSPEND_ACKNOWLEDGMENT Halted none ack-timeout',
    ],
    ['running.suspend.ack-ok.suspend-inside', 'timing-save-act-inside ok Suspended none delayed', 'timing-act-inside ok Suspended none delayed'],
    [
      'running.suspend.ack-ok.suspend-late',
      'timing-save-act-late error Suspended same ack-timeout',
      'timing-act-late VM_SUSPEND_TIMEOUT Halted none total-timeout',
    ],
  ];
  for (const [name, xl, xapi] of rows) {
    t.equal(exp('xl', name), xl, `xl ${name}`);
    t.equal(exp('xapi', name), xapi, `XAPI ${name}`);
  }
  for (const kind of ['xl', 'xapi'] as const) {
    const a = MODELS[kind].expect(findCase('running.clean_shutdown.ack-ok-late.poweroff')!.scenario);
    t.ok(
      a.kind === 'expect' && a.expect.basis.some((b) => /after the call has failed|after xl has given up/.test(b)),
      `${kind}: the basis says the guest acts after the failure`,
    );
  }
  t.end();
});

test("#16 timing cases: the delays straddle the host's declared windows", (t) => {
  const tuned = { shutdownAckMs: 15_000, suspendAckMs: 6_000, shutdownTotalMs: 20_000, suspendTotalMs: 1_200_000 };
  const d = (kind: 'xl' | 'xapi', name: string, timeouts?: typeof tuned) => caseDelays(findCase(name)!.scenario, MODELS[kind], timeouts);
  t.equal(d('xl', 'running.clean_shutdown.ack-ok.poweroff'), null, 'a prompt case: none');
  t.deepEqual(
    d('xl', 'running.clean_shutdown.ack-ok-inside.poweroff'),
    { ackAfterMs: 45_000, windowMs: 60_000, marginMs: 15_000 },
    "xl: libxl's 60 s, 15 s inside",
  );
  t.deepEqual(
    d('xl', 'running.suspend.ack-ok.suspend-late'),
    { actAfterMs: 75_000, windowMs: 60_000, marginMs: 15_000 },
    '  15 s outside the wait for the suspend',
  );
  t.deepEqual(
    d('xapi', 'running.clean_reboot.ack-ok-late.reboot', tuned),
    { ackAfterMs: 18_750, windowMs: 15_000, marginMs: 3_750 },
    "XAPI: this host's domain_shutdown_ack_timeout",
  );
  t.deepEqual(
    d('xapi', 'running.suspend.ack-ok-inside.suspend', tuned),
    { ackAfterMs: 4_000, windowMs: 6_000, marginMs: 2_000 },
    '  its suspend ack timeout, at least 2 s inside',
  );
  t.deepEqual(
    d('xapi', 'running.clean_shutdown.ack-ok.poweroff-inside', tuned),
    { actAfterMs: 15_000, windowMs: 20_000, marginMs: 5_000 },
    '  its total timeout',
  );
  t.deepEqual(d('xapi', 'running.suspend.ack-ok.suspend-late')?.actAfterMs, 1_215_000, "  xenopsd's default vm_suspend_timeout when the host declares none");
  t.equal(windowMargin(1_000), 500, 'a scaled window: never more than half of it');
  t.equal(windowMargin(400_000), 15_000, 'at most 15 s');
  t.equal(
    primingMessage(findCase('running.clean_shutdown.ack-ok-late.poweroff')!.scenario, { ackAfterMs: 18_750, windowMs: 15_000, marginMs: 3_750 }),
    '{"when":"onshutdown","ack":"ok","action":"poweroff","ackAfterMs":18750}',
    'the priming message carries the delay',
  );
  t.end();
});

test("#16 feature cases: libxl reads no flag; xapi ignores a PV guest's flags but, from v25.24.0, not its reason not to suspend", (t) => {
  for (const [name, plain] of [
    ['running.clean_shutdown.no-feature-poweroff.ack-ok.poweroff', 'running.clean_shutdown.ack-ok.poweroff'],
    ['running.clean_reboot.no-feature-reboot.ack-ok.reboot', 'running.clean_reboot.ack-ok.reboot'],
    ['running.suspend.no-feature-suspend.ack-ok.suspend', 'running.suspend.ack-ok.suspend'],
    ['running.suspend.cant-suspend.ack-ok.suspend', 'running.suspend.ack-ok.suspend'],
  ]) {
    t.equal(exp('xl', name!), `features-unread ${short(expectOf('xl', plain!))}`, `xl ${name}: as with every flag`);
  }
  t.equal(
    exp('xapi', 'running.suspend.no-feature-suspend.ack-ok.suspend'),
    `features-pv-implicit ${short(expectOf('xapi', 'running.suspend.ack-ok.suspend'))}`,
  );
  t.equal(
    exp('xapi', 'running.suspend.cant-suspend.ack-ok.suspend'),
    'features-cant-suspend error:VM_NON_SUSPENDABLE Running same fast',
    'current xapi (and an unknown host): refused',
  );
  t.equal(
    exp('xapi', 'running.suspend.cant-suspend.ack-ok.suspend', { refusesNonSuspendable: false }),
    `features-cant-suspend ${short(expectOf('xapi', 'running.suspend.ack-ok.suspend'))}`,
    'the 1.249 line: the reason changes nothing for PV',
  );
  const refused = MODELS.xapi.expect(findCase('running.suspend.cant-suspend.ack-ok.suspend')!.scenario);
  t.deepEqual(refused.kind === 'expect' && refused.expect.guest, { received: null, ack: null, action: null }, 'refused before the guest is asked');
  t.end();
});

test('#16 lifecycle cases: xl acts on every shutdown of the kind; xapi only on the guest acting alone', (t) => {
  const rows: Array<[string, string, string, ModelContext?]> = [
    ['running.clean_shutdown.on-poweroff-restart.ack-ok.poweroff', 'lifecycle-action ok Running new fast', 'lifecycle-requested ok Halted none fast'],
    ['running.no_request.on-poweroff-restart.ack-ok.poweroff', 'lifecycle-action ok Running new fast', 'lifecycle-own-shutdown ok Running new fast'],
    ['running.clean_reboot.on-reboot-destroy.ack-ok.reboot', 'lifecycle-action ok Halted none fast', 'lifecycle-requested ok Running new fast'],
    ['running.no_request.on-reboot-destroy.ack-ok.reboot', 'lifecycle-action ok Halted none fast', 'lifecycle-own-shutdown ok Halted none fast'],
    ['running.no_request.on-poweroff-preserve.ack-ok.poweroff', 'lifecycle-action ok Halted same fast (poweroff)', ''],
    ['running.clean_reboot.on-reboot-preserve.ack-ok.reboot', 'lifecycle-action ok Halted same fast (reboot)', ''],
    ['running.no_request.on-crash-preserve.ack-ok.crash', 'lifecycle-action ok Halted same fast (crash)', 'lifecycle-own-shutdown ok Paused same fast'],
    [
      'running.no_request.on-crash-restart.ack-ok.crash',
      'lifecycle-action ok Running new fast',
      'lifecycle-own-shutdown ok Running new fast',
      { ranForMs: 150_000 },
    ],
    [
      'running.no_request.on-crash-restart.ack-ok.crash',
      'lifecycle-action ok Running new fast',
      'lifecycle-own-shutdown ok Halted none fast',
      { ranForMs: 5_000 },
    ],
    [
      'running.no_request.on-crash-coredump-restart.ack-ok.crash',
      'lifecycle-action ok Running new fast',
      'lifecycle-own-shutdown ok Running new fast',
      { ranForMs: 150_000 },
    ],
    [
      'running.no_request.on-crash-coredump-destroy.ack-ok.crash',
      'lifecycle-action ok Halted none fast',
      'lifecycle-own-shutdown ok Halted none fast',
      { ranForMs: 150_000 },
    ],
    ['running.no_request.on-crash-rename-restart.ack-ok.crash', 'lifecycle-action ok Running new fast', ''],
    [
      'running.no_request.on-crash-destroy.ack-ok.crash',
      'lifecycle-action ok Halted none fast',
      'lifecycle-own-shutdown ok Halted none fast',
      { ranForMs: 150_000 },
    ],
  ];
  for (const [name, xl, xapi, ctx] of rows) {
    t.equal(exp('xl', name, ctx), xl, `xl ${name}`);
    if (xapi) t.equal(exp('xapi', name, ctx), xapi, `xapi ${name}${ctx?.ranForMs ? ` after ${ctx.ranForMs / 1000} s` : ''}`);
  }
  t.equal(exp('xapi', 'running.no_request.on-crash-restart.ack-ok.crash', { ranForMs: 118_000 }), 'unmodelled', 'too close to the 120 s to tell');
  // What each toolstack installs, and what it cannot.
  t.deepEqual(
    MODELS.xl.lifecycleActionsOf('on-crash-coredump-restart', 'pvh'),
    { afterShutdown: 'destroy', afterReboot: 'restart', afterCrash: 'coredump-restart' },
    'xl: its own spelling',
  );
  t.deepEqual(
    MODELS.xapi.lifecycleActionsOf('on-crash-coredump-restart', 'pv'),
    { afterShutdown: 'destroy', afterReboot: 'restart', afterCrash: 'coredump_and_restart' },
    "xapi: datamodel_vm.ml's",
  );
  t.deepEqual(MODELS.xapi.lifecycleActionsOf('on-poweroff-restart'), { afterShutdown: 'restart', afterReboot: 'restart', afterCrash: 'restart' });
  for (const [l, why] of [
    ['on-poweroff-preserve', /actions_after_shutdown takes only destroy or restart/],
    ['on-reboot-preserve', /actions_after_reboot takes only destroy or restart/],
    ['on-crash-rename-restart', /VALUE_NOT_SUPPORTED, "option would leak a domain"/],
  ] as const) {
    const a = MODELS.xapi.lifecycleActionsOf(l, 'pv');
    t.match('unsupported' in a ? a.unsupported : '', why, `xapi cannot: ${l}`);
  }
  const pvh = MODELS.xapi.lifecycleActionsOf('on-crash-coredump-destroy', 'pvh');
  t.match('unsupported' in pvh ? pvh.unsupported : '', /PVH VM .* "cannot invoke a coredump/, 'xapi: no coredump of a PVH domain');
  t.end();
});

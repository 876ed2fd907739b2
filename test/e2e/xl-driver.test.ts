// The xl path end to end on the embedded host with the real test image
// (issue 5's suite): boot, every xl request, the guest acting on its own
// (now:X), the guest answering a request its own way (next:X), the three
// non-ok acks as dom0 sees them, malformed messages. Outcomes are compared
// with the xl model (harness/matrix/model-xl.ts) where it has a rule.
//
// A guest boot is what the shared emulated host has least of, so a case
// that can follow another on the same VM does (next:reboot after the save
// chain, next:crash after ack bogus), and the guest's own crash is left to
// xl-run.test.ts's lifecycle case; every pair of guest action and request
// runs in `xtv run --matrix full`.
//
// Cases run in parallel (xlSuite), all at once; their boots take turns (see
// the suite's options below).
import test from 'tape';
import { encodeTesting, validateTesting, SHUTDOWN_NODE, TESTING_NODE } from '../../protocol/control.ts';
import { BOGUS_ACK_VALUE } from '../../harness/matrix/scenarios.ts';
import { poll } from '../../harness/matrix/wait.ts';
import type { DomainInfo, VmRef } from '../../harness/toolstack/driver.ts';
import {
  T,
  callRequest,
  consoleEvents,
  report,
  requestAndCompare,
  sendTesting,
  waitReady,
  xlSuite,
  type Ctx,
  type ModelCheck,
  type Scenario,
} from './xl-fixture.ts';
import { E2E_START_TIMEOUT_MS } from './e2e-host.ts';

// Boots queue for 3 slots in the order the cases are registered: the ones with the most
// to do after booting come first (the reboot chain, the ack cases that wait out xl's 60 s,
// the save chain); the rest wait mostly on guests, so every case runs at once.
const suite = xlSuite({ parallel: 3, cases: 12, file: 'xl-driver' });

const json = (ack: string, action: string): string => encodeTesting({ form: 'json', when: 'onshutdown', ack, action });

function assertModel(t: test.Test, what: string, c: ModelCheck | undefined): void {
  if (!c) return;
  if (c.evidence) t.comment(`${what}: ${c.evidence.replace(/\n/g, '\n# ')}`);
  t.equal(c.diffs, '', `${what}: as the xl model says (${c.expect.result.kind}, ${c.expect.finalState}, domid ${c.expect.domid})`);
  t.deepEqual(c.invariants, [], `${what}: xl agrees with Xen, the guest with what it was told`);
}

// ---------------------------------------------------------------------------
// (1) and (2): every xl request, on two VMs at once.

// reboot, shutdown, then start again and destroy.
const chainReboot = suite.scenario('boot, reboot, shutdown, start, destroy', async (x) => {
  const d = x.driver;
  const { vm, domid } = await x.boot('xtv-e2e-chain-reboot');
  // xl reboot of a guest with no command pending: it acks ok and reboots.
  const rebootCheck = await requestAndCompare(d, vm, 'running.clean_reboot.ack-ok.reboot', 'clean_reboot', domid);
  const afterReboot = rebootCheck.observation.final.domid != null ? await waitReady(d, vm, domid) : null;
  x.lap('rebooted');

  // xl shutdown of a guest with no command pending: ack ok, poweroff.
  const shutdownCheck = afterReboot ? await requestAndCompare(d, vm, 'running.clean_shutdown.ack-ok.poweroff', 'clean_shutdown', afterReboot.domid) : undefined;
  x.lap('shut down');

  // xl destroy.
  await d.start(vm, { timeoutMs: E2E_START_TIMEOUT_MS });
  const again = await waitReady(d, vm, null);
  const destroyCheck = await requestAndCompare(d, vm, 'running.hard_shutdown.ack-ok.ignore', 'hard_shutdown', again.domid);
  x.lap('destroyed');
  return { rebootCheck, shutdownCheck, destroyCheck };
});

// ---------------------------------------------------------------------------
// (5) acks none and bogus: xl shutdown waits out libxl's 60 s ack timeout.

/** now:X on a running VM: the guest acts at once, on its own. */
async function nowCase(x: Ctx, vm: VmRef, domid: number, a: NowAction) {
  const check = await requestAndCompare(
    x.driver,
    vm,
    `running.no_request.ack-ok.${a}`,
    () => x.driver.writeGuest(vm, TESTING_NODE, `now:${a}`, { guestWritable: true }),
    domid,
  );
  const events = await consoleEvents(x.driver, vm);
  const left = check.observation.final.domid !== null ? await report(x.driver, vm) : null;
  const rebooted = a === 'reboot' && check.observation.final.domid !== null ? await waitReady(x.driver, vm, domid) : null;
  x.lap(`now:${a} done`);
  return { domid, check, events, left, rebooted };
}

// The VM is still Running afterwards with nothing pending, so it goes on to another case:
// ack none to now:poweroff (what an earlier unanswered request left in control/shutdown cannot
// change a guest's own poweroff), ack bogus to next:crash then xl shutdown (the node the guest
// wrote its bogus string to stays its to write: a guest that deleted it could not ack again,
// because dom0's new node has control/'s permissions).
const ackNoAnswer = <R>(ack: 'none' | 'bogus', thenWhat: string, then: (x: Ctx, vm: VmRef, domid: number) => Promise<R>) =>
  suite.scenario(
    `ack ${ack}: xl shutdown; then ${thenWhat}`,
    async (x) => {
      const { vm, domid } = await x.boot(`xtv-e2e-ack-${ack}`);
      const primed = await sendTesting(x.driver, vm, json(ack === 'none' ? 'none' : BOGUS_ACK_VALUE, 'ignore'));
      x.lap('primed');
      const check = await requestAndCompare(x.driver, vm, `running.clean_shutdown.ack-${ack}.ignore`, 'clean_shutdown', domid);
      x.lap('xl shutdown returned');
      return { primed, check, then: await then(x, vm, domid) };
    },
    { long: true },
  );
const ackNone = ackNoAnswer('none', 'now:poweroff', (x, vm, domid) => nowCase(x, vm, domid, 'poweroff'));
const ackBogus = ackNoAnswer('bogus', 'next:crash + xl shutdown', async (x, vm, domid) => {
  const primed = await sendTesting(x.driver, vm, json('ok', 'crash'));
  return { primed, check: await requestAndCompare(x.driver, vm, 'running.clean_shutdown.ack-ok.crash', 'clean_shutdown', domid) };
});

// (5) ack delete, then (6) malformed messages on the same VM (nothing else changes it).
const MALFORMED: string[] = [
  'now:explode',
  'POWEROFF',
  '   ',
  '{not json',
  '{"action":"reboot","extra":1}',
  '{"when":"later","action":"poweroff"}',
  'now:\u0001',
];
const ackDelete = suite.scenario('ack delete: xl shutdown; then malformed messages', async (x) => {
  const { vm, domid } = await x.boot('xtv-e2e-ack-delete');
  const primed = await sendTesting(x.driver, vm, json('delete', 'ignore'));
  const check = await requestAndCompare(x.driver, vm, 'running.clean_shutdown.ack-delete.ignore', 'clean_shutdown', domid);
  x.lap('delete case done');
  const malformed: Array<{ message: string; report: Record<string, string | null>; state: DomainInfo }> = [];
  for (const m of MALFORMED) {
    const rep = await sendTesting(x.driver, vm, m);
    malformed.push({ message: m, report: rep, state: await x.driver.state(vm) });
  }
  x.lap('malformed done');
  const after = await sendTesting(x.driver, vm, json('ok', 'poweroff'));
  return { domid, primed, check, malformed, after, finalState: await x.driver.state(vm) };
});

// pause/unpause, then save and restore.
const chainSave = suite.scenario('boot, pause/unpause, save/restore', async (x) => {
  const d = x.driver;
  const { vm, domid, bootMs } = await x.boot('xtv-e2e-chain-save');
  // The report as dom0 reads it, once the agent has had its chance to write it.
  const booted =
    (
      await poll(
        () => report(d, vm),
        (rep) => rep['state'] === 'ready',
        { timeoutMs: T.ack, minMs: 200, maxMs: 1000, what: 'report state=ready' },
      )
    ).value ?? {};
  const xlDomid = (await d.state(vm)).domid;

  const pause = await callRequest(d, vm, 'pause');
  const paused = await d.state(vm);
  const unpause = await callRequest(d, vm, 'unpause');
  const unpaused = await d.state(vm);
  // next:suspend is what the agent does anyway for a suspend request: it shows the guest answers without changing the save.
  const afterUnpause = await sendTesting(d, vm, 'next:suspend');
  x.lap('pause/unpause');

  // xl save: libxl writes "suspend"; the agent acks and suspends; xl saves and destroys.
  const saveCheck = await requestAndCompare(d, vm, 'running.suspend.ack-ok.suspend', 'suspend', domid);
  x.lap('saved');
  const resume = await callRequest(d, vm, 'resume');
  const restored = await d.state(vm);
  const resumed = restored.domid === null ? null : await waitReady(d, vm, domid, 'resumed');
  const answersAfterResume = resumed ? await sendTesting(d, vm, json('ok', 'reboot')) : null;
  x.lap('restored');
  // (4) on the same VM: reboot pending, then xl shutdown.
  const rebootCheck = resumed ? await requestAndCompare(d, vm, 'running.clean_shutdown.ack-ok.reboot', 'clean_shutdown', resumed.domid) : undefined;
  return {
    domid,
    bootMs,
    booted,
    xlDomid,
    pause,
    paused,
    unpause,
    unpaused,
    afterUnpause,
    saveCheck,
    resume,
    restored,
    resumed,
    answersAfterResume,
    rebootCheck,
  };
});

// PVH, once: boots to ready, is live-migrated to the same host (#17: xl migrate NAME localhost over
// dom0's own ssh; a PV domain cannot be on this Xen), and shuts down cleanly.
const pvh = suite.scenario('PVH: boot, xl migrate, xl shutdown', async (x) => {
  const { vm, domid, bootMs } = await x.boot('xtv-e2e-pvh', { domainType: 'pvh' });
  const rep =
    (
      await poll(
        () => report(x.driver, vm),
        (r) => r['state'] === 'ready',
        { timeoutMs: T.ack, minMs: 200, maxMs: 1000, what: 'report state=ready' },
      )
    ).value ?? {};
  const migrated = await requestAndCompare(x.driver, vm, 'running.migrate.ack-ok.suspend', 'migrate', domid);
  const newDomid = (await x.driver.state(vm)).domid!;
  const after =
    (
      await poll(
        () => report(x.driver, vm),
        (r) => r['state'] === 'resumed' && r['domid'] === String(newDomid),
        { timeoutMs: T.ack, minMs: 200, maxMs: 1000, what: 'report state=resumed in the new domain' },
      )
    ).value ?? {};
  x.lap('migrated');
  const check = await requestAndCompare(x.driver, vm, 'running.clean_shutdown.ack-ok.poweroff', 'clean_shutdown', newDomid);
  return { domid, bootMs, rep, migrated, newDomid, after, check };
});

// ---------------------------------------------------------------------------
// (3) now:X: the guest acts at once, on its own.

// now:crash: xl-run.test.ts's running.no_request.on-crash-preserve case; now:halt is now:poweroff to
// Xen (both shut down with reason poweroff): --matrix full has both.
const NOW_ACTIONS = ['poweroff', 'reboot', 'suspend'] as const;
type NowAction = (typeof NOW_ACTIONS)[number];
const ownNowCases = (['reboot', 'suspend'] as const).map(
  (a) =>
    [
      a,
      suite.scenario(`now:${a}`, async (x) => {
        const { vm, domid } = await x.boot(`xtv-e2e-now-${a}`);
        return nowCase(x, vm, domid, a);
      }),
    ] as const,
);
const nowResult = (t: test.Test, a: NowAction) => {
  if (a === 'poweroff') return suite.result(t, ackNone).then((o) => o?.then);
  return suite.result(t, ownNowCases.find(([b]) => b === a)![1]);
};

// (4) next:X, then a host request: X happens instead of what was asked, acked as asked.
// Each on a VM of its own; next:reboot and next:crash follow other cases on theirs (see above), and
// next:halt is next:poweroff to Xen.
const NEXT_CASES = [
  { action: 'poweroff', request: 'clean_reboot' },
  { action: 'suspend', request: 'clean_shutdown' },
] as const;
const nextCases = NEXT_CASES.map((c) =>
  suite.scenario(`next:${c.action} + ${c.request}`, async (x) => {
    const { vm, domid } = await x.boot(`xtv-e2e-next-${c.action}`);
    const primed = await sendTesting(x.driver, vm, `next:${c.action}`);
    const check = await requestAndCompare(x.driver, vm, `running.${c.request}.ack-ok.${c.action}`, c.request, domid);
    return { domid, primed, check };
  }),
);

// ---------------------------------------------------------------------------
// Assertions, in issue order (suite.finish() at the end adds the clean-up check and the times).

test('(1) the guest boots to state=ready and reports the domid xl shows', async (t) => {
  const o = await suite.result(t, chainSave);
  if (!o) return;
  t.equal(o.booted['state'], 'ready', 'state=ready');
  t.equal(o.booted['domid'], String(o.xlDomid), `report domid ${o.booted['domid']} = xl's ${o.xlDomid}`);
  t.ok(o.booted['version'] && o.booted['boot-id'], 'version and boot-id reported');
  t.match(o.booted['protocols'] ?? '', /xtv-control\//, 'protocol version reported');
  t.comment(`boot (xl create to state=ready): ${(o.bootMs / 1000).toFixed(1)} s`);
});

test('(1) PVH: boots to ready, migrates to the same host, shuts down cleanly', async (t) => {
  const o = await suite.result(t, pvh);
  if (!o) return;
  t.equal(o.rep['state'], 'ready', 'PVH guest reports ready');
  t.equal(o.rep['domid'], String(o.domid), 'with its domid');
  assertModel(t, 'PVH xl migrate NAME localhost', o.migrated);
  t.equal(o.after['boot-id'], o.rep['boot-id'], `migrated: the same guest (boot id), now in domain ${o.newDomid}`);
  t.equal(o.after['resumes'], '1', '  one resume');
  t.equal(o.after['domids'], `${o.domid} ${o.newDomid}`, '  its domid history has both domains');
  assertModel(t, 'PVH xl shutdown', o.check);
  t.comment(`PVH boot: ${(o.bootMs / 1000).toFixed(1)} s`);
});

test('(2) xl pause / xl unpause', async (t) => {
  const o = await suite.result(t, chainSave);
  if (!o) return;
  t.deepEqual(o.pause.result, { kind: 'ok' }, 'xl pause exits 0');
  t.deepEqual(o.paused, { powerState: 'Paused', domid: o.domid }, 'Paused, same domid');
  t.deepEqual(o.unpause.result, { kind: 'ok' }, 'xl unpause exits 0');
  t.deepEqual(o.unpaused, { powerState: 'Running', domid: o.domid }, 'Running again');
  t.equal(o.afterUnpause['event-decision'], 'accepted', 'the agent answers after unpause');
});

test('(2) xl save + xl restore: Suspended to disk, then resumed with a new domid, still answering', async (t) => {
  const o = await suite.result(t, chainSave);
  if (!o) return;
  assertModel(t, 'xl save', o.saveCheck);
  t.equal(o.saveCheck.guestEvent?.received, 'suspend', 'the guest received suspend');
  t.equal(o.saveCheck.guestEvent?.ack, 'ok', 'and acknowledged it with ""');
  t.equal(o.saveCheck.guestEvent?.action, 'suspend', 'and suspended');
  t.deepEqual(o.resume.result, { kind: 'ok' }, 'xl restore exits 0');
  t.equal(o.restored.powerState, 'Running', 'Running after restore');
  t.notEqual(o.restored.domid, o.domid, `new domid ${o.restored.domid} (was ${o.domid})`);
  t.equal(o.resumed?.report['state'], 'resumed', 'the agent reports state=resumed');
  t.equal(o.resumed?.report['domid'], String(o.restored.domid), 'with the new domid');
  t.equal(o.resumed?.report['resumes'], '1', 'resumes=1');
  t.equal(o.answersAfterResume?.['event-decision'], 'accepted', 'and still answers a testing message');
});

test('(2) xl reboot: the guest acks and reboots; xl restarts it with a new domid', async (t) => {
  const o = await suite.result(t, chainReboot);
  if (!o) return;
  assertModel(t, 'xl reboot', o.rebootCheck);
  t.equal(o.rebootCheck?.guestEvent?.received, 'reboot', 'the guest received reboot');
});

test('(2) xl shutdown: the guest acks and powers off; xl destroys it', async (t) => {
  const o = await suite.result(t, chainReboot);
  if (!o) return;
  assertModel(t, 'xl shutdown', o.shutdownCheck);
  t.equal(o.shutdownCheck?.guestEvent?.received, 'poweroff', 'the guest received poweroff (seen on its console)');
  t.equal(o.shutdownCheck?.guestEvent?.ack, 'ok', 'acknowledged with ""');
});

test('(2) xl destroy: gone at once, the guest told nothing', async (t) => {
  const o = await suite.result(t, chainReboot);
  if (!o) return;
  assertModel(t, 'xl destroy', o.destroyCheck);
  t.equal(o.destroyCheck.guestEvent, null, "no control/shutdown event on the guest's console");
});

NOW_ACTIONS.forEach((a) => {
  test(`(3) now:${a}: the domain ends as ${a} implies`, async (t) => {
    const o = await nowResult(t, a);
    if (!o) return;
    assertModel(t, `now:${a}`, o.check);
    const ev = o.events.filter((e) => e.kind === 'event' && e.fields['node'] === TESTING_NODE).at(-1);
    t.equal(ev?.fields['action'], a, `the guest's console: event on control/testing, action=${a}`);
    if (a === 'suspend') {
      t.equal(o.check.observation.final.shutdownReason, 'suspend', 'Xen: shut down, reason suspend; the xl daemon leaves it');
      t.equal(o.left?.['event-action'], 'suspend', 'its report, read from dom0, says it suspended');
    }
    if (a === 'reboot') t.equal(o.rebooted?.report['state'], 'ready', 'the new domain boots to ready');
  });
});

function assertNext(t: test.Test, c: { action: string; request: string }, primed: Record<string, string | null> | null, check: ModelCheck | undefined): void {
  t.equal(primed?.['pending'], json('ok', c.action), `the agent holds ${primed?.['pending']}`);
  if (!check) return void t.fail(`no ${c.request} was made: the VM did not get that far`);
  assertModel(t, `next:${c.action} + ${c.request}`, check);
  t.deepEqual(check.observation.result, { kind: 'ok' }, `xl ${c.request === 'clean_shutdown' ? 'shutdown' : 'reboot'} exits 0: libxl saw the ack`);
  t.equal(check.guestEvent?.action, c.action, `the guest did ${c.action}`);
  if (c.action === 'suspend') t.equal(check.observation.controlShutdown, '', 'dom0 reads control/shutdown = "" (the ack) in the suspended domain');
}
const nextTitle = (c: { action: string; request: string }, after = ''): string =>
  `(4) next:${c.action} then ${c.request}${after}: ${c.action} happens instead, acked as asked`;

NEXT_CASES.forEach((c, i) => {
  test(nextTitle(c), async (t) => {
    const o = await suite.result(t, nextCases[i]!);
    if (o) assertNext(t, c, o.primed, o.check);
  });
});

test(nextTitle({ action: 'reboot', request: 'clean_shutdown' }, ', after xl restore'), async (t) => {
  const o = await suite.result(t, chainSave);
  if (o) assertNext(t, { action: 'reboot', request: 'clean_shutdown' }, o.answersAfterResume, o.rebootCheck);
});

test(nextTitle({ action: 'crash', request: 'clean_shutdown' }, ', after ack bogus'), async (t) => {
  const o = await suite.result(t, ackBogus);
  if (o) assertNext(t, { action: 'crash', request: 'clean_shutdown' }, o.then.primed, o.then.check);
});

const noAckTest = <R>(ack: 'none' | 'bogus', s: Scenario<{ primed: Record<string, string | null>; check: ModelCheck; then: R }>) =>
  test(`(5) ack ${ack}: dom0 sees ${ack === 'none' ? 'poweroff left as written' : 'the bogus string'}; xl shutdown exits 1 after 60 s`, async (t) => {
    const o = await suite.result(t, s);
    if (!o) return;
    t.equal(o.primed['pending'], json(ack === 'none' ? 'none' : BOGUS_ACK_VALUE, 'ignore'), 'the command is pending');
    assertModel(t, `ack ${ack}`, o.check);
    t.equal(
      o.check.observation.controlShutdown,
      ack === 'none' ? 'poweroff' : BOGUS_ACK_VALUE,
      `control/shutdown = ${JSON.stringify(o.check.observation.controlShutdown)}`,
    );
    t.equal(o.check.observation.result.kind === 'error' ? o.check.observation.result.code : o.check.observation.result.kind, 'XL_EXIT_1', 'xl shutdown exit 1');
    t.ok(
      o.check.observation.durationMs >= 59_000 && o.check.observation.durationMs < T.request,
      `after libxl's 60 s ack timeout (${(o.check.observation.durationMs / 1000).toFixed(1)} s)`,
    );
    t.equal(o.check.guestEvent?.ack, ack === 'none' ? 'none' : 'write', `the guest reports ack=${o.check.guestEvent?.ack}`);
  });
noAckTest('none', ackNone);
noAckTest('bogus', ackBogus);

test('(5) ack delete: dom0 sees the node gone; xl shutdown exits 0 (deletion is an ack)', async (t) => {
  const o = await suite.result(t, ackDelete);
  if (!o) return;
  assertModel(t, 'ack delete', o.check);
  t.equal(o.check.observation.controlShutdown, null, 'control/shutdown is absent');
  t.deepEqual(o.check.observation.result, { kind: 'ok' }, 'xl shutdown exit 0');
  t.equal(o.check.guestEvent?.ack, 'delete', 'the guest reports ack=delete');
});

test("(6) malformed messages are acknowledged, reported with the decoder's sentence, and change nothing", async (t) => {
  const o = await suite.result(t, ackDelete);
  if (!o) return;
  for (const m of o.malformed) {
    const v = validateTesting(m.message);
    const label = JSON.stringify(m.message.length > 40 ? `${m.message.slice(0, 40)}...` : m.message);
    t.equal(m.report['event-decision'], 'rejected', `${label}: rejected`);
    t.equal(m.report['event-error'], v.ok ? '(valid?)' : v.error.message, `${label}: "${m.report['event-error']}"`);
    t.equal(m.report[TESTING_NODE], '', `${label}: control/testing acknowledged ("")`);
    t.equal(m.report['pending'], '', `${label}: nothing pending`);
    t.deepEqual(m.state, { powerState: 'Running', domid: o.domid }, `${label}: still Running, same domid`);
  }
  t.equal(Number(o.after['rejected']), o.malformed.length, `rejected counter = ${o.malformed.length}`);
  t.equal(o.after['event-decision'], 'accepted', 'a valid message afterwards is accepted');
  t.equal(o.after['pending'], json('ok', 'poweroff'), 'and pending');
  t.deepEqual(o.finalState, { powerState: 'Running', domid: o.domid }, 'the domain never changed');
  t.equal(o.after[SHUTDOWN_NODE], null, 'control/shutdown untouched (still absent after the delete case)');
});

suite.finish();

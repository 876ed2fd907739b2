// The runner against the FAKE in-memory toolstack (testing/fake-driver.ts).
import test from 'tape';
import { CleanupRegistry, installSignalCleanup } from '../../harness/matrix/cleanup.ts';
import { modelFor } from '../../harness/matrix/models.ts';
import { caseFor } from '../../harness/matrix/model.ts';
import { lastLine, runMatrix, textAfter, type RunOptions } from '../../harness/matrix/runner.ts';
import { findCase, matrixCases, type Case } from '../../harness/matrix/scenarios.ts';
import { FAKE_TIMING, FakeToolstackDriver, type FakeOptions } from '../../testing/fake-driver.ts';
import { ToolstackError, type InstallOptions, type ToolstackKind, type VmRef } from '../../harness/toolstack/driver.ts';

const IMAGE = { kernelPath: '/k', initrdPath: '/i', kernelArgs: '', domainType: 'pv' as const, memoryMiB: 32 };

function cases(...names: string[]): Case[] {
  return names.map((n) => {
    const c = findCase(n);
    if (!c) throw new Error(n);
    return c;
  });
}

async function run(kind: ToolstackKind, cs: readonly Case[], fake: Partial<FakeOptions> = {}, over: Partial<RunOptions> = {}) {
  const driver = new FakeToolstackDriver({ kind, ...fake });
  const summary = await runMatrix({ driver, model: modelFor(kind), cases: cs, image: IMAGE, parallel: 8, timing: FAKE_TIMING, ...over });
  await driver.close();
  return { driver, summary };
}

for (const kind of ['xl', 'xapi'] as const) {
  test(`${kind}: the full matrix on the fake: no fail, no error, nothing left`, async (t) => {
    const { driver, summary } = await run(kind, matrixCases('full'));
    const bad = summary.cases.filter((c) => c.verdict === 'fail' || c.verdict === 'error');
    t.deepEqual(
      bad.map((c) => `${c.name}: ${c.summary}`),
      [],
      'no fail or error',
    );
    t.ok(summary.counts.pass > 90, `${summary.counts.pass} pass`);
    const unsupported = matrixCases('full').filter((c) => c.run && !caseFor(modelFor(kind), c, IMAGE.domainType).run);
    t.equal(summary.counts.skip, matrixCases('full').filter((c) => !c.run).length + unsupported.length, 'skips reported as skip');
    t.deepEqual(
      unsupported.map((c) => c.scenario.name),
      kind === 'xl'
        ? []
        : [
            'running.no_request.on-poweroff-preserve.ack-ok.poweroff',
            'running.clean_shutdown.on-poweroff-preserve.ack-ok.poweroff',
            'running.no_request.on-reboot-preserve.ack-ok.reboot',
            'running.clean_reboot.on-reboot-preserve.ack-ok.reboot',
            'running.no_request.on-crash-rename-restart.ack-ok.crash',
          ],
      'with the lifecycles the toolstack cannot be set to',
    );
    const skipped = summary.cases.find((c) => c.name === 'running.no_request.on-crash-rename-restart.ack-ok.crash')!;
    if (kind === 'xapi') t.match(skipped.skipReason ?? '', /VALUE_NOT_SUPPORTED/, `each with the model's reason: ${skipped.skipReason}`);
    t.equal(summary.cases.length, matrixCases('full').length, 'one result per case, in order');
    t.deepEqual(
      summary.cases.map((c) => c.name),
      matrixCases('full').map((c) => c.scenario.name),
    );
    t.deepEqual(driver.leftovers(), [], 'every VM removed');
    t.equal(summary.aborted, false);
    t.end();
  });
}

// Real XenServer / XCP-ng hosts keep no guest console log: every smoke case must reach the same verdict
// without it (what the guest did after its domain is gone is then not seen, and not held against anyone).
for (const kind of ['xl', 'xapi'] as const) {
  test(`${kind}: every smoke case on a host that keeps no console log: the same verdicts, nothing read from a console`, async (t) => {
    const { summary } = await run(kind, matrixCases('smoke'), { consoleLog: false });
    t.deepEqual(
      summary.cases.filter((c) => c.verdict !== 'pass').map((c) => `${c.name}: ${c.verdict}: ${c.summary}`),
      [],
      'all pass',
    );
    t.equal(summary.hostFacts?.consoleLogDir, null, 'the run records that the host keeps no console log');
    t.ok(
      summary.cases.every((c) => c.evidence.console === undefined && c.observation?.guestEvent?.source !== 'console'),
      'no console evidence',
    );
    const gone = summary.cases.find((c) => c.name === 'running.clean_shutdown.ack-ok.poweroff')!;
    t.equal(gone.observation?.guestEvent, undefined, "baseline: the guest's account is not observable once its domain is gone");
    t.match(gone.observation?.guestEventUnseen ?? '', /keeps no console log/, '  and the observation says why');
    const kept = summary.cases.find((c) => c.name === 'running.clean_shutdown.ack-none.ignore')!;
    t.equal(kept.observation?.guestEvent?.source, 'xenstore', 'a guest that is still there is read from its xenstore report');
    t.end();
  });
}

test('a console log that does not capture the guest (empty, or without agent lines) is no evidence, not a fail', async (t) => {
  // What a real host gave before: a console log "found" but empty, and every guest-visible case failed.
  class EmptyConsole extends FakeToolstackDriver {
    override async consoleLog(vm: VmRef) {
      return { text: '', path: `/var/log/xen/console/guest-${vm.name}.log` };
    }
  }
  const driver = new EmptyConsole({ kind: 'xapi' });
  const summary = await runMatrix({
    driver,
    model: modelFor('xapi'),
    cases: cases('running.clean_shutdown.ack-ok.poweroff', 'running.clean_reboot.ack-ok.reboot'),
    image: IMAGE,
    parallel: 2,
    timing: FAKE_TIMING,
  });
  await driver.close();
  t.deepEqual(
    summary.cases.map((c) => c.verdict),
    ['pass', 'pass'],
    summary.cases.map((c) => c.summary).join(' / '),
  );
  t.match(summary.cases[0]!.observation?.guestEventUnseen ?? '', /showed none of the agent's lines/, "the observation says why the guest's account is missing");
  t.end();
});

test('evidence: testing message, guest reports, console, steps', async (t) => {
  const { summary } = await run('xl', cases('running.clean_shutdown.ack-bogus.ignore', 'running.clean_shutdown.ack-ok.poweroff'));
  const [bogus, off] = summary.cases;
  t.equal(bogus!.verdict, 'pass', bogus!.summary);
  t.equal(bogus!.evidence.primedWith, '{"when":"onshutdown","ack":"xtv-bogus-ack","action":"ignore"}');
  t.equal(bogus!.evidence.reportAfterPrime?.pending, '{"when":"onshutdown","ack":"xtv-bogus-ack","action":"ignore"}');
  t.equal(bogus!.observation?.controlShutdown, 'xtv-bogus-ack', 'dom0 reads the bogus ack');
  t.deepEqual(bogus!.observation?.guestEvent, { source: 'xenstore', received: 'poweroff', ack: 'write', ackValue: 'xtv-bogus-ack', action: 'ignore' });
  t.equal(off!.observation?.guestEvent?.source, 'console', 'domain gone: the console tells what the guest did');
  t.equal(off!.observation?.guestEvent?.action, 'poweroff');
  t.match(off!.evidence.console ?? '', /xtv-agent .* event .*node=control\/shutdown/);
  t.equal(off!.evidence.consolePath, '/fake/console/xtv-running.clean_shutdown.ack-ok.poweroff.log');
  t.ok(
    off!.evidence.steps.some((s) => /request clean_shutdown/.test(s)),
    'steps recorded',
  );
  t.end();
});

test('a toolstack that breaks the model fails, with a readable diff', async (t) => {
  const { summary, driver } = await run('xl', cases('running.clean_shutdown.ack-ok.poweroff', 'running.clean_reboot.ack-ok.reboot'), {
    misbehave: 'restart-on-poweroff',
  });
  const [bad, good] = summary.cases;
  t.equal(bad!.verdict, 'fail');
  t.deepEqual(
    bad!.diffs.map((d) => d.field),
    ['power state', 'domid'],
  );
  t.match(bad!.summary, /power state - expected Halted \/ \+ observed Running/);
  t.equal(good!.verdict, 'pass');
  t.equal(summary.verdict, 'fail', 'the worst wins');
  t.deepEqual(driver.leftovers(), []);
  t.end();
});

for (const kind of ['xl', 'xapi'] as const)
  test(`${kind}: a toolstack that says Halted while xenstored still holds the domain fails on xenstored's account`, async (t) => {
    const { summary } = await run(kind, cases('running.no_request.ack-ok.poweroff', 'running.pause.ack-ok.ignore'), { misbehave: 'forget-domain-on-poweroff' });
    const [bad, good] = summary.cases;
    t.equal(bad!.verdict, 'fail', `fail: ${bad!.summary}`);
    t.deepEqual(bad!.diffs, [], 'the model is met: Halted, no domain');
    t.match(
      bad!.invariantProblems.join('\n'),
      /^xenstored: xenstored holds domain \d+ named "xtv-running\.no_request\.ack-ok\.poweroff", which the toolstack does not report \(it says Halted\)$/,
      bad!.invariantProblems.join('; '),
    );
    t.equal(good!.verdict, 'pass', 'a case the misbehaviour does not touch passes');
    t.ok(
      good!.evidence.steps.some((l) => /xenstored: domain \d+ named "xtv-running\.pause\.ack-ok\.ignore", as the toolstack says/.test(l)),
      'and says xenstored agreed',
    );
    t.end();
  });

test("xapi: a lifecycle crash waits out the model's short run first, outside the request's duration", async (t) => {
  const { summary } = await run('xapi', cases('running.no_request.on-crash-preserve.ack-ok.crash'), {}, { timing: { ...FAKE_TIMING, crashShortRun: 400 } });
  const r = summary.cases[0]!;
  t.equal(r.verdict, 'pass', `${r.verdict}: ${r.summary}`);
  t.ok(
    r.evidence.steps.some((l) => /letting the VM run 400 ms before it crashes/.test(l)),
    'the wait is a step',
  );
  t.ok((r.observation?.durationMs ?? Infinity) < 300, `the wait is not the toolstack's time (${r.observation?.durationMs} ms)`);
  t.end();
});

for (const kind of ['xl', 'xapi'] as const)
  test(`${kind}: a resumed or unpaused guest is the same guest; one that booted again fails on continuity`, async (t) => {
    const good = await run(kind, cases('suspended.resume.ack-ok.ignore', 'paused.unpause.ack-ok.ignore'));
    for (const r of good.summary.cases) {
      t.equal(r.verdict, 'pass', `${r.name}: ${r.summary}`);
      t.ok(
        r.evidence.steps.some((l) => /continuity: boot id boot-\d+, resumes 0 -> [01], .*: the same guest$/.test(l)),
        `${r.name}: the continuity step says so`,
      );
    }
    const { summary } = await run(kind, cases('suspended.resume.ack-ok.ignore'), { misbehave: 'boot-on-resume' });
    const bad = summary.cases[0]!;
    t.equal(bad.verdict, 'fail', `fail: ${bad.summary}`);
    t.deepEqual(bad.diffs, [], 'the model is met: Running, new domid');
    t.match(bad.invariantProblems.join('\n'), /continuity: boot id "boot-\d+" became "boot-\d+": the guest booted again/);
    t.match(bad.invariantProblems.join('\n'), /continuity: resumes went from 0 to 0, not 1/);
    t.end();
  });

test('without xenstored (no dom0), the check is skipped and said so', async (t) => {
  const { summary } = await run('xapi', cases('running.no_request.ack-ok.poweroff'), { misbehave: 'forget-domain-on-poweroff', xenstored: false });
  t.equal(summary.cases[0]!.verdict, 'pass', 'nothing to hold the toolstack against');
  t.notOk(
    summary.cases[0]!.evidence.steps.some((l) => /xenstored/.test(l)),
    'no xenstored step: the driver offers none',
  );
  t.end();
});

test('a guest that never boots is an error (environment), and its VM is still removed', async (t) => {
  const { summary, driver } = await run('xl', cases('running.pause.ack-ok.ignore'), { neverReady: () => true }, { timing: { ...FAKE_TIMING, boot: 100 } });
  t.equal(summary.cases[0]!.verdict, 'error');
  t.match(summary.cases[0]!.summary, /did not report state=ready/);
  t.deepEqual(driver.leftovers(), []);
  t.end();
});

test('unmodelled cases record what was observed and claim nothing', async (t) => {
  const { summary } = await run('xl', cases('running.suspend.ack-none.suspend'));
  const r = summary.cases[0]!;
  t.equal(r.verdict, 'unmodelled');
  t.ok(r.observation, 'observation kept');
  t.match(r.summary, /observed/);
  t.end();
});

class LeakyFake extends FakeToolstackDriver {
  override async uninstall(vm: VmRef): Promise<void> {
    if (vm.name.includes('pause')) throw new Error('uninstall refused');
    return super.uninstall(vm);
  }
}

test('a VM that cannot be removed makes the case an error naming it', async (t) => {
  const driver = new LeakyFake({ kind: 'xl' });
  const summary = await runMatrix({ driver, model: modelFor('xl'), cases: cases('running.pause.ack-ok.ignore'), image: IMAGE, timing: FAKE_TIMING });
  t.equal(summary.cases[0]!.verdict, 'error');
  t.ok(
    summary.cases[0]!.errors.some((e) => /may be left on the host/.test(e)),
    summary.cases[0]!.errors.join('; '),
  );
  await driver.close();
  t.end();
});

class FlakyStateFake extends FakeToolstackDriver {
  n = 0;
  override async state(vm: VmRef) {
    if (++this.n % 3 === 0) throw new ToolstackError('XL_EXIT_255', [], 'xl list');
    return super.state(vm);
  }
}

test('a state read that fails now and then (xl list racing a destroy) is retried, not an error', async (t) => {
  const driver = new FlakyStateFake({ kind: 'xl' });
  const summary = await runMatrix({ driver, model: modelFor('xl'), cases: matrixCases('smoke'), image: IMAGE, parallel: 4, timing: FAKE_TIMING });
  t.deepEqual(
    summary.cases.filter((c) => c.verdict !== 'pass').map((c) => `${c.name}: ${c.summary}`),
    [],
  );
  t.ok(
    summary.cases.some((c) => c.evidence.steps.some((st) => /state read failed, retrying/.test(st))),
    'the retries are in the steps',
  );
  t.deepEqual(driver.leftovers(), []);
  await driver.close();
  t.end();
});

class CountingFake extends FakeToolstackDriver {
  live = 0;
  maxLive = 0;
  override async install(o: InstallOptions): Promise<VmRef> {
    if (o.name.endsWith('-image-hold')) return super.install(o);
    this.live++;
    this.maxLive = Math.max(this.maxLive, this.live);
    return super.install(o);
  }
  override async uninstall(vm: VmRef): Promise<void> {
    if (!vm.name.endsWith('-image-hold')) this.live--;
    return super.uninstall(vm);
  }
}

test('--parallel N: at most N VMs at once, and more than one', async (t) => {
  const driver = new CountingFake({ kind: 'xl' });
  const cs = matrixCases('full')
    .filter((c) => c.run)
    .slice(0, 20);
  const summary = await runMatrix({ driver, model: modelFor('xl'), cases: cs, image: IMAGE, parallel: 3, timing: FAKE_TIMING });
  t.equal(summary.cases.length, 20);
  t.ok(driver.maxLive <= 3, `max ${driver.maxLive} at once`);
  t.ok(driver.maxLive > 1, 'ran in parallel');
  t.ok(driver.calls.includes('install xtv-image-hold'), 'the image is held on the host for the whole run');
  t.equal(driver.calls.at(-1), 'uninstall xtv-image-hold', 'and released at the end');
  t.deepEqual(driver.leftovers(), []);
  await driver.close();
  t.end();
});

test('onCaseStart: each case to run starts once, before its progress lines and its result, with its index and the total', async (t) => {
  const cs = [
    ...cases('running.clean_shutdown.ack-ok.poweroff', 'running.clean_reboot.ack-ok.reboot'),
    ...matrixCases('full')
      .filter((c) => !c.run)
      .slice(0, 1),
    ...cases('running.pause.ack-ok.ignore'),
  ];
  const runnable = cs.filter((c) => c.run).map((c) => c.scenario.name);
  const skipped = cs.find((c) => !c.run)!.scenario.name;
  const events: string[] = [];
  const { summary } = await run(
    'xl',
    cs,
    {},
    {
      parallel: 2,
      onCaseStart: (name, index, total) => events.push(`start ${name} ${index}/${total}`),
      progress: (line) => {
        const m = /^\[(\d+)\/\d+\] (\S+): /.exec(line);
        if (m) events.push(`line ${m[2]}`);
      },
      onResult: (r) => events.push(`result ${r.name}`),
    },
  );
  t.equal(summary.cases.length, cs.length);
  t.deepEqual(
    events.filter((e) => e.startsWith('start ')),
    runnable.map((name, i) => `start ${name} ${i}/${runnable.length}`),
    'one start per case to run, in order, index 0-based among the cases to run',
  );
  for (const name of runnable) {
    const start = events.indexOf(`start ${name} ${runnable.indexOf(name)}/${runnable.length}`);
    const firstLine = events.indexOf(`line ${name}`);
    const result = events.indexOf(`result ${name}`);
    t.ok(start >= 0 && firstLine > start && result > firstLine, `${name}: start, then its lines, then its result`);
  }
  t.notOk(
    events.some((e) => e.startsWith(`start ${skipped} `)),
    'a skipped case gets a result and no start',
  );
  t.ok(events.includes(`result ${skipped}`));
  t.end();
});

test('SIGINT midway: the run stops, every VM it made is destroyed, unstarted cases are errors', async (t) => {
  // Requests take 300 ms, so the signal lands while cases are mid-request.
  const driver = new FakeToolstackDriver({ kind: 'xl', requestDelayMs: 300 });
  const registry = new CleanupRegistry();
  const controller = new AbortController();
  const exits: number[] = [];
  const logs: string[] = [];
  const remove = installSignalCleanup({ registry, controller, graceMs: 5_000, drainMs: 1_000, log: (l) => logs.push(l), exit: (c) => exits.push(c) });
  const cs = matrixCases('full')
    .filter((c) => c.run)
    .slice(0, 12);
  let signalled = false;
  const p = runMatrix({
    driver,
    model: modelFor('xl'),
    cases: cs,
    image: IMAGE,
    parallel: 4,
    timing: FAKE_TIMING,
    signal: controller.signal,
    registry,
    progress: (l) => {
      if (!signalled && /request /.test(l)) {
        signalled = true;
        setTimeout(() => process.emit('SIGINT', 'SIGINT'), 50);
      }
    },
  });
  const summary = await p;
  remove();
  t.ok(signalled, 'the signal was sent mid-request');
  t.equal(summary.aborted, true);
  t.deepEqual(driver.leftovers(), [], 'nothing left on the (fake) host');
  t.equal(registry.size, 0, 'registry drained');
  t.deepEqual(exits, [], 'the run cleaned up by itself within the grace period');
  const interrupted = summary.cases.filter((c) => c.verdict === 'error');
  t.ok(interrupted.length >= cs.length - 4, `${interrupted.length} cases reported as error`);
  t.ok(
    summary.cases.some((c) => c.errors.some((e) => /interrupted/.test(e))),
    'in-flight cases say they were interrupted',
  );
  t.ok(
    summary.cases.some((c) => /^not run/.test(c.summary)),
    'unstarted cases say so',
  );
  t.ok(
    logs.some((l) => /SIGINT/.test(l)),
    'the handler said what it does',
  );
  await driver.close();
  t.end();
});

test('SIGINT while an install is in flight: the VM it makes afterwards is removed too', async (t) => {
  // The install completes 300 ms after the run stopped waiting for it (the host was slow).
  class SlowInstall extends FakeToolstackDriver {
    override async install(opts: Parameters<FakeToolstackDriver['install']>[0]) {
      await new Promise((r) => setTimeout(r, 300));
      return super.install(opts);
    }
  }
  const driver = new SlowInstall({ kind: 'xl' });
  const registry = new CleanupRegistry();
  const controller = new AbortController();
  const cs = matrixCases('full')
    .filter((c) => c.run)
    .slice(0, 2);
  const p = runMatrix({
    driver,
    model: modelFor('xl'),
    cases: cs,
    image: IMAGE,
    parallel: 2,
    timing: FAKE_TIMING,
    signal: controller.signal,
    registry,
    holdImage: false,
    progress: (l) => {
      if (/installing/.test(l) && !controller.signal.aborted) setTimeout(() => controller.abort(new Error('interrupted by SIGINT')), 20);
    },
  });
  const summary = await p;
  // Long enough for any install still running to finish.
  await new Promise((r) => setTimeout(r, 600));
  t.equal(summary.aborted, true);
  t.ok(
    driver.calls.some((c) => c.startsWith('install ')),
    'the installs were under way',
  );
  t.deepEqual(driver.leftovers(), [], 'what they made after the interrupt is gone');
  t.equal(registry.size, 0, 'registry drained');
  await driver.close();
  t.end();
});

test('a second SIGINT drains the registry at once and exits 130', async (t) => {
  const driver = new FakeToolstackDriver({ kind: 'xl' });
  const registry = new CleanupRegistry();
  const vm = await driver.install({ name: 'xtv-stuck', domainType: 'pv', memoryMiB: 32, kernelPath: '', initrdPath: '', kernelArgs: '' });
  await driver.start(vm);
  registry.add(driver, vm);
  const controller = new AbortController();
  const exited = new Promise<number>((resolve) => {
    const remove = installSignalCleanup({
      registry,
      controller,
      graceMs: 60_000,
      drainMs: 1_000,
      log: () => undefined,
      exit: (c) => {
        remove();
        resolve(c);
      },
    });
  });
  process.emit('SIGINT', 'SIGINT');
  t.ok(controller.signal.aborted, 'first signal: the run is asked to stop');
  process.emit('SIGINT', 'SIGINT');
  t.equal(await exited, 130);
  t.deepEqual(driver.leftovers(), [], 'the stuck VM was destroyed');
  await driver.close();
  t.end();
});

test('the console excerpt starts after what an earlier VM of the same name left in the log', (t) => {
  const old = 'xtv-agent 1 ready domid=3\nxtv-agent 2 event node=control/shutdown\nreboot: System halted';
  const now = `${old}\nxtv-agent 3 ready domid=9\n`;
  t.equal(lastLine(old), 'reboot: System halted');
  t.equal(textAfter(now, lastLine(old)), 'xtv-agent 3 ready domid=9\n');
  t.equal(textAfter(now, null), now, 'no anchor: all of it');
  t.equal(textAfter(now, 'gone from the tail'), now, 'anchor no longer there: all of it');
  t.equal(lastLine(''), null);
  t.end();
});

test('#16: a timing or feature case on a guest whose agent speaks xtv-control/1 is an error that says so, before anything is sent', async (t) => {
  const { summary } = await run(
    'xl',
    cases('running.clean_shutdown.ack-ok-late.poweroff', 'running.suspend.cant-suspend.ack-ok.suspend', 'running.clean_shutdown.ack-ok.poweroff'),
    {
      agentProtocols: 'xtv-control/1',
    },
  );
  const [late, cant, plain] = summary.cases;
  for (const c of [late!, cant!]) {
    t.equal(c.verdict, 'error', `${c.name}: error`);
    t.match(c.errors.join(' '), /needs an agent that speaks xtv-control\/2.*"xtv-control\/1".*npm run build:image/, '  saying what to do');
  }
  t.equal(plain!.verdict, 'pass', 'a plain case runs on it as before');
  t.end();
});

test('parallel runs start the cases that wait longest first; the results keep the matrix order', async (t) => {
  const driver = new FakeToolstackDriver({ kind: 'xl' });
  const started: string[] = [];
  const cs = cases(
    'running.clean_shutdown.ack-ok.poweroff',
    'running.clean_shutdown.ack-none.ignore',
    'running.clean_shutdown.ack-ok-late.poweroff',
    'paused.unpause.ack-ok.ignore',
  );
  const summary = await runMatrix({
    driver,
    model: modelFor('xl'),
    cases: cs,
    image: IMAGE,
    parallel: 1,
    timing: FAKE_TIMING,
    onCaseStart: (n) => started.push(n),
  });
  await driver.close();
  t.deepEqual(
    started,
    [
      'running.clean_shutdown.ack-none.ignore',
      'running.clean_shutdown.ack-ok-late.poweroff',
      'running.clean_shutdown.ack-ok.poweroff',
      'paused.unpause.ack-ok.ignore',
    ],
    'ack timeouts first, then the late guest, then the quick ones in matrix order',
  );
  t.deepEqual(
    summary.cases.map((c) => c.name),
    cs.map((c) => c.scenario.name),
    'results in the matrix order',
  );
  t.end();
});

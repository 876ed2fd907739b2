import test from 'tape';
import {
  ACK_KINDS,
  GUEST_ACTIONS,
  INITIAL_STATES,
  MATRIX_REQUESTS,
  SMOKE_CASES,
  allCases,
  caseName,
  CASE_TIMINGS,
  TIMED_REQUESTS,
  LIFECYCLE_SETTINGS,
  findCase,
  makeFilter,
  matrixCases,
} from '../../harness/matrix/scenarios.ts';
import { vmNameOf } from '../../harness/matrix/runner.ts';

test('the full matrix is every combination, then the timing, feature and lifecycle cases, each with one unique name', (t) => {
  const all = allCases();
  const timed = TIMED_REQUESTS.length * (CASE_TIMINGS.length - 1);
  const featured = TIMED_REQUESTS.length + 1;
  // Each setting against the guest's own shutdown; poweroff's and reboot's also against the request that asks for it.
  const lifecycled = LIFECYCLE_SETTINGS.reduce((n, l) => n + (l.startsWith('on-crash-') ? 1 : 2), 0);
  t.equal(all.length, INITIAL_STATES.length * MATRIX_REQUESTS.length * ACK_KINDS.length * GUEST_ACTIONS.length + timed + featured + lifecycled);
  t.equal(new Set(all.map((c) => c.scenario.name)).size, all.length, 'names are unique');
  for (const c of all) {
    const s = c.scenario;
    if (caseName(s.initial, s.request, s.ack, s.action, s.timing, s.features, s.lifecycle) !== s.name) t.fail(`name of ${JSON.stringify(s)}`);
  }
  t.deepEqual(
    all.filter((c) => c.scenario.lifecycle !== 'defaults' && c.scenario.lifecycle.startsWith('on-poweroff-')).map((c) => c.scenario.name),
    [
      'running.no_request.on-poweroff-restart.ack-ok.poweroff',
      'running.clean_shutdown.on-poweroff-restart.ack-ok.poweroff',
      'running.no_request.on-poweroff-preserve.ack-ok.poweroff',
      'running.clean_shutdown.on-poweroff-preserve.ack-ok.poweroff',
    ],
    'a lifecycle case: the setting after the request, against the shutdown of its kind, asked for or not',
  );
  t.ok(
    all.filter((c) => c.scenario.lifecycle !== 'defaults').every((c) => c.run && c.scenario.timing === 'prompt' && c.scenario.features === 'all'),
    'lifecycle cases run, with a prompt guest that advertises everything',
  );
  t.ok(makeFilter('running.no_request.on-crash-preserve.ack-ok.crash')('running.no_request.on-crash-preserve.ack-ok.crash'), '--filter reaches them');
  t.deepEqual(
    all.filter((c) => c.scenario.features !== 'all').map((c) => c.scenario.name),
    [
      'running.clean_shutdown.no-feature-poweroff.ack-ok.poweroff',
      'running.clean_reboot.no-feature-reboot.ack-ok.reboot',
      'running.suspend.no-feature-suspend.ack-ok.suspend',
      'running.suspend.cant-suspend.ack-ok.suspend',
    ],
    'the features cases: each request without its flag, and suspend with a reason not to',
  );
  const names = all.filter((c) => c.scenario.timing !== 'prompt').map((c) => c.scenario.name);
  t.equal(names.length, timed);
  t.ok(
    [
      'running.clean_shutdown.ack-ok-late.poweroff',
      'running.clean_reboot.ack-ok-inside.reboot',
      'running.suspend.ack-ok.suspend-late',
      'running.suspend.ack-ok.suspend-inside',
    ].every((n) => names.includes(n)),
    'the timing goes on the part it delays: ack-ok-late, suspend-late',
  );
  t.ok(
    all.filter((c) => c.scenario.timing !== 'prompt').every((c) => c.run && c.scenario.initial === 'running' && c.scenario.ack === 'ok'),
    'timing cases run, on a running guest that acks ok',
  );
  t.deepEqual(makeFilter('*-late*').call(null, 'running.suspend.ack-ok.suspend-late'), true, '--filter reaches them');
  t.ok(findCase('running.clean_shutdown.ack-none.poweroff')?.run, 'a guest-visible request on a running VM runs');
  t.end();
});

test('skipped cases say why; "equivalent to" points at a case that runs', (t) => {
  const all = allCases();
  const byName = new Map(all.map((c) => [c.scenario.name, c]));
  let skipped = 0;
  for (const c of all) {
    if (c.run) continue;
    skipped++;
    if (!c.skipReason || c.skipReason.length < 10) t.fail(`${c.scenario.name} has no reason`);
    if (c.equivalentTo) {
      const eq = byName.get(c.equivalentTo);
      if (!eq?.run) t.fail(`${c.scenario.name} is equivalent to ${c.equivalentTo}, which does not run`);
      if (!c.skipReason.startsWith(`equivalent to ${c.equivalentTo}`)) t.fail(`${c.scenario.name}: reason names the equivalent case`);
    }
  }
  t.ok(skipped > 0, `${skipped} skipped`);
  // Specific reasons.
  t.match(
    findCase('halted.clean_shutdown.ack-none.poweroff')!.run ? '' : (findCase('halted.clean_shutdown.ack-none.poweroff') as { skipReason: string }).skipReason,
    /Halted/,
  );
  t.match((findCase('running.hard_shutdown.ack-none.crash') as { skipReason: string }).skipReason, /equivalent to running\.hard_shutdown\.ack-ok\.ignore/);
  t.match((findCase('running.no_request.ack-none.crash') as { skipReason: string }).skipReason, /nothing to acknowledge/);
  t.equal(findCase('running.no_request.ack-ok.ignore')!.run, false, 'no request and no action is meaningless');
  t.end();
});

test('every (state, request) pair has at least one case that runs, except no_request when the guest cannot run', (t) => {
  const all = allCases();
  for (const initial of INITIAL_STATES)
    for (const request of MATRIX_REQUESTS) {
      const runs = all.some((c) => c.run && c.scenario.initial === initial && c.scenario.request === request);
      const expected = !(request === 'no_request' && initial !== 'running');
      if (runs !== expected) t.fail(`${initial}.${request}: runs=${runs}`);
    }
  t.pass('checked');
  t.end();
});

test('the smoke matrix lists runnable cases only, by name', (t) => {
  const smoke = matrixCases('smoke');
  t.equal(smoke.length, SMOKE_CASES.length);
  t.ok(
    smoke.every((c) => c.run),
    'all run',
  );
  t.ok(smoke.length >= 5 && smoke.length <= 20, `a handful (${smoke.length})`);
  t.end();
});

test("VM names (xtv-<case>) fit the xl driver's rule: 1-64 of A-Z a-z 0-9 . _ -, with any allowed prefix, and stay unique", (t) => {
  for (const prefix of ['xtv', 'xtv-e2e-run', 'a'.repeat(19)]) {
    const names = allCases().map((c) => vmNameOf(prefix, c.scenario.name));
    for (const n of names) if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(n) || !n.startsWith(`${prefix}-`)) t.fail(`${prefix}: ${n}`);
    t.equal(new Set(names).size, names.length, `${prefix}: unique`);
  }
  t.equal(vmNameOf('xtv', 'running.clean_shutdown.ack-ok.poweroff'), 'xtv-running.clean_shutdown.ack-ok.poweroff', 'short enough: PREFIX-CASE as it is');
  t.match(
    vmNameOf('xtv-e2e-run', 'running.clean_shutdown.no-feature-poweroff.ack-ok.poweroff'),
    /^xtv-e2e-run-running\.clean_shutdown\.no-feature-poweroff-[0-9a-f]{8}$/,
    'too long: cut, with a hash of the whole case name',
  );
  t.end();
});

test('--filter: substring, glob, several patterns', (t) => {
  const names = allCases().map((c) => c.scenario.name);
  const count = (p: string | undefined): number => names.filter(makeFilter(p)).length;
  t.equal(count(undefined), names.length, 'no filter keeps all');
  t.equal(count(''), names.length, 'empty filter keeps all');
  t.equal(count('clean_shutdown'), names.filter((n) => n.includes('clean_shutdown')).length, 'substring');
  t.equal(count('running.*.ack-none.poweroff'), MATRIX_REQUESTS.length, 'glob over the whole name');
  t.equal(count('running.suspend.ack-ok.suspend'), 1, 'exact name');
  t.equal(count('running.suspend.ack-ok.suspend, halted.pause.ack-ok.ignore'), 2, 'comma-separated');
  t.equal(count('running.?ause.ack-ok.ignore'), 1, '? is one character');
  t.equal(count('running.clean_shutdown'), 24 + 4 + 1 + 2, 'a prefix is a substring (the timing, feature and lifecycle cases too)');
  t.equal(count('on-crash-'), 6, 'the lifecycle dimension by its name part');
  t.equal(count('running.clean_shutdown.ack-ok.poweroff'), 1, "a case's whole name is that case, not its timing variants");
  t.equal(count('ack-ok-late'), TIMED_REQUESTS.length, 'a dimension by its name part');
  t.equal(count('nothing-like-this'), 0);
  t.equal(count('running.[a].x'), 0, 'regex characters are literal');
  t.end();
});

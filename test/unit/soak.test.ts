// `xtv soak` on the in-memory toolstack (--host fake): loops, durations,
// continuity, a guest that boots afresh instead of resuming, reports, bad
// flags. The same command on the embedded host is in test/e2e/xl-cli.test.ts.
import test from 'tape';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseSoakArgs, runSoak, type SoakIo } from '../../harness/cli/soak-command.ts';
import { soakStats, type SoakIteration } from '../../harness/soak/soak.ts';
import { soakJUnit, soakTap, soakText } from '../../harness/soak/soak-report.ts';

/** `xtv soak --host fake ARGV`, its reports in a directory of its own unless ARGV names one. */
async function soakFake(argv: string[], fake: SoakIo['fake'] = {}): Promise<{ rc: number; out: string; err: string[] }> {
  let out = '';
  const err: string[] = [];
  const own = argv.includes('--report-dir') ? null : mkdtempSync(join(tmpdir(), 'xtv-soak-'));
  try {
    const rc = await runSoak(['--host', 'fake', ...argv, ...(own ? ['--report-dir', own] : [])], {
      out: (t) => (out += t),
      err: (l) => err.push(l),
      exit: () => undefined,
      fake,
    });
    return { rc, out, err };
  } finally {
    if (own) rmSync(own, { recursive: true, force: true });
  }
}

test('soak: N loops of each operation, each the same guest; durations summed up; exit 0', async (t) => {
  const r = await soakFake(['--loops', '3', '--ops', 'suspend,pause']);
  t.equal(r.rc, 0, 'exit 0');
  const lines = r.out.split('\n').filter((l) => l.startsWith('loop '));
  t.deepEqual(
    lines.map((l) => l.split(':')[0]),
    ['loop 1/3 suspend', 'loop 1/3 pause', 'loop 2/3 suspend', 'loop 2/3 pause', 'loop 3/3 suspend', 'loop 3/3 pause'],
    'a line per iteration, in order',
  );
  t.ok(
    lines.every((l) => l.endsWith(': the same guest')),
    'each says the same guest',
  );
  t.match(lines[4]!, /resumes 2 -> 3/, 'the third suspend is the third resume');
  t.match(r.out, /^ {2}step +n +min +median +max$/m, 'a min / median / max table');
  t.match(r.out, /^ {2}suspend +3 /m, 'suspend measured 3 times');
  t.match(r.out, /^ {2}agent back +6 /m, 'the agent back after each of the 6');
  t.match(r.out, /soak passed: 6 iterations/, 'passed');
  t.ok(
    r.err.some((l) => /removing xtv-soak/.test(l)),
    'the VM is removed at the end',
  );
});

for (const toolstack of ['xl', 'xapi'] as const)
  test(`soak --ops migrate (${toolstack}): one request a loop, a new domain each time, the same guest`, async (t) => {
    const r = await soakFake(['--loops', '2', '--ops', 'migrate,suspend', '--toolstack', toolstack, '--domain-type', 'pvh']);
    t.equal(r.rc, 0, 'exit 0');
    const lines = r.out.split('\n').filter((l) => l.startsWith('loop '));
    t.deepEqual(
      lines.map((l) => l.split(':')[0]),
      ['loop 1/2 migrate', 'loop 1/2 suspend', 'loop 2/2 migrate', 'loop 2/2 suspend'],
    );
    t.match(lines[0]!, /resumes 0 -> 1.*: the same guest$/, 'a migration is a resume');
    t.match(lines[2]!, /resumes 2 -> 3/, 'counted with the suspends');
    t.match(r.out, /^ {2}migrate +2 /m, 'migrate measured twice');
  });

test('soak --ops migrate on a host that cannot migrate PV: exit 2 before any VM is made, with the reason', async (t) => {
  const r = await soakFake(['--loops', '1', '--ops', 'migrate'], { cannotMigrate: { pv: 'this host cannot live-migrate PV domains: no shadow paging' } });
  t.equal(r.rc, 2, 'exit 2');
  t.match(
    r.err.join('\n'),
    /--ops migrate: this host cannot live-migrate PV domains: no shadow paging \(--domain-type pvh migrates\)/,
    'says why, and what does',
  );
  t.notOk(
    r.err.some((l) => /installing/.test(l)),
    'nothing installed',
  );
});

test('soak: a guest that boots afresh instead of resuming fails, with what broke', async (t) => {
  const r = await soakFake(['--loops', '2'], { misbehave: 'boot-on-resume' });
  t.equal(r.rc, 1, 'exit 1');
  t.match(r.out, /loop 1\/2 suspend: .*FAILED: boot id "boot-1" became "boot-2": the guest booted again; resumes went from 0 to 0, not 1/, 'the evidence');
  t.match(r.out, /soak FAILED: 2 of 2 iterations broke/, 'the verdict');
});

test('soak --json and --report-dir: the outcome as JSON, TAP, JUnit XML', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-soak-'));
  try {
    const r = await soakFake(['--loops', '2', '--toolstack', 'xapi', '--json', '--report-dir', dir]);
    t.equal(r.rc, 0, 'exit 0');
    const j = JSON.parse(r.out) as { ok: boolean; toolstack: string; iterations: SoakIteration[]; stats: Array<{ step: string; n: number }> };
    t.equal(j.ok, true, 'ok: true');
    t.equal(j.toolstack, 'xapi', 'through the XAPI fake');
    t.equal(j.iterations.length, 2, 'two iterations');
    t.deepEqual(
      j.stats.map((s) => [s.step, s.n]),
      [
        ['suspend', 2],
        ['resume', 2],
        ['agent back', 2],
      ],
      'stats per step',
    );
    for (const f of ['xtv-soak.tap', 'xtv-soak.junit.xml', 'xtv-soak.json']) t.ok(existsSync(join(dir, f)), `${f} written`);
    t.match(readFileSync(join(dir, 'xtv-soak.tap'), 'utf8'), /^1\.\.2\nok 1 - loop 1 suspend\n/m, 'TAP: a test per iteration');
    t.deepEqual(readdirSync(join(dir, '.xtv-journal')), [], 'the journal of its VM: gone once the VM is');
    t.match(readFileSync(join(dir, 'xtv-soak.junit.xml'), 'utf8'), /<testsuite name="xtv soak xtv-soak" tests="2" failures="0"/, 'JUnit: a suite of 2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('soak: bad flags are usage errors (exit 2) and nothing is made', async (t) => {
  for (const [argv, msg] of [
    [['--loops', '0'], /--loops wants a whole number from 1/],
    [['--loops', 'ten'], /--loops wants a whole number/],
    [['--ops', 'suspend,migrate-to-mars'], /--ops: 'migrate-to-mars' is not an operation \(suspend, pause, migrate\)/],
    [['--ops', 'pause,pause'], /names an operation twice/],
    [['--name', '1bad'], /--name wants a letter/],
    [['--domain-type', 'hvm'], /domain-type/],
    [['--bogus'], /bogus/],
  ] as const) {
    const r = await soakFake([...argv]);
    t.equal(r.rc, 2, `${argv.join(' ')}: exit 2`);
    t.match(r.err.join('\n'), msg, `${argv.join(' ')}: says why`);
    t.notOk(
      r.err.some((l) => /installing/.test(l)),
      `${argv.join(' ')}: nothing installed`,
    );
  }
  t.deepEqual(parseSoakArgs(['--host', 'fake']).ops, ['suspend'], 'default: suspend');
  t.equal(parseSoakArgs(['--host', 'fake']).loops, 10, 'default: 10 loops');
  t.equal(parseSoakArgs(['--host', 'fake']).reportDir, resolve('xtv-report'), "default reports: xtv-report, as xtv run's");
});

test('soakStats: min, median (the mean of the middle two when even), max per step', (t) => {
  const it = (ms: number[]): SoakIteration[] =>
    ms.map((m, i) => ({ loop: i + 1, op: 'suspend', durations: { suspend: m }, continuity: '', domids: [null, null], problems: [] }));
  t.deepEqual(soakStats(it([5, 1, 3])), [{ step: 'suspend', n: 3, minMs: 1, medianMs: 3, maxMs: 5 }]);
  t.deepEqual(soakStats(it([4, 1, 3, 10])), [{ step: 'suspend', n: 4, minMs: 1, medianMs: 4, maxMs: 10 }]);
  t.deepEqual(soakStats([]), []);
  t.end();
});

test('soak: a guest that never gets ready fails the soak with why; the VM is still removed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-soak-'));
  try {
    const r = await soakFake(['--loops', '1', '--report-dir', dir], { neverReady: () => true });
    t.equal(r.rc, 1, 'exit 1');
    t.match(r.out, /soak FAILED: 0 of 0 iterations broke; the guest did not report state=ready/, 'says why');
    t.ok(
      r.err.some((l) => /removing xtv-soak/.test(l)),
      'the VM is removed',
    );
    t.match(readFileSync(join(dir, 'xtv-soak.tap'), 'utf8'), /^1\.\.1\nnot ok 1 - soak # the guest did not report state=ready/m, 'TAP: the soak itself fails');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('soak reports: an interrupted soak is a failing test in TAP and an error in JUnit', (t) => {
  const s = {
    vm: 'v',
    toolstack: 'xl',
    host: 'fake',
    domainType: 'pv',
    loops: 3,
    ops: ['suspend'] as const,
    startedAt: '2026-12-03T00:00:00.000Z',
    finishedAt: '2026-12-03T00:00:01.000Z',
    aborted: true,
    iterations: [
      { loop: 1, op: 'suspend' as const, durations: { suspend: 5 }, continuity: 'the same guest', domids: [1, 2] as [number, number], problems: [] },
    ],
  };
  t.equal(soakTap(s), 'TAP version 13\n1..2\nok 1 - loop 1 suspend\n  # the same guest\nnot ok 2 - soak # interrupted\n');
  t.match(soakJUnit(s), /tests="2" failures="1"[^]*<error message="interrupted"\/>/);
  t.match(soakText(s), /soak FAILED: 0 of 1 iterations broke; interrupted/);
  t.end();
});

// The CLI's habits (issue #15, items 9 and 16): --version, `xtv list`, the
// exit codes of `xtv run` (0 / 1 a case failed / 3 undecided), its progress
// lines (time, ETA, heartbeat) and --report-dir checked before anything runs.
import test from 'tape';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkReportDir, durationText, progressLog, runExitCode, runRun, type RunIo } from '../../harness/cli/run-command.ts';
import { UsageError } from '../../harness/cli/command.ts';
import { listVms, listVmsText } from '../../harness/cli/list-command.ts';
import { FakeToolstackDriver } from '../../testing/fake-driver.ts';
import { runCli } from './cli-capture.ts';

const PKG_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function capture(extra: Partial<RunIo> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: RunIo = {
    out: (t) => {
      out.push(t);
    },
    err: (l) => {
      err.push(l);
    },
    exit: () => undefined,
    ...extra,
  };
  return { out, err, io };
}

async function withDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-habits-'));
  try {
    return await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('xtv --version and xtv version: the package version and Node.js version, exit 0', async (t) => {
  const esc = PKG_VERSION.replace(/\./g, '\\.');
  const v = await runCli(['--version']);
  t.equal(v.code, 0);
  t.match(v.out, new RegExp(`^xtv ${esc} \\(Node\\.js ${process.version.replace(/\./g, '\\.')}\\)\\n$`));
  t.equal(v.err, '');
  const d = await runCli(['--debug', '--version']);
  t.equal(d.code, 0, '--debug before it changes nothing');
  t.equal(d.out, v.out);
  const c = await runCli(['version']);
  t.equal(c.code, 0);
  t.equal(c.out, v.out, 'xtv version says the same');
  const j = await runCli(['version', '--json']);
  t.equal(j.code, 0);
  t.deepEqual(JSON.parse(j.out), { xtv: PKG_VERSION, node: process.version });
  const bad = await runCli(['version', '--host', 'x']);
  t.equal(bad.code, 2, 'version takes no connection options');
  t.end();
});

test('xtv --help: list, version, --version and the exit codes of run', async (t) => {
  const h = await runCli(['--help']);
  t.equal(h.code, 0);
  t.match(h.out, /^ {2}list {2,}list the VMs xtv made/m);
  t.match(h.out, /^ {2}version {2,}/m);
  t.match(h.out, /xtv --version/);
  t.match(h.out, /3 \(xtv run\) no case failed but some could not be decided/);
  for (const c of ['list', 'version', 'run']) {
    const u = await runCli([c, '--help']);
    t.equal(u.code, 0, `xtv ${c} --help: exit 0`);
    t.ok(u.out.startsWith(`usage: xtv ${c}`) && u.out.includes('exit codes'), `xtv ${c} --help: usage and exit codes`);
  }
  const r = await runCli(['run', '--help']);
  t.match(r.out, /exit codes: 0 every case passed[\s\S]*1 a case failed[\s\S]*2 usage[\s\S]*3 no case failed but some could not be decided/);
  t.end();
});

test('xtv list: the VMs xtv made with their power states, one line each or JSON', async (t) => {
  const d = new FakeToolstackDriver({ kind: 'xl' });
  try {
    const install = (name: string) => d.install({ name, kernelPath: '/k', initrdPath: '/i', kernelArgs: '', domainType: 'pv', memoryMiB: 32 });
    const a = await install('xtv-b');
    await install('xtv-a');
    await install('other-c');
    await d.start(a);
    const rows = await listVms(d);
    t.deepEqual(
      rows.map((r) => [r.name, r.powerState, r.domid]),
      [
        ['other-c', 'Halted', null],
        ['xtv-a', 'Halted', null],
        ['xtv-b', 'Running', 1],
      ],
      'by name, with power state and domid',
    );
    const text = listVmsText(rows).split('\n');
    t.equal(text.length, 3, 'one line per VM');
    t.match(text[2]!, /^xtv-b\s+Running\s+1\s+fake:xtv-b$/);
    t.match(text[0]!, /^other-c\s+Halted\s+-\s+fake:other-c$/);
    const only = await listVms(d, 'xtv-');
    t.deepEqual(
      only.map((r) => r.name),
      ['xtv-a', 'xtv-b'],
      '--prefix keeps only those names',
    );
    t.equal(listVmsText([], 'ci-'), 'nothing made by xtv on this host named ci-*');
    t.match(
      listVmsText([{ name: 'xtv-x', id: 'x', powerState: null, domid: null, error: 'gone' }]),
      /^xtv-x\s+\?.*\(gone\)$/,
      'a VM the toolstack cannot describe',
    );
  } finally {
    await d.close();
  }
  const txt = await runCli(['list', '--host', 'fake']);
  t.equal(txt.code, 0);
  t.equal(txt.out, 'nothing made by xtv on this host\n', '--host fake: an empty in-memory host');
  const json = await runCli(['list', '--host', 'fake', '--json']);
  t.equal(json.code, 0);
  t.deepEqual(JSON.parse(json.out), { ok: true, vms: [] });
  const bad = await runCli(['list', 'extra', '--host', 'fake']);
  t.equal(bad.code, 2, 'no positional arguments');
  t.end();
});

test('runExitCode: 1 a case failed (or interrupted), 3 errors and no fail (or nothing ran), else 0', (t) => {
  const counts = (o: Partial<Record<'pass' | 'skip' | 'unmodelled' | 'error' | 'fail', number>>) => ({
    pass: 0,
    skip: 0,
    unmodelled: 0,
    error: 0,
    fail: 0,
    ...o,
  });
  const cases = [{}] as never[];
  t.equal(runExitCode({ counts: counts({ pass: 3, skip: 2, unmodelled: 1 }), aborted: false, cases }), 0);
  t.equal(runExitCode({ counts: counts({ pass: 1, fail: 1, error: 4 }), aborted: false, cases }), 1, 'a fail wins over errors');
  t.equal(runExitCode({ counts: counts({ pass: 1, error: 1 }), aborted: false, cases }), 3);
  t.equal(runExitCode({ counts: counts({ error: 2 }), aborted: true, cases }), 1, 'Ctrl-C: 1, as before');
  t.equal(runExitCode({ counts: counts({}), aborted: false, cases: [] }), 3, 'nothing ran: nothing decided');
  t.end();
});

test('xtv run --host fake: exit 0 when every case passes, 1 when one fails, 3 when one errors and none fails', async (t) => {
  await withDir(async (dir) => {
    const ok = capture();
    t.equal(await runRun(['--host', 'fake', '--filter', 'running.clean_shutdown.ack-ok.poweroff', '--report-dir', join(dir, 'ok')], ok.io), 0, 'pass: 0');
    t.match(ok.out.join(''), /^ok 1 - pass /m);

    // xl's daemon restarting a powered-off domain breaks the model: fail.
    const bad = capture({ fake: { misbehave: 'restart-on-poweroff' } });
    const badCode = await runRun(['--host', 'fake', '--filter', 'running.clean_shutdown.ack-ok.poweroff', '--report-dir', join(dir, 'fail')], bad.io);
    t.equal(badCode, 1, 'fail: 1');
    t.match(bad.out.join(''), /^not ok 1 - fail /m);

    // A guest that never reports ready: the harness cannot decide (error).
    const err = capture({ fake: { neverReady: () => true } });
    const errCode = await runRun(['--host', 'fake', '--filter', 'running.pause.ack-ok.ignore', '--report-dir', join(dir, 'error')], err.io);
    t.equal(errCode, 3, 'error and no fail: 3');
    t.match(err.out.join(''), /^not ok 1 - error /m);

    // Both at once: the fail wins.
    const both = capture({ fake: { misbehave: 'restart-on-poweroff', neverReady: (n) => n.includes('pause') } });
    const bothCode = await runRun(
      [
        '--host',
        'fake',
        '--parallel',
        '2',
        '--filter',
        'running.clean_shutdown.ack-ok.poweroff,running.pause.ack-ok.ignore',
        '--report-dir',
        join(dir, 'both'),
      ],
      both.io,
    );
    t.equal(bothCode, 1, 'fail and error: 1');
  });
  t.end();
});

test("xtv run's progress: each line after the time, an ETA when a case ends, a heartbeat during long waits", async (t) => {
  await withDir(async (dir) => {
    const o = capture();
    t.equal(await runRun(['--host', 'fake', '--parallel', '2', '--filter', 'running.clean_*', '--report-dir', dir], o.io), 0);
    const progress = o.err.filter((l) => /\[\d+\/\d+\] /.test(l));
    t.ok(progress.length > 0);
    t.ok(
      progress.every((l) => /^\[\d\d:\d\d:\d\d\] \[\d+\/\d+\] /.test(l)),
      'every case line starts with [HH:MM:SS]',
    );
    t.match(o.err.join('\n'), /^\[\d\d:\d\d:\d\d\] xtv run: connecting to fake \(xl\)$/m);
    const done = progress.filter((l) => / done\)/.test(l));
    t.equal(done.length, 5, 'the five running.clean_* cases of the smoke matrix');
    t.ok(
      done.filter((l) => !/\(5\/5 done\)/.test(l)).every((l) => /: pass \([1-4]\/5 done\) ETA \d\d:\d\d:\d\d \(~\d+s left\)$/.test(l)),
      'the ETA follows "(N/5 done)"',
    );
    t.ok(
      done.some((l) => /: pass \(5\/5 done\)$/.test(l)),
      'the last one has no ETA',
    );
    t.match(o.err.join('\n'), /^VERDICT\s+CASE/m, 'the table is not timestamped');

    const slow = capture({ fake: { neverReady: () => true }, heartbeatMs: 400 });
    t.equal(await runRun(['--host', 'fake', '--filter', 'running.pause.ack-ok.ignore', '--report-dir', join(dir, 'slow')], slow.io), 3);
    t.match(slow.err.join('\n'), /^\[\d\d:\d\d:\d\d\] still waiting: 1 case\(s\) in flight, oldest for \d+ s$/m, 'heartbeat while the guest does not boot');
  });

  // The same, on a clock of its own.
  let now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const lines: string[] = [];
  const log = progressLog((l) => lines.push(l), { now: () => now, heartbeatMs: 1e9 });
  log.caseStarted('a.b');
  log.line('[1/3] a.b: installing');
  now += 60_000;
  log.line('[1/3] a.b: pass (1/3 done)');
  log.caseEnded('a.b');
  log.stop();
  t.match(lines[1]!, /\[1\/3\] a\.b: pass \(1\/3 done\) ETA \d\d:\d\d:\d\d \(~2m00s left\)$/, 'one case a minute, two left: two minutes');
  t.equal(durationText(3_700_000), '1h01m');
  t.equal(durationText(59_400), '59s');
  t.end();
});

test("the heartbeat knows which cases are in flight from the runner's events, not from its text", async (t) => {
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let now = 0;
  const lines: string[] = [];
  const log = progressLog((l) => lines.push(l), { now: () => now, heartbeatMs: 40 });
  const waiting = () => lines.filter((l) => / still waiting: /.test(l));
  try {
    log.line('[1/2] looks.like.a.case: installing');
    now += 100;
    await wait(60);
    t.deepEqual(waiting(), [], 'a line that looks like a case line starts nothing');

    log.caseStarted('a.b');
    now += 50;
    log.caseStarted('c.d');
    now += 100;
    await wait(60);
    t.match(waiting().at(-1) ?? '', /still waiting: 2 case\(s\) in flight, oldest for 0 s$/, 'two started cases, with no line of their own');

    log.caseEnded('a.b');
    log.caseEnded('never.started');
    now += 100;
    await wait(60);
    t.match(waiting().at(-1) ?? '', /still waiting: 1 case\(s\) in flight/, 'an ended case leaves; an unknown name changes nothing');

    log.caseEnded('c.d');
    const before = waiting().length;
    now += 100;
    await wait(60);
    t.equal(waiting().length, before, 'nothing in flight: no heartbeat');
  } finally {
    log.stop();
  }
  t.end();
});

test('--report-dir is checked before anything runs: /proc, /sys, /dev refused, unwritable or uncreatable refused (exit 2)', async (t) => {
  for (const bad of ['/proc/xtv-report', '/sys', '/dev/shm/x']) {
    const o = capture();
    t.equal(await runRun(['--host', 'fake', '--report-dir', bad], o.io), 2, `${bad}: exit 2`);
    t.match(o.err.join('\n'), /--report-dir \S+ is in a kernel file system \(\/proc, \/sys, \/dev\): choose a directory on disk/);
    t.match(o.err.join('\n'), /see: xtv run --help/, 'a usage error');
    t.deepEqual(o.out, [], 'no TAP: nothing ran');
    t.notOk(/connecting/.test(o.err.join('\n')), 'before connecting');
  }
  t.throws(() => checkReportDir('/proc'), UsageError);
  await withDir(async (dir) => {
    symlinkSync('/proc/self', join(dir, 'link'));
    t.throws(() => checkReportDir(join(dir, 'link', 'reports')), /kernel file system/, 'also through a symbolic link');

    writeFileSync(join(dir, 'file'), 'x');
    const o = capture();
    t.equal(await runRun(['--host', 'fake', '--report-dir', join(dir, 'file', 'sub')], o.io), 2, 'a path through a regular file: exit 2');
    t.match(o.err.join('\n'), /--report-dir \S+ cannot be created \((ENOTDIR|EEXIST)\)/);
    t.deepEqual(o.out, [], 'nothing ran');

    // The probe cannot be written (here: its name is taken by a directory, which stops root as well).
    const taken = join(dir, 'taken');
    mkdirSync(join(taken, `.xtv-write-probe-${process.pid}`), { recursive: true });
    const w = capture();
    t.equal(await runRun(['--host', 'fake', '--report-dir', taken], w.io), 2, 'not writable: exit 2');
    t.match(w.err.join('\n'), /--report-dir \S+ is not writable \(EISDIR\)/);
    t.deepEqual(w.out, [], 'nothing ran');

    if (process.getuid?.() !== 0) {
      const ro = join(dir, 'ro');
      mkdirSync(ro);
      chmodSync(ro, 0o555);
      t.throws(() => checkReportDir(ro), /is not writable \(EACCES\)/, 'a read-only directory');
      t.throws(() => checkReportDir(join(ro, 'sub')), /cannot be created \(EACCES\)/, 'under a read-only directory');
      chmodSync(ro, 0o755);
    } else t.comment('running as root: permission bits do not stop root (the EISDIR case above covers the write check)');

    const fresh = join(dir, 'new', 'deeper');
    checkReportDir(fresh);
    t.ok(existsSync(fresh), 'a missing directory is made');
    t.deepEqual(readdirSync(fresh), [], 'and the probe is gone');
  });
  t.end();
});

test('#15 item 11: --help after -- belongs to the command run, not to xtv', async (t) => {
  const r = await runCli(['host', 'exec', '--state-dir', '/nonexistent/xtv-state', '--', 'ls', '-h']);
  t.notOk(r.out.startsWith('usage: xtv host'), 'no usage printed');
  t.equal(r.code, 2, `it tried to run it (no host there: exit 2): ${r.err.split('\n')[0]}`);
  t.end();
});

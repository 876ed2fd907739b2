// `xtv run`'s journal (issue #15 item 8): every VM is written down before it
// is made, so a run killed outright (kill -9) leaves a trace the next run
// sweeps; SIGHUP (a dropped SSH session) stops a run like Ctrl-C.
import test from 'tape';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runRun } from '../../harness/cli/run-command.ts';
import { FileJournal, hostDescription, journalDir, sweepJournal } from '../../harness/cli/run-journal.ts';
import { CleanupRegistry } from '../../harness/matrix/cleanup.ts';
import { formatEntry, outstanding, parseJournal, type JournalEntry } from '../../harness/matrix/journal.ts';
import { modelFor } from '../../harness/matrix/models.ts';
import { runMatrix } from '../../harness/matrix/runner.ts';
import { matrixCases } from '../../harness/matrix/scenarios.ts';
import { currentOwner, formatOwner } from '../../harness/toolstack/vm-owner.ts';
import { FAKE_TIMING, FakeToolstackDriver } from '../../testing/fake-driver.ts';

const XTV = fileURLToPath(new URL('../../bin/xtv.js', import.meta.url));
const IMAGE = { kernelPath: '/fake/k', initrdPath: '/fake/i', kernelArgs: '', domainType: 'pv' as const, memoryMiB: 32 };
/** A process of this machine that no longer runs (no pid is this high). */
const DEAD_OWNER = formatOwner({ user: 'ci', host: hostname(), pid: 2_147_483_000, started: '2025-01-01T00:00:00.000Z' });
const ALIVE_OWNER = formatOwner(currentOwner());

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => void out.push(t), err: (l: string) => void err.push(l), exit: () => undefined } };
}

/** Every entry of every journal file in the report directory. */
function journalFiles(reportDir: string): Array<{ file: string; entries: JournalEntry[] }> {
  const dir = journalDir(reportDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => ({ file: f, entries: parseJournal(readFileSync(join(dir, f), 'utf8')) }));
}

const openEntries = (reportDir: string): JournalEntry[] => journalFiles(reportDir).flatMap((f) => outstanding(f.entries));

/** A dead run's journal: these VMs installed on the fake host, never removed. */
function deadRunJournal(reportDir: string, vms: string[], owner = DEAD_OWNER, host = 'fake'): string {
  const dir = journalDir(reportDir);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `run-${owner === DEAD_OWNER ? 'dead' : 'alive'}-${vms.join('_')}.jsonl`);
  const time = new Date().toISOString();
  const lines = vms.map((vm) => formatEntry({ event: 'installing', host, toolstack: 'xl', vm, owner, time }));
  // A VM that this run did remove, and a line torn by the kill.
  lines.push(formatEntry({ event: 'installing', host, toolstack: 'xl', vm: 'old-gone', owner, time }));
  lines.push(formatEntry({ event: 'removed', host, toolstack: 'xl', vm: 'old-gone', owner, time }));
  lines.push('{"event":"install');
  writeFileSync(path, lines.join(''));
  return path;
}

/** A fake host holding VMs made by `owner`. */
async function hostWith(vms: string[], owner: string): Promise<FakeToolstackDriver> {
  const d = new FakeToolstackDriver({ kind: 'xl' });
  for (const name of vms) {
    await d.install({ name, ...IMAGE });
    d.vms.get(name)!.owner = owner;
  }
  return d;
}

function waitClose(child: ReturnType<typeof spawn>, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what}: xtv run did not end within 60 s`));
    }, 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

test('journal entries: parsing skips torn lines; outstanding = installed and never removed', (t) => {
  const e = (event: JournalEntry['event'], vm: string, host = 'fake'): string =>
    formatEntry({ event, host, toolstack: 'xl', vm, owner: DEAD_OWNER, time: '2025-01-01T00:00:00Z' });
  const text = e('installing', 'a') + e('installing', 'b') + e('removed', 'a') + e('installing', 'b', 'ssh://root@h') + 'not json\n{"event":"inst';
  const entries = parseJournal(text);
  t.equal(entries.length, 4, 'the torn and foreign lines are skipped');
  t.deepEqual(
    outstanding(entries).map((x) => `${x.host} ${x.vm}`),
    ['fake b', 'ssh://root@h b'],
    'per host: a removed VM is settled',
  );
  t.deepEqual(outstanding(parseJournal(e('installing', 'a') + e('removed', 'a') + e('installing', 'a'))).length, 1, 'installed again after removal');
  t.end();
});

test('the host as journaled: --host as given, never a password', (t) => {
  t.equal(hostDescription('https://root:s3cret@xs.example:443/'), 'https://root@xs.example:443/');
  t.equal(hostDescription('https://xs.example'), 'https://xs.example');
  t.equal(hostDescription('ssh://root@dom0:2222'), 'ssh://root@dom0:2222');
  t.equal(hostDescription('fake'), 'fake');
  t.equal(hostDescription('embedded', '/s/host'), 'embedded:/s/host', 'the embedded host is its state directory');
  t.end();
});

test('each VM is journaled (and fsync’d) before install is called, and again once removed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-journal-'));
  try {
    const journal = new FileJournal({ dir: journalDir(dir), host: 'fake', toolstack: 'xl', warn: (l) => t.fail(l) });
    const driver = new FakeToolstackDriver({ kind: 'xl' });
    const seenAtInstall: string[] = [];
    const install = driver.install.bind(driver);
    driver.install = async (o) => {
      const open = outstanding(parseJournal(readFileSync(journal.path, 'utf8'))).map((e) => e.vm);
      seenAtInstall.push(`${o.name}: ${open.includes(o.name) ? 'journaled' : 'NOT journaled'}`);
      return install(o);
    };
    const cases = matrixCases('smoke')
      .filter((c) => c.run)
      .slice(0, 2);
    const summary = await runMatrix({ driver, model: modelFor('xl'), cases, image: IMAGE, timing: FAKE_TIMING, registry: new CleanupRegistry(journal) });
    t.deepEqual(
      summary.cases.map((c) => c.verdict),
      ['pass', 'pass'],
    );
    t.deepEqual(seenAtInstall, ['xtv-image-hold: journaled', ...cases.map((c) => `xtv-${c.scenario.name}: journaled`)]);
    const entries = parseJournal(readFileSync(journal.path, 'utf8'));
    t.equal(entries.filter((e) => e.event === 'removed').length, 3, 'a removal line for each VM');
    t.ok(
      entries.every((e) => e.host === 'fake' && e.toolstack === 'xl' && e.owner === ALIVE_OWNER && !Number.isNaN(Date.parse(e.time))),
      'host, toolstack, owner and time on every line',
    );
    journal.close();
    t.notOk(existsSync(journal.path), 'closed with nothing left on the host: the file goes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('the next run sweeps what a dead run left on the same host, and compacts the journal', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-journal-'));
  try {
    const left = ['xtv-running.clean_shutdown.ack-ok.poweroff', 'xtv-image-hold'];
    const deadFile = deadRunJournal(dir, [...left, 'xtv-vanished']);
    const otherHost = deadRunJournal(dir, ['xtv-elsewhere'], DEAD_OWNER, 'ssh://root@other');
    const driver = await hostWith([...left, 'someone-elses'], DEAD_OWNER);
    const o = io();
    const code = await runRun(['--host', 'fake', '--filter', 'running.clean_shutdown.ack-ok.poweroff', '--report-dir', dir], { ...o.io, driver });
    t.equal(code, 0, 'then the run itself passes');
    const err = o.err.join('\n');
    for (const vm of left)
      t.match(err, new RegExp(`journal: removed ${vm.replace(/\./g, '\\.')}, left by a run that is gone \\(ci@\\S+ pid 2147483000 has exited\\)`));
    t.match(err, /journal: 1 VM\(s\) of dead runs no longer on fake, dropped from the journal: xtv-vanished/);
    t.deepEqual(driver.leftovers(), ['someone-elses'], 'only the VM the journal does not name is left');
    t.ok(
      driver.calls.indexOf(`uninstall ${left[0]}`) < driver.calls.lastIndexOf(`install ${left[0]}`),
      'swept before the run installs its own VM of that name',
    );
    t.notOk(existsSync(deadFile), 'the dead run’s file, now settled, is gone');
    t.deepEqual(
      outstanding(parseJournal(readFileSync(otherHost, 'utf8'))).map((e) => e.vm),
      ['xtv-elsewhere'],
      'another host’s entry is kept for a run against that host',
    );
    t.equal(parseJournal(readFileSync(otherHost, 'utf8')).length, 1, '... and only it: that file is compacted');
    t.deepEqual(
      openEntries(dir).map((e) => e.vm),
      ['xtv-elsewhere'],
      'this run left nothing open',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('a VM whose owner is still running is not swept (nor its run’s journal touched)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-journal-'));
  try {
    const file = deadRunJournal(dir, ['ci-a'], ALIVE_OWNER);
    const before = readFileSync(file, 'utf8');
    const driver = await hostWith(['ci-a'], ALIVE_OWNER);
    const logs: string[] = [];
    const r = await sweepJournal(driver, { dir: journalDir(dir), host: 'fake', toolstack: 'xl', timeoutMs: 1000, log: (l) => logs.push(l) });
    t.deepEqual(r, { removed: [], dropped: [], failed: [] });
    t.deepEqual(driver.leftovers(), ['ci-a'], 'the live run’s VM stays');
    t.equal(readFileSync(file, 'utf8'), before, 'its journal is left as it is');
    t.deepEqual(driver.calls, ['install ci-a'], 'the host is not even asked');

    // A VM of a dead run's name that now carries a live owner is another run's: dropped from the journal, left on the host.
    deadRunJournal(dir, ['ci-b']);
    const taken = await hostWith(['ci-b'], ALIVE_OWNER);
    const r2 = await sweepJournal(taken, { dir: journalDir(dir), host: 'fake', toolstack: 'xl', timeoutMs: 1000, log: (l) => logs.push(l) });
    t.deepEqual(r2.dropped, ['ci-b']);
    t.deepEqual(taken.leftovers(), ['ci-b'], 'not removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('a run killed hard (SIGKILL) leaves its VMs in the journal; the next run sweeps them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-kill9-'));
  try {
    const child = spawn(process.execPath, [XTV, 'run', '--host', 'fake', '--matrix', 'full', '--parallel', '2', '--report-dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let killed = false;
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!killed && /request /.test(stderr)) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    const end = await waitClose(child, 'SIGKILL');
    t.ok(killed && end.signal === 'SIGKILL', 'killed while a request was in flight');
    const open = openEntries(dir);
    t.ok(open.length >= 2, `its VMs are still in the journal (${open.map((e) => e.vm).join(', ')})`);
    t.ok(
      open.every((e) => e.host === 'fake' && e.owner.includes(` pid ${child.pid} `)),
      'each with the host and the killed run as owner',
    );
    t.ok(
      open.some((e) => e.vm === 'xtv-image-hold'),
      'the image holder too',
    );

    // The fake host died with that process: its VMs are gone, so the next run only drops them.
    const o = io();
    const code = await runRun(['--host', 'fake', '--filter', 'running.clean_shutdown.ack-ok.poweroff', '--report-dir', dir], o.io);
    t.equal(code, 0);
    t.ok(
      new RegExp(`journal: ${open.length} VM\\(s\\) of dead runs no longer on fake, dropped from the journal`).test(o.err.join('\n')),
      'the next run says it dropped them',
    );
    t.deepEqual(openEntries(dir), [], 'the journal is compacted: nothing open');
    t.deepEqual(journalFiles(dir), [], 'no file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('SIGHUP (a dropped SSH session) stops `xtv run`, which removes its VMs and exits 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-sighup-'));
  try {
    const child = spawn(process.execPath, [XTV, 'run', '--host', 'fake', '--matrix', 'full', '--parallel', '2', '--report-dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    let openAtHangup: JournalEntry[] = [];
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (openAtHangup.length === 0 && /request /.test(stderr)) {
        openAtHangup = openEntries(dir);
        child.kill('SIGHUP');
      }
    });
    const end = await waitClose(child, 'SIGHUP');
    t.ok(openAtHangup.length >= 2, `VMs were journaled when SIGHUP came (${openAtHangup.map((e) => e.vm).join(', ')})`);
    t.equal(end.code, 1, 'exit 1: the run was interrupted');
    t.ok(/SIGHUP: stopping; cleaning up/.test(stderr), 'it says SIGHUP stopped it');
    t.notOk(/could not remove/.test(stderr), 'every VM removed');
    t.match(stdout, /^not ok \d+ - error /m, 'interrupted cases reported as errors in TAP');
    const json = JSON.parse(readFileSync(join(dir, 'xtv-xl-full.json'), 'utf8')) as { aborted: boolean };
    t.equal(json.aborted, true, 'the report says the run was interrupted');
    t.deepEqual(openEntries(dir), [], 'the journal has a removal for every VM it installed (and its file is gone)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

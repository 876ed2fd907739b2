// `xtv gc`'s scope (issue #15, item 7): --prefix P takes P-… only, --all is
// asked for by name, and a VM whose owner still runs is left alone. The owner
// record each driver keeps (xl: the config's marker line; XAPI:
// other_config:xtv-owner) is read back by listOwned.
import test from 'tape';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { collectGarbage, matchesPrefix } from '../../harness/cli/gc-command.ts';
import { currentOwner, formatOwner, ownerVerdict, parseOwner, processStartMs } from '../../harness/toolstack/vm-owner.ts';
import { ownerOfMarkerLine, renderXlConfig, XL_MARKER } from '../../harness/toolstack/xl/xl-config.ts';
import { XlDriver } from '../../harness/toolstack/xl/xl-driver.ts';
import { XapiDriver, XTV_OWNER_KEY, XTV_TAG } from '../../harness/toolstack/xapi/xapi-driver.ts';
import type { HostTarget, TargetExecResult } from '../../harness/remote/target.ts';
import { FakeToolstackDriver } from '../../testing/fake-driver.ts';
import { runCli } from './cli-capture.ts';
import { installVm, startDouble, USER } from './xapi-fixture.ts';

const INSTALL = { domainType: 'pv' as const, memoryMiB: 32, kernelPath: '/fake/k', initrdPath: '/fake/i', kernelArgs: '' };

test('gc --prefix P: the VM named P and those named P-…, never P2-… (P- means the same)', (t) => {
  const names = ['ci', 'ci-a', 'ci-image-hold', 'ci2-x', 'cix', 'xci-a', 'c', 'ci-'];
  t.deepEqual(
    names.filter((n) => matchesPrefix(n, 'ci')),
    ['ci', 'ci-a', 'ci-image-hold', 'ci-'],
  );
  t.deepEqual(
    names.filter((n) => matchesPrefix(n, 'ci-')),
    names.filter((n) => matchesPrefix(n, 'ci')),
    'a trailing - changes nothing',
  );
  t.deepEqual(
    names.filter((n) => matchesPrefix(n, undefined)),
    names,
    '--all: every one',
  );
  t.end();
});

test('xtv gc without --prefix or --all: a usage error that says to choose, before any host is reached', async (t) => {
  const none = await runCli(['gc', '--host', 'ssh://root@192.0.2.1:1']);
  t.equal(none.code, 2, 'exit 2');
  t.match(none.err, /choose which VMs: --prefix P \(one run's, named P-\.\.\.\) or --all/);
  const both = await runCli(['gc', '--prefix', 'ci', '--all', '--host', 'ssh://root@192.0.2.1:1']);
  t.equal(both.code, 2);
  t.match(both.err, /--prefix and --all do not go together/);
  const dash = await runCli(['gc', '--prefix=-', '--host', 'ssh://root@192.0.2.1:1']);
  t.equal(dash.code, 2);
  t.match(dash.err, /--prefix needs a non-empty name prefix \(or --all for every VM\)/);
  const json = await runCli(['gc', '--json', '--host', 'ssh://root@192.0.2.1:1']);
  t.equal(json.code, 2);
  t.equal((JSON.parse(json.out) as { error: { kind: string } }).error.kind, 'usage', '--json: a usage error');
  const help = await runCli(['gc', '--help']);
  t.equal(help.code, 0);
  for (const w of ['--prefix P', '--all', '--force', 'still runs on this machine', 'unless --force'])
    t.ok(help.out.includes(w), `--help says ${JSON.stringify(w)}`);
  t.end();
});

test('owner record: user@host pid N started ISO-TIME [run ID], round trip', (t) => {
  const o = { user: 'alice', host: 'build-1.example', pid: 4242, started: '2025-01-02T03:04:05.678Z' };
  t.equal(formatOwner(o), 'alice@build-1.example pid 4242 started 2025-01-02T03:04:05.678Z');
  t.deepEqual(parseOwner(formatOwner(o)), o);
  t.deepEqual(parseOwner(formatOwner({ ...o, run: 'gh-123' })), { ...o, run: 'gh-123' });
  t.equal(formatOwner({ ...o, user: 'a b@c' }).split(' ')[0], 'a_b_c@build-1.example', 'odd characters kept out');
  t.equal(parseOwner('alice pid 1 started 2025-01-01T00:00:00Z'), null, 'no host: not a record');
  t.equal(parseOwner('alice@h pid 1 started yesterday'), null, 'no time: not a record');
  const me = currentOwner();
  t.deepEqual([me.host, me.pid], [hostname(), process.pid], 'this process');
  t.equal(currentOwner(), me, 'the same for every install of a process');
  t.end();
});

test('xl: the owner rides on the marker line, which still starts with XL_MARKER', (t) => {
  const spec = {
    name: 'ci-a',
    type: 'pv' as const,
    kernel: '/k',
    ramdisk: '/i',
    extra: '',
    memoryMiB: 32,
    kernelSha256: 'aa',
    initrdSha256: 'bb',
  };
  const owner = 'alice@h pid 7 started 2025-01-02T03:04:05.678Z';
  const first = renderXlConfig({ ...spec, owner }).split('\n')[0]!;
  t.ok(first.startsWith(`${XL_MARKER}: remove it with 'xtv uninstall ci-a'`), `line 1: ${first}`);
  t.equal(ownerOfMarkerLine(first), owner, 'read back');
  t.equal(ownerOfMarkerLine(renderXlConfig(spec).split('\n')[0]!), undefined, 'without one: none (as older configs)');
  t.equal(ownerOfMarkerLine(`name = "x"; owner ${owner}`), undefined, 'only on the marker line');
  t.throws(() => renderXlConfig({ ...spec, owner: 'a\nname = "evil"' }), /control character/, 'one line only');
  t.end();
});

/** dom0 played by this machine's sh, with copies that really copy. */
class LocalDom0 implements HostTarget {
  readonly description = 'local sh';
  exec(command: string, opts: { input?: string } = {}): Promise<TargetExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ stdout, stderr, code: code ?? 1 }));
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input ?? '');
    });
  }
  async copyTo(local: string, remote: string): Promise<void> {
    mkdirSync(dirname(remote), { recursive: true });
    copyFileSync(local, remote);
  }
  spawn(): ChildProcess {
    throw new Error('not in this test');
  }
  async close(): Promise<void> {}
}

test('xl driver: install records the owner, listOwned reads it back (xl-list-owned.sh: name, tab, marker line)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xtv-gc-xl-'));
  const paths = { configDir: join(root, 'etc'), imageDir: join(root, 'lib', 'images'), saveDir: join(root, 'lib', 'save'), consoleLogDir: join(root, 'log') };
  writeFileSync(join(root, 'k'), 'kernel');
  writeFileSync(join(root, 'i'), 'initrd');
  const d = new XlDriver(new LocalDom0(), { paths });
  try {
    await d.install({ ...INSTALL, name: 'ci-a', kernelPath: join(root, 'k'), initrdPath: join(root, 'i') });
    const cfg = readFileSync(join(paths.configDir, 'ci-a.cfg'), 'utf8');
    t.ok(cfg.startsWith(XL_MARKER), 'the marker still first');
    writeFileSync(join(paths.configDir, 'old.cfg'), `${XL_MARKER}: remove it with 'xtv uninstall old' (or 'xtv gc'), not by hand\nname = "old"\n`);
    const owned = (await d.listOwned()).sort((a, b) => a.name.localeCompare(b.name));
    t.deepEqual(owned, [
      { name: 'ci-a', id: 'ci-a', owner: formatOwner(currentOwner()) },
      { name: 'old', id: 'old' },
    ]);
    t.equal(ownerVerdict(owned[0]!.owner).kind, 'alive', 'this process: alive');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  t.end();
});

/** dom0 that has every file already (missing-files.sh says nothing), so install needs no copy. */
const FILES_THERE: HostTarget = {
  description: 'stub dom0',
  exec: async () => ({ stdout: '', stderr: '', code: 0 }),
  copyTo: async () => undefined,
  spawn: () => {
    throw new Error('not in this test');
  },
  close: async () => undefined,
};

test('XAPI driver: install records the owner in other_config next to the xtv tag; listOwned returns it', { timeout: 60_000 }, async (t) => {
  const dbl = await startDouble({ password: 'pw' });
  const dir = mkdtempSync(join(tmpdir(), 'xtv-gc-xapi-'));
  writeFileSync(join(dir, 'k'), 'kernel');
  writeFileSync(join(dir, 'i'), 'initrd');
  const d = await XapiDriver.connect({ url: dbl.url, user: USER, password: 'pw', target: FILES_THERE, callTimeoutMs: 20_000 });
  try {
    const vm = await d.install({ ...INSTALL, name: 'ci-a', kernelPath: join(dir, 'k'), initrdPath: join(dir, 'i') });
    const ref = await dbl.client.call<string>('VM.get_by_uuid', vm.id);
    const oc = await dbl.client.call<Record<string, string>>('VM.get_other_config', ref);
    t.equal(oc[XTV_TAG], '1', 'tagged');
    t.equal(oc[XTV_OWNER_KEY], formatOwner(currentOwner()), `other_config:${XTV_OWNER_KEY} names this process`);
    // An xtv VM from before owner records.
    await installVm(dbl.client, { name: 'old', otherConfig: { [XTV_TAG]: '1' } });
    const owned = (await d.listOwned()).sort((a, b) => a.name.localeCompare(b.name));
    t.deepEqual(
      owned.map((v) => [v.name, v.owner]),
      [
        ['ci-a', formatOwner(currentOwner())],
        ['old', undefined],
      ],
    );
  } finally {
    await d.close();
    await dbl.close();
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

/** A process that has exited (and been reaped): its pid is free. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((res) => c.on('exit', res));
  return c.pid!;
}

test('gc: an owner alive on this machine is left, a dead one removed; another machine left unless --force', async (t) => {
  const here = hostname();
  const fake = new FakeToolstackDriver({ kind: 'xl' });
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  await new Promise((res) => setTimeout(res, 50));
  const at = (pid: number, host = here, started = new Date().toISOString()) => formatOwner({ user: 'u', host, pid, started });
  try {
    for (const n of ['ci-alive', 'ci-dead', 'ci-remote', 'ci-none', 'ci-mine', 'ci2-x']) await fake.install({ ...INSTALL, name: n });
    fake.vms.get('ci-alive')!.owner = at(sleeper.pid!);
    fake.vms.get('ci-dead')!.owner = at(await deadPid());
    fake.vms.get('ci-remote')!.owner = at(1, 'elsewhere.example');
    fake.vms.get('ci-none')!.owner = undefined;
    fake.vms.get('ci2-x')!.owner = at(await deadPid());
    // ci-mine: installed by this process (the fake records it as the real drivers do).

    const dry = await collectGarbage(fake, { prefix: 'ci', force: false, dryRun: true, timeoutMs: 1000, here });
    t.deepEqual(fake.leftovers().sort(), ['ci-alive', 'ci-dead', 'ci-mine', 'ci-none', 'ci-remote', 'ci2-x'], '--dry-run: nothing removed');
    t.notOk(
      dry.some((r) => r.vm.name === 'ci2-x'),
      '--prefix ci never lists ci2-x',
    );

    const r = await collectGarbage(fake, { prefix: 'ci', force: false, dryRun: false, timeoutMs: 1000, here });
    const by = Object.fromEntries(r.map((x) => [x.vm.name, x]));
    t.equal(by['ci-dead']!.removed, true, 'owner gone: removed');
    t.equal(by['ci-none']!.removed, true, 'no owner record (an older xtv): removed');
    t.equal(by['ci-alive']!.removed, false, 'owner alive: left');
    t.match(
      by['ci-alive']!.left ?? '',
      new RegExp(`its owner u@${here.replace(/\./g, '\\.')} pid ${sleeper.pid} is still running`),
      `  ${by['ci-alive']!.left}`,
    );
    t.equal(by['ci-mine']!.removed, false, 'made by this very process: left');
    t.equal(by['ci-remote']!.removed, false, 'another machine: left');
    t.match(by['ci-remote']!.left ?? '', /made on another machine \(u@elsewhere\.example pid 1\).*--force to remove it/, `  ${by['ci-remote']!.left}`);
    t.deepEqual(fake.leftovers().sort(), ['ci-alive', 'ci-mine', 'ci-remote', 'ci2-x'], 'ci2-x untouched');

    const forced = await collectGarbage(fake, { prefix: 'ci', force: true, dryRun: false, timeoutMs: 1000, here });
    t.deepEqual(
      forced.filter((x) => x.removed).map((x) => x.vm.name),
      ['ci-remote'],
      "--force: the other machine's too, never a live local owner's",
    );

    sleeper.kill();
    await new Promise((res) => sleeper.on('exit', res));
    const after = await collectGarbage(fake, { prefix: undefined, force: false, dryRun: false, timeoutMs: 1000, here });
    t.deepEqual(
      after.filter((x) => x.removed).map((x) => x.vm.name),
      ['ci-alive', 'ci2-x'],
      "--all once the owner is gone: removed (ci2-x too); this process's own still left",
    );
    t.deepEqual(fake.leftovers(), ['ci-mine']);
  } finally {
    sleeper.kill();
    await fake.close();
  }
  t.end();
});

test('owner verdicts: a reused pid counts as gone; an unreadable record cannot be checked', (t) => {
  const here = hostname();
  if (processStartMs(process.pid) !== null) {
    const v = ownerVerdict(formatOwner({ user: 'u', host: here, pid: process.pid, started: '2000-01-01T00:00:00.000Z' }), here);
    t.equal(v.kind, 'dead', `a live pid that began after the VM was made: ${v.kind === 'dead' ? v.why : ''}`);
  } else {
    t.comment('no /proc: start times not checked here');
  }
  t.deepEqual(ownerVerdict(undefined, here), { kind: 'none' });
  t.equal(ownerVerdict('someone', here).kind, 'unknown');
  t.equal(ownerVerdict(formatOwner(currentOwner()), here).kind, 'alive');
  t.end();
});

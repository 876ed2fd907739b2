// The xl driver without Xen: its pure parts (xl list, config file, --host,
// xenstore read framing) and its error mapping against a fake dom0 that
// answers with canned exit statuses.
import test from 'tape';
import { spawn as spawnChild, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnectionError, ToolstackError, type HostRequest } from '../../harness/toolstack/driver.ts';
import { XlDriver } from '../../harness/toolstack/xl/xl-driver.ts';
import { xlPreflight } from '../../harness/toolstack/xl/xl-preflight.ts';
import { checkRelPath, parseReadMany, unsanitise } from '../../harness/toolstack/xenstore-reads.ts';
import { scriptCommand } from '../../harness/toolstack/dom0-script.ts';
import { renderXlConfig, xlString, XL_MARKER } from '../../harness/toolstack/xl/xl-config.ts';
import { domainInfoOf } from '../../harness/toolstack/xl/xl-power-state.ts';
import { parseXlList, stderrSummary } from '../../protocol/xl-output.ts';
import { parseSshUrl } from '../../harness/remote/open-target.ts';
import { formatSshEndpoint } from '../../harness/remote/ssh-target.ts';
import { TargetUnreachableError, shq, type HostTarget, type TargetExecResult } from '../../harness/remote/target.ts';

const LIST = `Name                                        ID   Mem VCPUs\tState\tTime(s)
Domain-0                                     0  1024     1     r-----      29.9
xtv-a                                        1    32     1     -b----       8.2
xtv-paused                                   2    32     1     --p---       0.1
xtv-suspended                                3    32     1     ---ss-       1.0
xtv-off                                      4    32     1     ---s--       1.0
xtv-crashed                                  5    32     1     ---sc-       1.0
xtv-rebooting                                6    32     1     ---sr-       1.0
xtv-dying                                    7     0     1     -----d       1.0
`;

test('xl list: names, domids and the six state flags', (t) => {
  const l = parseXlList(LIST);
  t.deepEqual(
    l.map((e) => e.name),
    ['Domain-0', 'xtv-a', 'xtv-paused', 'xtv-suspended', 'xtv-off', 'xtv-crashed', 'xtv-rebooting', 'xtv-dying'],
  );
  const by = Object.fromEntries(l.map((e) => [e.name, e]));
  t.equal(by['xtv-a']!.domid, 1);
  t.equal(by['xtv-a']!.blocked, true);
  t.equal(by['xtv-a']!.shutdownReason, undefined, 'no reason while running');
  t.equal(by['xtv-suspended']!.shutdownReason, 'suspend');
  t.equal(by['xtv-off']!.shutdownReason, 'poweroff', '"-" after s is poweroff');
  t.equal(by['xtv-crashed']!.shutdownReason, 'crash');
  t.equal(by['xtv-rebooting']!.shutdownReason, 'reboot');
  t.equal(by['xtv-dying']!.dying, true);
  t.end();
});

test('xl list: mapped onto power states', (t) => {
  const by = Object.fromEntries(parseXlList(LIST).map((e) => [e.name, e]));
  t.deepEqual(domainInfoOf(by['xtv-a'], false), { powerState: 'Running', domid: 1 });
  t.deepEqual(domainInfoOf(by['xtv-paused'], false), { powerState: 'Paused', domid: 2 });
  t.deepEqual(domainInfoOf(by['xtv-suspended'], false), { powerState: 'Suspended', domid: 3, shutdownReason: 'suspend' }, 'self-suspended, left by the daemon');
  t.deepEqual(domainInfoOf(by['xtv-off'], false), { powerState: 'Halted', domid: 4, shutdownReason: 'poweroff' });
  t.deepEqual(domainInfoOf(by['xtv-crashed'], false), { powerState: 'Halted', domid: 5, shutdownReason: 'crash' });
  t.deepEqual(domainInfoOf(by['xtv-dying'], false), { powerState: 'Halted', domid: 7 });
  t.deepEqual(domainInfoOf(undefined, true), { powerState: 'Suspended', domid: null }, 'saved to disk');
  t.deepEqual(domainInfoOf(undefined, false), { powerState: 'Halted', domid: null });
  t.end();
});

test('xl config: deterministic text with the marker first, like xen-create-image', (t) => {
  const spec = {
    name: 'xtv-test',
    type: 'pvh' as const,
    kernel: '/var/lib/xtv/images/aa/xtv-kernel',
    ramdisk: '/var/lib/xtv/images/bb/xtv-initrd',
    extra: 'console=hvc0 xen_shutdown_node=data/xtv/kernel-shutdown',
    memoryMiB: 32,
    kernelSha256: 'aa',
    initrdSha256: 'bb',
    onCrash: 'preserve',
  };
  const text = renderXlConfig(spec);
  t.ok(text.startsWith(XL_MARKER), 'marker on line 1');
  t.ok(text.includes('type = "pvh"\n') && text.includes('memory = 32\n') && text.includes('on_crash = "preserve"\n'));
  t.notOk(text.includes('on_poweroff'), 'xl defaults unless asked');
  t.equal(renderXlConfig(spec), text, 'same spec, same bytes');
  t.equal(xlString('a "b" \\c'), '"a \\"b\\" \\\\c"');
  t.throws(() => xlString('a\nb'), /control character/);
  t.throws(() => renderXlConfig({ ...spec, name: 'bad name' }), /bad VM name/);
  t.throws(() => renderXlConfig({ ...spec, onCrash: 'explode' }), /on_crash must be one of/);
  t.throws(() => renderXlConfig({ ...spec, memoryMiB: 0 }), /memory/);
  t.end();
});

test('ssh:// addresses (xl --host, XAPI --dom0): forms and clear errors', (t) => {
  t.deepEqual(parseSshUrl('ssh://xen1'), { user: 'root', host: 'xen1', port: 22 });
  t.deepEqual(parseSshUrl('ssh://admin@10.0.0.5:2222'), { user: 'admin', host: '10.0.0.5', port: 2222 });
  t.deepEqual(parseSshUrl('ssh://root@[fe80::1]:22'), { user: 'root', host: 'fe80::1', port: 22 });
  t.equal(formatSshEndpoint(parseSshUrl('ssh://root@xen1:22')), 'ssh://root@xen1');
  t.equal(formatSshEndpoint(parseSshUrl('ssh://root@[fe80::1]:2222')), 'ssh://root@[fe80::1]:2222');
  t.throws(() => parseSshUrl('xen1'), /--host wants ssh:\/\/\[USER@\]HOST\[:PORT\], got "xen1"/);
  t.throws(() => parseSshUrl('embedded', '--dom0'), /--dom0 wants ssh:\/\//);
  t.throws(() => parseSshUrl('ssh://xen1:99999'), /out of range/);
  t.throws(() => parseSshUrl('http://xen1'), /--host wants/);
  t.end();
});

test('xenstore reads: many keys per xenstore-read, escaped values decoded, absent keys skipped', (t) => {
  t.equal(unsanitise('a\\\\b"c\\tz\\001\\x7f\\xc3\\xa9q'), 'a\\b"c\tz\u0001\u007féq', "the escapes dom0's xenstore-read printed");
  t.equal(unsanitise('line\\nbreak\\r'), 'line\nbreak\r');
  t.equal(unsanitise('\\xe2\\x98\\x83'), '☃');
  const M = 'XTV-0123';
  const keys = ['data/xtv/state', 'data/xtv/x', 'data/xtv/y', 'control/shutdown', 'e'];
  const out = parseReadMany(
    [`${M} values`, 'ready', `${M} absent data/xtv/x`, `${M} values`, 'why\\nnot', `${M} absent control/shutdown`, `${M} values`, '', `${M} end`, ''].join(
      '\n',
    ),
    M,
    keys,
  );
  t.deepEqual(out, { 'data/xtv/state': 'ready', 'data/xtv/x': null, 'data/xtv/y': 'why\nnot', 'control/shutdown': null, e: '' });
  t.deepEqual(parseReadMany(`${M} values\n${M} absent a\n${M} values\n${M} absent b\n`, M, ['a', 'b']), { a: null, b: null }, 'nothing there');
  t.doesNotThrow(() => checkRelPath('control/testing'));
  t.doesNotThrow(() => checkRelPath('vm-data/xtv/testing'));
  for (const bad of ['/local/domain/0', '../0/x', 'a//b', 'a/../b', '', 'a b', "a'b"])
    t.throws(() => checkRelPath(bad), /bad xenstore path/, JSON.stringify(bad));
  t.equal(shq("it's"), `'it'\\''s'`);
  t.equal(shq(''), "''");
  t.end();
});

/** A dom0 that answers each exec with the next canned result and records the scripts. */
class FakeTarget implements HostTarget {
  readonly description = 'fake dom0';
  scripts: string[] = [];
  constructor(private readonly answers: Array<TargetExecResult | Error | ((script: string) => Promise<TargetExecResult>)>) {}
  async exec(command: string): Promise<TargetExecResult> {
    this.scripts.push(command);
    const a = this.answers.shift() ?? { stdout: '', stderr: '', code: 0 };
    if (a instanceof Error) throw a;
    return typeof a === 'function' ? a(command) : a;
  }
  async copyTo(): Promise<void> {}
  spawn(): ChildProcess {
    throw new Error('not in this test');
  }
  async close(): Promise<void> {}
}

const vm = { name: 'xtv-t', id: 'xtv-t' };

test('xl driver: requests are the xl commands the model assumes, each bounded in dom0', async (t) => {
  // xl-request.sh run by this machine's sh, with a timeout and an xl that log their arguments.
  const {
    root,
    paths,
    driver: d,
  } = fakeDom0('xtv-req-', (root) => ({
    timeout: [`echo "timeout $*" >> '${root}/log'`, 'shift 3', 'exec "$@"'],
    xl: [`echo "xl $*" >> '${root}/log'`, 'case "$1" in domid) exit 1 ;; save) : > "$3" ;; esac', 'exit 0'],
  }));
  const cfg = join(paths.configDir, 'xtv-t.cfg');
  const save = join(paths.saveDir, 'xtv-t.chk');
  const ran = async (r: HostRequest): Promise<string[]> => {
    writeFileSync(join(root, 'log'), '');
    await d.request(vm, r, { timeoutMs: 30_000 });
    return readFileSync(join(root, 'log'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('timeout '));
  };
  try {
    mkdirSync(paths.configDir, { recursive: true });
    writeFileSync(cfg, `${XL_MARKER}\n`);
    t.deepEqual(await ran('clean_shutdown'), ['timeout -k 5 30 xl shutdown xtv-t'], 'no -w: returns after the ack');
    t.deepEqual(await ran('clean_reboot'), ['timeout -k 5 30 xl reboot xtv-t']);
    t.deepEqual(await ran('hard_shutdown'), ['timeout -k 5 30 xl destroy xtv-t']);
    t.deepEqual(await ran('hard_reboot'), ['timeout -k 5 30 xl destroy xtv-t', `timeout -k 5 30 xl create ${cfg}`]);
    t.deepEqual(await ran('suspend'), [`timeout -k 5 30 xl save xtv-t ${save}.part`]);
    t.ok(existsSync(save), 'the save image renamed into place once complete');
    t.deepEqual(await ran('resume'), [`timeout -k 5 30 xl restore ${save}`]);
    t.notOk(existsSync(save), 'and removed after the restore');
    t.deepEqual(await ran('pause'), ['timeout -k 5 30 xl pause xtv-t']);
    t.deepEqual(await ran('unpause'), ['timeout -k 5 30 xl unpause xtv-t']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("xl driver: non-zero exit is a ToolstackError with xl's stderr; no answer is a ConnectionError", async (t) => {
  const stderr = "libxl: error: libxl_domain.c:1:libxl__domain_pvcontrol: guest didn't acknowledge control request: -9";
  let d = new XlDriver(new FakeTarget([{ stdout: '', stderr, code: 1 }]));
  try {
    await d.request(vm, 'clean_shutdown', { timeoutMs: 70_000 });
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ToolstackError, 'ToolstackError');
    t.equal((e as ToolstackError).code, 'XL_EXIT_1');
    t.deepEqual((e as ToolstackError).params, [stderr]);
    t.equal((e as ToolstackError).call, 'xl shutdown xtv-t');
  }
  d = new XlDriver(new FakeTarget([new TargetUnreachableError('ssh: connect to host x port 22: Connection refused')]));
  try {
    await d.state(vm);
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConnectionError, 'unreachable: ConnectionError');
    t.match((e as Error).message, /Connection refused/);
  }
  // dom0's timeout stopped xl (busybox reports TERM as 143): that is no answer, not a no.
  d = new XlDriver(
    new FakeTarget([
      async () => {
        await new Promise((r) => setTimeout(r, 1100));
        return { stdout: '', stderr: 'Terminated', code: 143 };
      },
    ]),
  );
  try {
    await d.request(vm, 'clean_shutdown', { timeoutMs: 1000 });
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConnectionError, 'timed out in dom0: ConnectionError');
    t.match((e as Error).message, /no answer within 1 s/);
  }
  d = new XlDriver(new FakeTarget([{ stdout: '', stderr: '', code: 93 }]));
  try {
    await d.request(vm, 'resume', { timeoutMs: 10_000 });
    t.fail('should throw');
  } catch (e) {
    t.equal((e as ToolstackError).code, 'XL_NO_SAVE_IMAGE', 'resume without an image names it');
  }
  t.end();
});

test('xl driver: state from xl list and the save directory; reads and writes by domid', async (t) => {
  // The answer framed with the command's own marker (the first argument of its `set --`).
  const listed = async (script: string): Promise<TargetExecResult> => ({
    stdout: `${LIST}${/^set -- (\S+)/.exec(script)![1]} saved\nxtv-gone.chk\n`,
    stderr: '',
    code: 0,
  });
  const target = new FakeTarget([listed, listed, { stdout: '', stderr: '', code: 90 }, { stdout: '', stderr: '', code: 0 }]);
  const d = new XlDriver(target);
  t.deepEqual(await d.state({ name: 'xtv-paused', id: 'xtv-paused' }), { powerState: 'Paused', domid: 2 });
  t.deepEqual(await d.state({ name: 'xtv-gone', id: 'xtv-gone' }), { powerState: 'Suspended', domid: null });
  t.equal(await d.readGuest(vm, 'data/xtv/state'), null, 'no domain: null');
  await d.writeGuest(vm, 'control/testing', "now:it's", { guestWritable: true });
  const w = target.scripts.at(-1)!;
  // lib.sh's xtv_guest_node (empty, then the guest's), called before the value is written.
  const order = ['xenstore-write -R -- "$1" \'\'', 'xenstore-chmod "$1" "n$2"', 'xtv_guest_node "$p" "$d"', 'xenstore-write -R -- "$p" "$4"'].map((s) =>
    w.indexOf(s),
  );
  t.ok(
    order.every((i) => i >= 0) && order[0]! < order[1]! && order[1]! < order[2]! && order[2]! < order[3]!,
    'created empty, handed to the guest, then the value',
  );
  t.ok(w.split('\n')[0]!.endsWith(` control/testing 'now:it'\\''s' 1`), 'the value an argument, quoted');
  t.end();
});

test('xl driver: install refuses a config it did not make', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-xl-unit-'));
  writeFileSync(join(dir, 'k'), 'kernel');
  writeFileSync(join(dir, 'i'), 'initrd');
  const d = new XlDriver(new FakeTarget([{ stdout: '', stderr: '', code: 91 }]));
  try {
    await d.install({ name: 'xtv-t', domainType: 'pv', memoryMiB: 32, kernelPath: join(dir, 'k'), initrdPath: join(dir, 'i'), kernelArgs: 'console=hvc0' });
    t.fail('should throw');
  } catch (e) {
    t.equal((e as ToolstackError).code, 'XL_NOT_OURS');
    t.match((e as Error).message, /not made by xtv; leaving it alone/);
  }
  t.end();
});

/** dom0 played by this machine's sh: the driver's scripts run for real, on temporary paths. */
class LocalShellTarget implements HostTarget {
  readonly description = 'local sh';
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}
  exec(command: string, opts: { input?: string } = {}): Promise<TargetExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawnChild('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'], env: this.env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
      });
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ stdout, stderr, code: code ?? 1 }));
      // A script that never reads its stdin may be gone before we write it (EPIPE): not an error here.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input ?? '');
    });
  }
  async copyTo(): Promise<void> {}
  spawn(): ChildProcess {
    throw new Error('not in this test');
  }
  async close(): Promise<void> {}
}

test("xl driver: install and uninstall take dom0's lock; a lock whose owner died is taken over", async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xtv-lock-'));
  const paths = { configDir: join(root, 'etc'), imageDir: join(root, 'lib', 'images'), saveDir: join(root, 'lib', 'save'), consoleLogDir: join(root, 'log') };
  const d = new XlDriver(new LocalShellTarget(), { paths });
  const lock = join(root, 'lib', '.lock');
  try {
    // Held by a live process: uninstall waits until it lets go.
    mkdirSync(lock, { recursive: true });
    const holder = spawnChild('sh', ['-c', `echo $$ > '${lock}/pid'; sleep 1; rm -rf '${lock}'`]);
    const holderDone = new Promise((res) => holder.on('close', res));
    await new Promise((res) => setTimeout(res, 200));
    const t0 = Date.now();
    await d.uninstall({ name: 'xtv-a', id: 'xtv-a' });
    t.ok(Date.now() - t0 >= 600, `uninstall waited for the holder (${Date.now() - t0} ms)`);
    await holderDone;
    t.notOk(existsSync(join(root, 'lib')), "the last uninstall leaves no directory, not even the lock's");

    // Held by a pid that no longer runs (its SSH session was killed): taken over at once.
    const dead = spawnChild('true');
    await new Promise((res) => dead.on('close', res).on('error', res));
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'pid'), `${dead.pid}\n`);
    const t1 = Date.now();
    await d.uninstall({ name: 'xtv-a', id: 'xtv-a' });
    t.ok(Date.now() - t1 < 5000, `a dead owner's lock is taken over (${Date.now() - t1} ms)`);
    t.notOk(existsSync(lock), 'and released');

    // Held by nobody who wrote a pid (the holder died right after its mkdir): taken over after a few seconds.
    mkdirSync(lock, { recursive: true });
    const t2 = Date.now();
    await d.uninstall({ name: 'xtv-a', id: 'xtv-a' });
    t.ok(Date.now() - t2 >= 4000 && Date.now() - t2 < 20_000, `a lock without a pid is taken over, not waited on for a minute (${Date.now() - t2} ms)`);
    t.notOk(existsSync(lock), 'and released');

    // Another VM still installed: its config and the save directory stay.
    mkdirSync(paths.configDir, { recursive: true });
    mkdirSync(paths.saveDir, { recursive: true });
    writeFileSync(join(paths.configDir, 'xtv-b.cfg'), '# made by xtv\n');
    await d.uninstall({ name: 'xtv-a', id: 'xtv-a' });
    t.ok(existsSync(paths.saveDir), 'the save directory stays while another VM is installed (its xl save may be starting)');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/**
 * A dom0 played by this machine for the driver's real scripts: a temporary
 * root whose bin/ holds fake programs (name -> shell script, given the root),
 * first on PATH, and the driver's paths under the root.
 */
function fakeDom0(prefix: string, tools: (root: string) => Record<string, string[]>) {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  for (const [name, lines] of Object.entries(tools(root))) writeFileSync(join(bin, name), ['#!/bin/sh', ...lines, ''].join('\n'), { mode: 0o755 });
  const paths = {
    configDir: join(root, 'etc'),
    imageDir: join(root, 'lib', 'images'),
    saveDir: join(root, 'lib', 'save'),
    consoleLogDir: join(root, 'console'),
  };
  const driver = new XlDriver(new LocalShellTarget({ ...process.env, PATH: `${bin}:${process.env.PATH}` }), { paths });
  return { root, paths, driver };
}

test('xl driver: start tries xl create once more when libxl timed out waiting for the console, and only then', async (t) => {
  // A fake xl whose create fails the first time with libxl's console wait timeout (or another error, on demand).
  const {
    root,
    paths,
    driver: d,
  } = fakeDom0('xtv-create-', (root) => ({
    xl: [
      'case "$1" in',
      `  create) echo create >> '${root}/log'`,
      `    if [ -e '${root}/other' ]; then echo 'libxl: error: something else' >&2; exit 3; fi`,
      `    if [ ! -e '${root}/failed' ]; then touch '${root}/failed'; echo 'libxl: error: libxl_create.c:1976:console_xswait_callback: domain 3 console tty: timed out' >&2; exit 3; fi ;;`,
      '  domid) exit 1 ;;',
      'esac',
    ],
  }));
  const vm = { name: 'xtv-c', id: 'xtv-c' };
  try {
    mkdirSync(paths.configDir, { recursive: true });
    writeFileSync(join(paths.configDir, 'xtv-c.cfg'), `${XL_MARKER}\n`);
    await d.start(vm);
    t.deepEqual(readFileSync(join(root, 'log'), 'utf8').trim().split('\n'), ['create', 'create'], 'the console wait timed out: created again, and started');
    writeFileSync(join(root, 'other'), '');
    rmSync(join(root, 'log'));
    const err = await d.start(vm).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof ToolstackError && /something else/.test(err.message), `another failure: xl's error as it is (${String(err)})`);
    t.deepEqual(readFileSync(join(root, 'log'), 'utf8').trim().split('\n'), ['create'], '  and no second try');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  t.end();
});

test('xl driver: a request that finds no domain while xl re-creates the VM waits for the new one', async (t) => {
  // A fake xl: the domain exists while the file "domain" does; reboot and domid need it, and without it
  // reboot fails as xl does (and makes the domain when the file "appears" says so: xl's daemon re-creating it meanwhile).
  const {
    root,
    paths,
    driver: d,
  } = fakeDom0('xtv-restart-', (root) => ({
    xl: [
      'case "$1" in',
      `  domid) [ -e '${root}/domain' ] && echo 7 ;;`,
      `  reboot) if [ -e '${root}/domain' ]; then echo rebooted >> '${root}/log'; else echo "$2 is an invalid domain identifier (rc=-6)" >&2; [ -e '${root}/appears' ] && touch '${root}/domain'; exit 1; fi ;;`,
      // As xl's daemon: an xl process (its executable named xl) whose argv is "xl create CFG", alive for a while.
      '  create) sleep 5 ;;',
      '  *) exit 3 ;;',
      'esac',
    ],
  }));
  const vm = { name: 'xtv-r', id: 'xtv-r' };
  try {
    // Off, and nobody re-creating it: fails at once.
    const t0 = Date.now();
    const off = await d.request(vm, 'clean_reboot', { timeoutMs: 10_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(off instanceof ToolstackError && /invalid domain identifier/.test(off.message), `no domain, no xl daemon: fails with xl's error (${String(off)})`);
    t.ok(Date.now() - t0 < 8000, `at once, not at its 10 s bound (${Date.now() - t0} ms)`);
    // A shell with a word of the config in its argv is not xl re-creating it: still at once.
    const bystander = spawnChild('sh', ['-c', 'sleep 5', 'xl', 'create', join(paths.configDir, 'xtv-r.cfg')]);
    const t2 = Date.now();
    const still = await d.request(vm, 'clean_reboot', { timeoutMs: 10_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    bystander.kill();
    t.ok(
      still instanceof ToolstackError && Date.now() - t2 < 4500,
      `a shell naming "xl create CFG" does not count: not waited on until it ends at 5 s (${Date.now() - t2} ms)`,
    );
    // xl's daemon for this config (argv "xl create CFG"; the program does not matter) creates the domain 1.5 s from now.
    const daemon = spawnChild(join(root, 'bin', 'xl'), ['create', join(paths.configDir, 'xtv-r.cfg')]);
    const created = setTimeout(() => writeFileSync(join(root, 'domain'), ''), 1500);
    try {
      const t1 = Date.now();
      await d.request(vm, 'clean_reboot', { timeoutMs: 10_000 });
      t.ok(Date.now() - t1 >= 1000, `waited for the new domain (${Date.now() - t1} ms), then asked it`);
      t.equal(readFileSync(join(root, 'log'), 'utf8'), 'rebooted\n', 'xl reboot reached the new domain once');
    } finally {
      clearTimeout(created);
      daemon.kill();
    }
    // The race seen on the embedded host: the new domain appears between xl's failure and the look
    // at it (xl domid then finds it). Still a failure to retry, at once.
    rmSync(join(root, 'domain'));
    rmSync(join(root, 'log'));
    writeFileSync(join(root, 'appears'), '');
    const daemon2 = spawnChild(join(root, 'bin', 'xl'), ['create', join(paths.configDir, 'xtv-r.cfg')]);
    try {
      const t3 = Date.now();
      await d.request(vm, 'clean_reboot', { timeoutMs: 10_000 });
      t.ok(Date.now() - t3 < 4500, `re-created meanwhile: asked again at once, not after the daemon ends at 5 s (${Date.now() - t3} ms)`);
      t.equal(readFileSync(join(root, 'log'), 'utf8'), 'rebooted\n', 'and xl reboot reached the new domain');
    } finally {
      daemon2.kill();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('xl driver: waits on several VMs at once share xl list, each with a look that began after it asked', async (t) => {
  // A fake xl list that takes 300 ms and logs when it began, and the state it shows: "xtv-a" is Running once the file "up" exists.
  const { root, driver: d } = fakeDom0('xtv-list-', (root) => ({
    xl: [
      `[ -e '${root}/up' ] && up=1`,
      `echo begin >> '${root}/log'`,
      'sleep 0.3',
      'echo "Name ID Mem VCPUs State Time(s)"',
      '[ "$up" ] && echo "xtv-a 3 32 1 -b---- 1.0"',
      'exit 0',
    ],
  }));
  const looks = () => readFileSync(join(root, 'log'), 'utf8').split('\n').filter(Boolean).length;
  try {
    const first = d.state({ name: 'xtv-a', id: 'xtv-a' });
    while (!existsSync(join(root, 'log'))) await new Promise((res) => setTimeout(res, 10));
    // The domain appears while the first look is in flight: those who ask now must see it.
    writeFileSync(join(root, 'up'), '');
    const later = await Promise.all(['xtv-a', 'xtv-b', 'xtv-c', 'xtv-a'].map((name) => d.state({ name, id: name })));
    t.deepEqual(await first, { powerState: 'Halted', domid: null }, 'the look in flight: before the domain');
    t.deepEqual(
      later.map((s) => s.powerState),
      ['Running', 'Halted', 'Halted', 'Running'],
      'the callers who came meanwhile: a look that began after they asked',
    );
    t.equal(looks(), 2, 'five callers, two xl lists');
    await d.state({ name: 'xtv-a', id: 'xtv-a' });
    t.equal(looks(), 3, 'a caller after that: a look of its own');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("xl driver: xenstored's list of domains, from xenstore-list and as few xenstore-read runs as the nameless homes allow", async (t) => {
  const { root, driver: d } = fakeDom0('xtv-xsdoms-', (root) => ({
    xl: [`echo "xl $*" >> '${root}/log'`, 'exit 1'],
    'xenstore-list': [`[ "$1" = /local/domain ] && ls '${root}/xs/local/domain' | sort -n`],
    'xenstore-read': [
      `echo "xenstore-read" >> '${root}/log'`,
      `for p in "$@"; do [ -f '${root}/xs'"$p" ] || { echo "xenstore-read: couldn't read path $p" >&2; exit 1; }; cat '${root}/xs'"$p"; echo; done`,
    ],
  }));
  const home = (domid: number, name?: string) => {
    mkdirSync(join(root, 'xs', 'local', 'domain', String(domid)), { recursive: true });
    if (name !== undefined) writeFileSync(join(root, 'xs', 'local', 'domain', String(domid), 'name'), name);
  };
  try {
    home(0, 'Domain-0');
    home(3, 'xtv-a');
    home(5); // a home without a name (being made, or being removed)
    home(7, 'xtv-a-20261203T2045Z');
    t.deepEqual(
      await d.xenstoredDomains(),
      [
        { domid: 0, name: 'Domain-0' },
        { domid: 3, name: 'xtv-a' },
        { domid: 5, name: null },
        { domid: 7, name: 'xtv-a-20261203T2045Z' },
      ],
      'every home, with its name or null',
    );
    t.deepEqual(
      readFileSync(join(root, 'log'), 'utf8').trim().split('\n'),
      ['xenstore-read', 'xenstore-read'],
      'two xenstore-read runs (the second after domain 5), no xl',
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('xl driver: uninstall destroys the domain and the incarnations rename-restart kept of it, nothing else', async (t) => {
  const {
    root,
    paths,
    driver: d,
  } = fakeDom0('xtv-uninst-', (root) => ({
    xl: [
      'case "$1" in',
      // As xl's daemon: alive until killed, however slow the machine (a loop of short sleeps leaves no orphan behind).
      '  create) while :; do sleep 1; done ;;',
      "  list) printf 'Name ID Mem VCPUs State Time(s)\\n'",
      `    for n in $(cat '${root}/domains'); do printf '%s 1 64 1 ---sc- 0.1\\n' "$n"; done ;;`,
      `  destroy) echo "destroy $2" >> '${root}/log' ;;`,
      'esac',
    ],
  }));
  try {
    writeFileSync(
      join(root, 'domains'),
      [
        'Domain-0',
        'xtv-a',
        'xtv-a-20261203T2045Z',
        'xtv-a-19991231T2359Z',
        'xtv-ab',
        'xtv-a-later',
        'xtv-a-20261203T2045Zx',
        'other-xtv-a-20261203T2045Z',
      ].join('\n'),
    );
    mkdirSync(paths.configDir, { recursive: true });
    const cfg = join(paths.configDir, 'xtv-a.cfg');
    writeFileSync(cfg, `${XL_MARKER}\nname = "xtv-a"\n`);
    // xl's daemon for the config (argv "xl create CFG"), about to make the domain again; and another VM's.
    const daemon = spawnChild(join(root, 'bin', 'xl'), ['create', cfg]);
    const other = spawnChild(join(root, 'bin', 'xl'), ['create', join(paths.configDir, 'xtv-ab.cfg')]);
    // A shell whose argv names the config (ours may) is no xl process: left alone too.
    const shell = spawnChild('sh', ['-c', 'while :; do sleep 1; done', 'xl', 'create', cfg]);
    const daemonGone = new Promise((res) => daemon.on('close', (_c, sig) => res(sig)));
    await d.uninstall({ name: 'xtv-a', id: 'xtv-a' });
    t.equal(await daemonGone, 'SIGKILL', "xl's daemon for the config is stopped first: it would make the domain again");
    t.equal(other.exitCode, null, "another VM's daemon is left alone");
    t.equal(shell.exitCode, null, 'and a shell that only names it');
    other.kill('SIGKILL');
    shell.kill();
    t.deepEqual(
      readFileSync(join(root, 'log'), 'utf8').trim().split('\n'),
      ['destroy xtv-a', 'destroy xtv-a-20261203T2045Z', 'destroy xtv-a-19991231T2359Z'],
      "the VM's domain and libxl_domain_preserve's NAME-YYYYMMDDTHHMMZ, not names that only look alike",
    );
    t.notOk(existsSync(join(paths.configDir, 'xtv-a.cfg')), 'and the config');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('xl driver: readGuestMany checks the cached domid with the same xenstore-read, and looks up a new one only when it is gone', async (t) => {
  // Fakes that log each run: xl domid from the file domid-NAME, xenstore-read from files under xs/, stopping
  // at the first path it cannot read as the real one does.
  const { root, driver: d } = fakeDom0('xtv-read-', (root) => ({
    xl: [`echo "xl $*" >> '${root}/log'`, `[ "$1" = domid ] && cat '${root}/domid-'"$2" 2>/dev/null`],
    'xenstore-read': [
      `echo "xenstore-read" >> '${root}/log'`,
      `for p in "$@"; do [ -f '${root}/xs'"$p" ] || { echo "xenstore-read: couldn't read path $p" >&2; exit 1; }; cat '${root}/xs'"$p"; echo; done`,
    ],
  }));
  const node = (path: string, value: string) => {
    mkdirSync(join(root, 'xs', path, '..'), { recursive: true });
    writeFileSync(join(root, 'xs', path), value);
  };
  const domain = (domid: number, name: string) => {
    node(`/local/domain/${domid}/name`, name);
    node(`/local/domain/${domid}/data/xtv/state`, `ready-in-${domid}`);
    writeFileSync(join(root, `domid-${name}`), `${domid}\n`);
  };
  const runs = () => {
    const log = existsSync(join(root, 'log')) ? readFileSync(join(root, 'log'), 'utf8').trim().split('\n') : [];
    rmSync(join(root, 'log'), { force: true });
    return log;
  };
  const a = { name: 'xtv-a', id: 'xtv-a' };
  const keys = ['data/xtv/state', 'data/xtv/absent'];
  try {
    domain(3, 'xtv-a');
    t.deepEqual(await d.readGuestMany(a, keys), { 'data/xtv/state': 'ready-in-3', 'data/xtv/absent': null }, 'first read: values, absent is null');
    t.deepEqual(runs(), ['xl domid xtv-a', 'xenstore-read'], 'xl domid, then one xenstore-read for the name and both keys');
    t.deepEqual(await d.readGuestMany(a, ['data/xtv/state']), { 'data/xtv/state': 'ready-in-3' });
    t.deepEqual(runs(), ['xenstore-read'], 'cached domid: one process, no xl');
    // Rebooted: domain 3 gone, the VM is domain 8 now.
    rmSync(join(root, 'xs', 'local', 'domain', '3'), { recursive: true });
    domain(8, 'xtv-a');
    t.deepEqual(await d.readGuestMany(a, ['data/xtv/state']), { 'data/xtv/state': 'ready-in-8' }, "after a reboot: the new domain's values");
    t.deepEqual(runs(), ['xenstore-read', 'xl domid xtv-a', 'xenstore-read'], 'in the same script: the failed read, the lookup, the read');
    t.deepEqual(await d.readGuestMany(a, ['data/xtv/state']), { 'data/xtv/state': 'ready-in-8' });
    t.deepEqual(runs(), ['xenstore-read'], 'and the new domid is cached');
    // Domain 8 is some other VM's now (domids do come round): looked up afresh.
    domain(8, 'xtv-other');
    domain(9, 'xtv-a');
    t.deepEqual(await d.readGuestMany(a, ['data/xtv/state']), { 'data/xtv/state': 'ready-in-9' }, 'a cached domid with another name is not believed');
    // No domain at all.
    rmSync(join(root, 'domid-xtv-a'));
    rmSync(join(root, 'xs', 'local', 'domain', '9'), { recursive: true });
    t.deepEqual(await d.readGuestMany(a, keys), { 'data/xtv/state': null, 'data/xtv/absent': null }, 'no domain: every value null');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("read-many.sh (the XAPI driver's reads too): absent keys skipped, each run resuming after the absent one", async (t) => {
  const { root } = fakeDom0('xtv-loop-', (root) => ({
    'xenstore-read': [
      `echo run >> '${root}/log'`,
      `for p in "$@"; do [ -f '${root}/xs'"$p" ] || { echo "xenstore-read: couldn't read path $p" >&2; exit 1; }; cat '${root}/xs'"$p"; echo; done`,
    ],
  }));
  try {
    mkdirSync(join(root, 'xs', 'local', 'domain', '4', 'data'), { recursive: true });
    writeFileSync(join(root, 'xs', 'local', 'domain', '4', 'data', 'a'), 'first\\nline');
    writeFileSync(join(root, 'xs', 'local', 'domain', '4', 'data', 'c'), '');
    const keys = ['data/a', 'data/b', 'data/c', 'data/d'];
    const script = scriptCommand('read-many', 'XTV-M', 1, ['', '4', ...keys]);
    const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${join(root, 'bin')}:${process.env.PATH}` } });
    t.deepEqual(
      parseReadMany(r.stdout, 'XTV-M', keys),
      { 'data/a': 'first\nline', 'data/b': null, 'data/c': '', 'data/d': null },
      'values decoded, absent ones null',
    );
    t.equal(readFileSync(join(root, 'log'), 'utf8'), 'run\nrun\n', 'two xenstore-read runs: all four keys, then the two after data/b');
    t.ok(
      scriptCommand('read-many', 'XTV-M', 1, ['', '4', 'data/$(reboot)']).startsWith("set -- XTV-M 1 '' 4 'data/$(reboot)'\n"),
      'keys go in as quoted arguments, never into the script text',
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('xl driver: listOwned names the configs whose first line has the marker, in one awk', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xtv-owned-'));
  const paths = { configDir: join(root, 'etc', 'xtv'), imageDir: join(root, 'images'), saveDir: join(root, 'save'), consoleLogDir: join(root, 'log') };
  const d = new XlDriver(new LocalShellTarget(), { paths });
  try {
    t.deepEqual(await d.listOwned(), [], 'no config directory: none');
    mkdirSync(paths.configDir, { recursive: true });
    t.deepEqual(await d.listOwned(), [], 'an empty one: none');
    writeFileSync(join(paths.configDir, 'xtv-a.cfg'), `${XL_MARKER} (do not edit)\nname = "xtv-a"\n`);
    writeFileSync(join(paths.configDir, 'xtv-b.cfg'), `name = "xtv-b"\n${XL_MARKER}\n`);
    writeFileSync(join(paths.configDir, 'mine.cfg.bak'), `${XL_MARKER}\n`);
    writeFileSync(join(paths.configDir, 'xtv-c.d.cfg'), `${XL_MARKER}\n`);
    writeFileSync(join(paths.configDir, 'empty.cfg'), '');
    t.deepEqual(
      (await d.listOwned()).map((v) => v.name),
      ['xtv-a', 'xtv-c.d'],
      'the marker on the first line of a .cfg only',
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("xl errors: the message keeps the first libxl error ahead of the clean-up's last lines", (t) => {
  const create = [
    'Parsing config from /etc/xen/xtv/vm.cfg',
    'libxl: error: libxl_domain.c:81:libxl__domain_rename: Domain 10:Domain with name "vm" already exists.',
    'libxl: error: libxl_create.c:1296:initiate_domain_create: Domain 10:cannot make domain: -6',
    'libxl: error: libxl_domain.c:1183:libxl__destroy_domid: Domain 10:Non-existant domain',
    'libxl: error: libxl_domain.c:1137:domain_destroy_callback: Domain 10:Unable to destroy guest',
    'libxl: error: libxl_domain.c:1064:domain_destroy_cb: Domain 10:Destruction of domain failed',
  ].join('\n');
  const s = stderrSummary(create);
  t.match(s, /^libxl: error: .*already exists\. \| \.\.\. \| /, 'the cause first');
  t.match(s, /Destruction of domain failed$/, 'then the last lines');
  t.equal(stderrSummary('a\nb\nlibxl: error: x'), 'a | b | libxl: error: x', 'three lines or fewer: as they are');
  t.equal(stderrSummary('one\ntwo\nthree\nfour'), 'two | three | four', 'no error line: the last three');
  t.end();
});

test('xtv doctor on an xl host: the migrate check says whether `ssh localhost` works and which domain types Xen can live-migrate', async (t) => {
  const doctor = async (sshExit: number, caps: string, domainType: 'pv' | 'pvh') => {
    const { root, driver } = fakeDom0('xtv-doctor-', () => ({
      timeout: ['shift', 'exec "$@"'],
      ssh: sshExit === 0 ? ['exit 0'] : ["echo 'Host key verification failed.' >&2", `exit ${sshExit}`],
      xl: ['case "$1" in', `  info) printf 'xen_version : 4.17.7\\nvirt_caps : ${caps}\\nfree_memory : 900\\n' ;;`, 'esac', 'exit 0'],
    }));
    try {
      const checks = await xlPreflight(driver, { vms: 1, memoryMiB: 32, domainType });
      return checks.find((c) => c.id === 'migrate')!;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
  const ok = await doctor(0, 'pv hvm hap shadow', 'pv');
  t.equal(ok.status, 'ok', `ok: ${ok.detail}`);
  const noShadow = await doctor(0, 'pv hvm hap', 'pv');
  t.equal(noShadow.status, 'warn', 'PV on a Xen without shadow paging: a warning');
  t.match(noShadow.detail, /cannot live-migrate PV domains.*the migrate cases of PV guests are skipped/);
  t.match(noShadow.fix ?? '', /--domain-type pvh/);
  t.equal((await doctor(0, 'pv hvm hap', 'pvh')).status, 'ok', 'PVH on the same host: ok');
  const noSsh = await doctor(255, 'pv hvm hap shadow', 'pv');
  t.equal(noSsh.status, 'warn', '`ssh localhost` failing: a warning');
  t.match(noSsh.detail, /did not work \(Host key verification failed\.\)/, 'with what ssh said');
  t.match(noSsh.fix ?? '', /authorized_keys.*known_hosts/);
});

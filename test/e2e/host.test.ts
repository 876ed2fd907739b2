// The embedded Xen host on real Xen under QEMU: boots, answers xl and
// xenstore over SSH, runs a guest, stops, and never leaves QEMU behind, even
// when its owner is killed with SIGKILL.
import test from 'tape';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, symlinkSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { EmbeddedHost, withEmbeddedHost } from '../../harness/embedded/embedded-host.ts';
import { hostArtifacts, REPO_ROOT } from '../../harness/embedded/paths.ts';
import { findProcesses, isProcessAlive, waitForExit } from '../../harness/embedded/process-utils.ts';
import { readState } from '../../harness/embedded/state.ts';
import { sharedE2eStateDir } from './e2e-host.ts';

const art = hostArtifacts();
const haveHost = existsSync(art.manifest);

/** Pids of processes (QEMU, its wrapper) that mention `stateDir`, after they had up to 5 s to go. */
async function leftovers(stateDir: string): Promise<number[]> {
  const deadline = Date.now() + 5000;
  let left = findProcesses('qemu-system-x86_64', stateDir);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100));
    left = findProcesses('qemu-system-x86_64', stateDir);
  }
  return left;
}

/** Polls `cmd` in dom0 until its output matches, within `timeoutMs`. */
async function waitInDom0(host: EmbeddedHost, cmd: string, re: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await host.exec(cmd, { timeoutMs: 20_000 });
    last = r.stdout + r.stderr;
    if (re.test(last)) return last;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`'${cmd}' did not match ${re} within ${timeoutMs} ms; last output: ${last.slice(-500)}`);
}

function guestConfig(name: string, kernel: string, ramdisk: string, memoryMiB: number, extra: string): string {
  return [
    `name = "${name}"`,
    'type = "pv"',
    `kernel = "${kernel}"`,
    `ramdisk = "${ramdisk}"`,
    `extra = "${extra}"`,
    `memory = ${memoryMiB}`,
    'vcpus = 1',
    'on_poweroff = "destroy"',
    '',
  ].join('\n');
}

/** A tiny guest initramfs: busybox init that prints a line on hvc0 and powers off when asked. */
function makeProbeInitrd(dir: string): string {
  const root = join(dir, 'root');
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev']) mkdirSync(join(root, d), { recursive: true });
  execFileSync('cp', ['/bin/busybox', join(root, 'bin', 'busybox')]);
  for (const a of ['sh', 'mount', 'echo', 'cat']) symlinkSync('busybox', join(root, 'bin', a));
  // Linux's orderly_poweroff runs /sbin/poweroff; busybox init then powers the domain off.
  symlinkSync('../bin/busybox', join(root, 'sbin', 'poweroff'));
  symlinkSync('bin/busybox', join(root, 'init'));
  writeFileSync(join(root, 'etc', 'inittab'), '::sysinit:/bin/sh -c "mount -t proc proc /proc; echo XTV-PROBE-GUEST-UP"\n');
  const out = join(dir, 'probe-initrd.gz');
  execFileSync('sh', ['-c', `cd '${root}' && find . | sort | cpio --quiet -o -H newc -R 0:0 | gzip -n > '${out}'`]);
  return out;
}

/**
 * What a booted host must do: answer xl and xenstore over SSH, relay exec,
 * copy files intact, run a guest. On npm test's shared host other files'
 * guests run too, so domains are counted as at least one.
 */
async function exerciseHost(t: test.Test, host: EmbeddedHost, shared: boolean): Promise<void> {
  t.ok(isProcessAlive(host.pid, 'qemu-system-x86_64'), `QEMU runs (pid ${host.pid})`);

  const info = await host.run('xl info');
  t.match(info, /^xen_version\s*:\s*4\.17/m, 'xl info shows Xen 4.17');
  t.match(await host.run('xl list'), /^Domain-0\s+0\s/m, 'xl list shows Domain-0');
  t.equal((await host.run('xenstore-read domid')).trim(), '0', 'xenstore-read works (domid of dom0)');
  await host.run('xenstore-write /xtv-test/hello "a b" && xenstore-read /xtv-test/hello');
  t.equal((await host.run('xenstore-read /xtv-test/hello')).trim(), 'a b', 'xenstore-write then xenstore-read');

  const r = await host.exec('echo out; echo err >&2; exit 3');
  t.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', code: 3 }, 'exec relays stdout, stderr and the exit status');
  t.equal((await host.exec('cat', { input: 'piped\n' })).stdout, 'piped\n', 'exec passes input on stdin');

  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const s = process.hrtime.bigint();
    await host.exec('true');
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  times.sort((a, b) => a - b);
  t.comment(`exec latency (ControlMaster): p50 ${times[5]!.toFixed(0)} ms, max ${times[9]!.toFixed(0)} ms`);

  const status = await host.status();
  t.ok(status.running && status.xen?.version.startsWith('4.17'), `status(): running, Xen ${status.xen?.version}`);
  if (shared) t.ok((status.domains ?? 0) >= 1, `status(): ${status.domains} domain(s), Domain-0 among them (the host is shared)`);
  else t.equal(status.domains, 1, 'status(): one domain');

  if (shared) {
    // The other e2e files boot the test image on this host many times over; a 160 MiB
    // Debian-kernel guest on top of theirs would only slow them down.
    t.comment('guests: left to the other e2e files on this shared host');
    return;
  }

  // xl create with a known-good guest: Debian's (dom0's) kernel with a busybox initramfs.
  const work = mkdtempSync(join(tmpdir(), 'xtv-probe-'));
  try {
    const initrd = makeProbeInitrd(work);
    const s = Date.now();
    await host.copyTo(art.kernel, '/root/probe/kernel');
    await host.copyTo(initrd, '/root/probe/initrd');
    t.comment(`copyTo of ${((readFileSync(art.kernel).length + readFileSync(initrd).length) / 1e6).toFixed(1)} MB: ${Date.now() - s} ms`);
    const sum = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    t.equal((await host.run('sha256sum /root/probe/kernel')).split(' ')[0], sum(art.kernel), 'copyTo copies the kernel intact');
    await host.run('cat > /root/probe/probe.cfg', { input: guestConfig('xtv-probe', '/root/probe/kernel', '/root/probe/initrd', 160, 'console=hvc0') });
    const c = Date.now();
    await host.run('xl create /root/probe/probe.cfg', { timeoutMs: 120_000 });
    t.comment(`xl create: ${Date.now() - c} ms`);
    t.match(await host.run('xl list'), /^xtv-probe\s+\d+\s/m, 'the guest is listed by xl');
    await waitInDom0(host, 'cat /var/log/xen/console/guest-xtv-probe.log', /XTV-PROBE-GUEST-UP/, 120_000);
    t.pass(`the guest booted (its console line, logged by xenconsoled, arrived ${Date.now() - c} ms after create)`);
    const d = Date.now();
    await host.run('xl shutdown -w xtv-probe', { timeoutMs: 60_000 });
    t.comment(`xl shutdown -w: ${Date.now() - d} ms`);
    t.doesNotMatch(await host.run('xl list'), /xtv-probe/, 'xl shutdown -w: the guest powered off and is gone');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  // The test image, when it is built (its own suite checks the agent; this only checks the host runs it).
  const image = join(REPO_ROOT, 'dist', 'image');
  if (!existsSync(join(image, 'xtv-kernel')) || !existsSync(join(image, 'xtv-initrd'))) {
    t.comment('SKIP the test image: dist/image/xtv-kernel is not built (npm run build:image)');
  } else {
    let memory = 64;
    try {
      memory = Math.max(memory, Number(JSON.parse(readFileSync(join(image, 'manifest.json'), 'utf8')).minMemoryMiB) || 0);
    } catch {
      /* no manifest: 64 MiB */
    }
    await host.copyTo(join(image, 'xtv-kernel'), '/root/image/kernel');
    await host.copyTo(join(image, 'xtv-initrd'), '/root/image/initrd');
    await host.run('cat > /root/image/image.cfg', { input: guestConfig('xtv-image', '/root/image/kernel', '/root/image/initrd', memory, 'console=hvc0') });
    await host.run('xl create /root/image/image.cfg', { timeoutMs: 120_000 });
    t.match(await host.run('xl list'), /^xtv-image\s+\d+\s/m, `the test image runs as a PV guest with ${memory} MiB`);
    await host.run('xl destroy xtv-image');
    t.doesNotMatch(await host.run('xl list'), /xtv-image/, "xl destroy: the test image's domain is gone");
  }
}

// npm test boots one host for every e2e file (XTV_E2E_STATE_DIR; its runner checks that it
// goes down and leaves no QEMU); run alone, this file boots its own and checks that here.
const sharedHost = sharedE2eStateDir();

test('embedded host: Xen 4.17 + dom0 answer xl and xenstore over SSH, run a guest', { skip: !haveHost || !sharedHost }, async (t) => {
  await exerciseHost(t, EmbeddedHost.attach(sharedHost!), true);
});

test('embedded host: Xen 4.17 + dom0 answer xl and xenstore over SSH, run a guest, and stop cleanly', { skip: !haveHost || !!sharedHost }, async (t) => {
  let stateDir = '';
  let pid = 0;
  const t0 = Date.now();
  await withEmbeddedHost(async (host) => {
    stateDir = host.stateDir;
    pid = host.pid;
    t.comment(`boot to ready: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await exerciseHost(t, host, false);
  });
  t.notOk(isProcessAlive(pid), 'QEMU is gone after withEmbeddedHost');
  t.notOk(existsSync(stateDir), 'its temporary state directory is removed');
  t.deepEqual(await leftovers(stateDir), [], 'no QEMU process for that state directory is left');
});

test('embedded host: QEMU dies when the Node process that owns it is killed with SIGKILL', { skip: !haveHost }, async (t) => {
  // The owner is killed while dom0 is still booting: QEMU is owned from its start (the
  // wrapper watches a pipe from its owner), and waiting for dom0 would only add a boot.
  const dir = mkdtempSync(join(tmpdir(), 'xtv-owner-'));
  const stateDir = join(dir, 'state');
  const script = join(dir, 'owner.mts');
  writeFileSync(
    script,
    [
      `import { EmbeddedHost } from ${JSON.stringify(join(REPO_ROOT, 'harness/embedded/embedded-host.ts'))};`,
      `await EmbeddedHost.up({ stateDir: ${JSON.stringify(stateDir)} });`,
      'setInterval(() => {}, 1000);',
    ].join('\n'),
  );
  chmodSync(script, 0o644);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  try {
    const deadline = Date.now() + 120_000;
    let qemuPid = 0;
    // Until QEMU runs and Xen has started (its first line in the boot log): then the owner dies.
    const xenStarted = (path: string): boolean => {
      try {
        return readFileSync(path, 'utf8').includes('(XEN)');
      } catch {
        return false;
      }
    };
    while (!qemuPid && Date.now() < deadline) {
      const state = readState(stateDir);
      if (state && isProcessAlive(state.pid, 'qemu-system-x86_64') && xenStarted(state.bootLog)) qemuPid = state.pid;
      else if (child.exitCode !== null) break;
      else await new Promise((res) => setTimeout(res, 200));
    }
    if (!qemuPid) {
      t.fail(`the owner did not start QEMU and Xen within 120 s (owner exit ${child.exitCode})`);
      return;
    }
    t.ok(isProcessAlive(qemuPid, 'qemu-system-x86_64'), `QEMU runs (pid ${qemuPid}) under its owner (pid ${child.pid})`);
    child.kill('SIGKILL');
    await exited;
    const gone = await waitForExit(qemuPid, 10_000, 'qemu-system-x86_64');
    t.ok(gone, "QEMU exits within 10 s of its owner's SIGKILL");
    if (!gone) process.kill(qemuPid, 'SIGKILL');
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs `xtv host ...` as a user would; resolves with its exit code and output. */
function xtvHost(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'xtv.js'), 'host', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    child.stdin!.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 400_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

test('xtv host up / exec / status / down: the host outlives up, one per state dir, and down leaves nothing', { skip: !haveHost }, async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'xtv-cli-'));
  // Only the host itself: the XenAPI test double has its own suite.
  const env = { ...process.env, XTV_STATE_DIR: stateDir, XTV_NO_XAPI: '1' };
  try {
    const up = await xtvHost(['up', '--no-build'], env);
    t.equal(up.code, 0, `up exits 0 (${up.stdout.split('\n')[0]})`);
    t.match(up.stdout, /xtv host exec/, 'up prints how to use the host');
    const exec = await xtvHost(['exec', '--', 'sh', '-c', 'cat; echo err >&2; exit 4'], env, 'from stdin\n');
    t.deepEqual([exec.code, exec.stdout, exec.stderr], [4, 'from stdin\n', 'err\n'], 'exec relays stdin, stdout, stderr and the exit status');
    const status = await xtvHost(['status', '--json'], env);
    const s = JSON.parse(status.stdout) as { running: boolean; pid: number; xen?: { version: string } };
    t.ok(status.code === 0 && s.running && s.xen?.version.startsWith('4.17'), `status --json: running, Xen ${s.xen?.version}`);
    const again = await xtvHost(['up', '--no-build'], env);
    t.equal(again.code, 2, 'a second up for the same state dir exits 2');
    t.match(again.stderr, /already running/, 'and says why');
    const down = await xtvHost(['down'], env);
    t.equal(down.code, 0, 'down exits 0');
    t.notOk(isProcessAlive(s.pid), 'QEMU is gone');
    t.deepEqual(await leftovers(stateDir), [], 'no QEMU process for that state directory is left');
    const after = await xtvHost(['exec', '--', 'true'], env);
    t.equal(after.code, 2, 'exec without a host exits 2');
    t.match(after.stderr, /no embedded host is running/, 'and says why');
  } finally {
    const left = findProcesses('qemu-system-x86_64', stateDir);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  }
});

// One host per state directory: a live QEMU refuses a second `up`, a stale
// record is cleaned, and the boot-log marker is found (whole or in pieces).
import test from 'tape';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, appendFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimStateDir, liveState, writeState, HostAlreadyRunningError, type HostState } from '../../harness/embedded/state.ts';
import { stateFiles } from '../../harness/embedded/paths.ts';
import { findMarker, waitForBootMarker } from '../../harness/embedded/boot-log.ts';
import { parseXlInfo } from '../../harness/embedded/embedded-host.ts';

function fakeState(dir: string, pid: number): HostState {
  const f = stateFiles(dir);
  return {
    version: 1,
    pid,
    sshPort: 1,
    ports: { ssh: 1 },
    privateKey: '/k',
    controlPath: f.controlPath,
    bootLog: f.bootLog,
    qemuLog: f.qemuLog,
    distDir: '/d',
    startedAt: new Date().toISOString(),
    memoryMiB: 2048,
    dom0MemoryMiB: 1024,
    cpus: 1,
    owner: 'cli',
    ownerPid: process.pid,
  };
}

test('a stale record (dead pid) is cleaned and the dir can be claimed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-state-'));
  try {
    writeState(dir, fakeState(dir, 2 ** 22 + 12345)); // no such pid
    writeFileSync(stateFiles(dir).pid, '4206969\n');
    t.equal(liveState(dir), null, 'not live');
    t.notOk(existsSync(stateFiles(dir).state), 'host.json removed');
    t.notOk(existsSync(stateFiles(dir).pid), 'pidfile removed');
    const release = claimStateDir(dir);
    t.ok(existsSync(stateFiles(dir).lock), 'lock taken');
    t.throws(() => claimStateDir(dir), /another 'xtv host up'/, 'a second claimant is refused while the lock is held');
    release();
    t.notOk(existsSync(stateFiles(dir).lock), 'lock released');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('a record whose pid is alive but is not QEMU (pid reuse) is stale', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-state-'));
  try {
    writeState(dir, fakeState(dir, process.pid));
    t.equal(liveState(dir), null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('a live QEMU refuses a second up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-state-'));
  // A process whose command line says qemu-system-x86_64 without being one.
  const fake = spawn('bash', ['-c', 'exec -a qemu-system-x86_64 sleep 30'], { stdio: 'ignore' });
  try {
    await new Promise((r) => fake.once('spawn', r));
    await new Promise((r) => setTimeout(r, 100)); // let exec replace the shell
    writeState(dir, fakeState(dir, fake.pid!));
    t.equal(liveState(dir)?.pid, fake.pid, 'live');
    t.throws(
      () => claimStateDir(dir),
      (e: unknown) => e instanceof HostAlreadyRunningError && /already running/.test(e.message) && e.message.includes(dir),
    );
  } finally {
    fake.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boot markers: ready and failed lines', (t) => {
  t.deepEqual(findMarker('(XEN) x\nXTV-DOM0-READY uptime=3.2\n'), { kind: 'ready', line: 'XTV-DOM0-READY uptime=3.2' });
  t.deepEqual(findMarker('XTV-DOM0-FAILED: insmod xenfs\r\n'), { kind: 'failed', step: 'insmod xenfs' });
  t.equal(findMarker('nothing here'), null);
  t.end();
});

test('waitForBootMarker follows a growing file, and is bounded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-log-'));
  const log = join(dir, 'boot.log');
  try {
    const lines: string[] = [];
    const waiting = waitForBootMarker(log, { timeoutMs: 5000, isAlive: () => true, pollMs: 10, onLine: (l) => lines.push(l) });
    setTimeout(() => writeFileSync(log, '(XEN) booting\nxtv-dom0: start'), 30);
    setTimeout(() => appendFileSync(log, 'ing xenstored\nXTV-DOM0-RE'), 60);
    setTimeout(() => appendFileSync(log, 'ADY uptime=1\n'), 90);
    t.deepEqual(await waiting, { kind: 'ready', line: 'XTV-DOM0-READY uptime=1' });
    t.deepEqual(lines.slice(0, 2), ['(XEN) booting', 'xtv-dom0: starting xenstored'], 'lines split across writes are joined');
    t.deepEqual(await waitForBootMarker(join(dir, 'none'), { timeoutMs: 50, isAlive: () => true, pollMs: 10 }), { kind: 'timeout' });
    t.deepEqual(await waitForBootMarker(join(dir, 'none'), { timeoutMs: 5000, isAlive: () => false, pollMs: 10 }), { kind: 'exited' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('xl info parsing', (t) => {
  const info = parseXlInfo(
    'host                   : xtv-dom0\nxen_major              : 4\nxen_extra              : .7\nxen_commandline        : console=com1 a=b\n',
  );
  t.equal(info.host, 'xtv-dom0');
  t.equal(info.xen_extra, '.7');
  t.equal(info.xen_commandline, 'console=com1 a=b');
  t.end();
});

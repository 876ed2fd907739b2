// The embedded Xen host: Xen 4.17 + a Debian dom0 under QEMU (software
// emulation), reached over SSH like a real Xen host. This module starts,
// attaches to, drives and stops one; dom0/image/build.sh makes what it boots.
//
//   const host = await EmbeddedHost.up({ stateDir });       // boots, waits for dom0
//   const { stdout } = await host.exec('xl list');           // over SSH
//   await host.down();
//
// Or, for tests: await withEmbeddedHost(async (host) => { ... }) which
// guarantees QEMU is gone afterwards, on error, on SIGINT/SIGTERM and on exit.
//
// Lifetime rule: QEMU never outlives the command that owns it. A library
// caller owns it: QEMU is started through a small shell that kills it when
// the Node process's pipe closes, so even `kill -9` of Node stops QEMU.
// `xtv host up` (detached) owns it the same way until dom0 is ready, then
// tells the shell to let go and hands it to the state directory, for later
// `xtv host exec/status/down`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { buildQemuArgs } from './qemu-args.ts';
import { hostArtifacts, resolveStateDir, stateFiles } from './paths.ts';
import { freeLocalPort, isProcessAlive, waitForExit } from './process-utils.ts';
import {
  looksLikeSshFailure,
  retryWhileRefused,
  runSsh,
  sshCommandArgs,
  sshMasterControlArgs,
  sshMasterStartArgs,
  type SshEndpoint,
} from '../remote/ssh-run.ts';
import { claimStateDir, clearState, HostNotRunningError, liveState, QEMU_NAME, readPidFile, writeState, type HostState } from './state.ts';
import { tailOfFile, waitForBootMarker } from './boot-log.ts';
import { traceDom0 } from '../remote/dom0-trace.ts';
import { shq } from '../remote/target.ts';
import { parseXlInfo } from '../../protocol/xl-output.ts';
import { ensurePrivateDir } from './private-dir.ts';

export { HostAlreadyRunningError, HostNotRunningError, type HostState } from './state.ts';
export { parseXlInfo };
export { resolveStateDir } from './paths.ts';

export const DEFAULTS = {
  memoryMiB: 2048,
  dom0MemoryMiB: 1024,
  // Measured under TCG on 2 host cores: 1 vCPU reaches dom0-ready in ~11 s,
  // 2 vCPUs in ~16 s (see dom0/image/README.md).
  cpus: 1,
  bootTimeoutMs: 300_000,
  execTimeoutMs: 120_000,
  /** An idle SSH master goes away after this long. */
  sshPersistSec: 600,
} as const;

export interface UpOptions {
  stateDir: string;
  /** Memory of the whole emulated machine (Xen, dom0 and guests). */
  memoryMiB?: number;
  /** dom0's fixed share (dom0_mem); guests get the rest. */
  dom0MemoryMiB?: number;
  cpus?: number;
  /** More ports to forward from 127.0.0.1 into dom0, by name, e.g. { xapi: 80 }. The chosen host ports are in `ports`. */
  forwards?: Record<string, number>;
  /** cpio archives (gzip or not) appended to dom0's initramfs at boot: a way to add files without rebuilding. */
  extraInitrds?: string[];
  /** Where dom0/image/build.sh put its outputs; default <repo>/dist/host. */
  distDir?: string;
  /** Bound on boot-to-ready (console marker, then SSH). */
  timeoutMs?: number;
  /** Progress messages, one line each. */
  onProgress?: (message: string) => void;
  /** Leave QEMU running when this process exits (what `xtv host up` does). */
  detached?: boolean;
}

export interface ExecOptions {
  input?: string | Buffer;
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** The command's exit status in dom0. */
  code: number;
}

export interface HostStatus {
  running: boolean;
  stateDir: string;
  bootLog: string;
  pid?: number;
  sshPort?: number;
  ports?: Record<string, number>;
  privateKey?: string;
  owner?: 'cli' | 'library';
  startedAt?: string;
  uptimeSec?: number;
  /** From `xl info`, when dom0 answered. */
  xen?: { version: string; nrCpus: number; totalMemoryMiB: number; freeMemoryMiB: number };
  /** Domains `xl list` shows, Domain-0 included. */
  domains?: number;
  /** Why `xen`/`domains` are missing although QEMU runs. */
  error?: string;
  /** Whatever other components recorded with setExtra (e.g. the XenAPI endpoint). */
  extra?: Record<string, unknown>;
  /** The XenAPI test double ({endpoints, user, passwordFile, caFile}) when the host was booted with it. */
  xapi?: Record<string, unknown>;
}

/** QEMU did not bring dom0 up. The message names the cause and the boot log. */
export class HostBootError extends Error {
  override name = 'HostBootError';
  constructor(
    message: string,
    readonly bootLog: string,
  ) {
    super(message);
  }
}

/** dom0 could not be reached (SSH failed or did not answer in time): not an answer from the command. */
export class HostUnreachableError extends Error {
  override name = 'HostUnreachableError';
}

/** A command run with `run` exited non-zero. */
export class HostCommandError extends Error {
  override name = 'HostCommandError';
  constructor(
    readonly command: string,
    readonly result: ExecResult,
  ) {
    super(`'${command}' exited with ${result.code} in dom0${result.stderr.trim() ? `: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
  }
}

/** The QEMU process a library caller owns: the wrapper shell whose stdin pipe ties QEMU to this process. */
interface OwnedProcess {
  wrapper: ChildProcess;
}

// Hosts this process owns, so that exit and signal hooks can stop them.
const ownedHosts = new Set<EmbeddedHost>();

export class EmbeddedHost {
  private masterReady: Promise<void> | null = null;

  private constructor(
    readonly stateDir: string,
    private state: HostState,
    private owned: OwnedProcess | null,
  ) {}

  get pid(): number {
    return this.state.pid;
  }
  get sshPort(): number {
    return this.state.sshPort;
  }
  /** Host ports on 127.0.0.1 by name: ssh, and every name given in `forwards`. */
  get ports(): Readonly<Record<string, number>> {
    return this.state.ports;
  }
  get bootLogPath(): string {
    return this.state.bootLog;
  }
  get privateKeyPath(): string {
    return this.state.privateKey;
  }

  /** Boots a host for `opts.stateDir` and returns when dom0 answers over SSH. */
  static async up(opts: UpOptions): Promise<EmbeddedHost> {
    const stateDir = resolveStateDir(opts.stateDir);
    const files = stateFiles(stateDir);
    const art = hostArtifacts(opts.distDir);
    for (const p of [art.xen, art.kernel, art.initrd, art.privateKey]) {
      if (!existsSync(p)) throw new HostBootError(`${p} is missing: build the embedded host first (npm run build:host)`, files.bootLog);
    }
    const progress = opts.onProgress ?? (() => {});
    const release = claimStateDir(stateDir);
    try {
      clearState(stateDir);
      const memoryMiB = opts.memoryMiB ?? DEFAULTS.memoryMiB;
      const dom0MemoryMiB = opts.dom0MemoryMiB ?? DEFAULTS.dom0MemoryMiB;
      const cpus = opts.cpus ?? DEFAULTS.cpus;
      const initrd = combineInitrds(art.initrd, opts.extraInitrds ?? [], files.combinedInitrd);
      const deadline = Date.now() + (opts.timeoutMs ?? DEFAULTS.bootTimeoutMs);

      // A chosen port can be taken between the check and QEMU's bind: retry with new ones.
      for (let attempt = 1; ; attempt++) {
        const ports: Record<string, number> = { ssh: await freeLocalPort() };
        const forwards = [{ hostPort: ports.ssh!, guestPort: 22 }];
        for (const [name, guestPort] of Object.entries(opts.forwards ?? {})) {
          ports[name] = await freeLocalPort();
          forwards.push({ hostPort: ports[name]!, guestPort });
        }
        const args = buildQemuArgs({
          xen: art.xen,
          kernel: art.kernel,
          initrd,
          memoryMiB,
          dom0MemoryMiB,
          cpus,
          forwards,
          bootLog: files.bootLog,
          pidFile: files.pid,
        });
        progress(
          `starting QEMU: Xen + dom0, ${cpus} vCPU, ${memoryMiB} MiB (dom0 ${dom0MemoryMiB} MiB), ssh on 127.0.0.1:${ports.ssh}; boot log ${files.bootLog}`,
        );
        const started = await startQemu(args, files, !!opts.detached);
        if (started.kind === 'bind-failed' && attempt < 3) {
          progress(`port taken, retrying (${started.detail})`);
          continue;
        }
        if (started.kind !== 'ok') {
          throw new HostBootError(`QEMU did not start: ${started.detail}\nQEMU's log: ${files.qemuLog}`, files.bootLog);
        }
        const state: HostState = {
          version: 1,
          pid: started.pid,
          sshPort: ports.ssh!,
          ports,
          privateKey: art.privateKey,
          controlPath: files.controlPath,
          bootLog: files.bootLog,
          qemuLog: files.qemuLog,
          distDir: art.dir,
          startedAt: new Date().toISOString(),
          memoryMiB,
          dom0MemoryMiB,
          cpus,
          owner: opts.detached ? 'cli' : 'library',
          ownerPid: process.pid,
          extra: {},
        };
        writeState(stateDir, state);
        const host = new EmbeddedHost(stateDir, state, started.owned);
        // Owned until dom0 is ready, detached or not: an exit before that stops QEMU.
        ownedHosts.add(host);
        installExitHook();
        // Until dom0 is ready this call owns QEMU even when detached: Ctrl-C or an error stops it.
        let interruptedBy: string | null = null;
        const stopOnSignal = (signal: NodeJS.Signals) => {
          interruptedBy = signal;
          host.kill();
        };
        process.once('SIGINT', stopOnSignal);
        process.once('SIGTERM', stopOnSignal);
        try {
          await host.waitUntilReady(deadline, progress);
        } catch (err) {
          await host.down({ timeoutMs: 0 });
          if (interruptedBy) throw new HostBootError(`interrupted by ${interruptedBy}; QEMU stopped`, files.bootLog);
          throw err;
        } finally {
          process.off('SIGINT', stopOnSignal);
          process.off('SIGTERM', stopOnSignal);
        }
        if (opts.detached) await host.detach();
        return host;
      }
    } finally {
      release();
    }
  }

  /** The host recorded in `stateDir` (started by `xtv host up` or another process); throws HostNotRunningError. */
  static attach(stateDir: string): EmbeddedHost {
    const dir = resolveStateDir(stateDir);
    const state = liveState(dir);
    if (!state) throw new HostNotRunningError(dir);
    return new EmbeddedHost(dir, state, null);
  }

  /**
   * dom0 as ssh reaches it: the host's key, and its host key remembered in
   * the state directory's known_hosts on first sight (a new build has a new
   * one; the file goes with the state), as `xtv --host embedded` reaches it.
   */
  private sshEndpoint(): SshEndpoint {
    return { user: 'root', host: '127.0.0.1', port: this.state.sshPort, identity: this.state.privateKey, knownHosts: stateFiles(this.stateDir).knownHosts };
  }

  /** The ssh argv (without the program name) that runs `command` in dom0, for callers that spawn ssh themselves. */
  sshArgs(command: string): string[] {
    return sshCommandArgs(this.sshEndpoint(), this.state.controlPath, command);
  }

  private async waitUntilReady(deadline: number, progress: (m: string) => void): Promise<void> {
    const t0 = Date.now();
    let sawXen = false;
    let sawDom0 = false;
    const outcome = await waitForBootMarker(this.state.bootLog, {
      timeoutMs: Math.max(0, deadline - Date.now()),
      isAlive: () => isProcessAlive(this.state.pid, QEMU_NAME),
      onLine: (line) => {
        if (!sawXen && line.startsWith('(XEN)')) {
          sawXen = true;
          progress('Xen is booting');
        } else if (!sawDom0 && line.includes('about to get started')) {
          sawDom0 = true;
          progress('dom0 kernel starting');
        } else if (line.startsWith('xtv-dom0: ')) {
          progress(line.slice('xtv-dom0: '.length));
        }
      },
    });
    const where = `boot log: ${this.state.bootLog}`;
    switch (outcome.kind) {
      case 'ready':
        progress(`dom0 ready after ${((Date.now() - t0) / 1000).toFixed(1)} s; waiting for SSH`);
        break;
      case 'failed':
        throw new HostBootError(`dom0 failed to start: ${outcome.step}\n${where}\n${tailOfFile(this.state.bootLog)}`, this.state.bootLog);
      case 'exited':
        throw new HostBootError(
          `QEMU exited before dom0 was ready\n${where}; QEMU's log: ${this.state.qemuLog}\n${tailOfFile(this.state.bootLog)}\n${tailOfFile(this.state.qemuLog, 5)}`,
          this.state.bootLog,
        );
      case 'timeout':
        throw new HostBootError(
          `dom0 was not ready within ${((Date.now() - t0) / 1000).toFixed(0)} s\n${where}\n${tailOfFile(this.state.bootLog)}`,
          this.state.bootLog,
        );
    }
    // The marker says dropbear listens; the first handshake still takes a while under TCG.
    let lastError = '';
    while (Date.now() < deadline) {
      if (!isProcessAlive(this.state.pid, QEMU_NAME)) {
        throw new HostBootError(`QEMU exited while waiting for SSH\n${where}`, this.state.bootLog);
      }
      const r = await runSsh(sshMasterStartArgs(this.sshEndpoint(), this.state.controlPath, DEFAULTS.sshPersistSec), {
        timeoutMs: Math.max(1000, Math.min(30_000, deadline - Date.now())),
      });
      if (r.code === 0) {
        this.masterReady = Promise.resolve();
        this.state.readyAt = new Date().toISOString();
        writeState(this.stateDir, this.state);
        progress(`SSH answers (${((Date.now() - t0) / 1000).toFixed(1)} s after QEMU started)`);
        return;
      }
      lastError = r.timedOut ? 'timed out' : r.stderr.trim();
      await new Promise((res) => setTimeout(res, 500));
    }
    throw new HostBootError(`dom0 did not answer SSH on 127.0.0.1:${this.state.sshPort}: ${lastError}\n${where}`, this.state.bootLog);
  }

  /** Connects (starts the SSH multiplexing master if none runs); exec and copyTo do this themselves. */
  async connect(): Promise<void> {
    await this.ensureMaster();
  }

  /** Makes sure a multiplexing master runs (started once per process; restarted if it went away). */
  private ensureMaster(): Promise<void> {
    if (!this.masterReady) {
      this.masterReady = (async () => {
        const e = this.sshEndpoint();
        const check = await runSsh(sshMasterControlArgs(e, this.state.controlPath, 'check'), { timeoutMs: 5000 });
        if (check.code === 0) return;
        // Without a master each call connects on its own: slower, still correct.
        await runSsh(sshMasterStartArgs(e, this.state.controlPath, DEFAULTS.sshPersistSec), { timeoutMs: 30_000 });
      })();
    }
    return this.masterReady;
  }

  /**
   * Runs `command` with dom0's /bin/sh as root and collects its output.
   * Resolves with any exit status; rejects with HostUnreachableError when
   * SSH itself failed or the bound passed.
   */
  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULTS.execTimeoutMs;
    const t0 = Date.now();
    // A connection dropbear turned away while busy is tried again, as SshTarget does (nothing ran).
    const r = await retryWhileRefused(t0 + timeoutMs, (ms) =>
      runSsh(this.ownConnectionArgs(command), { timeoutMs: ms, ...(opts.input !== undefined ? { input: opts.input } : {}) }),
    );
    traceDom0('host-exec', command, t0);
    return this.checkReached(command, r, timeoutMs);
  }

  /**
   * ssh arguments for a connection of its own, not the multiplexing master:
   * with several sessions on one connection, dom0's dropbear loses the result
   * of one that ends together with another (ssh exits 255, no message; seen
   * with e2e files sharing a host). ssh keeps the first value of an option.
   */
  private ownConnectionArgs(command: string): string[] {
    return ['-o', 'ControlPath=none', ...this.sshArgs(command)];
  }

  /** exec, but resolves with stdout only and rejects with HostCommandError on a non-zero exit. */
  async run(command: string, opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(command, opts);
    if (r.code !== 0) throw new HostCommandError(command, r);
    return r.stdout;
  }

  /** Copies a local file into dom0 (`cat > remote` over SSH), creating its directory. */
  async copyTo(localPath: string, remotePath: string, opts: { timeoutMs?: number; mode?: string } = {}): Promise<void> {
    const q = shq(remotePath);
    const command = `mkdir -p "$(dirname ${q})" && cat > ${q}${opts.mode ? ` && chmod ${shq(opts.mode)} ${q}` : ''}`;
    const timeoutMs = opts.timeoutMs ?? DEFAULTS.execTimeoutMs;
    const t0 = Date.now();
    const r = await retryWhileRefused(t0 + timeoutMs, (ms) =>
      runSsh(this.ownConnectionArgs(command), { timeoutMs: ms, inputStream: createReadStream(localPath) }),
    );
    traceDom0('copy', command, t0);
    this.checkReached(command, r, timeoutMs);
    if (r.code !== 0) throw new HostCommandError(`copy ${localPath} to ${remotePath}`, { stdout: r.stdout, stderr: r.stderr, code: r.code });
  }

  /** Starts `command` in dom0 with streaming stdio (e.g. `xenstore-watch`); the caller ends it. */
  spawn(command: string): ChildProcess {
    return spawn('ssh', this.sshArgs(command), { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  private checkReached(command: string, r: Awaited<ReturnType<typeof runSsh>>, timeoutMs: number): ExecResult {
    if (r.timedOut)
      throw new HostUnreachableError(
        `'${command}' did not finish within ${timeoutMs} ms in dom0 (ssh to 127.0.0.1:${this.state.sshPort}); boot log: ${this.state.bootLog}`,
      );
    if (r.code === 255 && looksLikeSshFailure(r.stderr)) {
      this.masterReady = null;
      const why = isProcessAlive(this.state.pid, QEMU_NAME) ? r.stderr.trim() : 'QEMU is not running';
      throw new HostUnreachableError(`could not reach dom0 over SSH on 127.0.0.1:${this.state.sshPort}: ${why}; boot log: ${this.state.bootLog}`);
    }
    return { stdout: r.stdout, stderr: r.stderr, code: r.code };
  }

  /** Records a value in the host's state (shown by `xtv host status --json`), e.g. the XenAPI endpoint. */
  setExtra(key: string, value: unknown): void {
    this.state.extra = { ...(this.state.extra ?? {}), [key]: value };
    writeState(this.stateDir, this.state);
  }

  get extra(): Readonly<Record<string, unknown>> {
    return this.state.extra ?? {};
  }

  /** Running or not, ports, uptime, and `xl info` basics when dom0 answers (within `timeoutMs`). */
  async status(opts: { timeoutMs?: number } = {}): Promise<HostStatus> {
    return hostStatus(this.stateDir, opts);
  }

  /** Lets QEMU outlive this process (what `xtv host up` does once dom0 is ready). */
  private async detach(): Promise<void> {
    const stdin = this.owned?.wrapper.stdin;
    // Wait until the word is in the pipe: were this process to exit first, the closed pipe would stop QEMU.
    if (stdin) await new Promise<void>((res) => stdin.end('detach\n', () => res()));
    this.owned = null;
    ownedHosts.delete(this);
  }

  /** Stops QEMU at once (no clean shutdown): synchronous, for exit hooks. */
  kill(): void {
    try {
      process.kill(this.state.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    this.owned?.wrapper.stdin?.destroy();
  }

  /**
   * Stops the host: `poweroff` in dom0 (which destroys the guests), then waits
   * for QEMU to exit, up to `timeoutMs` (default 30 s; 0 skips the clean
   * part), then kills it. Always leaves no QEMU and no record behind.
   */
  async down(opts: { timeoutMs?: number; onProgress?: (m: string) => void } = {}): Promise<{ clean: boolean }> {
    const progress = opts.onProgress ?? (() => {});
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const pid = this.state.pid;
    let clean = false;
    if (isProcessAlive(pid, QEMU_NAME) && timeoutMs > 0) {
      progress('powering dom0 off');
      const deadline = Date.now() + timeoutMs;
      // The session ends with the machine; its exit status means nothing.
      await runSsh(this.sshArgs('poweroff'), { timeoutMs: Math.min(10_000, timeoutMs) }).catch(() => undefined);
      clean = await waitForExit(pid, Math.max(0, deadline - Date.now()), QEMU_NAME);
      if (!clean) progress(`QEMU still running after ${timeoutMs} ms; killing it`);
    }
    if (isProcessAlive(pid, QEMU_NAME)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      if (!(await waitForExit(pid, 5000, QEMU_NAME))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        if (!(await waitForExit(pid, 5000, QEMU_NAME))) {
          throw new Error(`QEMU (pid ${pid}) survived SIGKILL for 5 s`);
        }
      }
    }
    const wrapper = this.owned?.wrapper;
    if (wrapper) {
      wrapper.stdin?.destroy();
      // The wrapper ends right after QEMU; wait for it, so that nothing of this host is left when down() returns.
      if (wrapper.exitCode === null && wrapper.signalCode === null) {
        await new Promise<void>((res) => {
          const timer = setTimeout(res, 5000);
          wrapper.once('exit', () => {
            clearTimeout(timer);
            res();
          });
        });
      }
    }
    this.owned = null;
    ownedHosts.delete(this);
    // The master's connection died with QEMU; this only removes its socket quickly.
    await runSsh(sshMasterControlArgs(this.sshEndpoint(), this.state.controlPath, 'exit'), { timeoutMs: 3000 }).catch(() => undefined);
    this.masterReady = null;
    clearState(this.stateDir);
    progress(clean ? 'host powered off' : 'host stopped');
    return { clean };
  }
}

/** Status of whatever host is recorded for `stateDir` (running or not). */
export async function hostStatus(stateDir: string, opts: { timeoutMs?: number } = {}): Promise<HostStatus> {
  const dir = resolveStateDir(stateDir);
  const files = stateFiles(dir);
  const state = liveState(dir);
  if (!state) return { running: false, stateDir: dir, bootLog: files.bootLog };
  const host = EmbeddedHost.attach(dir);
  const status: HostStatus = {
    running: true,
    stateDir: dir,
    bootLog: state.bootLog,
    pid: state.pid,
    sshPort: state.sshPort,
    ports: state.ports,
    privateKey: state.privateKey,
    owner: state.owner,
    startedAt: state.startedAt,
    uptimeSec: Math.round((Date.now() - Date.parse(state.startedAt)) / 1000),
    extra: state.extra ?? {},
    ...(state.extra?.xapi ? { xapi: state.extra.xapi as Record<string, unknown> } : {}),
  };
  try {
    const r = await host.exec("xl info && echo '--' && xl list | tail -n +2 | wc -l", { timeoutMs: opts.timeoutMs ?? 20_000 });
    if (r.code !== 0) throw new Error(`xl info exited with ${r.code}: ${r.stderr.trim()}`);
    const info = parseXlInfo(r.stdout);
    status.xen = {
      version: `${info.xen_major}.${info.xen_minor}${info.xen_extra ?? ''}`,
      nrCpus: Number(info.nr_cpus),
      totalMemoryMiB: Number(info.total_memory),
      freeMemoryMiB: Number(info.free_memory),
    };
    status.domains = Number(r.stdout.split('--\n')[1]?.trim());
  } catch (err) {
    status.error = err instanceof Error ? err.message : String(err);
  }
  return status;
}

type StartResult = { kind: 'ok'; pid: number; owned: OwnedProcess | null } | { kind: 'bind-failed'; detail: string } | { kind: 'failed'; detail: string };

// QEMU always runs under this wrapper shell. QEMU's output goes to the log
// (stderr); a watcher waits on the parent's pipe (fd 3): when the pipe closes
// (the parent exited, even by SIGKILL) it kills QEMU; when the parent writes
// "detach" (`xtv host up` once dom0 is ready) it leaves QEMU running. The
// wrapper tells the parent QEMU's pid and, later, its exit status, on stdout,
// and reaps QEMU, so no zombie is left behind.
const WRAPPER = [
  'exec 3<&0',
  '"$@" </dev/null >&2 & q=$!',
  'echo "pid $q"',
  '( read -r cmd <&3; [ "$cmd" = detach ] || kill $q 2>/dev/null ) & w=$!',
  'wait $q; rc=$?',
  'echo "exit $rc" 2>/dev/null',
  'kill $w 2>/dev/null',
].join('\n');

async function startQemu(args: string[], files: ReturnType<typeof stateFiles>, detached: boolean): Promise<StartResult> {
  ensurePrivateDir(files.dir);
  rmSync(files.pid, { force: true });
  const logFd = openSync(files.qemuLog, 'w');
  // A fresh boot log: the marker must come from this boot.
  closeSync(openSync(files.bootLog, 'w'));
  let child: ChildProcess;
  try {
    // detached: a session of its own, so the terminal's Ctrl-C after `up` returned does not reach QEMU.
    child = spawn('sh', ['-c', WRAPPER, 'xtv-qemu', QEMU_NAME, ...args], { stdio: ['pipe', 'pipe', logFd], detached });
  } finally {
    closeSync(logFd);
  }
  let qemuPid: number | null = null;
  let exited = false;
  let buffered = '';
  child.stdout!.on('data', (b: Buffer) => {
    buffered += b.toString();
    const pidLine = /^pid (\d+)$/m.exec(buffered);
    if (pidLine) qemuPid = Number(pidLine[1]);
    if (/^exit \d+$/m.test(buffered)) exited = true;
  });
  child.on('exit', () => {
    exited = true;
  });
  const spawnError = await new Promise<Error | null>((res) => {
    child.once('spawn', () => res(null));
    child.once('error', (e) => res(e));
  });
  if (spawnError) return { kind: 'failed', detail: `sh: ${spawnError.message}` };
  // QEMU writes its pidfile once its devices are set up (after binding the forwarded ports).
  const deadline = Date.now() + 20_000;
  const stop = () => {
    if (qemuPid !== null) {
      try {
        process.kill(qemuPid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    child.stdin?.destroy();
  };
  for (;;) {
    if (exited) {
      stop();
      const detail = safeRead(files.qemuLog).trim() || 'QEMU exited without a message';
      if (/not found/.test(detail) && detail.includes(QEMU_NAME)) {
        return { kind: 'failed', detail: `${detail} (is qemu-system-x86 installed? bash scripts/deps.sh)` };
      }
      return /hostfwd|host forwarding|Address already in use/i.test(detail) ? { kind: 'bind-failed', detail } : { kind: 'failed', detail };
    }
    if (qemuPid !== null && readPidFile(files.dir) === qemuPid) {
      // Let this process exit while QEMU runs: it then dies (library) or stays (detached) as the pipe says.
      child.unref();
      (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
      (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
      return { kind: 'ok', pid: qemuPid, owned: { wrapper: child } };
    }
    if (Date.now() > deadline) {
      stop();
      return { kind: 'failed', detail: `QEMU did not write its pidfile within 20 s; ${safeRead(files.qemuLog).trim()}` };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** dom0's initramfs, or a copy with extra archives appended (Linux unpacks concatenated archives in order). */
function combineInitrds(base: string, extras: string[], target: string): string {
  if (extras.length === 0) return base;
  const parts = [base, ...extras].map((p) => {
    if (!existsSync(p) || !statSync(p).isFile()) throw new Error(`extra initrd ${p} is not a file`);
    return readFileSync(p);
  });
  // An extra may carry a secret (the XenAPI double's password): readable by the owner only. A file
  // left by an earlier boot is removed first (writeFileSync's mode applies only to a new file).
  rmSync(target, { force: true });
  writeFileSync(target, Buffer.concat(parts), { mode: 0o600 });
  return target;
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous last resort: whatever owned host is still up dies with us.
  process.on('exit', () => {
    for (const h of ownedHosts) h.kill();
  });
}

/**
 * Boots a host, runs `fn`, and stops the host whatever happens: normal return,
 * a thrown error, SIGINT, SIGTERM or process exit. The state directory is a
 * fresh temporary one unless given.
 */
export async function withEmbeddedHost<T>(fn: (host: EmbeddedHost) => Promise<T>, opts: Partial<UpOptions> = {}): Promise<T> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const ownDir = opts.stateDir === undefined;
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'xtv-host-'));
  let host: EmbeddedHost | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    host?.kill();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.kill(process.pid, signal); // default action now that QEMU is gone
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    host = await EmbeddedHost.up({ ...opts, stateDir, detached: false });
    return await fn(host);
  } finally {
    try {
      if (host) await host.down({ timeoutMs: 15_000 });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (ownDir) rmSync(stateDir, { recursive: true, force: true });
    }
  }
}

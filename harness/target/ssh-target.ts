// A real Xen host (Debian/Ubuntu with xen-utils, or XenServer's dom0) reached
// with OpenSSH as root: the same exec/copyTo/spawn as the embedded host, so
// the xl driver cannot tell them apart. One multiplexing master per target
// (ControlMaster) so each command costs a channel, not a handshake.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { looksLikeSshFailure, runSsh, type SshResult } from '../host/ssh.ts';
import { MAX_SESSIONS, SessionLimit, TargetCommandError, TargetUnreachableError, shq, type HostTarget, type TargetExecOptions, type TargetExecResult } from './target.ts';

export interface SshEndpoint {
  user: string;
  host: string;
  port: number;
  /** Private key file (-i); without it ssh's own defaults and agent apply. */
  identity?: string;
  /** known_hosts file to use instead of ~/.ssh/known_hosts (XTV_SSH_KNOWN_HOSTS). */
  knownHosts?: string;
}

export const SSH_DEFAULT_TIMEOUT_MS = 120_000;
/** An idle master goes away after this long. */
const PERSIST_SEC = 300;

/** ssh options every call shares. Host keys: the user's known_hosts, new hosts accepted once (never a prompt). */
export function sshBaseArgs(e: SshEndpoint, controlPath: string): string[] {
  return [
    ...(e.identity ? ['-i', e.identity, '-o', 'IdentitiesOnly=yes'] : []),
    '-p', String(e.port),
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=accept-new',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=20',
    '-o', 'ServerAliveInterval=10',
    '-o', 'ServerAliveCountMax=6',
    ...(e.knownHosts ? ['-o', `UserKnownHostsFile=${e.knownHosts}`] : []),
    '-o', `ControlPath=${controlPath}`,
  ];
}

/** A short socket path (unix sockets are limited to ~100 bytes), one per endpoint. */
export function controlPathFor(e: SshEndpoint): string {
  const digest = createHash('sha256').update(`${e.user}@${e.host}:${e.port}:${e.identity ?? ''}`).digest('hex').slice(0, 16);
  return join(tmpdir(), `xtv-ssh-${digest}.sock`);
}

export class SshTarget implements HostTarget {
  readonly kind = 'ssh' as const;
  readonly description: string;
  private readonly controlPath: string;
  private master: Promise<void> | null = null;
  private readonly sessions = new SessionLimit(MAX_SESSIONS);

  constructor(readonly endpoint: SshEndpoint) {
    this.description = `${endpoint.user}@${endpoint.host}:${endpoint.port}`;
    this.controlPath = controlPathFor(endpoint);
  }

  private get destination(): string {
    return `${this.endpoint.user}@${this.endpoint.host}`;
  }

  private args(command: string): string[] {
    return [...sshBaseArgs(this.endpoint, this.controlPath), '-o', 'ControlMaster=no', '-T', this.destination, '--', command];
  }

  /**
   * Starts a background multiplexing master once (`ssh -f -N`), so later
   * calls skip the handshake. Without one (it failed to start) each call
   * connects on its own: slower, still correct, and its error says why.
   */
  private ensureMaster(): Promise<void> {
    if (!this.master) {
      this.master = (async () => {
        const base = sshBaseArgs(this.endpoint, this.controlPath);
        const check = await runSsh([...base, '-O', 'check', this.destination], { timeoutMs: 5000 });
        if (check.code === 0) return;
        await runSsh([...base, '-o', 'ControlMaster=yes', '-o', `ControlPersist=${PERSIST_SEC}`, '-f', '-N', this.destination], { timeoutMs: 30_000 });
      })();
    }
    return this.master;
  }

  private reached(command: string, r: SshResult, timeoutMs: number): TargetExecResult {
    if (r.timedOut) throw new TargetUnreachableError(`'${command}' did not finish within ${timeoutMs} ms on ${this.description}`);
    if (r.code === 255 && looksLikeSshFailure(r.stderr)) {
      this.master = null;
      throw new TargetUnreachableError(`could not reach ${this.description} over SSH: ${r.stderr.trim()}`);
    }
    return { stdout: r.stdout, stderr: r.stderr, code: r.code };
  }

  async exec(command: string, opts: TargetExecOptions = {}): Promise<TargetExecResult> {
    await this.ensureMaster();
    const timeoutMs = opts.timeoutMs ?? SSH_DEFAULT_TIMEOUT_MS;
    const r = await this.sessions.run(() => runSsh(this.args(command), { timeoutMs, ...(opts.input !== undefined ? { input: opts.input } : {}) }));
    return this.reached(command, r, timeoutMs);
  }

  async copyTo(localPath: string, remotePath: string, opts: { timeoutMs?: number; mode?: string } = {}): Promise<void> {
    const q = shq(remotePath);
    const command = `mkdir -p "$(dirname ${q})" && cat > ${q}${opts.mode ? ` && chmod ${shq(opts.mode)} ${q}` : ''}`;
    await this.ensureMaster();
    const timeoutMs = opts.timeoutMs ?? SSH_DEFAULT_TIMEOUT_MS;
    const r = this.reached(command, await this.sessions.run(() => runSsh(this.args(command), { timeoutMs, inputStream: createReadStream(localPath) })), timeoutMs);
    if (r.code !== 0) throw new TargetCommandError(`copy ${localPath} to ${remotePath}`, r);
  }

  spawn(command: string): ChildProcess {
    return spawn('ssh', this.args(command), { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /**
   * Forgets the master. It is not stopped: other xtv processes may be using
   * it at this moment, and it exits by itself after PERSIST_SEC of idleness.
   */
  async close(): Promise<void> {
    this.master = null;
  }
}

// dom0 of a Xen host reached with OpenSSH: a Debian/Ubuntu host with
// xen-utils, a XenServer / XCP-ng dom0, or the embedded host (whose address,
// key and known_hosts file `xtv host up` records). All three are this one
// class: the drivers cannot tell them apart, and nothing here asks which it is.
//
// Commands run in up to MAX_SESSIONS long-lived shell sessions
// (shell-session.ts), each on a connection of its own: a handshake per
// command cost more than most commands (on an emulated dom0, ~0.3 s of its
// CPU each), and OpenSSH's multiplexing is not an option with every server
// (dropbear loses the output and exit status of sessions that end close
// together, then can drop the whole connection). Copies and streams get a
// connection each. A connection the server turns away during the handshake
// (dropbear refuses more than 5 unauthenticated connections from one
// address; OpenSSH's MaxStartups does the same) never ran its command, so it
// is tried again.
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { looksLikeSshFailure, retryWhileRefused, runSsh, sshBaseArgs, type SshEndpoint, type SshResult } from './ssh-run.ts';

export type { SshEndpoint };
import { traceDom0 } from './dom0-trace.ts';
import { ShellPool, ShellSessionError } from './shell-session.ts';
import {
  MAX_SESSIONS,
  SessionLimit,
  TargetCommandError,
  TargetUnreachableError,
  formatSeconds,
  shq,
  type HostTarget,
  type TargetExecOptions,
  type TargetExecResult,
} from './target.ts';

export const SSH_DEFAULT_TIMEOUT_MS = 120_000;

/** `ssh://USER@HOST:PORT` of an endpoint, for messages and reports. */
export function formatSshEndpoint(e: Pick<SshEndpoint, 'user' | 'host' | 'port'>): string {
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return `ssh://${e.user}@${host}${e.port === 22 ? '' : `:${e.port}`}`;
}

export class SshTarget implements HostTarget {
  readonly description: string;
  private readonly sessions = new SessionLimit(MAX_SESSIONS);
  private readonly pool: ShellPool;

  /** `openSession`: what `ssh HOST sh` is for the command sessions (the unit tests pass a local `sh`). */
  constructor(
    readonly endpoint: SshEndpoint,
    opts: { openSession?: () => ChildProcess } = {},
  ) {
    this.description = formatSshEndpoint(endpoint);
    this.pool = new ShellPool(opts.openSession ?? (() => spawnProcess('ssh', this.args('sh'), { stdio: ['pipe', 'pipe', 'pipe'] })), MAX_SESSIONS);
  }

  private args(command: string): string[] {
    return [...sshBaseArgs(this.endpoint), '-T', `${this.endpoint.user}@${this.endpoint.host}`, '--', command];
  }

  /** ssh says a connect that timed out only in words ("Connection timed out", "Operation timed out"): its one boundary reads them. */
  private unreachable(why: string): TargetUnreachableError {
    return new TargetUnreachableError(`could not reach dom0 at ${this.description} over SSH: ${why}`, { timedOut: /\btimed out\b/i.test(why) });
  }

  /** The error of a call whose deadline passed while it waited for a free session. */
  private queueTimeout(command: string, waitedMs: number, sessions: number): TargetUnreachableError {
    return new TargetUnreachableError(`'${firstLine(command)}' waited ${formatSeconds(waitedMs)} for one of ${sessions} SSH sessions on ${this.description}`, {
      timedOut: true,
    });
  }

  /**
   * A command on a connection of its own, its stdin from a local file
   * (copies). One deadline from the call covers waiting for a slot and every
   * attempt; each attempt gets what is left of it (a retry at least 1 s).
   */
  private async run(command: string, opts: { timeoutMs: number; inputPath: string }): Promise<TargetExecResult> {
    const t0 = Date.now();
    const deadline = t0 + opts.timeoutMs;
    const r: SshResult = await retryWhileRefused(deadline, (timeoutMs) =>
      this.sessions.run(() => runSsh(this.args(command), { timeoutMs, inputStream: createReadStream(opts.inputPath) }), {
        deadline,
        onTimeout: (waitedMs) => this.queueTimeout(command, waitedMs, this.sessions.n),
      }),
    );
    if (r.timedOut)
      throw new TargetUnreachableError(`'${firstLine(command)}' did not finish within ${opts.timeoutMs} ms on ${this.description}`, { timedOut: true });
    if (r.code === 255 && (looksLikeSshFailure(r.stderr) || r.stderr.trim() === '')) {
      throw this.unreachable(r.stderr.trim() || 'ssh exited 255 without a message');
    }
    traceDom0('copy', command, t0);
    return { stdout: r.stdout, stderr: r.stderr, code: r.code };
  }

  async exec(command: string, opts: TargetExecOptions = {}): Promise<TargetExecResult> {
    const timeoutMs = opts.timeoutMs ?? SSH_DEFAULT_TIMEOUT_MS;
    const t0 = Date.now();
    try {
      // One deadline from here: waiting for a session and opening one count against it.
      const r = await this.pool.run(command, { deadline: t0 + timeoutMs, ...(opts.input !== undefined ? { input: opts.input } : {}) });
      traceDom0('exec', command, t0);
      return r;
    } catch (e) {
      if (!(e instanceof ShellSessionError)) throw e;
      if (e.queued) throw this.queueTimeout(command, e.queued.waitedMs, e.queued.sessions);
      if (e.timedOut)
        throw new TargetUnreachableError(`'${firstLine(command)}' did not finish within ${timeoutMs} ms on ${this.description}`, { timedOut: true });
      throw this.unreachable(e.message);
    }
  }

  async copyTo(localPath: string, remotePath: string, opts: { timeoutMs?: number; mode?: string } = {}): Promise<void> {
    const q = shq(remotePath);
    const command = `mkdir -p "$(dirname ${q})" && cat > ${q}${opts.mode ? ` && chmod ${shq(opts.mode)} ${q}` : ''}`;
    const r = await this.run(command, { timeoutMs: opts.timeoutMs ?? SSH_DEFAULT_TIMEOUT_MS, inputPath: localPath });
    if (r.code !== 0) throw new TargetCommandError(`copy ${localPath} to ${remotePath}`, r);
  }

  /** A long-lived command (e.g. xenstore watches) on a connection of its own. */
  spawn(command: string): ChildProcess {
    traceDom0('spawn', command, Date.now());
    return spawnProcess('ssh', this.args(command), { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Ends this process's sessions; the host keeps running. */
  async close(): Promise<void> {
    this.pool.close();
  }
}

function firstLine(s: string): string {
  const l = s.split('\n')[0] ?? '';
  return l.length > 80 ? `${l.slice(0, 80)}...` : l;
}

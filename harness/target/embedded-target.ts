// The embedded host (harness/host) as a HostTarget, reached the way a real
// host is: OpenSSH into dom0.
//
// Not the host's multiplexing master: dom0's dropbear, with several sessions
// on one connection, loses sessions' output and exit status when they end
// close together (ssh then exits 255 silently) and can take the whole
// connection down with it. Commands run in up to MAX_SESSIONS long-lived
// shell sessions, each on a connection of its own (a handshake costs dom0
// ~0.3 s of its emulated CPU); copies and streams get a connection each.
// dropbear refuses more than 5 unauthenticated connections from one address,
// so a refused connection (the command never ran) is tried again.
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { EmbeddedHost } from '../host/embedded-host.ts';
import { looksLikeSshFailure, runSsh, type SshResult } from '../host/ssh.ts';
import { traceDom0 } from '../host/dom0-trace.ts';
import { ShellPool, ShellSessionError } from './shell-session.ts';
import { MAX_SESSIONS, SessionLimit, TargetCommandError, TargetUnreachableError, shq, type HostTarget, type TargetExecOptions, type TargetExecResult } from './target.ts';

const DEFAULT_TIMEOUT_MS = 120_000;
/** Before the command ran: the server closed the connection during the handshake. */
const REFUSED = /kex_exchange_identification|Connection (closed|reset) by .*port|ssh_exchange_identification/;

export class EmbeddedTarget implements HostTarget {
  readonly kind = 'embedded' as const;
  readonly description: string;
  private readonly sessions = new SessionLimit(MAX_SESSIONS);
  private readonly pool = new ShellPool(() => spawnProcess('ssh', this.args('sh'), { stdio: ['pipe', 'pipe', 'pipe'] }), MAX_SESSIONS);

  constructor(readonly host: EmbeddedHost) {
    this.description = `embedded host (state dir ${host.stateDir})`;
  }

  private args(command: string): string[] {
    // ssh keeps the first value of an option: ControlPath=none wins over the host's socket.
    return ['-o', 'ControlPath=none', ...this.host.sshOptions(), '-T', 'root@127.0.0.1', '--', command];
  }

  /** A command on a connection of its own, its stdin from a local file (copies). */
  private async run(command: string, opts: { timeoutMs: number; inputPath: string }): Promise<TargetExecResult> {
    const t0 = Date.now();
    const deadline = t0 + opts.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const left = Math.max(1000, deadline - Date.now());
      const r: SshResult = await this.sessions.run(() => runSsh(this.args(command), {
        timeoutMs: left,
        inputStream: createReadStream(opts.inputPath),
      }));
      if (r.timedOut) throw new TargetUnreachableError(`'${firstLine(command)}' did not finish within ${opts.timeoutMs} ms in dom0 (${this.description}; boot log: ${this.host.bootLogPath})`);
      if (r.code === 255 && REFUSED.test(r.stderr) && attempt < 8 && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, Math.min(2000, 150 * attempt)));
        continue;
      }
      if (r.code === 255 && (looksLikeSshFailure(r.stderr) || r.stderr.trim() === '')) {
        throw new TargetUnreachableError(`could not reach dom0 over SSH (${this.description}): ${r.stderr.trim() || 'ssh exited 255 without a message'}; boot log: ${this.host.bootLogPath}`);
      }
      traceDom0('copy', command, t0);
      return { stdout: r.stdout, stderr: r.stderr, code: r.code };
    }
  }

  /**
   * Commands go through a few long-lived sessions (shell-session.ts): a new
   * connection per command cost dom0 more than the command itself.
   */
  async exec(command: string, opts: TargetExecOptions = {}): Promise<TargetExecResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const t0 = Date.now();
    try {
      const r = await this.pool.run(command, { timeoutMs, ...(opts.input !== undefined ? { input: opts.input } : {}) });
      traceDom0('exec', command, t0);
      return r;
    } catch (e) {
      if (!(e instanceof ShellSessionError)) throw e;
      if (e.timedOut) throw new TargetUnreachableError(`'${firstLine(command)}' did not finish within ${timeoutMs} ms in dom0 (${this.description}; boot log: ${this.host.bootLogPath})`);
      throw new TargetUnreachableError(`could not reach dom0 over SSH (${this.description}): ${e.message}; boot log: ${this.host.bootLogPath}`);
    }
  }

  async copyTo(localPath: string, remotePath: string, opts: { timeoutMs?: number; mode?: string } = {}): Promise<void> {
    const q = shq(remotePath);
    const command = `mkdir -p "$(dirname ${q})" && cat > ${q}${opts.mode ? ` && chmod ${shq(opts.mode)} ${q}` : ''}`;
    const r = await this.run(command, { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, inputPath: localPath });
    if (r.code !== 0) throw new TargetCommandError(`copy ${localPath} to ${remotePath}`, r);
  }

  /** A long-lived session (e.g. xenstore watches) on a connection of its own, like exec's. */
  spawn(command: string): ChildProcess {
    traceDom0('spawn', command, Date.now());
    return spawnProcess('ssh', this.args(command), { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  async close(): Promise<void> {
    // Our sessions end; the host keeps running.
    this.pool.close();
  }
}

function firstLine(s: string): string {
  const l = s.split('\n')[0] ?? '';
  return l.length > 80 ? `${l.slice(0, 80)}...` : l;
}

// Running OpenSSH's client: the one builder of its options (sshBaseArgs,
// for every connection xtv makes), runSsh (output collected, bounded), and
// the argv of the embedded host's multiplexing master, which `xtv host
// exec|status` use (one channel per command, not a handshake: handshakes
// under TCG are slow).
//
// The argv builders are pure; runSsh does the I/O.
import { spawn, type ChildProcess } from 'node:child_process';

export interface SshEndpoint {
  user: string;
  host: string;
  port: number;
  /** Private key file (-i); without it ssh's own defaults and agent apply. */
  identity?: string;
  /** known_hosts file to use instead of ~/.ssh/known_hosts. */
  knownHosts?: string;
}

/**
 * ssh options every connection uses: the one builder. Host keys: the given
 * known_hosts file (or the user's), a host seen for the first time accepted
 * once and remembered, a changed key refused; nothing may prompt. `control`:
 * the socket of a multiplexing master (the embedded host's, for `xtv host
 * exec`); without it, one connection per session, whatever the user's
 * ~/.ssh/config says about multiplexing.
 */
export function sshBaseArgs(e: SshEndpoint, control?: string): string[] {
  return [
    ...(e.identity ? ['-i', e.identity, '-o', 'IdentitiesOnly=yes'] : []),
    '-p',
    String(e.port),
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=accept-new',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=20',
    '-o',
    'ServerAliveInterval=10',
    '-o',
    'ServerAliveCountMax=6',
    ...(e.knownHosts ? ['-o', `UserKnownHostsFile=${e.knownHosts}`] : []),
    ...(control ? ['-o', `ControlPath=${control}`] : ['-o', 'ControlMaster=no', '-o', 'ControlPath=none']),
  ];
}

function destination(e: SshEndpoint): string {
  return `${e.user}@${e.host}`;
}

/** A command in dom0 through the master at `control` when there is one, on a connection of its own otherwise. */
export function sshCommandArgs(e: SshEndpoint, control: string, command: string): string[] {
  return [...sshBaseArgs(e, control), '-o', 'ControlMaster=no', '-T', destination(e), '--', command];
}

/** Starts a background master at `control` that lives for `persistSec` of idleness (or until dom0 goes away). */
export function sshMasterStartArgs(e: SshEndpoint, control: string, persistSec: number): string[] {
  return [...sshBaseArgs(e, control), '-o', 'ControlMaster=yes', '-o', `ControlPersist=${persistSec}`, '-f', '-N', destination(e)];
}

export function sshMasterControlArgs(e: SshEndpoint, control: string, op: 'check' | 'exit'): string[] {
  return [...sshBaseArgs(e, control), '-O', op, destination(e)];
}

export interface SshResult {
  stdout: string;
  stderr: string;
  /** The remote command's exit status; 255 is also what ssh uses for its own failures. */
  code: number;
  /** Set when the command ended by a signal or was stopped at the bound. */
  signal?: string;
  timedOut: boolean;
}

export interface RunOptions {
  /** Sent to the command's stdin, then closed. Without it stdin is empty. */
  input?: string | Buffer;
  /** A readable stream piped to stdin (for files). */
  inputStream?: NodeJS.ReadableStream;
  timeoutMs: number;
}

/**
 * Before the command ran, the server closed the connection during the
 * handshake: dropbear turns new connections away while it is busy (its limit
 * of unauthenticated clients), which a loaded emulated dom0 hits. Nothing ran,
 * so another try is safe.
 */
export const SSH_REFUSED = /kex_exchange_identification|Connection (closed|reset) by .*port|ssh_exchange_identification/;

/**
 * `attempt(timeoutMs)` again while the connection is refused (SSH_REFUSED), up
 * to 8 tries before `deadline`, 150 ms × n apart (at most 2 s). The first try
 * gets what is left of the deadline, a later one at least 1 s. Every other
 * result, a timeout included, is returned as it is.
 */
export async function retryWhileRefused(deadline: number, attempt: (timeoutMs: number) => Promise<SshResult>): Promise<SshResult> {
  for (let n = 1; ; n++) {
    const r = await attempt(n === 1 ? Math.max(1, deadline - Date.now()) : Math.max(1000, deadline - Date.now()));
    if (r.timedOut || r.code !== 255 || !SSH_REFUSED.test(r.stderr) || n >= 8 || Date.now() >= deadline) return r;
    await new Promise((res) => setTimeout(res, Math.min(2000, 150 * n)));
  }
}

/** Runs `ssh ARGS`, collecting output; never rejects for a non-zero exit. */
export function runSsh(args: string[], opts: RunOptions): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const hasInput = opts.input !== undefined || opts.inputStream !== undefined;
    const child: ChildProcess = spawn('ssh', hasInput ? args : ['-n', ...args], {
      stdio: [hasInput ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (child.stdin) {
      child.stdin.on('error', () => {
        /* the command may exit before reading all input; its exit status tells */
      });
      if (opts.inputStream) opts.inputStream.pipe(child.stdin);
      else child.stdin.end(opts.input);
    }
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        code: code ?? 255,
        ...(signal ? { signal } : {}),
        timedOut,
      });
    });
  });
}

/** ssh's own complaints (as opposed to the remote command's stderr) when it exits 255. */
export function looksLikeSshFailure(stderr: string): boolean {
  return /^(ssh: |kex_exchange_identification|Connection (refused|reset|closed|timed out)|Permission denied \(|mux_client|Control socket|ControlSocket|Timeout, server|client_loop|Broken pipe)/m.test(
    stderr,
  );
}

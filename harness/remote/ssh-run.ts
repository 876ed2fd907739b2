// Running OpenSSH's client: runSsh (output collected, bounded) for the dom0
// targets, and the argv of the embedded host's own multiplexing master, which
// `xtv host exec|status` use (one channel per command, not a handshake:
// handshakes under TCG are slow).
//
// The argv builders are pure; runSsh and the master functions do the I/O.
import { spawn, type ChildProcess } from 'node:child_process';

export interface SshMasterEndpoint {
  port: number;
  privateKey: string;
  controlPath: string;
  user?: string;
  host?: string;
}

/** Options every invocation shares: dom0's host key changes with each build, and nothing may prompt. */
function baseSshOptions(t: SshMasterEndpoint): string[] {
  return [
    '-i', t.privateKey,
    '-p', String(t.port),
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'LogLevel=ERROR',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=20',
    '-o', 'ServerAliveInterval=5',
    '-o', 'ServerAliveCountMax=6',
    '-o', `ControlPath=${t.controlPath}`,
  ];
}

function destination(t: SshMasterEndpoint): string {
  return `${t.user ?? 'root'}@${t.host ?? '127.0.0.1'}`;
}

/** A command in dom0 through the master when there is one, directly otherwise. */
export function sshCommandArgs(t: SshMasterEndpoint, command: string): string[] {
  return [...baseSshOptions(t), '-o', 'ControlMaster=no', '-T', destination(t), '--', command];
}

/** Starts a background master that lives for `persistSec` of idleness (or until dom0 goes away). */
export function sshMasterStartArgs(t: SshMasterEndpoint, persistSec: number): string[] {
  return [...baseSshOptions(t), '-o', 'ControlMaster=yes', '-o', `ControlPersist=${persistSec}`, '-f', '-N', destination(t)];
}

export function sshMasterControlArgs(t: SshMasterEndpoint, op: 'check' | 'exit'): string[] {
  return [...baseSshOptions(t), '-O', op, destination(t)];
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
      child.stdin.on('error', () => { /* the command may exit before reading all input; its exit status tells */ });
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
  return /^(ssh: |kex_exchange_identification|Connection (refused|reset|closed|timed out)|Permission denied \(|mux_client|Control socket|ControlSocket|Timeout, server|client_loop|Broken pipe)/m.test(stderr);
}

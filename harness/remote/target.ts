// How the harness reaches a Xen host's dom0: run a shell command, copy a file
// in, stream a long-lived command. Every host is reached the same way (SSH,
// ssh-target.ts), so the drivers are the same code against any of them; the
// interface keeps them testable against a local shell.
import type { ChildProcess } from 'node:child_process';

export interface TargetExecOptions {
  /** Sent to the command's stdin, then closed. */
  input?: string | Buffer;
  /** Bound on the whole call; past it the call rejects with TargetUnreachableError. */
  timeoutMs?: number;
}

export interface TargetExecResult {
  stdout: string;
  stderr: string;
  /** The command's own exit status in dom0. */
  code: number;
}

export interface HostTarget {
  /** For messages: "ssh://root@xen1". */
  readonly description: string;
  /** Runs `command` with dom0's /bin/sh as root; resolves with any exit status. */
  exec(command: string, opts?: TargetExecOptions): Promise<TargetExecResult>;
  /** Copies a local file to `remotePath` in dom0 (creating its directory); rejects with TargetCommandError when dom0 refuses. */
  copyTo(localPath: string, remotePath: string, opts?: { timeoutMs?: number; mode?: string }): Promise<void>;
  /** Starts `command` in dom0 with streaming stdio (e.g. a watch loop); the caller ends it. */
  spawn(command: string): ChildProcess;
  /** Drops connections this process opened; never stops the host itself. */
  close(): Promise<void>;
}

/** dom0 could not be reached, or did not answer within the bound (then `timedOut`): not an answer from the command. */
export class TargetUnreachableError extends Error {
  override name = 'TargetUnreachableError';
  readonly timedOut: boolean;
  constructor(message: string, opts: { cause?: unknown; timedOut?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.timedOut = opts.timedOut ?? false;
  }
}

/** A copy or a command the target ran said no (non-zero exit). */
export class TargetCommandError extends Error {
  override name = 'TargetCommandError';
  constructor(
    readonly command: string,
    readonly result: TargetExecResult,
  ) {
    super(`'${command}' exited with ${result.code}${result.stderr.trim() ? `: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
  }
}

/** Quotes one word for a POSIX shell (dash, bash, busybox sh). */
export function shq(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * At most `n` sessions at once. An SSH server caps the sessions it runs on one
 * connection (dom0's dropbear: 10; OpenSSH: MaxSessions 10); past it, a
 * multiplexed ssh exits 255 with nothing on stderr. The targets queue instead,
 * first come first served. With a `deadline` (Date.now() time), a call still
 * queued when it passes leaves the queue, never runs `f`, and rejects with
 * `onTimeout(waitedMs)` (by default a timed-out TargetUnreachableError); `f`
 * then gets what is left of it.
 */
export class SessionLimit {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly n: number) {}

  async run<T>(f: () => Promise<T>, opts: { deadline?: number; onTimeout?: (waitedMs: number) => Error } = {}): Promise<T> {
    // A slot given back goes straight to the first in line: `running` counts it throughout.
    if (this.running >= this.n) await this.queue(opts);
    else this.running++;
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  private queue(opts: { deadline?: number; onTimeout?: (waitedMs: number) => Error }): Promise<void> {
    const since = Date.now();
    return new Promise<void>((resolve, reject) => {
      const { deadline } = opts;
      const giveUp = (): void => {
        const i = this.waiting.indexOf(wake);
        if (i < 0) return;
        this.waiting.splice(i, 1);
        const waitedMs = Date.now() - since;
        reject(opts.onTimeout?.(waitedMs) ?? new TargetUnreachableError(`waited ${formatSeconds(waitedMs)} for one of ${this.n} sessions`, { timedOut: true }));
      };
      const timer = deadline === undefined ? undefined : setTimeout(giveUp, Math.max(0, deadline - since));
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiting.push(wake);
    });
  }
}

/** "30 s", "2.5 s", "300 ms": a wait, for messages. */
export function formatSeconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
}

/** Sessions one process opens at once on one target; leaves room for other processes sharing the connection. */
export const MAX_SESSIONS = 4;

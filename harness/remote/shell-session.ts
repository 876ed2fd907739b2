// Commands in dom0 over a few long-lived SSH sessions instead of one SSH
// connection each. In the embedded host, dom0 runs on emulated CPUs, and a
// connection's key exchange and authentication cost dropbear more than most
// of the commands it carries (xl list, xenstore-read): with the e2e files'
// polling, dom0 spent most of its time there. dropbear's own multiplexing is
// not an option (it loses the results of sessions that end together).
//
// Each session is `sh` reading its program from stdin. A command is sent as
// its script in a single-quoted variable (and its input, base64, in a
// here-document), run by `eval` in a subshell with its output in files, then
// sent back as
//   <stdout>\nXTV-SEP-<id>\n<stderr>\nXTV-END-<id> <exit status>\n
// (id: 16 random hex digits; the newline before each marker is ours), so
// that a missing final newline, or a background process that keeps a
// descriptor open, change nothing. The subshell keeps the script's exit,
// variables and `set` from the session; unlike a `sh FILE`, it is a fork
// without an exec, and no `cat` writes the script out first: every process
// costs in an emulated dom0. Two per command (the subshell, the final cat).
// In the subshell $$ is the session shell's pid, which lives as long as the
// command's connection. One command at a time per session.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TargetExecResult } from './target.ts';

/** How long a command waited in a pool's queue before its deadline passed, and for how many sessions. */
export interface QueueWait {
  waitedMs: number;
  sessions: number;
}

/**
 * The session could not run the command: it never started, or died, or the
 * bound passed (the session is then closed). `queued`: the deadline passed
 * while the command still waited for a free session; it never ran.
 */
export class ShellSessionError extends Error {
  override name = 'ShellSessionError';
  constructor(
    message: string,
    readonly timedOut = false,
    readonly queued?: QueueWait,
  ) {
    super(message);
  }
}

const SETUP = 'xtv_d=/tmp/xtv-shell.$$; mkdir -p "$xtv_d" || exit 1; trap \'rm -rf "$xtv_d"\' EXIT; echo XTV-SHELL-READY\n';

/** The shell text that runs one command (exported for the unit tests). */
export function commandText(id: string, script: string, input?: string | Buffer): string {
  const end = `XTV-END-${id}`;
  const lines = [`xtv_s='${script.replace(/'/g, "'\\''")}'`];
  let stdin = '/dev/null';
  if (input !== undefined && input.length > 0) {
    const b64 = Buffer.from(input)
      .toString('base64')
      .replace(/.{1,76}/g, '$&\n');
    lines.push(`base64 -d > "$xtv_d/i" <<'${end}'`, b64.trimEnd(), end);
    stdin = '"$xtv_d/i"';
  }
  lines.push(
    `( eval "$xtv_s" ) < ${stdin} > "$xtv_d/o" 2> "$xtv_d/e"; xtv_rc=$?`,
    `printf '\\nXTV-SEP-%s\\n' ${id} > "$xtv_d/m"`,
    `cat "$xtv_d/o" "$xtv_d/m" "$xtv_d/e"; printf '\\nXTV-END-%s %s\\n' ${id} "$xtv_rc"`,
  );
  return `${lines.join('\n')}\n`;
}

interface Pending {
  id: string;
  resolve: (r: TargetExecResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ShellSession {
  private buf = Buffer.alloc(0);
  private ready = false;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private pending: Pending | null = null;
  private deadReason: string | null = null;
  private stderr = '';

  constructor(private readonly child: ChildProcess) {
    child.stdout!.on('data', (b: Buffer) => this.onData(b));
    child.stderr!.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString()).slice(-2000);
    });
    child.on('error', (e) => this.die(`could not start ssh: ${e.message}`));
    child.on('close', (code, signal) =>
      this.die(`the session ended (ssh ${code ?? signal})${this.stderr.trim() ? `: ${this.stderr.trim().split('\n').at(-1)}` : ''}`),
    );
    // The session must not keep this process alive on its own.
    (child as unknown as { unref?: () => void }).unref?.();
    for (const s of [child.stdout, child.stderr, child.stdin]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    child.stdin!.on('error', () => undefined);
    child.stdin!.write(SETUP);
  }

  get alive(): boolean {
    return this.deadReason === null;
  }

  /** Resolves once the remote shell has answered its setup (or rejects when the session died first). */
  whenReady(timeoutMs: number): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.deadReason) return Promise.reject(new ShellSessionError(this.deadReason));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        reject(new ShellSessionError(`no answer from the shell session within ${timeoutMs} ms`, true));
      }, timeoutMs);
      this.readyWaiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  run(script: string, opts: { timeoutMs: number; input?: string | Buffer }): Promise<TargetExecResult> {
    if (this.deadReason) return Promise.reject(new ShellSessionError(this.deadReason));
    if (this.pending) return Promise.reject(new Error('ShellSession.run: one command at a time'));
    const id = randomBytes(8).toString('hex');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Its result can no longer be told from the next one's: this session is done.
        this.pending = null;
        this.close();
        reject(new ShellSessionError(`no result within ${opts.timeoutMs} ms`, true));
      }, opts.timeoutMs);
      this.pending = { id, resolve, reject, timer };
      this.child.stdin!.write(commandText(id, script, opts.input));
    });
  }

  close(): void {
    this.die('closed');
    this.child.stdin?.end();
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
  }

  private die(reason: string): void {
    if (this.deadReason) return;
    this.deadReason = reason;
    for (const w of this.readyWaiters.splice(0)) w.reject(new ShellSessionError(reason));
    const p = this.pending;
    this.pending = null;
    if (p) {
      clearTimeout(p.timer);
      p.reject(new ShellSessionError(reason));
    }
  }

  private onData(b: Buffer): void {
    this.buf = Buffer.concat([this.buf, b]);
    if (!this.ready) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) return;
      const line = this.buf.subarray(0, nl).toString();
      this.buf = this.buf.subarray(nl + 1);
      if (line !== 'XTV-SHELL-READY') {
        this.die(`unexpected first line from the shell session: ${JSON.stringify(line.slice(0, 200))}`);
        this.close();
        return;
      }
      this.ready = true;
      for (const w of this.readyWaiters.splice(0)) w.resolve();
    }
    const p = this.pending;
    if (!p) {
      if (this.buf.length > 0) {
        this.die(`output from the shell session with no command running: ${JSON.stringify(this.buf.subarray(0, 200).toString())}`);
        this.close();
      }
      return;
    }
    const end = Buffer.from(`\nXTV-END-${p.id} `);
    const at = this.buf.indexOf(end);
    if (at < 0) return;
    const nl = this.buf.indexOf(0x0a, at + end.length);
    if (nl < 0) return;
    const rc = Number(this.buf.subarray(at + end.length, nl).toString());
    const body = this.buf.subarray(0, at);
    this.buf = this.buf.subarray(nl + 1);
    const sep = Buffer.from(`\nXTV-SEP-${p.id}\n`);
    const cut = body.indexOf(sep);
    this.pending = null;
    clearTimeout(p.timer);
    if (cut < 0 || !Number.isInteger(rc)) {
      p.reject(new ShellSessionError('garbled result from the shell session'));
      this.close();
      return;
    }
    p.resolve({ code: rc, stdout: body.subarray(0, cut).toString(), stderr: body.subarray(cut + sep.length).toString() });
  }
}

/** When a pool call must be over: an absolute `deadline` (Date.now() time), or `timeoutMs` from the call. */
export type PoolBound = { deadline: number } | { timeoutMs: number };

interface Waiter {
  resolve: (s: ShellSession) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Up to `size` sessions, opened when needed and kept; a command takes an
 * idle one or waits for one, first come first served. A session that dies is
 * dropped (the next command opens another). Opening is tried a few times:
 * dropbear turns away connections beyond a handful still authenticating.
 *
 * One deadline covers a whole call: waiting for a session, opening one and
 * the command, whose own bound is what is left when it starts. A call whose
 * deadline passes while it waits leaves the queue (it never takes a session)
 * and rejects with a timed-out ShellSessionError that has `queued`. A session
 * being opened is the pool's, not one caller's: when its caller gave up
 * meanwhile, it goes to the next in line, or stays idle.
 */
export class ShellPool {
  private readonly sessions: ShellSession[] = [];
  /** Sessions handed out and not yet given back: the busy ones. */
  private readonly reserved = new Set<ShellSession>();
  private readonly waiting: Waiter[] = [];
  private opening = 0;

  constructor(
    private readonly open: () => ChildProcess,
    private readonly size: number,
    private readonly connectTimeoutMs = 60_000,
  ) {}

  async run(script: string, opts: PoolBound & { input?: string | Buffer }): Promise<TargetExecResult> {
    const deadline = 'deadline' in opts ? opts.deadline : Date.now() + opts.timeoutMs;
    const s = await this.acquire(deadline);
    try {
      return await s.run(script, { timeoutMs: Math.max(1, deadline - Date.now()), ...(opts.input !== undefined ? { input: opts.input } : {}) });
    } finally {
      this.release(s);
    }
  }

  close(): void {
    for (const s of this.sessions.splice(0)) s.close();
  }

  private acquire(deadline: number): Promise<ShellSession> {
    const since = Date.now();
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined };
      this.waiting.push(w);
      this.pump();
      if (!this.waiting.includes(w)) return;
      w.timer = setTimeout(
        () => {
          const i = this.waiting.indexOf(w);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          const waitedMs = Date.now() - since;
          reject(
            new ShellSessionError(`waited ${waitedMs} ms for one of ${this.size} sessions (${this.reserved.size} busy, ${this.opening} opening)`, true, {
              waitedMs,
              sessions: this.size,
            }),
          );
        },
        Math.max(0, deadline - since),
      );
    });
  }

  /** Drops dead idle sessions, hands idle ones to the first in line, and opens more (up to `size`) for those left. */
  private pump(): void {
    for (let i = this.sessions.length - 1; i >= 0; i--) if (!this.sessions[i]!.alive && !this.reserved.has(this.sessions[i]!)) this.sessions.splice(i, 1);
    while (this.waiting.length > 0) {
      const idle = this.sessions.find((s) => s.alive && !this.reserved.has(s));
      if (!idle) break;
      const w = this.waiting.shift()!;
      clearTimeout(w.timer);
      this.reserved.add(idle);
      w.resolve(idle);
    }
    while (this.waiting.length > this.opening && this.sessions.length + this.opening < this.size) this.openForQueue();
  }

  private openForQueue(): void {
    this.opening++;
    this.openOne().then(
      (s) => {
        this.opening--;
        this.sessions.push(s);
        this.pump();
      },
      (e: unknown) => {
        this.opening--;
        // The first in line hears why (it is whom the session was for); the others try again.
        const w = this.waiting.shift();
        if (w) {
          clearTimeout(w.timer);
          w.reject(e);
        }
        this.pump();
      },
    );
  }

  private async openOne(): Promise<ShellSession> {
    for (let attempt = 1; ; attempt++) {
      const s = new ShellSession(this.open());
      try {
        await s.whenReady(this.connectTimeoutMs);
        return s;
      } catch (e) {
        if (attempt >= 6 || (e instanceof ShellSessionError && e.timedOut)) throw e;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  private release(s: ShellSession): void {
    this.reserved.delete(s);
    // A dead one is dropped there, and whoever waits gets a new one.
    this.pump();
  }
}

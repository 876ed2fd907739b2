// Small process helpers: is a pid a live QEMU, wait for it to go, find a free
// local port. Every wait is bounded.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** True when `pid` exists, is not a zombie, and (when `nameHint` is given) its command line mentions it. */
export function isProcessAlive(pid: number, nameHint?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but is not ours; treat as alive.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const stateChar = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (stateChar === 'Z' || stateChar === 'X') return false;
    if (nameHint !== undefined) {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmdline.includes(nameHint)) return false; // a reused pid
    }
  } catch {
    return false;
  }
  return true;
}

/** Resolves true when the process is gone, false when `timeoutMs` passed first. */
export async function waitForExit(pid: number, timeoutMs: number, nameHint?: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid, nameHint)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** A port on 127.0.0.1 that was free a moment ago (QEMU binds it next; a lost race is retried by the caller). */
export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/** Pids of live processes whose command line contains every one of `parts` (read from /proc). */
export function findProcesses(...parts: string[]): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (parts.every((p) => cmdline.includes(p)) && isProcessAlive(pid)) out.push(pid);
    } catch {
      /* it went away */
    }
  }
  return out;
}

// Waits for dom0's readiness line on the serial console (a file QEMU writes).
// dom0's init prints XTV-DOM0-READY when xenstored, xenconsoled and dropbear
// are up, or XTV-DOM0-FAILED: <step> when a step failed.
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export const READY_MARKER = 'XTV-DOM0-READY';
export const FAILED_MARKER = 'XTV-DOM0-FAILED:';

export type BootOutcome = { kind: 'ready'; line: string } | { kind: 'failed'; step: string } | { kind: 'exited' } | { kind: 'timeout' };

/** Looks for a marker in console text (pure, for tests). */
export function findMarker(text: string): { kind: 'ready'; line: string } | { kind: 'failed'; step: string } | null {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const fail = line.indexOf(FAILED_MARKER);
    if (fail >= 0) return { kind: 'failed', step: line.slice(fail + FAILED_MARKER.length).trim() };
    const ready = line.indexOf(READY_MARKER);
    if (ready >= 0) return { kind: 'ready', line: line.slice(ready) };
  }
  return null;
}

export interface WaitOptions {
  timeoutMs: number;
  /** Checked each round: false ends the wait with 'exited'. */
  isAlive: () => boolean;
  /** Each complete new line of the log, for progress. */
  onLine?: (line: string) => void;
  pollMs?: number;
}

/** Follows the log file from its start; bounded by timeoutMs. */
export async function waitForBootMarker(logPath: string, opts: WaitOptions): Promise<BootOutcome> {
  const deadline = Date.now() + opts.timeoutMs;
  let offset = 0;
  let pending = '';
  const decoder = new StringDecoder('utf8'); // a character may straddle two reads
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    let size = 0;
    try {
      size = statSync(logPath).size;
    } catch {
      /* QEMU has not created it yet */
    }
    if (size > offset) {
      const fd = openSync(logPath, 'r');
      try {
        while (offset < size) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, size - offset), offset);
          if (n <= 0) break;
          offset += n;
          pending += decoder.write(buf.subarray(0, n));
        }
      } finally {
        closeSync(fd);
      }
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        opts.onLine?.(line.replace(/\r$/, ''));
        const m = findMarker(line);
        if (m) return m;
      }
    }
    if (!opts.isAlive()) return { kind: 'exited' };
    if (Date.now() >= deadline) return { kind: 'timeout' };
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
  }
}

/** The last lines of the boot log, for error messages. */
export function tailOfFile(path: string, lines = 15): string {
  try {
    const size = statSync(path).size;
    const len = Math.min(size, 8192);
    const b = Buffer.alloc(len);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, b, 0, len, size - len);
    } finally {
      closeSync(fd);
    }
    return b.toString('utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(empty)';
  }
}

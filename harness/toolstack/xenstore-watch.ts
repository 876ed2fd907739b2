// xenstore watches in dom0, streamed back: what lets `xtv watch` react to a
// change when it happens instead of looking every half second. One SSH
// session runs one xenstore-watch per path; each event is a line "PATH"
// on stdout. Nothing lingers in dom0: the script stops its watches when its
// stdin ends, which is what happens when the session closes, however the
// local side ends (close(), Ctrl-C, a killed process).
import type { HostTarget } from '../remote/target.ts';
import { shq } from '../remote/target.ts';

export interface XenstoreWatch {
  /** Stops the watches (dom0 side included). */
  close(): void;
  /** Resolves when the session has ended, with why ('closed' after close()). */
  readonly ended: Promise<string>;
}

/** Paths to watch for a VM: its domain coming and going, and, while it has one, its agent's report. */
export function domainWatchPaths(domid: number | null, reportDir: string): string[] {
  return ['@introduceDomain', '@releaseDomain', ...(domid !== null ? [`/local/domain/${domid}/${reportDir}`] : [])];
}

/** The dom0 script: one xenstore-watch per path, all stopped when stdin ends. */
export function watchScript(paths: readonly string[]): string {
  return [
    // xenstore-watch prints the path that fired; a prefix tells our lines from anything else.
    ...paths.map((p) => `xenstore-watch ${shq(p)} | while IFS= read -r l; do echo "XTV-WATCH $l"; done &`),
    'echo XTV-WATCH-READY',
    // Our stdin ends with the SSH session: take the watches with us.
    'cat > /dev/null',
    'kill 0',
  ].join('\n');
}

/**
 * Starts the watches and calls onEvent(path) for each event (the first one of
 * each path fires at once: xenstored fires a new watch once). Errors of the
 * session (dom0 unreachable, no xenstore-watch) end it; the caller can then
 * fall back to looking on a timer.
 */
export function watchXenstore(target: HostTarget, paths: readonly string[], onEvent: (path: string) => void): XenstoreWatch {
  const child = target.spawn(watchScript(paths));
  let closed = false;
  let pending = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => {
    pending += b.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('XTV-WATCH ')) onEvent(line.slice('XTV-WATCH '.length));
  });
  child.stderr?.on('data', (b: Buffer) => { stderr = (stderr + b.toString()).slice(-2000); });
  const ended = new Promise<string>((resolve) => {
    child.on('error', (err) => resolve(closed ? 'closed' : `could not start the watch: ${err.message}`));
    child.on('close', (code, signal) => resolve(closed ? 'closed' : `the watch session ended (${code ?? signal})${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`));
  });
  return {
    ended,
    close(): void {
      if (closed) return;
      closed = true;
      child.stdin?.end();
      // The session ends with stdin; should it not, do not wait for it.
      setTimeout(() => child.kill('SIGTERM'), 2000).unref();
    },
  };
}

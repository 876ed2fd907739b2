// xenstore watches in dom0, streamed back: what lets `xtv watch` react to a
// change when it happens instead of looking every half second. One SSH
// session runs dom0-scripts/xenstore-watch.sh: one xenstore-watch per path,
// each event a framed line "<marker> event PATH" on stdout. Nothing lingers
// in dom0: the script stops its watches when its stdin ends, which is what
// happens when the session closes, however the local side ends (close(),
// Ctrl-C, a killed process).
import type { HostTarget } from '../remote/target.ts';
import { newMarker, scriptCommand } from './dom0-script.ts';

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

/** The dom0 command: xenstore-watch.sh with `paths`, its events framed with `marker`. */
export function watchCommand(paths: readonly string[], marker: string): string {
  return scriptCommand('xenstore-watch', marker, 1, paths);
}

/**
 * Starts the watches and calls onEvent(path) for each event (the first one of
 * each path fires at once: xenstored fires a new watch once). Errors of the
 * session (dom0 unreachable, no xenstore-watch) end it; the caller can then
 * fall back to looking on a timer.
 */
export function watchXenstore(target: HostTarget, paths: readonly string[], onEvent: (path: string) => void): XenstoreWatch {
  const marker = newMarker();
  const event = `${marker} event `;
  const child = target.spawn(watchCommand(paths, marker));
  let closed = false;
  let pending = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => {
    pending += b.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith(event)) onEvent(line.slice(event.length));
  });
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-2000);
  });
  const ended = new Promise<string>((resolve) => {
    child.on('error', (err) => resolve(closed ? 'closed' : `could not start the watch: ${err.message}`));
    child.on('close', (code, signal) =>
      resolve(closed ? 'closed' : `the watch session ended (${code ?? signal})${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`),
    );
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

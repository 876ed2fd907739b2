// Everything the agent needs from the machine it runs on, so that its logic
// never touches I/O directly. Two implementations: platform-qjs.ts (the real
// guest, QuickJS as PID 1) and platform-node.ts (tests: actions recorded,
// xenstore over the test server's socket).
import type { AgentStore } from './store.ts';

/** Actions the platform carries out. Suspend is not here: the agent asks the
 *  patched kernel for it through xenstore (KERNEL_SHUTDOWN_NODE). */
export type PlatformAction = 'poweroff' | 'reboot' | 'halt' | 'crash';

export interface Platform {
  /** Short name for console lines ("qjs", "node"). */
  readonly name: string;
  /** A fresh xenstore connection (the guest's /dev/xen/xenbus). Throws when unreachable. */
  openXenstore(): Promise<AgentStore>;
  /** Wall-clock time in ms since the epoch (console and report timestamps). */
  nowMs(): number;
  /** Milliseconds since the machine booted (the report's event-*-ms times: comparable across a suspend, unlike a timer's start). */
  uptimeMs(): number;
  /** Calls fn once after ms; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
  /** Writes one line to the console (hvc0 in the guest). Never throws. */
  consoleLine(line: string): void;
  /** 32 hex digits from a good random source (the boot id). */
  randomId(): string;
  /**
   * Performs an action. In the guest, success means the domain goes away, so
   * the promise settles only on failure (it rejects). Test platforms record
   * the action and resolve.
   */
  perform(action: PlatformAction): Promise<void>;
}

// Keeps the agent serving for ever: connects to xenstore, attaches the agent,
// and when the connection dies (or cannot be made) reports it and tries again
// with a growing, bounded delay. The agent is PID 1: giving up is not an option.
import { Agent } from './agent.ts';
import { startEcho } from './echo.ts';
import type { Platform } from './platform.ts';
import type { AgentStore } from './store.ts';

export interface ServeOptions {
  /** First delay before reconnecting, doubled up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  /** Stop after this many connection attempts (tests only; default: never). */
  maxAttempts?: number;
}

function sleep(platform: Platform, ms: number): Promise<void> {
  return new Promise((resolve) => platform.setTimer(ms, resolve));
}

export async function serve(platform: Platform, agent: Agent = new Agent({ platform }), opts: ServeOptions = {}): Promise<void> {
  const base = opts.retryMs ?? 500;
  const max = opts.maxRetryMs ?? 10_000;
  let delay = base;
  for (let attempt = 1; opts.maxAttempts === undefined || attempt <= opts.maxAttempts; attempt++) {
    let store: AgentStore | null = null;
    try {
      store = await platform.openXenstore();
      const s = store;
      const closed = new Promise<Error | undefined>((resolve) => s.onClose(resolve));
      await agent.attach(store);
      // The benchmark's floor (echo.ts); its failure is reported, never fatal.
      await startEcho(s, (where, e) => agent.recordError(where, e)).catch((e) => agent.recordError('starting the echo', e));
      delay = base;
      const err = await closed;
      agent.detach();
      agent.recordError('xenstore connection', err ?? new Error('closed'));
    } catch (e) {
      agent.detach();
      agent.recordError('connecting to xenstore', e);
      try {
        store?.close();
      } catch {
        // Already gone.
      }
    }
    await sleep(platform, delay);
    delay = Math.min(delay * 2, max);
  }
}

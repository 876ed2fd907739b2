// Bounded waiting: every wait in the runner goes through these, so none can
// hang and an abort (SIGINT) ends any of them at once.

export class WaitTimeout extends Error {
  override name = 'WaitTimeout';
}

export class Aborted extends Error {
  override name = 'Aborted';
}

function abortError(signal: AbortSignal): Aborted {
  const r: unknown = signal.reason;
  return new Aborted(r instanceof Error ? r.message : 'aborted');
}

/** Resolves with `p`, or rejects with WaitTimeout after `ms`, or with Aborted when `signal` fires. */
export function bounded<T>(p: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new WaitTimeout(`${what}: no answer within ${fmtMs(ms)}`));
    }, ms);
    const onAbort = (): void => {
      cleanup();
      reject(abortError(signal!));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e: unknown) => {
        cleanup();
        reject(e);
      },
    );
  });
}

/** A pause between polls; ends early (rejecting) on abort. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return bounded(new Promise<never>(() => undefined), ms, 'delay', signal).catch((e: unknown) => {
    if (e instanceof WaitTimeout) return;
    throw e;
  });
}

export interface PollOptions<T> {
  timeoutMs: number;
  /** First interval; it grows by half each time up to maxMs. */
  minMs: number;
  maxMs: number;
  signal?: AbortSignal;
  what: string;
  /**
   * The condition must stay true this long (ms), at every probe, before the
   * poll is done: a state seen once may be passing (xl restarts a halted
   * domain about 2 s later). `key`: what must also stay the same meanwhile
   * (a value whose key changes starts the hold again). A probe that fails
   * neither breaks the hold nor counts towards it.
   */
  hold?: { ms: number; key?: (v: T) => string };
  /** Told of each failed probe that is about to be retried. */
  onRetry?: (e: unknown) => void;
}

export interface PollResult<T> {
  /** The last value the probe gave (undefined: it never gave one). */
  value: T | undefined;
  done: boolean;
  lastError?: unknown;
}

/**
 * Calls `probe` with growing intervals until `done(value)` (held for
 * `hold.ms`, when given) or the bound. Returns the last value and whether it
 * was done; a probe that throws is retried until the bound, and its last
 * error is reported then. Every wait in the harness goes through here.
 */
export async function poll<T>(probe: () => Promise<T>, done: (v: T) => boolean, o: PollOptions<T>): Promise<PollResult<T>> {
  const deadline = Date.now() + o.timeoutMs;
  let interval = o.minMs;
  let value: T | undefined;
  let failed = false;
  let lastError: unknown;
  /** Since when (and with which key) the condition has held without a break. */
  let held: { since: number; key: string } | undefined;
  for (;;) {
    const left = deadline - Date.now();
    try {
      value = await bounded(probe(), Math.max(left, 1), o.what, o.signal);
      failed = false;
      lastError = undefined;
      if (!done(value)) {
        held = undefined;
      } else {
        const key = o.hold?.key?.(value) ?? '';
        if (held?.key !== key) held = { since: Date.now(), key };
        if (Date.now() - held.since >= (o.hold?.ms ?? 0)) return { value, done: true };
      }
    } catch (e) {
      if (e instanceof Aborted) throw e;
      failed = true;
      lastError = e;
    }
    if (Date.now() >= deadline) return { value, done: false, lastError };
    if (failed) o.onRetry?.(lastError);
    await delay(Math.min(interval, Math.max(deadline - Date.now(), 0)), o.signal);
    interval = Math.min(o.maxMs, interval * 1.5);
  }
}

export function fmtMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}

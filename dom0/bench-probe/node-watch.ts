// One watched xenstore node, for timing: "when did the change that made this
// node's value satisfy a predicate reach dom0?"
//
// Every watch event is time-stamped as it arrives, and a read follows it. When
// a read returns an accepted value, the answer is the arrival time of the
// LATEST event seen so far, not of the event that caused that read: a read
// sent for our own write's event may already see the guest's reply, and
// xenstored sends the event of that reply on our connection before the read's
// answer (one connection, in order), so its time stamp is already there.
// Nothing else writes the node between the reply and the read's answer in the
// benchmark, so the latest event is the reply's.
import type { XenstoreClient } from '../../xenstore/client.ts';

export type Clock = () => number;

/** waitFor's bound passed. */
export class WatchTimeoutError extends Error {
  override name = 'WatchTimeoutError';
}

interface Waiter {
  accept: (value: string | null) => boolean;
  resolve: (atMs: number) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class NodeWatch {
  private lastEventAt = -Infinity;
  private waiter: Waiter | null = null;
  private readonly off: () => void;

  private constructor(
    private readonly xs: XenstoreClient,
    readonly path: string,
    readonly token: string,
    private readonly now: Clock,
  ) {
    this.off = xs.onWatch((_p, t) => {
      if (t === this.token) this.onEvent();
    });
  }

  /** Registers the watch; resolves once xenstored has sent its first (registration) event. */
  static async open(xs: XenstoreClient, path: string, token: string, now: Clock): Promise<NodeWatch> {
    const w = new NodeWatch(xs, path, token, now);
    try {
      await xs.watch(path, token);
      // xenstored fires a new watch once; a read after the registration is
      // answered after that event, so this returns with no stray event to come.
      await xs.tryRead(path);
    } catch (e) {
      w.off();
      throw e;
    }
    return w;
  }

  /**
   * Resolves with the arrival time of the change that made the node's value
   * accepted. Must be called BEFORE the write that provokes the change. Rejects
   * after timeoutMs with `what` in the message.
   */
  waitFor(accept: (value: string | null) => boolean, timeoutMs: number, what: string): Promise<number> {
    if (this.waiter) throw new Error(`${this.path}: already waiting`);
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new WatchTimeoutError(`${what}: no answer on ${this.path} within ${Math.round(timeoutMs)} ms`));
      }, timeoutMs);
      this.waiter = { accept, resolve, reject, timer };
    });
  }

  /** Cancels a wait (its promise rejects with `why`). */
  cancel(why: string): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = null;
    clearTimeout(w.timer);
    w.reject(new Error(why));
  }

  private onEvent(): void {
    this.lastEventAt = this.now();
    if (!this.waiter) return;
    this.xs.tryRead(this.path).then(
      (value) => {
        const w = this.waiter;
        if (!w) return;
        let ok: boolean;
        try {
          ok = w.accept(value);
        } catch (e) {
          this.settle(w, () => w.reject(e instanceof Error ? e : new Error(String(e))));
          return;
        }
        if (ok) this.settle(w, () => w.resolve(this.lastEventAt));
      },
      (e: unknown) => {
        const w = this.waiter;
        if (w) this.settle(w, () => w.reject(new Error(`reading ${this.path}: ${e instanceof Error ? e.message : String(e)}`)));
      },
    );
  }

  private settle(w: Waiter, f: () => void): void {
    if (this.waiter !== w) return;
    this.waiter = null;
    clearTimeout(w.timer);
    f();
  }

  /** Stops listening and unregisters the watch (best effort: the connection may be gone). */
  async close(): Promise<void> {
    this.cancel(`${this.path}: watch closed`);
    this.off();
    await this.xs.unwatch(this.path, this.token).catch(() => undefined);
  }
}

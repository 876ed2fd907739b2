// One step the agent has been asked to take later: acknowledge a shutdown
// request ackAfterMs after reading it, or act actAfterMs after acknowledging
// (protocol/control.ts). At most one is waiting; a newer accepted message
// cancels it (the agent says so in that message's event). The wait is a
// timer, not a sleep in the agent's queue, so the agent keeps reading and
// reporting while it waits; the step itself runs through the queue like any
// other task.

export interface DelayedInfo {
  /** "ack" or "action <name>". */
  what: string;
  /** The event the step belongs to. */
  seq: number;
  /** When it is due, in the platform's uptime ms. */
  dueAtMs: number;
}

export class DelayedStep {
  private current: { info: DelayedInfo; cancel: () => void } | null = null;

  constructor(
    private readonly setTimer: (ms: number, fn: () => void) => () => void,
    /** Queues fn as the agent's task named `name` (SerialQueue.schedule). */
    private readonly enqueue: (name: string, fn: () => Promise<void>) => void,
  ) {}

  /** What is waiting, if anything. */
  get waiting(): DelayedInfo | null {
    return this.current?.info ?? null;
  }

  /** Waits `ms`, then queues `step`; replaces (cancels) whatever was waiting. */
  start(info: DelayedInfo, ms: number, step: () => Promise<void>): void {
    this.cancel();
    const entry = {
      info,
      cancel: this.setTimer(ms, () =>
        this.enqueue(`delayed ${info.what}`, async () => {
          if (this.current !== entry) return; // cancelled while queued
          this.current = null;
          await step();
        }),
      ),
    };
    this.current = entry;
  }

  /** Cancels the waiting step; returns what it was (null: nothing waited). */
  cancel(): DelayedInfo | null {
    const c = this.current;
    if (!c) return null;
    this.current = null;
    c.cancel();
    return c.info;
  }
}

/** "ack of event 3, due at 61234 ms" (the report's `delayed` key). */
export function describeDelayed(d: DelayedInfo | null): string {
  return d ? `${d.what} of event ${d.seq}, due at ${d.dueAtMs} ms` : '';
}

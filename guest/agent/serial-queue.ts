// Runs the agent's tasks one at a time, in order, so that two watch events
// never interleave their reads, acks and report writes. A task already waiting
// under the same name is not queued twice: a watch event only says "look at
// this node again", and one look after the latest event is enough. A task that
// has started is not deduplicated, so an event during its run triggers a fresh
// look at the value written meanwhile.
export class SerialQueue {
  private readonly waiting = new Set<string>();
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly onError: (task: string, error: unknown) => void) {}

  schedule(name: string, task: () => Promise<void>): void {
    if (this.waiting.has(name)) return;
    this.waiting.add(name);
    this.tail = this.tail.then(async () => {
      this.waiting.delete(name);
      try {
        await task();
      } catch (e) {
        try {
          this.onError(name, e);
        } catch {
          // The error reporter itself failed; nothing left to tell.
        }
      }
    });
  }

  /** Resolves when every task queued so far has run. */
  idle(): Promise<void> {
    return this.tail;
  }
}

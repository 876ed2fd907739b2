// A Platform for tests under Node: xenstore over a unix socket (the in-memory
// test xenstored, or a real xenstored's), actions recorded instead of done,
// console lines collected. close() cancels every timer and connection, so an
// agent under test never keeps the test process alive once its test is over.
import { XenstoreClient } from '../../xenstore/client.ts';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';
import type { Platform, PlatformAction } from './platform.ts';
import type { AgentStore } from './store.ts';

export interface NodePlatformOptions {
  socketPath: string;
  /** Also print console lines on stderr (debugging). */
  echo?: boolean;
  /** Make perform() fail, as if busybox or sysrq were missing. */
  failActions?: boolean;
  bootId?: string;
  /** Requests in flight at once on each connection (the guest's xenbus device allows 1). Default: no limit. */
  maxInFlight?: number;
}

export class NodePlatform implements Platform {
  readonly name = 'node';
  /** Every action performed, in order. */
  readonly actions: PlatformAction[] = [];
  /** Every console line, in order. */
  readonly lines: string[] = [];
  private readonly clients: XenstoreClient[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(private readonly opts: NodePlatformOptions) {}

  async openXenstore(): Promise<AgentStore> {
    const client = new XenstoreClient(await connectUnixSocket(this.opts.socketPath), {
      requestTimeoutMs: 10_000,
      ...(this.opts.maxInFlight !== undefined ? { maxInFlight: this.opts.maxInFlight } : {}),
    });
    this.clients.push(client);
    return client;
  }

  nowMs(): number {
    return Date.now();
  }

  uptimeMs(): number {
    return Math.round(performance.now());
  }

  setTimer(ms: number, fn: () => void): () => void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return () => {
      clearTimeout(t);
      this.timers.delete(t);
    };
  }

  consoleLine(line: string): void {
    this.lines.push(line);
    if (this.opts.echo) process.stderr.write(line + '\n');
  }

  randomId(): string {
    if (this.opts.bootId) return this.opts.bootId;
    let s = '';
    for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
    return s;
  }

  async perform(action: PlatformAction): Promise<void> {
    this.actions.push(action);
    if (this.opts.failActions) throw new Error(`${action} failed (test platform told to fail)`);
  }

  /** Closes every connection and cancels every timer. */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.clients.splice(0)) c.close();
  }
}

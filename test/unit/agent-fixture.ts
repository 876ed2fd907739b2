// Shared set-up for the agent's tests: an in-memory xenstored (real wire
// protocol over a unix socket, with C xenstored's node quotas), the agent
// attached to it as domain 5 through the Node platform, and helpers that play
// dom0's part.
import { startTestXenstored, type NodeQuotas, type TestXenstored } from '../../testing/test-xenstored.ts';
import { Agent, type AgentOptions } from '../../guest/agent/agent.ts';
import { NodePlatform } from '../../guest/agent/platform-node.ts';
import type { EventRecord } from '../../guest/agent/report.ts';
import type { AgentStore } from '../../guest/agent/store.ts';
import { REPORT_DIR, TESTING_NODE } from '../../protocol/control.ts';

export const DOMID = 5;

export interface FixtureOptions {
  /** Create control/testing writable by the guest, as the harness does (default true). */
  testingWritable?: boolean;
  /** Runs on the store before the agent starts (pre-existing values). */
  before?: (xs: TestXenstored) => void;
  agent?: Partial<AgentOptions>;
  failActions?: boolean;
  echo?: boolean;
  /** The store's node quotas on the guest (default true: Xen 4.17's C xenstored defaults). */
  quotas?: Partial<NodeQuotas> | boolean;
  /** Requests the agent's client keeps in flight (1: the guest's xenbus device). Default: no limit. */
  maxInFlight?: number;
}

export interface Fixture {
  xs: TestXenstored;
  platform: NodePlatform;
  agent: Agent;
  /** The agent's xenstore connection (serve() starts the echo on the same one). */
  store: AgentStore;
  events: EventRecord[];
  /** Writes value as dom0 and resolves with the agent's next event (after its action ran). */
  send(node: string, value: string | Uint8Array, timeoutMs?: number): Promise<EventRecord>;
  /** Resolves with the agent's next event. */
  nextEvent(timeoutMs?: number): Promise<EventRecord>;
  /** The report as key -> value (keys relative to data/xtv). */
  report(): Record<string, string>;
  close(): Promise<void>;
}

export async function startFixture(opts: FixtureOptions = {}): Promise<Fixture> {
  const xs = await startTestXenstored({ domid: DOMID, quotas: opts.quotas ?? true });
  if (opts.testingWritable ?? true) {
    // What the harness does once per VM: create control/testing and give it to
    // the guest, so that the agent may acknowledge by writing "".
    xs.store.write(TESTING_NODE, '');
    xs.store.setPerms(TESTING_NODE, [`n${DOMID}`]);
  }
  opts.before?.(xs);
  const platform = new NodePlatform({
    socketPath: xs.socketPath,
    failActions: opts.failActions,
    echo: opts.echo ?? !!process.env.XTV_AGENT_ECHO,
    ...(opts.maxInFlight !== undefined ? { maxInFlight: opts.maxInFlight } : {}),
  });
  const agent = new Agent({ platform, kernelAckTimeoutMs: 2000, probeArmTimeoutMs: 1000, ...opts.agent });
  const events: EventRecord[] = [];
  agent.onEvent((e) => events.push(e));
  const store = await platform.openXenstore();
  await agent.attach(store);
  await agent.idle();

  const nextEvent = (timeoutMs = 3000): Promise<EventRecord> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no agent event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = agent.onEvent((e) => {
        off();
        clearTimeout(timer);
        // Let the action that follows the report run before the test looks.
        agent.idle().then(() => resolve(e), reject);
      });
    });

  return {
    xs,
    platform,
    agent,
    store,
    events,
    nextEvent,
    async send(node, value, timeoutMs) {
      const next = nextEvent(timeoutMs);
      xs.store.write(node, value);
      return next;
    },
    report() {
      const out: Record<string, string> = {};
      const prefix = `${xs.store.home}/${REPORT_DIR}/`;
      for (const [k, v] of Object.entries(xs.store.dump(REPORT_DIR))) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
      return out;
    },
    async close() {
      await agent.idle();
      platform.close();
      await xs.close();
    },
  };
}

// A flood of pings must not hold up the agent. The echo (guest/agent/echo.ts)
// shares the agent's xenstore connection, which in the guest sends one
// request at a time (the xenbus device's maxInFlight, 1): when every ping cost
// a read and a write, 2,000 pings written quickly put 4,000 requests ahead of
// the agent's acknowledgement of a real request (2.9 s on the embedded host).
// The echo now coalesces as the agent's own queue does: one copy in flight,
// at most one more waiting. Counts are asserted, not speed (speed is bench/'s).
import test from 'tape';
import { startFixture, type Fixture } from './agent-fixture.ts';
import { startEcho } from '../../guest/agent/echo.ts';
import { PING_NODE, PONG_NODE } from '../../protocol/echo-nodes.ts';
import { TESTING_NODE } from '../../protocol/control.ts';
import { XENBUS_DEVICE_MAX_IN_FLIGHT } from '../../xenstore/transport.ts';

const PINGS = 2000;

/** The agent as serve() runs it in the guest: echo on its connection, one request in flight. */
async function agentWithEcho(): Promise<{ f: Fixture; errors: string[]; stop: () => void }> {
  const f = await startFixture({ maxInFlight: XENBUS_DEVICE_MAX_IN_FLIGHT });
  const errors: string[] = [];
  const stop = await startEcho(f.store, (where, e) => errors.push(`${where}: ${e instanceof Error ? e.message : String(e)}`));
  // The watch's first event reads the (absent) ping: wait for it, so that it counts in no test.
  const ping = `${f.xs.store.home}/${PING_NODE}`;
  for (let i = 0; i < 100 && !f.xs.requests.some((q) => q.op === 'READ' && q.path === ping); i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  return { f, errors, stop };
}

const abs = (f: Fixture, p: string): string => `${f.xs.store.home}/${p}`;

/** The echo's requests among f.xs.requests[from..to). */
function echoRequests(f: Fixture, from: number, to = f.xs.requests.length): { reads: number; writes: number } {
  const reqs = f.xs.requests.slice(from, to);
  return {
    reads: reqs.filter((q) => q.op === 'READ' && q.path === abs(f, PING_NODE)).length,
    writes: reqs.filter((q) => q.op === 'WRITE' && q.path === abs(f, PONG_NODE)).length,
  };
}

test('echo: a single ping gets exactly one read and one write, at once', async (t) => {
  const { f, errors, stop } = await agentWithEcho();
  const from = f.xs.requests.length;
  f.xs.store.write(PING_NODE, 'one');
  t.equal(await f.xs.store.waitFor(PONG_NODE, (v) => v === 'one', 3000), 'one', 'echoed');
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(echoRequests(f, from), { reads: 1, writes: 1 }, 'one read, one write');
  t.deepEqual(
    f.xs.requests.slice(from).map((q) => q.op),
    ['READ', 'WRITE'],
    'and nothing else',
  );
  t.deepEqual(errors, []);
  stop();
  await f.close();
  t.end();
});

test(`echo: ${PINGS} pings coalesce; the last is echoed; a control request in the burst is acknowledged without waiting for them`, async (t) => {
  const { f, errors, stop } = await agentWithEcho();
  const from = f.xs.requests.length;
  let acked: Promise<unknown> | null = null;
  let sentAt = -1;
  // dom0 writes in batches, yielding between them as a busy writer's socket would.
  for (let i = 0; i < PINGS; i++) {
    f.xs.store.write(PING_NODE, `ping-${i}`);
    if (i === PINGS / 2) {
      sentAt = f.xs.requests.length;
      acked = f.send(TESTING_NODE, 'next:reboot', 20_000); // a bound far above any real wait: a hang, not slowness, fails it
    }
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
  const last = `ping-${PINGS - 1}`;
  t.equal(await f.xs.store.waitFor(PONG_NODE, (v) => v === last, 20_000), last, 'the final pong is the final ping');
  await acked;
  await new Promise((r) => setTimeout(r, 50));
  const ack = f.xs.requests.findIndex((q, i) => i >= sentAt && q.op === 'WRITE' && q.path === abs(f, TESTING_NODE));
  t.ok(ack > 0, 'the agent acknowledged control/testing');
  const before = echoRequests(f, sentAt, ack);
  t.ok(before.reads + before.writes <= 8, `echo requests between the control write and its ack: ${before.reads + before.writes} (at most 8)`);
  const all = echoRequests(f, from);
  t.ok(all.writes < PINGS / 10, `${all.writes} copies for ${PINGS} pings (fewer than ${PINGS / 10})`);
  t.equal(all.reads, all.writes, 'each copy one read and one write');
  t.equal(f.report()['event-seq'], '1', 'the request reported');
  t.deepEqual(errors, []);
  stop();
  await f.close();
  t.end();
});

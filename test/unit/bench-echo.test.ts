// The echo that gives the benchmark its floor (guest/agent/echo.ts), against
// the in-memory xenstored: alone, and hooked into the agent's serve() loop as
// the image runs it.
import test from 'tape';
import { startTestXenstored } from '../../testing/test-xenstored.ts';
import { XenstoreClient } from '../../xenstore/client.ts';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';
import { startEcho } from '../../guest/agent/echo.ts';
import { PING_NODE, PONG_NODE } from '../../protocol/echo-nodes.ts';
import { Agent } from '../../guest/agent/agent.ts';
import { NodePlatform } from '../../guest/agent/platform-node.ts';
import { serve } from '../../guest/agent/run.ts';

const DOMID = 7;

test('echo: copies every ping to pong byte for byte, ignores an absent ping', async (t) => {
  const xs = await startTestXenstored({ domid: DOMID });
  const guest = new XenstoreClient(await connectUnixSocket(xs.socketPath), { requestTimeoutMs: 5000 });
  const errors: string[] = [];
  try {
    const stop = await startEcho(guest, (where, e) => errors.push(`${where}: ${String(e)}`));
    t.ok(
      xs.watches().some((w) => w.startsWith(`${PING_NODE} `)),
      'watches data/xtv/ping',
    );
    for (const value of ['1', 'abc-42', 'ünïcode ✓', '']) {
      xs.store.write(PING_NODE, value);
      const got = await xs.store.waitFor(PONG_NODE, (v) => v === value, 2000);
      t.equal(got, value, `pong = ping for ${JSON.stringify(value)}`);
    }
    const binary = new Uint8Array([0, 1, 0xff, 0xfe, 10]);
    xs.store.write(PING_NODE, binary);
    await xs.store.waitFor(PONG_NODE, () => Buffer.from(xs.store.readBytes(PONG_NODE) ?? []).equals(Buffer.from(binary)), 2000);
    t.pass('binary bytes echoed unchanged');
    xs.store.rm(PING_NODE);
    await new Promise((r) => setTimeout(r, 50));
    t.deepEqual(errors, [], 'an absent ping (registration, removal) is not an error');
    stop();
  } finally {
    guest.close();
    await xs.close();
  }
});

test('echo: a failing write is reported and the echo carries on', async (t) => {
  const xs = await startTestXenstored({ domid: DOMID });
  const guest = new XenstoreClient(await connectUnixSocket(xs.socketPath), { requestTimeoutMs: 5000 });
  const errors: string[] = [];
  try {
    await startEcho(guest, (where, e) => errors.push(`${where}: ${e instanceof Error ? e.message : String(e)}`));
    xs.faults.failNext('WRITE', 'EACCES', 1);
    xs.store.write(PING_NODE, 'first');
    await new Promise((r) => setTimeout(r, 100));
    t.equal(errors.length, 1, 'one error reported');
    t.match(errors[0] ?? '', /^echo: .*EACCES/, 'names the echo and the xenstore error');
    xs.store.write(PING_NODE, 'second');
    t.equal(await xs.store.waitFor(PONG_NODE, (v) => v === 'second', 2000), 'second', 'the next ping is echoed');
  } finally {
    guest.close();
    await xs.close();
  }
});

test('echo: the agent started by serve() echoes, and the agent does not see pings as events', async (t) => {
  const xs = await startTestXenstored({ domid: DOMID });
  const platform = new NodePlatform({ socketPath: xs.socketPath });
  const agent = new Agent({ platform });
  const served = serve(platform, agent, { maxAttempts: 1, retryMs: 10 });
  try {
    await xs.store.waitFor('data/xtv/state', (v) => v === 'ready', 3000);
    // The echo's watch is set right after the agent's start-up.
    for (let i = 0; i < 100 && !xs.watches().some((w) => w.startsWith(`${PING_NODE} `)); i++) await new Promise((r) => setTimeout(r, 10));
    xs.store.write(PING_NODE, 'hello');
    t.equal(await xs.store.waitFor(PONG_NODE, (v) => v === 'hello', 2000), 'hello', 'pong answered');
    await agent.idle();
    t.equal(agent.status.counters.received, 0, 'no agent event for a ping');
    t.equal(agent.status.counters.errors, 0, 'no error');
    t.deepEqual(platform.actions, [], 'no action');
  } finally {
    platform.close();
    await served;
    await xs.close();
  }
});

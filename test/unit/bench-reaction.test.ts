// The dom0 probe's reaction trials (dom0/bench-probe/reaction.ts) against the
// in-memory xenstored, with the real agent and echo (serve()) as the guest:
// the rounds run, every sample is a positive time, the agent ignores the
// shutdown requests (so the guest would keep running), and a guest without
// the echo is named as such.
import test from 'tape';
import { performance } from 'node:perf_hooks';
import { startTestXenstored } from '../../testing/test-xenstored.ts';
import { XenstoreClient } from '../../xenstore/client.ts';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';
import { Agent } from '../../guest/agent/agent.ts';
import { NodePlatform } from '../../guest/agent/platform-node.ts';
import { serve } from '../../guest/agent/run.ts';
import { BENCH_TESTING_MESSAGE, ReactionProbe, ReportGlitchError } from '../../dom0/bench-probe/reaction.ts';
import { decodeTesting } from '../../protocol/control.ts';

const DOMID = 9;

test('reaction: the bench message is a valid onshutdown/ack ok/ignore command', (t) => {
  const d = decodeTesting(new TextEncoder().encode(BENCH_TESTING_MESSAGE));
  t.equal(d.kind, 'message');
  if (d.kind === 'message') t.deepEqual(d.value, { when: 'onshutdown', ack: { kind: 'ok' }, action: 'ignore', form: 'json' });
  t.end();
});

test('reaction: rounds of floor, testing, floor, shutdown against the agent', async (t) => {
  const xs = await startTestXenstored({ domid: DOMID });
  const platform = new NodePlatform({ socketPath: xs.socketPath });
  const agent = new Agent({ platform });
  const served = serve(platform, agent, { maxAttempts: 1, retryMs: 10 });
  const dom0 = new XenstoreClient(await connectUnixSocket(xs.dom0SocketPath), { requestTimeoutMs: 5000 });
  try {
    await xs.store.waitFor('data/xtv/state', (v) => v === 'ready', 3000);
    for (let i = 0; i < 100 && !xs.watches().some((w) => w.startsWith('data/xtv/ping ')); i++) await new Promise((r) => setTimeout(r, 10));
    const probe = await ReactionProbe.open(dom0, DOMID, { ackTimeoutMs: 3000, now: () => performance.now(), runId: 'test' });
    const samples = [];
    for (let i = 0; i < 5; i++) samples.push(...(await probe.round()));
    await probe.close();
    t.deepEqual(
      samples.slice(0, 4).map((s) => s.kind),
      ['floor', 'testing', 'floor', 'shutdown'],
      'order of one round',
    );
    t.equal(samples.length, 20, '4 samples per round');
    t.ok(
      samples.every((s) => s.ms > 0 && s.ms < 3000),
      'every sample is a positive time within the bound',
    );
    t.deepEqual([...new Set(samples.map((s) => s.round))], [1, 2, 3, 4, 5], 'rounds numbered');
    await agent.idle();
    t.equal(probe.agentEvents, 10, 'the agent finished one event per agent trial');
    t.deepEqual(platform.actions, [], 'no action performed: every shutdown request was ignored');
    t.equal(xs.store.read('control/shutdown'), '', 'the last request is acknowledged');
    t.equal(xs.store.read('data/xtv/state'), 'ready', 'the agent is still ready');
    t.equal(xs.store.read('data/xtv/pending'), '', 'nothing left pending');
    t.equal(agent.status.counters.errors, 0, 'no agent error');
    t.deepEqual(
      xs.watches().filter((w) => w.includes('xtv-bench')),
      [],
      'the probe removed its watches',
    );
  } finally {
    dom0.close();
    platform.close();
    await served;
    await xs.close();
  }
});

test('reaction: a guest without the echo is named, within the bound', async (t) => {
  const xs = await startTestXenstored({ domid: DOMID });
  const dom0 = new XenstoreClient(await connectUnixSocket(xs.dom0SocketPath), { requestTimeoutMs: 5000 });
  try {
    const t0 = Date.now();
    await ReactionProbe.open(dom0, DOMID, { ackTimeoutMs: 300, now: () => performance.now(), runId: 'x' }).then(
      () => t.fail('opened without an echo'),
      (e: Error) => t.match(e.message, /does not echo data\/xtv\/ping to data\/xtv\/pong.*within 300 ms/, e.message),
    );
    t.ok(Date.now() - t0 < 20_000, `gave up at the bound, not hung (${Date.now() - t0} ms)`);
    t.deepEqual(
      xs.watches().filter((w) => w.includes('xtv-bench')),
      [],
      'no watch left behind',
    );
  } finally {
    dom0.close();
    await xs.close();
  }
});

test('reaction: refuses to send a shutdown request when no command is pending', async (t) => {
  const xs = await startTestXenstored({ domid: DOMID });
  const platform = new NodePlatform({ socketPath: xs.socketPath });
  const agent = new Agent({ platform });
  const served = serve(platform, agent, { maxAttempts: 1, retryMs: 10 });
  const dom0 = new XenstoreClient(await connectUnixSocket(xs.dom0SocketPath), { requestTimeoutMs: 5000 });
  try {
    await xs.store.waitFor('data/xtv/state', (v) => v === 'ready', 3000);
    for (let i = 0; i < 100 && !xs.watches().some((w) => w.startsWith('data/xtv/ping ')); i++) await new Promise((r) => setTimeout(r, 10));
    const probe = await ReactionProbe.open(dom0, DOMID, { ackTimeoutMs: 3000, now: () => performance.now(), runId: 't' });
    await probe.shutdown().then(
      () => t.fail('sent'),
      (e: Error) => t.match(e.message, /no command pending/),
    );
    t.notEqual(xs.store.read('control/shutdown'), 'poweroff', 'nothing written');
    await probe.close();
    await agent.idle();
    t.deepEqual(platform.actions, [], 'no action');
  } finally {
    dom0.close();
    platform.close();
    await served;
    await xs.close();
  }
});

test('reaction: a report that fails to commit is a ReportGlitchError; resync brings the round back in step', async (t) => {
  const xs = await startTestXenstored({ domid: DOMID });
  const platform = new NodePlatform({ socketPath: xs.socketPath });
  // No report retries: this is the report that never lands (retries used up).
  const agent = new Agent({ platform, reportRetries: 0 });
  const served = serve(platform, agent, { maxAttempts: 1, retryMs: 10 });
  const dom0 = new XenstoreClient(await connectUnixSocket(xs.dom0SocketPath), { requestTimeoutMs: 5000 });
  try {
    await xs.store.waitFor('data/xtv/state', (v) => v === 'ready', 3000);
    for (let i = 0; i < 100 && !xs.watches().some((w) => w.startsWith('data/xtv/ping ')); i++) await new Promise((r) => setTimeout(r, 10));
    const probe = await ReactionProbe.open(dom0, DOMID, { ackTimeoutMs: 500, now: () => performance.now(), runId: 'g' });
    xs.faults.failNextCommits(1, 'EINVAL'); // what real xenstored sometimes answers
    await probe.testing().then(
      () => t.fail('no glitch seen'),
      (e: Error) => t.ok(e instanceof ReportGlitchError, `glitch: ${e.message}`),
    );
    await probe.resync();
    t.notEqual(xs.store.read('data/xtv/pending'), '', 'pending again after resync');
    const r = await probe.round();
    t.equal(r.length, 4, 'the next round runs');
    await probe.close();
    await agent.idle();
    t.deepEqual(platform.actions, [], 'no action');
  } finally {
    dom0.close();
    platform.close();
    await served;
    await xs.close();
  }
});

// The runner keeps the agent serving across a lost xenstore connection: the
// loss is reported, the agent reconnects, re-registers its watches and keeps
// what it knew (the pending command).
import test from 'tape';
import { startTestXenstored } from '../../testing/test-xenstored.ts';
import { Agent, WATCH_TOKENS } from '../../guest/agent/agent.ts';
import { NodePlatform } from '../../guest/agent/platform-node.ts';
import { serve } from '../../guest/agent/run.ts';
import { SerialQueue } from '../../guest/agent/serial-queue.ts';
import { REPORT_DIR, SHUTDOWN_NODE, TESTING_NODE } from '../../protocol/control.ts';

test('a lost xenstore connection is reported, and the agent reattaches with its state', async (t) => {
  const xs = await startTestXenstored({ domid: 5 });
  xs.store.write(TESTING_NODE, '');
  xs.store.setPerms(TESTING_NODE, ['n5']);
  const platform = new NodePlatform({ socketPath: xs.socketPath });
  const agent = new Agent({ platform });
  const served = serve(platform, agent, { retryMs: 20, maxAttempts: 2 });
  await xs.store.waitFor(`${REPORT_DIR}/state`, (v) => v === 'ready', 3000);
  xs.store.write(TESTING_NODE, 'next:reboot');
  await xs.store.waitFor(`${REPORT_DIR}/event-seq`, (v) => v === '1', 3000);

  xs.faults.dropConnections();
  const deadline = Date.now() + 3000;
  while (!platform.lines.some((l) => / reattached /.test(l)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.ok(
    platform.lines.some((l) => / error where="xenstore connection" /.test(l)),
    'the loss is on the console',
  );
  t.ok(
    platform.lines.some((l) => / reattached .* state=ready$/.test(l)),
    'reattached',
  );
  const mine = Object.values(WATCH_TOKENS);
  t.equal(xs.watches().filter((w) => mine.some((token) => w.endsWith(` ${token}`))).length, 3, 'the three watches registered again, once each');
  t.ok(Number(xs.store.read(`${REPORT_DIR}/errors`)) >= 1, 'counted as an error (with whatever was in flight)');
  t.equal(xs.store.read(`${REPORT_DIR}/pending`), '{"when":"onshutdown","ack":"ok","action":"reboot"}', 'pending command kept');

  xs.store.write(SHUTDOWN_NODE, 'poweroff');
  await xs.store.waitFor(`${REPORT_DIR}/event-seq`, (v) => v === '2', 3000);
  await agent.idle();
  t.deepEqual(platform.actions, ['reboot'], 'the pending command is used after the reconnect');
  t.equal(xs.store.read(SHUTDOWN_NODE), '');

  platform.close();
  await served;
  await xs.close();
  t.end();
});

test('an unreachable xenstore is retried with a growing delay, never thrown', async (t) => {
  const platform = new NodePlatform({ socketPath: '/nonexistent/xtv-socket' });
  await serve(platform, new Agent({ platform }), { retryMs: 5, maxRetryMs: 20, maxAttempts: 4 });
  const errors = platform.lines.filter((l) => / error where="connecting to xenstore" /.test(l));
  t.equal(errors.length, 4, 'each attempt reported');
  t.match(errors[0]!, /\/nonexistent\/xtv-socket/, 'naming the path');
  t.end();
});

test('the serial queue runs tasks in order, one at a time, merges waiting duplicates, survives throws', async (t) => {
  const errors: string[] = [];
  const q = new SerialQueue((name, e) => errors.push(`${name}: ${(e as Error).message}`));
  const log: string[] = [];
  let running = 0;
  const task =
    (name: string, fail = false) =>
    async () => {
      running++;
      if (running > 1) log.push('overlap!');
      await new Promise((r) => setTimeout(r, 2));
      log.push(name);
      running--;
      if (fail) throw new Error('boom');
    };
  q.schedule('a', task('a1'));
  q.schedule('b', task('b', true));
  q.schedule('a', task('a2')); // merged: 'a' is already waiting
  q.schedule('c', task('c'));
  await q.idle();
  t.deepEqual(log, ['a1', 'b', 'c']);
  t.deepEqual(errors, ['b: boom']);
  q.schedule('a', task('a3')); // 'a' ran already: queued again
  await q.idle();
  t.deepEqual(log, ['a1', 'b', 'c', 'a3']);
  t.end();
});

// #16 in the agent: a late acknowledgement and a late action happen when the
// message said, through a timer, so the agent keeps reading and reporting
// meanwhile; a newer command replaces the waiting step and says so; the
// report records when each step happened (uptime ms). Capabilities messages
// write the flags and the reason, and leave the pending command alone.
import test from 'tape';
import { startFixture } from './agent-fixture.ts';
import { CANT_SUSPEND_REASON_NODE, SHUTDOWN_NODE, TESTING_NODE, featureNode } from '../../protocol/control.ts';

test('ackAfterMs: the request stays until its time, the agent answers other messages meanwhile, then acks and acts', async (t) => {
  const f = await startFixture();
  await f.send(TESTING_NODE, '{"when":"onshutdown","action":"poweroff","ackAfterMs":400}');
  const first = await f.send(SHUTDOWN_NODE, 'reboot');
  t.deepEqual([first.ack, first.action, first.ackedAtMs], ['none', 'none', null], 'reported at once: not acknowledged yet');
  t.match(first.note, /acknowledging in 400 ms/);
  t.equal(f.xs.store.read(SHUTDOWN_NODE), 'reboot', 'the request is still there');
  t.match(f.report().delayed!, new RegExp(`^ack of event ${first.seq}, due at \\d+ ms$`), 'the report says what waits');
  const junk = await f.send(TESTING_NODE, 'bogus');
  t.equal(junk.decision, 'rejected', 'a message during the wait is answered');
  t.notEqual(f.report().delayed, '', 'a rejected message changes nothing: the ack still waits');
  const done = await f.nextEvent(3000);
  t.equal(done.seq, first.seq, 'the same event, reported again');
  t.deepEqual([done.ack, done.action], ['ok', 'poweroff']);
  t.equal(f.xs.store.read(SHUTDOWN_NODE), '', 'acknowledged with ""');
  t.deepEqual(f.platform.actions, ['poweroff']);
  t.ok(done.ackedAtMs! - done.readAtMs >= 400, `acknowledged ${done.ackedAtMs! - done.readAtMs} ms after reading (asked: 400)`);
  const r = f.report();
  t.equal(r.delayed, '');
  t.deepEqual([r['event-read-ms'], r['event-acked-ms'], r['event-acted-ms']], [String(done.readAtMs), String(done.ackedAtMs), String(done.actedAtMs)]);
  await f.close();
  t.end();
});

test('actAfterMs: acknowledged at once, acted later (now and onshutdown)', async (t) => {
  const f = await startFixture();
  const e = await f.send(TESTING_NODE, '{"action":"reboot","actAfterMs":300}');
  t.deepEqual([e.ack, e.action], ['ok', 'none'], 'the message is acknowledged; no action yet');
  t.deepEqual(f.platform.actions, []);
  const acted = await f.nextEvent(3000);
  t.deepEqual([acted.seq, acted.action], [e.seq, 'reboot']);
  t.ok(acted.actedAtMs! - acted.ackedAtMs! >= 300, `acted ${acted.actedAtMs! - acted.ackedAtMs!} ms after the ack (asked: 300)`);
  await f.send(TESTING_NODE, '{"when":"onshutdown","ack":"delete","action":"halt","actAfterMs":200}');
  const req = await f.send(SHUTDOWN_NODE, 'poweroff');
  t.equal(req.ack, 'delete', 'the request is acknowledged at once');
  t.equal(f.xs.store.read(SHUTDOWN_NODE), undefined, 'as asked (removed)');
  t.equal(req.action, 'none', 'not acted yet');
  const halted = await f.nextEvent(3000);
  t.deepEqual([halted.seq, halted.action], [req.seq, 'halt']);
  t.deepEqual(f.platform.actions, ['reboot', 'halt']);
  await f.close();
  t.end();
});

test('a newer command replaces the waiting step, and its event says so; a request during a wait is left alone', async (t) => {
  const f = await startFixture();
  const slow = await f.send(TESTING_NODE, '{"action":"crash","actAfterMs":60000}');
  const newer = await f.send(TESTING_NODE, '{"action":"ignore"}');
  t.match(newer.note, new RegExp(`replaced delayed: the action crash of event ${slow.seq}, due at \\d+ ms`));
  t.equal(f.report().delayed, '', 'nothing waits any more');
  await f.send(TESTING_NODE, '{"when":"onshutdown","action":"poweroff","ackAfterMs":60000}');
  const first = await f.send(SHUTDOWN_NODE, 'poweroff');
  t.equal(first.ack, 'none');
  f.xs.store.rm(SHUTDOWN_NODE);
  const second = await f.send(SHUTDOWN_NODE, 'reboot');
  t.equal(second.ack, 'none', 'left unacknowledged');
  t.match(second.note, new RegExp(`waiting for the ack of event ${first.seq}`));
  t.equal(f.xs.store.read(SHUTDOWN_NODE), 'reboot');
  const cancel = await f.send(TESTING_NODE, 'now:halt');
  t.match(cancel.note, /replaced delayed: the ack of event/);
  t.deepEqual(f.platform.actions, ['halt'], 'only what was not replaced happened');
  await f.close();
  t.end();
});

test('capabilities: flags written as asked, the reason written then feature-suspend again, pending kept', async (t) => {
  const f = await startFixture({
    before: (xs) => {
      // What libxl and xenopsd do: the flags exist, writable by the guest.
      for (const n of ['poweroff', 'reboot', 'suspend', 'balloon'] as const) xs.store.write(featureNode(n), '');
      for (const n of ['poweroff', 'reboot', 'suspend', 'balloon'] as const) xs.store.setPerms(featureNode(n), ['n5']);
    },
  });
  await f.send(TESTING_NODE, '{"when":"onshutdown","action":"crash"}');
  const pending = f.report().pending;
  const writes: string[] = [];
  const seen = f.xs.requests.length;
  const e = await f.send(TESTING_NODE, '{"features":{"suspend":false,"poweroff":null,"balloon":true},"cantSuspendReason":"busy"}');
  t.deepEqual([e.decision, e.action, e.command], ['accepted', 'none', 'features poweroff=removed suspend=0 balloon=1 cant-suspend-reason="busy"']);
  t.equal(f.xs.store.read(featureNode('suspend')), '0');
  t.equal(f.xs.store.read(featureNode('poweroff')), undefined, 'removed');
  t.equal(f.xs.store.read(featureNode('balloon')), '1');
  t.equal(f.xs.store.read(featureNode('reboot')), '1', 'untouched');
  t.equal(f.xs.store.read(CANT_SUSPEND_REASON_NODE), 'busy');
  for (const q of f.xs.requests.slice(seen)) if (q.op === 'WRITE' || q.op === 'RM') writes.push(q.path ?? '');
  const order = writes.filter((p) => /cant_suspend_reason|feature-suspend/.test(p)).map((p) => p.replace(/^\/local\/domain\/\d+\//, ''));
  t.deepEqual(order, [CANT_SUSPEND_REASON_NODE, featureNode('suspend')], 'the reason first, then feature-suspend (xenopsd watches control/, not data/)');
  t.equal(f.report().features, 'poweroff=removed reboot=1 suspend=0 balloon=1 cant-suspend-reason="busy"');
  t.equal(f.report().pending, pending, 'the pending command stays');
  await f.send(TESTING_NODE, '{"cantSuspendReason":null}');
  t.equal(f.xs.store.read(CANT_SUSPEND_REASON_NODE), undefined, 'reason removed');
  t.equal(f.report().features, 'poweroff=removed reboot=1 suspend=0 balloon=1 cant-suspend-reason=removed');
  const refused = await startFixture();
  const r = await refused.send(TESTING_NODE, '{"features":{"shutdown":true}}');
  t.match(r.note, /not written: control\/feature-shutdown \(EACCES\)/, 'a flag the guest may not create: said in the note, nothing thrown');
  t.equal(refused.report().state, 'ready');
  await refused.close();
  await f.close();
  t.end();
});

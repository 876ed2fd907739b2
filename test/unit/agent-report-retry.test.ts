// A report write that xenstored refuses (as real xenstored refused a WRITE
// whose payload the Linux xenbus device had overwritten: EINVAL) is retried
// with a growing delay, a bounded number of times, so that state=ready still
// appears; the failure is counted in errors and last-error.
import test from 'tape';
import { startFixture } from './agent-fixture.ts';
import { REPORT_DIR, TESTING_NODE } from '../../protocol/control.ts';

const DOMID_KEY = `${REPORT_DIR}/domid`;

test('the start-up reports fail with EINVAL (starting and ready): a retry still brings state=ready, and counts both', async (t) => {
  const f = await startFixture({
    before: (xs) => xs.faults.failNext('WRITE', 'EINVAL', 2, DOMID_KEY),
    agent: { reportRetryBaseMs: 20 },
  });
  const state = await f.xs.store.waitFor(`${REPORT_DIR}/state`, (v) => v === 'ready', 3000);
  t.equal(state, 'ready', 'state=ready appears without any event');
  await f.agent.idle();
  const r = f.report();
  t.equal(r.errors, '2', 'both failed writes counted');
  t.match(
    r['last-error']!,
    /^\d{4}-\d\d-\d\dT\S+Z writing the report: WRITE data\/xtv\/domid \(transaction \d+\): EINVAL$/,
    'last-error names the write and the code',
  );
  t.equal(r.domid, '5', 'the whole report landed');
  t.equal(f.platform.lines.filter((l) => /error where="writing the report"/.test(l)).length, 2, 'two error lines on the console');
  await f.close();
  t.end();
});

test('retries are bounded: after reportRetries failures in a row the agent waits for the next event', async (t) => {
  // Start-up "starting" and "ready" fail, then 3 retries fail: 5 refusals in all.
  const f = await startFixture({
    before: (xs) => xs.faults.failNext('WRITE', 'EINVAL', 5, DOMID_KEY),
    agent: { reportRetryBaseMs: 5, reportRetries: 3 },
  });
  const deadline = Date.now() + 3000;
  while (!f.platform.lines.some((l) => /could not be written 4 times in a row/.test(l)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.ok(
    f.platform.lines.some((l) => / note message="the report could not be written 4 times in a row; next try at the next event"/.test(l)),
    'the agent says it gives up',
  );
  const before = f.xs.requests.length;
  await new Promise((r) => setTimeout(r, 100)); // longer than every retry delay
  t.equal(f.xs.requests.length, before, 'no more retries');
  t.notEqual(f.report().state, 'ready', 'state=ready never landed');
  const e = await f.send(TESTING_NODE, 'next:poweroff');
  t.equal(e.decision, 'accepted');
  const r = f.report();
  t.equal(r.state, 'ready', 'the next event writes the whole report');
  t.equal(r.errors, '5', 'every failure counted');
  t.equal(r['event-seq'], '1');
  await f.close();
  t.end();
});

test('a retry that is due is cancelled by a successful write in between', async (t) => {
  const f = await startFixture({
    before: (xs) => xs.faults.failNext('WRITE', 'EINVAL', 1, DOMID_KEY),
    agent: { reportRetryBaseMs: 200 },
  });
  // The "starting" report failed and a retry is due in 200 ms; the "ready" report then succeeded.
  t.equal(f.report().state, 'ready');
  const before = f.xs.requests.filter((q) => q.op === 'TRANSACTION_START').length;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(f.xs.requests.filter((q) => q.op === 'TRANSACTION_START').length, before, 'no retry after the successful write');
  t.equal(f.report().errors, '1');
  await f.close();
  t.end();
});

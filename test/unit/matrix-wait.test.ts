// poll: the one wait of the harness (runner, CLI), with its hold option.
import test from 'tape';
import { poll } from '../../harness/matrix/wait.ts';

test('poll: done at the first probe that satisfies, without a hold', async (t) => {
  let n = 0;
  const r = await poll(
    async () => ++n,
    (v) => v >= 3,
    { timeoutMs: 2000, minMs: 5, maxMs: 10, what: 'count' },
  );
  t.deepEqual([r.done, r.value], [true, 3]);
  t.end();
});

test('poll: with a hold, a state seen once is not enough; a break starts the hold again', async (t) => {
  const states = ['Halted', 'Running', 'Halted'];
  const t0 = Date.now();
  const r = await poll(
    async () => states.shift() ?? 'Halted',
    (v) => v === 'Halted',
    { timeoutMs: 3000, minMs: 20, maxMs: 20, what: 'state', hold: { ms: 150 } },
  );
  t.ok(r.done, 'done once it held');
  // Two 20 ms intervals before the last break, then the 150 ms hold; Node's timers can fire a
  // millisecond early as Date.now() counts (a CI run saw 189 ms), so each interval may read 19.
  t.ok(Date.now() - t0 >= 150 + 38, `held 150 ms after the last break (${Date.now() - t0} ms)`);
  const never = await poll(
    async () => 'Halted',
    () => true,
    { timeoutMs: 100, minMs: 10, maxMs: 10, what: 'state', hold: { ms: 1000 } },
  );
  t.notOk(never.done, 'a hold longer than the bound is not done');
  t.end();
});

test('poll: a changed key restarts the hold; failed probes are retried and told', async (t) => {
  let i = 0;
  const keys: string[] = [];
  const r = await poll(
    async () => ({ domid: i++ < 3 ? i : 9 }),
    () => true,
    { timeoutMs: 3000, minMs: 10, maxMs: 10, what: 'domid', hold: { ms: 60, key: (v) => String(v.domid) } },
  );
  keys.push(String(r.value?.domid));
  t.deepEqual([r.done, keys], [true, ['9']], 'held on the last domid only');
  let fails = 2;
  const retried: unknown[] = [];
  const ok = await poll(
    async () => {
      if (fails-- > 0) throw new Error('not yet');
      return 1;
    },
    () => true,
    { timeoutMs: 2000, minMs: 5, maxMs: 5, what: 'x', onRetry: (e) => retried.push(e) },
  );
  t.deepEqual([ok.done, retried.length], [true, 2]);
  t.end();
});

// One deadline per dom0 call (#15 item 10, "Queue time"): waiting for a free
// session (ShellPool, SessionLimit), opening one and the command all count
// against the call's bound. A call whose deadline passes while queued leaves
// the queue and never runs; one that queued for part of its bound gets only
// the rest. This machine's sh stands in for "ssh dom0 sh".
import test from 'tape';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShellPool, ShellSessionError } from '../../harness/remote/shell-session.ts';
import { SshTarget } from '../../harness/remote/ssh-target.ts';
import { MAX_SESSIONS, SessionLimit, TargetUnreachableError } from '../../harness/remote/target.ts';

const localShell = () => spawn('sh', [], { stdio: ['pipe', 'pipe', 'pipe'] });
const settle = <T>(p: Promise<T>): Promise<T | unknown> =>
  p.then(
    (v) => v,
    (e: unknown) => e,
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('shell pool: a call whose deadline passes while queued rejects, leaves the queue and never runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-deadline-'));
  const marker = join(dir, 'ran');
  let opened = 0;
  const pool = new ShellPool(() => {
    opened++;
    return localShell();
  }, 1);
  const order: string[] = [];
  const busy = pool.run('sleep 3; echo busy', { timeoutMs: 10_000 }).then((r) => (order.push('busy'), r));
  const t0 = Date.now();
  const late = settle(pool.run(`touch '${marker}'; echo late`, { timeoutMs: 150 }));
  const third = pool.run('echo third', { timeoutMs: 5000 }).then((r) => (order.push('third'), r));
  const e = await late;
  const took = Date.now() - t0;
  t.ok(e instanceof ShellSessionError && e.timedOut && e.queued, `rejected timed out while queued: ${String(e)}`);
  t.ok(took >= 140 && took < 2500, `at its deadline, not when the session came free at 3 s (${took} ms)`);
  if (e instanceof ShellSessionError && e.queued) {
    t.equal(e.queued.sessions, 1, 'names the pool size');
    t.ok(e.queued.waitedMs >= 140 && e.queued.waitedMs < 2500, `and how long it waited (${e.queued.waitedMs} ms)`);
  }
  t.equal((await busy).stdout, 'busy\n');
  t.equal((await third).stdout, 'third\n', 'the one behind it gets the session');
  t.deepEqual(order, ['busy', 'third'], 'in order');
  await sleep(100);
  t.notOk(existsSync(marker), 'the timed-out call never ran, not even later');
  t.equal(opened, 1, 'one session throughout');
  pool.close();
  rmSync(dir, { recursive: true, force: true });
});

test("shell pool: a call that queued for part of its bound gets only the rest as the command's bound", async (t) => {
  const pool = new ShellPool(localShell, 1);
  const busy = pool.run('sleep 0.8', { timeoutMs: 5000 });
  const t0 = Date.now();
  // Alone it would finish within its bound (1 s of 1.5 s); after 0.8 s in the queue it cannot.
  // (Had its bound been the whole 1.5 s again, it would have succeeded at 1.8 s: the time-out says it was not.)
  const e = await settle(pool.run('sleep 1; echo done', { timeoutMs: 1500 }));
  const took = Date.now() - t0;
  t.ok(e instanceof ShellSessionError && e.timedOut && !e.queued, `timed out while running: ${String(e)}`);
  const bound = Number(/within (\d+) ms/.exec(String(e))?.[1]);
  t.ok(bound > 0 && bound <= 800, `the command's own bound was what was left (${bound} ms of 1500)`);
  t.ok(took >= 1400 && took < 5000, `the call ended at its deadline (${took} ms)`);
  await busy;
  // Time left over is enough: a queued call that fits still succeeds.
  const busy2 = pool.run('sleep 0.3', { timeoutMs: 5000 });
  t.equal((await pool.run('sleep 0.2; echo ok', { timeoutMs: 2000 })).stdout, 'ok\n', 'a queued call that fits its deadline succeeds');
  await busy2;
  // An absolute deadline is taken as is.
  t.equal((await pool.run('echo abs', { deadline: Date.now() + 2000 })).stdout, 'abs\n', 'a deadline instead of a bound');
  pool.close();
});

test('shell pool: opening a session counts against the deadline; the session goes to the next in line', async (t) => {
  let opened = 0;
  // A session that takes 3 s to answer (sh reads its setup only once it runs).
  const pool = new ShellPool(() => {
    opened++;
    return spawn('sh', ['-c', 'sleep 3; exec sh'], { stdio: ['pipe', 'pipe', 'pipe'] });
  }, 1);
  const t0 = Date.now();
  const e = await settle(pool.run('echo first', { timeoutMs: 200 }));
  t.ok(e instanceof ShellSessionError && e.queued, `the call gives up while the session opens: ${String(e)}`);
  t.ok(Date.now() - t0 < 2500, `at its deadline, not when the session answered at 3 s (${Date.now() - t0} ms)`);
  t.equal((await pool.run('echo second', { timeoutMs: 5000 })).stdout, 'second\n', 'the next call gets the session opened meanwhile');
  t.equal(opened, 1, 'which was opened once');
  pool.close();
});

test('ssh target: a command that waits past its deadline for one of its sessions names the wait', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-deadline-'));
  const marker = join(dir, 'ran');
  const target = new SshTarget({ user: 'root', host: 'xen1', port: 22 }, { openSession: localShell });
  const busy = Array.from({ length: MAX_SESSIONS }, () => target.exec('sleep 3', { timeoutMs: 10_000 }));
  const e = await settle(target.exec(`touch '${marker}'`, { timeoutMs: 200 }));
  t.ok(e instanceof TargetUnreachableError && e.timedOut, `timed out: ${String(e)}`);
  t.match(
    String((e as Error).message),
    new RegExp(`^'touch .*' waited \\d+ ms for one of ${MAX_SESSIONS} SSH sessions on ssh://root@xen1$`),
    'says it waited, for how long, for which sessions',
  );
  const waited = Number(/waited (\d+) ms/.exec(String(e))?.[1]);
  t.ok(waited >= 190 && waited < 2500, `its deadline, not the sessions' end at 3 s (${waited} ms)`);
  await Promise.all(busy);
  await sleep(100);
  t.notOk(existsSync(marker), 'and never ran');
  const slow = await settle(target.exec('sleep 2', { timeoutMs: 300 }));
  t.ok(slow instanceof TargetUnreachableError && slow.timedOut, 'a command past its bound is timed out too');
  t.match(String((slow as Error).message), /^'sleep 2' did not finish within 300 ms on ssh:\/\/root@xen1$/, 'with the message it always had');
  t.equal((await target.exec('echo fine')).stdout, 'fine\n');
  await target.close();
  rmSync(dir, { recursive: true, force: true });
});

test('session limit: a deadline that passes in the queue rejects and never runs the call; first come first served', async (t) => {
  const limit = new SessionLimit(1);
  const order: string[] = [];
  const slow = limit.run(async () => {
    await sleep(3000);
    order.push('slow');
  });
  let ran = false;
  const t0 = Date.now();
  const late = await settle(
    limit.run(
      async () => {
        ran = true;
      },
      { deadline: Date.now() + 100 },
    ),
  );
  t.ok(late instanceof TargetUnreachableError && late.timedOut, `rejected timed out: ${String(late)}`);
  t.match(String((late as Error).message), /^waited \d+ ms for one of 1 sessions$/, 'by default naming the wait');
  t.ok(Date.now() - t0 < 2500, `at its deadline, not when the slot came free at 3 s (${Date.now() - t0} ms)`);
  const custom = await settle(limit.run(async () => undefined, { deadline: Date.now() + 50, onTimeout: (ms) => new Error(`custom after ${ms}`) }));
  t.match(String(custom), /custom after \d+/, 'or with the error the caller builds');
  const next = limit.run(async () => {
    order.push('next');
  });
  await Promise.all([slow, next]);
  t.notOk(ran, 'the timed-out call never ran');
  t.deepEqual(order, ['slow', 'next'], 'the ones behind it still run, in order');

  // The cap holds and the order is kept with several waiting.
  const two = new SessionLimit(2);
  let now = 0;
  let most = 0;
  const started: number[] = [];
  await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      two.run(async () => {
        started.push(i);
        most = Math.max(most, ++now);
        await sleep(30);
        now--;
      }),
    ),
  );
  t.equal(most, 2, 'never more than n at once');
  t.deepEqual(started, [0, 1, 2, 3, 4, 5], 'first come first served');
  // Slots given back are free again.
  t.equal(await two.run(async () => 'free', { deadline: Date.now() + 50 }), 'free', 'a free slot is taken at once');
});

// The dom0 side of `xtv watch`'s events (harness/toolstack/xenstore-watch.ts),
// run by this machine's sh with a stand-in xenstore-watch: each event reaches
// onEvent with its path, and close() ends the session and every watch in it
// (in dom0 that is what the SSH session's end does).
import test from 'tape';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { domainWatchPaths, watchCommand, watchXenstore } from '../../harness/toolstack/xenstore-watch.ts';
import type { HostTarget } from '../../harness/remote/target.ts';

test('watch paths: the domain coming and going, and the report of the current domain', (t) => {
  t.deepEqual(domainWatchPaths(7, 'data/xtv'), ['@introduceDomain', '@releaseDomain', '/local/domain/7/data/xtv']);
  t.deepEqual(domainWatchPaths(null, 'data/xtv'), ['@introduceDomain', '@releaseDomain'], 'no domain: no report to watch');
  t.ok(watchCommand(["/a b/it's"], 'XTV-M').startsWith("set -- XTV-M 1 '/a b/it'\\''s'\n"), 'paths are quoted for the shell, as arguments');
  t.end();
});

test('watchXenstore: events arrive with their paths; close() stops every watch', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-xswatch-'));
  // Fires once at once (as xenstored does for a new watch), again 300 ms later, then waits; notes its pid.
  writeFileSync(join(dir, 'xenstore-watch'), `#!/bin/sh\necho $$ >> '${dir}/pids'\necho "$1"\nsleep 0.3\necho "$1"\nexec sleep 60\n`, { mode: 0o755 });
  let child: ChildProcess | null = null;
  const target: HostTarget = {
    description: 'local sh',
    exec: () => Promise.reject(new Error('not here')),
    copyTo: () => Promise.reject(new Error('not here')),
    // A session of its own, as sshd gives each command: the script's `kill 0` must not reach us.
    spawn: (command) =>
      (child = spawn('sh', ['-c', command], { detached: true, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } })),
    close: async () => undefined,
  };
  try {
    const events: string[] = [];
    const w = watchXenstore(target, ['@releaseDomain', '/local/domain/3/data/xtv'], (p) => events.push(p));
    const deadline = Date.now() + 10_000;
    while (events.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.deepEqual([...events].sort(), ['/local/domain/3/data/xtv', '/local/domain/3/data/xtv', '@releaseDomain', '@releaseDomain'], 'two events per path');
    w.close();
    t.equal(await w.ended, 'closed', 'ended: closed');
    const pids = readFileSync(join(dir, 'pids'), 'utf8').trim().split('\n').map(Number);
    await new Promise((r) => setTimeout(r, 300));
    // Gone, or a zombie nobody has reaped yet (this machine's init may not): either way, stopped.
    const alive = pids.filter((p) => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8'));
      } catch {
        return false;
      }
    });
    t.deepEqual(alive, [], `no watch is left running (${pids.length} started)`);
  } finally {
    if (child)
      try {
        process.kill(-(child as ChildProcess).pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    rmSync(dir, { recursive: true, force: true });
  }
});

// The one embedded host npm test's end-to-end files share (scripts/test.mjs
// starts this, then runs the files at the same time against it): booting a
// host per file cost a minute or more each, and the files' cases mostly wait
// on guests, so they overlap well.
//
//   node --import tsx test/e2e/shared-host.ts
//
// Boots Xen + dom0 with the XenAPI test double (as `xtv host up` does) in a
// fresh state directory, prints one JSON line {"ready":true,"stateDir",...}
// (or {"ready":false,"error"}), and keeps the host until its stdin closes:
// the runner closes it when the files are done, and so does the runner's
// death, however it dies. The host is owned by this process (withEmbeddedHost):
// QEMU goes with it, also on SIGKILL. Progress goes to stderr.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootE2eHost } from './e2e-host.ts';
import type { EmbeddedHost } from '../../harness/embedded/embedded-host.ts';

/**
 * Where the emulated CPUs went since boot, for whoever tunes the suite: dom0
 * is what bounds it. /proc/stat's shares, and the processes that used most
 * (their own time plus their reaped children's: the commands of the
 * harness's shell sessions end up under dropbear, or under init when a
 * session outlives its connection's dropbear).
 */
async function dom0CpuSummary(host: EmbeddedHost): Promise<string> {
  const r = await host.exec('head -n 1 /proc/stat; for f in /proc/[0-9]*/stat; do cat "$f" 2>/dev/null; echo; done', { timeoutMs: 60_000 });
  const [cpu = '', ...procs] = r.stdout.split('\n');
  const f = cpu.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const total = user + nice + system + idle + iowait + irq + softirq + steal || 1;
  const pct = (n: number): string => `${Math.round((100 * n) / total)}%`;
  const top = procs
    .flatMap((line) => {
      const m = /^(\d+) \((.*)\) \S+ (.*)$/.exec(line.trim());
      if (!m) return [];
      const v = m[3]!.split(' ').map(Number);
      // After the state: ppid(0) ... utime(10) stime(11) cutime(12) cstime(13), in ticks.
      return [{ what: `${m[2]} (${m[1]})`, ticks: v[10]! + v[11]! + v[12]! + v[13]! }];
    })
    .sort((a, b) => b.ticks - a.ticks)
    .slice(0, 8);
  return (
    `dom0 CPU since boot: user ${pct(user)}, system ${pct(system)}, idle ${pct(idle)}, guests (steal) ${pct(steal)} of ${(total / 100).toFixed(0)} CPU-s; ` +
    `most (with reaped children): ${top.map((p) => `${p.what} ${(p.ticks / 100).toFixed(0)} s`).join(', ')}`
  );
}

async function main(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'xtv-e2e-host-'));
  const progress = (line: string): void => {
    process.stderr.write(`# shared host: ${line}\n`);
  };
  const t0 = Date.now();
  // npm test's runner passes SIGINT/SIGTERM on. Once the host is up, a first signal ends the wait as a
  // closed stdin does (the host goes down, the state directory goes); before that, or at a second
  // signal, this process exits at once (QEMU goes with it, see withEmbeddedHost) and removes the
  // directory itself: `finally` would not run.
  const exitNow = (): void => {
    rmSync(stateDir, { recursive: true, force: true });
    process.exit(130);
  };
  let onSignal = exitNow;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => onSignal());
  try {
    await bootE2eHost(
      async (host) => {
        process.stdout.write(`${JSON.stringify({ ready: true, stateDir, pid: host.pid, bootMs: Date.now() - t0 })}\n`);
        await new Promise<void>((resolve) => {
          onSignal = () => {
            onSignal = exitNow;
            process.exitCode = 130;
            resolve();
          };
          process.stdin.on('data', () => undefined);
          process.stdin.on('end', resolve);
          process.stdin.on('close', resolve);
          process.stdin.resume();
        });
        progress(await dom0CpuSummary(host).catch((e: unknown) => `dom0 CPU: not read (${e instanceof Error ? e.message : String(e)})`));
        progress('stopping');
      },
      { stateDir, onProgress: progress },
    );
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ ready: false, error: err instanceof Error ? err.message : String(err) })}\n`);
    process.exitCode = 1;
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();

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

async function main(): Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'xtv-e2e-host-'));
  const progress = (line: string): void => { process.stderr.write(`# shared host: ${line}\n`); };
  const t0 = Date.now();
  try {
    await bootE2eHost(async (host) => {
      process.stdout.write(`${JSON.stringify({ ready: true, stateDir, pid: host.pid, bootMs: Date.now() - t0 })}\n`);
      await new Promise<void>((resolve) => {
        process.stdin.on('data', () => undefined);
        process.stdin.on('end', resolve);
        process.stdin.on('close', resolve);
        process.stdin.resume();
      });
      progress('stopping');
    }, { stateDir, onProgress: progress });
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ ready: false, error: err instanceof Error ? err.message : String(err) })}\n`);
    process.exitCode = 1;
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();

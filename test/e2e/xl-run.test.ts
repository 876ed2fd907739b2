// `xtv run` as a user runs it, on the embedded host with xl and the real test
// image: a few matrix cases end to end (TAP, the three reports, exit 0, no VM
// left), and a run interrupted with Ctrl-C while a request is in flight
// (exit 1, the case reported as an error, every VM and domain gone).
//
// The cases are a slice of the full matrix that the other e2e files do not
// already drive through the harness's own fixture (xl-driver.test.ts): a guest
// reboot asked by the host, save then restore, unpause, a request to a halted
// VM, a guest crashing itself; and one case each of #16's timing and features
// dimensions (--matrix full: they are not in the smoke list).
import test from 'tape';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EmbeddedHost } from '../../harness/embedded/embedded-host.ts';
import { onE2eHost } from './e2e-host.ts';
import { reportRoot, withReportDir, xtv } from './xtv-cli.ts';
import { embeddedDom0 } from '../../harness/embedded/embedded-address.ts';
import { XlDriver } from '../../harness/toolstack/xl/xl-driver.ts';

const CASES = [
  'running.clean_reboot.ack-ok.reboot',
  // Saved by the runner on its way to the initial state, then restored (running.suspend.ack-ok.suspend,
  // the same xl save judged as the request, is xl-driver.test.ts's save chain).
  'suspended.resume.ack-ok.ignore',
  'paused.unpause.ack-ok.ignore',
  'halted.clean_shutdown.ack-ok.ignore',
  // #16's lifecycle: the guest crashes under on_crash=preserve: xl keeps the domain, shut down, and the
  // driver says Halted with its domid; the state is also held against xenstored's list of domains. (The
  // default, on_crash=destroy, is the smoke matrix's running.no_request.ack-ok.crash.)
  'running.no_request.on-crash-preserve.ack-ok.crash',
  // #16's timing: the guest acks 15 s after libxl's 60 s: xl shutdown fails, then the guest powers off late.
  'running.clean_shutdown.ack-ok-late.poweroff',
  // #16's features: a guest that says it cannot power off is asked, and answered, as any other (libxl reads no flag).
  'running.clean_shutdown.no-feature-poweroff.ack-ok.poweroff',
];
/** Waits out xl's 60 s ack timeout: in flight long enough to be interrupted. */
const INTERRUPTED_CASE = 'running.clean_shutdown.ack-none.ignore';

/** The VMs (xl configs made by xtv) and xl domains on the host whose names start with `prefix`. */
async function leftovers(host: EmbeddedHost, prefix: string): Promise<{ vms: string[]; domains: string[] }> {
  const driver = new XlDriver(embeddedDom0(host));
  const vms = (await driver.listOwned()).map((v) => v.name).filter((n) => n.startsWith(prefix));
  const list = await host.exec("xl list | tail -n +2 | awk '{ print $1 }'");
  const domains = list.stdout.split('\n').filter((n) => n.startsWith(prefix));
  return { vms, domains };
}

test('xtv run on the embedded host with xl: matrix cases pass, reports written, nothing left; Ctrl-C cleans up', { timeout: 30 * 60_000 }, async (t) => {
  await onE2eHost(async (host) => {
    const env = { XTV_STATE_DIR: host.stateDir, XTV_HOST: 'embedded' };
    await withReportDir('xtv-e2e-run-', async (tmp) => {
      const dir = reportRoot(tmp, 'xl-run');
      // Both runs at once: they share the host, each with VMs of its own prefix.
      const [ok, cut] = await Promise.all([
        xtv(
          [
            'run',
            '--toolstack',
            'xl',
            '--matrix',
            'full',
            '--filter',
            CASES.join(','),
            '--parallel',
            '3',
            '--vm-prefix',
            'xtv-e2e-run',
            '--report-dir',
            join(dir, 'ok'),
          ],
          {
            env,
            timeoutMs: 20 * 60_000,
          },
        ),
        // SIGINT once the request is in flight (the guest was told not to acknowledge it).
        xtv(['run', '--toolstack', 'xl', '--filter', INTERRUPTED_CASE, '--vm-prefix', 'xtv-e2e-int', '--report-dir', join(dir, 'cut')], {
          env,
          timeoutMs: 10 * 60_000,
          interruptWhen: /request clean_shutdown/,
        }),
      ]);

      t.equal(ok.code, 0, `xtv run: exit 0 (${(ok.ms / 1000).toFixed(0)} s)${ok.code === 0 ? '' : `\n${ok.stderr.slice(-3000)}`}`);
      const tapOk = ok.stdout.split('\n').filter((l) => /^ok \d+ - pass /.test(l));
      t.equal(tapOk.length, CASES.length, `TAP: ${tapOk.length} of ${CASES.length} cases pass`);
      for (const c of CASES)
        t.ok(
          tapOk.some((l) => l.includes(c)),
          `  ${c}`,
        );
      for (const f of ['xtv-xl-full.junit.xml', 'xtv-xl-full.html', 'xtv-xl-full.json']) t.ok(existsSync(join(dir, 'ok', f)), `report ${f} written`);
      const summary = JSON.parse(readFileSync(join(dir, 'ok', 'xtv-xl-full.json'), 'utf8')) as { counts: Record<string, number> };
      t.equal(summary.counts['pass'], CASES.length, 'the JSON report counts them as passed');
      // #17: the resumed and the unpaused guest were checked for continuity, dom0's clock included, not skipped.
      for (const c of ['suspended.resume.ack-ok.ignore', 'paused.unpause.ack-ok.ignore'])
        t.match(
          ok.stderr,
          new RegExp(`${c.replace(/\./g, '\\.')}: continuity: boot id [0-9a-f]{32}, .*clock skew -?\\d+ ms .*: the same guest`),
          `  ${c}: the same guest`,
        );
      t.deepEqual(await leftovers(host, 'xtv-e2e-run'), { vms: [], domains: [] }, 'no VM and no domain of that run is left');

      t.ok(cut.sentAt !== undefined, `SIGINT sent while the request was in flight (${((cut.sentAt ?? 0) / 1000).toFixed(0)} s in)`);
      t.equal(cut.code, 1, `the interrupted run exits 1 (${((cut.ms - (cut.sentAt ?? 0)) / 1000).toFixed(1)} s after SIGINT)`);
      t.match(cut.stderr, /SIGINT: stopping/, 'it says it is stopping');
      t.notOk(/could not remove/.test(cut.stderr), 'and reports no VM it could not remove');
      t.match(cut.stdout, new RegExp(`^not ok \\d+ - error ${INTERRUPTED_CASE.replace(/\./g, '\\.')}`, 'm'), 'the interrupted case is an error in TAP');
      t.deepEqual(await leftovers(host, 'xtv-e2e-int'), { vms: [], domains: [] }, 'no VM and no domain of the interrupted run is left');
    });
  });
});

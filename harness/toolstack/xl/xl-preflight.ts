// `xtv doctor` for an xl host (Debian/Ubuntu with xen-utils, the embedded
// host too): dom0 over SSH, xl, room for the driver's files, PVH, live
// migration, memory.
import { check, guarded, leftoversCheck, memoryCheck, type Check, type PreflightOptions } from '../preflight.ts';
import type { XlDriver } from './xl-driver.ts';
import { newMarker, scriptCommand } from '../dom0-script.ts';

/** The checks for a host whose dom0 could not be reached (ConnectionError from connectXl). */
export function xlConnectChecks(err: unknown, host: string): Check[] {
  const msg = err instanceof Error ? err.message : String(err);
  const noXl = /no 'xl' command/.test(msg);
  return [
    noXl
      ? check('dom0', 'ok', `${host} answers over SSH`)
      : check('dom0', 'fail', msg, 'check the address, that root may log in with the key (--identity, $XTV_SSH_IDENTITY), and the host key in known_hosts'),
    noXl
      ? check('xl', 'fail', msg, 'install the Xen tools (Debian: apt-get install xen-utils) and boot the host into Xen')
      : check('xl', 'skip', 'not checked: dom0 did not answer'),
    ...['version', 'image-dir', 'pvh', 'migrate', 'memory', 'console-log', 'leftovers'].map((id) => check(id, 'skip', 'not checked')),
  ];
}

export async function xlPreflight(d: XlDriver, o: PreflightOptions): Promise<Check[]> {
  const checks: Check[] = [check('dom0', 'ok', `${d.target.description} answers over SSH`), check('xl', 'ok', "xl is on root's PATH")];
  const facts = await d.hostFacts();
  const infoRun = await d.xlInfo();
  const info = infoRun.fields;
  checks.push(
    infoRun.code === 0
      ? check('version', 'ok', `${facts.version}, xl toolstack`)
      : check(
          'version',
          'fail',
          `xl info failed: ${infoRun.text.trim().split('\n').at(-1) ?? `exit ${infoRun.code}`}`,
          'is dom0 running on Xen, with xenstored and the xencommons services up?',
        ),
  );
  const dirs = [d.paths.configDir, d.paths.imageDir, d.paths.saveDir];
  checks.push(
    ...(await guarded('image-dir', async () => {
      const r = await d.target.exec(scriptCommand('writable-dirs', newMarker(), 1, dirs), { timeoutMs: 30_000 });
      return r.code === 0
        ? check('image-dir', 'ok', `${dirs.join(', ')} are writable`)
        : check('image-dir', 'fail', `cannot write into ${dirs.join(', ')}: ${r.stderr.trim() || `exit ${r.code}`}`, 'log in as root (ssh://root@HOST)');
    })),
  );
  const caps = info['virt_caps'] ?? '';
  const hvm = /\bhvm\b/.test(caps) && /\bhap\b/.test(caps);
  checks.push(
    hvm
      ? check('pvh', 'ok', `PVH guests can run (virt_caps: ${caps})`)
      : check(
          'pvh',
          o.domainType === 'pvh' ? 'fail' : 'warn',
          `no hvm with hap in xl info's virt_caps (${caps || 'none'}): PVH guests cannot run (PV can)`,
          'run PV guests (--domain-type pv), or enable VT-x/AMD-V with EPT/NPT',
        ),
  );
  checks.push(...(await guarded('migrate', () => migrateCheck(d, o, facts.cannotMigrate?.[o.domainType]))));
  const freeMiB = Number(info['free_memory']);
  checks.push(
    !Number.isFinite(freeMiB)
      ? check('memory', 'fail', 'xl info reports no free_memory')
      : memoryCheck(freeMiB, o, 'shut down other domains, lower dom0_mem, or run fewer at once (--parallel)'),
  );
  checks.push(
    check(
      'console-log',
      'ok',
      facts.consoleLogDir
        ? `xenconsoled keeps guest console logs in ${facts.consoleLogDir}: used as evidence after a guest's domain is gone`
        : "xenconsoled keeps no guest console logs (Debian: XENCONSOLED_TRACE=guest in /etc/default/xen turns them on): evidence comes from the guest's xenstore report and xl",
    ),
  );
  checks.push(...(await guarded('leftovers', () => leftoversCheck(d, `xtv gc --all --host ${d.target.description}`))));
  return checks;
}

/**
 * Live migration (#17): `xl migrate NAME localhost` needs root's `ssh localhost` in dom0 to ask
 * nothing, and Xen able to migrate the domain type (live-migration.ts). A warning, not a failure:
 * only the migrate cases need it, and they say why they fail or are skipped.
 */
async function migrateCheck(d: XlDriver, o: PreflightOptions, cannot: string | undefined): Promise<Check> {
  const r = await d.target.exec(scriptCommand('ssh-localhost', newMarker(), 1, []), { timeoutMs: 30_000 });
  if (r.code !== 0) {
    const why = r.stdout.trim().split('\n').at(-1) || r.stderr.trim() || `exit ${r.code}`;
    return check(
      'migrate',
      'warn',
      `\`ssh localhost\` in dom0 did not work (${why}): xl migrate NAME localhost cannot run, so the migrate cases fail`,
      "give root in dom0 a key that its own authorized_keys accepts, and localhost's host key in root's known_hosts (`ssh localhost true` must ask nothing)",
    );
  }
  if (cannot)
    return check(
      'migrate',
      'warn',
      `${cannot}: the migrate cases of ${o.domainType.toUpperCase()} guests are skipped`,
      'run PVH guests (--domain-type pvh) to migrate them',
    );
  return check(
    'migrate',
    'ok',
    `\`ssh localhost\` works in dom0 and this Xen can live-migrate ${o.domainType.toUpperCase()} domains: xl migrate NAME localhost can run`,
  );
}

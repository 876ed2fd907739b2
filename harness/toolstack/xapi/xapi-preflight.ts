// `xtv doctor` for a XAPI host (XenServer, XCP-ng): what a run needs of it,
// checked with the same calls the driver makes. Facts and sources:
// docs/xapi-behaviour.md.
import { check, guarded, leftoversCheck, memoryCheck, type Check, type PreflightOptions } from '../preflight.ts';
import { ConnectionError, ToolstackError } from '../driver.ts';
import type { XapiDriver } from './xapi-driver.ts';
import { newMarker, scriptCommand } from '../dom0-script.ts';

const NULL_REF = 'OpaqueRef:NULL';

/** The api and login checks for a connection attempt that failed (the rest are skipped). */
export function xapiConnectChecks(err: unknown, url: string, user: string): Check[] {
  const msg = err instanceof Error ? err.message : String(err);
  const skipped = ['version', 'dom0', 'boot-dir', 'suspend-sr', 'pvh', 'memory', 'console-log', 'timeouts', 'leftovers'].map((id) =>
    check(id, 'skip', 'not checked: no session'),
  );
  if (err instanceof ToolstackError && err.code === 'SESSION_AUTHENTICATION_FAILED') {
    return [
      check('api', 'ok', `${url} answers`),
      check(
        'login',
        'fail',
        `${user}: SESSION_AUTHENTICATION_FAILED`,
        'check the user (--user, $XTV_XAPI_USER) and the password ($XTV_PASSWORD, or the file in --password-file / $XTV_PASSWORD_FILE)',
      ),
      ...skipped,
    ];
  }
  if (err instanceof ConnectionError && /no XAPI password/.test(msg)) {
    return [check('api', 'skip', 'not tried without a password'), check('login', 'fail', msg, 'set $XTV_PASSWORD, or --password-file FILE'), ...skipped];
  }
  if (err instanceof ToolstackError) {
    return [check('api', 'ok', `${url} answers`), check('login', 'fail', msg), ...skipped];
  }
  const tls = /certificate|self.signed|unable to verify|CERT_/i.test(msg);
  return [
    check(
      'api',
      'fail',
      msg,
      tls
        ? "give the host's CA certificate with --ca FILE (XCP-ng: /etc/xensource/xapi-ssl.pem's certificate), or accept any with --allow-unauthorized"
        : `check that ${url} is the host's address and that port ${new URL(url).port || 443} is open from here`,
    ),
    check('login', 'skip', 'not checked: the API did not answer'),
    ...skipped,
  ];
}

/** Every check after a successful login. */
export async function xapiPreflight(d: XapiDriver, url: string, user: string, o: PreflightOptions): Promise<Check[]> {
  const checks: Check[] = [check('api', 'ok', `${url} answers`), check('login', 'ok', `logged in as ${user}`)];
  const facts = await d.hostFacts();
  checks.push(check('version', 'ok', `${d.version.label}: PV kernels boot from ${d.version.bootDir}`));

  const target = d.dom0;
  if (!target) {
    checks.push(
      check(
        'dom0',
        'fail',
        "no shell in dom0 (--dom0 none): the image cannot be copied to the host, nor the guest's xenstore read",
        'give --dom0 ssh://root@HOST (the default) and a key with --identity or $XTV_SSH_IDENTITY',
      ),
    );
    checks.push(check('boot-dir', 'skip', 'not checked: no shell in dom0'));
  } else {
    checks.push(
      ...(await guarded('dom0', async () => {
        const r = await target.exec('command -v xenstore-read >/dev/null && echo ok', { timeoutMs: 30_000 });
        if (r.code !== 0) return check('dom0', 'fail', `${target.description} answers but has no xenstore-read: is it a XenServer / XCP-ng dom0?`);
        return check('dom0', 'ok', `${target.description} answers over SSH`);
      })),
    );
    if (checks.at(-1)!.status === 'ok') {
      const dir = d.version.bootDir;
      checks.push(
        ...(await guarded('boot-dir', async () => {
          const r = await target.exec(scriptCommand('writable-dirs', newMarker(), 1, [dir]), { timeoutMs: 30_000 });
          return r.code === 0
            ? check('boot-dir', 'ok', `${dir} is writable`)
            : check(
                'boot-dir',
                'fail',
                `cannot write into ${dir}: ${r.stderr.trim() || `exit ${r.code}`}`,
                `log in as root (--dom0 ssh://root@HOST) or make ${dir} writable`,
              );
        })),
      );
    } else {
      checks.push(check('boot-dir', 'skip', 'not checked: dom0 did not answer'));
    }
  }

  const { pool, master } = await d.poolAndMaster();
  checks.push(...(await guarded('suspend-sr', () => suspendSrCheck(d, pool, master))));
  checks.push(
    ...(await guarded('pvh', async () => {
      const level = o.domainType === 'pvh' ? 'fail' : 'warn';
      if (!d.version.pvh)
        return check(
          'pvh',
          level,
          `${d.version.label} has no PVH guests (domain_type pvh came with xapi 23.9): PV only`,
          'run PV guests (--domain-type pv, the default)',
        );
      const caps = await d.call<string[]>('host.get_capabilities', master);
      const hvm = caps.filter((c) => c.startsWith('hvm-'));
      if (hvm.length > 0) return check('pvh', 'ok', `PVH guests can run (xapi has domain_type pvh; hardware virtualisation: ${hvm.join(' ')})`);
      return check(
        'pvh',
        level,
        'the host reports no hvm capability: PVH guests cannot run (PV can)',
        'run PV guests (--domain-type pv), or enable VT-x/AMD-V (and EPT/NPT) in the firmware',
      );
    })),
  );
  checks.push(
    ...(await guarded('memory', async () => {
      const free = Number(await d.call<number | string>('host.compute_free_memory', master));
      return memoryCheck(Math.floor(free / 1024 / 1024), o, 'shut down other VMs, or run fewer at once (--parallel)');
    })),
  );
  checks.push(
    check(
      'console-log',
      'ok',
      facts.consoleLogDir
        ? `dom0 keeps guest console logs in ${facts.consoleLogDir}: used as evidence after a guest's domain is gone`
        : "dom0 keeps no guest console logs: evidence comes from the guest's xenstore report and the toolstack (enough for every verdict)",
    ),
  );
  const t = facts.timeouts;
  if (t)
    checks.push(
      check(
        'timeouts',
        'ok',
        `xenopsd waits ${t.shutdownAckMs / 1000} s for a shutdown ack, ${t.suspendAckMs / 1000} s for a suspend ack, ${t.shutdownTotalMs / 1000} s in all${facts.dom0 ? '' : ' (defaults: dom0 not read)'}`,
      ),
    );
  checks.push(...(await guarded('leftovers', () => leftoversCheck(d, `xtv gc --all --host ${url}`))));
  return checks;
}

/** VM.suspend needs an SR for the image: Helpers.choose_suspend_sr takes the VM's, the pool's, then the host's. */
async function suspendSrCheck(d: XapiDriver, pool: string, master: string): Promise<Check> {
  const valid = async (ref: string): Promise<string | null> => {
    if (!ref || ref === NULL_REF) return null;
    try {
      return await d.call<string>('SR.get_name_label', ref);
    } catch (e) {
      if (e instanceof ToolstackError && e.code === 'HANDLE_INVALID') return null;
      throw e;
    }
  };
  const poolSr = await valid(await d.call<string>('pool.get_suspend_image_SR', pool));
  if (poolSr !== null) return check('suspend-sr', 'ok', `the pool's suspend image SR is "${poolSr}"`);
  const hostSr = await valid(await d.call<string>('host.get_suspend_image_sr', master));
  if (hostSr !== null) return check('suspend-sr', 'ok', `the host's suspend image SR is "${hostSr}"`);
  const poolUuid = await d.call<string>('pool.get_uuid', pool);
  return check(
    'suspend-sr',
    'fail',
    'no suspend image SR (pool or host): every suspend fails with VM_NO_SUSPEND_SR',
    `xe pool-param-set uuid=${poolUuid} suspend-image-SR=$(xe sr-list name-label='Local storage' --minimal)   (or another SR's uuid)`,
  );
}

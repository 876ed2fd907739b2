// The XAPI path end to end: the XenAPI test double in dom0 of the embedded
// host, driven by the harness's XAPI driver through the real `xen-api`
// client, with the real test image, on the e2e host (e2e-host.ts). The host
// is reached the way a real XenServer is: its https:// URL (TLS checked
// against the CA file), a password file, dom0 as ssh://root@HOST:PORT, and
// no guest console log (XenServer keeps none by default).
import test from 'tape';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { VMDATA_TESTING_NODE, encodeVmData } from '../../protocol/control.ts';
import type { EmbeddedHost } from '../../harness/embedded/embedded-host.ts';
import { embeddedAddress, type HostAddress } from '../../harness/embedded/embedded-address.ts';
import { REPO_ROOT } from '../../harness/embedded/paths.ts';
import { ConnectionError, ToolstackError, type VmRef } from '../../harness/toolstack/driver.ts';
import { XapiDriver } from '../../harness/toolstack/xapi/xapi-driver.ts';
import { connectXapi } from '../../harness/toolstack/xapi/xapi-connect.ts';
import { readCaFile } from '../../harness/toolstack/xapi/xapi-tls.ts';
import { E2E_START_TIMEOUT_MS, E2E_XAPI_ACK_TIMEOUT_MS, onE2eHost } from './e2e-host.ts';

const IMAGE_DIR = process.env.XTV_IMAGE_DIR || join(REPO_ROOT, 'dist', 'image');
const DEFAULT_ARGS = 'console=hvc0 xen_shutdown_node=data/xtv/kernel-shutdown quiet';

function image(): { kernel: string; initrd: string; args: string; memoryMiB: number } | null {
  const kernel = join(IMAGE_DIR, 'xtv-kernel');
  const initrd = join(IMAGE_DIR, 'xtv-initrd');
  if (!existsSync(kernel) || !existsSync(initrd)) return null;
  let manifest: { kernelArgs?: string; minMemoryMiB?: number } = {};
  try {
    manifest = JSON.parse(readFileSync(join(IMAGE_DIR, 'manifest.json'), 'utf8'));
  } catch {
    /* no manifest: defaults */
  }
  return { kernel, initrd, args: manifest.kernelArgs ?? DEFAULT_ARGS, memoryMiB: Math.max(32, manifest.minMemoryMiB ?? 32) };
}

async function poll<T>(what: string, timeoutMs: number, f: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return null;
  } catch (err) {
    return err;
  }
}

async function guestReady(d: XapiDriver, vm: VmRef, bootId?: string | null): Promise<{ domid: string; bootId: string }> {
  return poll('the agent to report state=ready', 120_000, async () => {
    const r = await d.readGuestMany(vm, ['data/xtv/state', 'data/xtv/domid', 'data/xtv/boot-id']);
    if (r['data/xtv/state'] !== 'ready' && r['data/xtv/state'] !== 'resumed') return null;
    if (bootId !== undefined && r['data/xtv/boot-id'] === bootId) return null;
    return { domid: r['data/xtv/domid']!, bootId: r['data/xtv/boot-id']! };
  });
}

/** The domains Xen has for one VM of the endpoint (it names them xapi-UUID). */
async function domainsOf(host: EmbeddedHost, d: XapiDriver, vm: VmRef): Promise<string[]> {
  const uuid = d.cachedRecord(vm)?.['uuid'];
  if (typeof uuid !== 'string') return [`(no uuid for ${vm.name} in the client's cache)`];
  return (await xapiDomains(host)).filter((n) => n === `xapi-${uuid}`);
}

/** The domains the endpoint made (it names them xapi-UUID); other e2e files' guests may share the host. */
async function xapiDomains(host: EmbeddedHost): Promise<string[]> {
  const r = await host.exec("xl list | tail -n +2 | awk '{ print $1 }'");
  return r.stdout.split('\n').filter((n) => n.startsWith('xapi-'));
}

/** Everything this file checks, on the host at `addr` (its first XenAPI endpoint: the current XAPI line). */
async function exercise(t: test.Test, host: EmbeddedHost, addr: HostAddress, img: NonNullable<ReturnType<typeof image>>): Promise<void> {
  const progress = (l: string) => t.comment(l);
  const xapi = addr.xapi!;
  const url = xapi.endpoints[0]!.url;
  const status = await host.status();
  t.deepEqual(status.xapi, xapi, 'host status names the endpoints, the CA and password files (not the password)');
  t.equal(statSync(xapi.passwordFile).mode & 0o777, 0o600, 'the password is kept in a file of the state dir, mode 600');
  const password = readFileSync(xapi.passwordFile, 'utf8').trim();

  // TLS: the self-signed certificate is refused unless checked against its CA (allowUnauthorized: test/unit/xapi-driver.test.ts).
  const refused = await rejection(XapiDriver.connect({ url, user: xapi.user, password, target: null, callTimeoutMs: 30_000 }));
  t.ok(
    refused instanceof ConnectionError && /certificate/i.test(refused.message),
    `HTTPS with the system's CAs refuses the self-signed certificate (${String(refused)})`,
  );
  const wrong = await rejection(XapiDriver.connect({ url, user: xapi.user, password: 'wrong', target: null, ca: readCaFile(xapi.caFile) }));
  t.ok(
    wrong instanceof ToolstackError && wrong.code === 'SESSION_AUTHENTICATION_FAILED',
    'a wrong password is SESSION_AUTHENTICATION_FAILED (TLS checked against the CA file)',
  );
  t.notOk(String((wrong as Error).message).includes('wrong'), 'the password is not in the error message');

  // As a user reaches a real host: URL, dom0 over SSH, the CA, the password file; no console log.
  const d = await connectXapi({
    host: url,
    toolstack: 'xapi',
    dom0: addr.dom0,
    identity: addr.identity,
    knownHosts: addr.knownHosts,
    caFile: xapi.caFile,
    passwordFile: xapi.passwordFile,
    noConsoleLog: true,
    env: {},
    onProgress: progress,
  });
  try {
    const facts = await d.hostFacts();
    t.equal(d.version.bootDir, '/var/lib/xcp/guest', `the driver reads the version (${facts.version}) and boots kernels from /var/lib/xcp/guest`);
    t.equal(facts.timeouts?.shutdownAckMs, E2E_XAPI_ACK_TIMEOUT_MS, "it reads the shutdown ack timeout from dom0's /etc/xenopsd.conf");
    t.equal(facts.consoleLogDir, null, 'no console log is used');
    t.deepEqual(Object.keys(facts.cannotMigrate ?? {}), ['pv'], "it reads from dom0's xl info that this Xen cannot live-migrate PV (no shadow paging)");
    const opts = {
      name: 'xtv-e2e-xapi',
      domainType: 'pv' as const,
      memoryMiB: img.memoryMiB,
      kernelPath: img.kernel,
      initrdPath: img.initrd,
      kernelArgs: img.args,
    };
    // The first VM is PVH, which this Xen can live-migrate (#17: VM.pool_migrate below).
    const vm = await d.install({ ...opts, domainType: 'pvh' });
    t.deepEqual(await d.install({ ...opts, domainType: 'pvh' }), vm, 'install is idempotent');
    t.deepEqual(
      (await d.listOwned()).map((v) => v.name).filter((n) => n.startsWith('xtv-e2e-xapi')),
      ['xtv-e2e-xapi'],
      'listOwned finds it by its tag',
    );
    t.deepEqual(await d.state(vm), { powerState: 'Halted', domid: null });
    const vmB = await d.install({ ...opts, name: 'xtv-e2e-xapi-b' });

    // Two VMs at once: reboots on one, the no-ack case and suspend/resume on the other.
    await Promise.all([
      (async () => {
        await d.start(vm, { timeoutMs: E2E_START_TIMEOUT_MS });
        let st = await d.state(vm);
        t.equal(st.powerState, 'Running', 'VM.start: Running');
        let ready = await guestReady(d, vm);
        t.equal(Number(ready.domid), st.domid, `the agent reports the domid XAPI shows (${st.domid})`);
        // xenopsd makes the guest's control/ its own (domain.ml make), so a node dom0 re-creates there stays the guest's to write.
        const perms = await host.exec(`xenstore-ls -p /local/domain/${st.domid} | grep '^control '`);
        t.match(
          perms.stdout,
          new RegExp(`\\(n${st.domid}\\)\\s*$`),
          `control/ is the guest's own, as xenopsd makes it: ${perms.stdout.trim().replace(/[ .]{3,}/, ' ')}`,
        );

        const before = st.domid;
        await d.request(vm, 'clean_reboot', { timeoutMs: 300_000 });
        st = await d.state(vm);
        t.equal(st.powerState, 'Running', 'clean_reboot: Running');
        t.notEqual(st.domid, before, `with a new domid (${before} → ${st.domid})`);
        ready = await guestReady(d, vm, ready.bootId);
        t.equal(Number(ready.domid), st.domid, 'the agent rebooted into the new domain');

        // VM.pool_migrate to its own host: the same guest, resumed in a new domain.
        const beforeMigrate = st.domid;
        await d.request(vm, 'migrate', { timeoutMs: 300_000 });
        st = await d.state(vm);
        t.equal(st.powerState, 'Running', 'VM.pool_migrate to its own host: Running');
        t.notEqual(st.domid, beforeMigrate, `  in a new domain (${beforeMigrate} → ${st.domid})`);
        const resumed = await poll('the agent to report its resume in the new domain', 120_000, async () => {
          const r = await d.readGuestMany(vm, ['data/xtv/state', 'data/xtv/domid', 'data/xtv/boot-id', 'data/xtv/resumes']);
          return r['data/xtv/state'] === 'resumed' && r['data/xtv/domid'] === String(st.domid) ? r : null;
        });
        t.equal(resumed['data/xtv/boot-id'], ready.bootId, '  the same guest (boot id), one resume');
        t.equal(resumed['data/xtv/resumes'], '1');

        // next:reboot sent through XAPI (vm-data), then clean_shutdown: the guest reboots instead, XAPI still ends Halted.
        const id = `e2e-${Date.now().toString(36)}`;
        await d.writeGuest(vm, VMDATA_TESTING_NODE, encodeVmData(id, 'next:reboot'));
        const pending = await poll('the agent to take the vm-data message', 60_000, async () => {
          const r = await d.readGuestMany(vm, ['data/xtv/event-id', 'data/xtv/pending']);
          return r['data/xtv/event-id'] === id && r['data/xtv/pending'] ? r['data/xtv/pending'] : null;
        });
        t.ok(/"action":"reboot"/.test(pending), `the agent holds the command from vm-data: ${pending}`);
        await d.request(vm, 'clean_shutdown', { timeoutMs: 300_000 });
        t.deepEqual(await d.state(vm), { powerState: 'Halted', domid: null }, 'clean_shutdown answered by a reboot ends Halted (as XAPI)');
        t.equal(await d.consoleLog(vm), null, 'no console log is read');
      })(),
      (async () => {
        // A guest that does not acknowledge: XAPI's error, the request left in control/shutdown.
        await d.start(vmB, { timeoutMs: E2E_START_TIMEOUT_MS });
        await guestReady(d, vmB);
        const id2 = `e2e-${Date.now().toString(36)}-b`;
        await d.writeGuest(vmB, VMDATA_TESTING_NODE, encodeVmData(id2, '{"when":"onshutdown","ack":"none","action":"ignore"}'));
        await poll('the agent to take the second vm-data message', 60_000, async () => ((await d.readGuest(vmB, 'data/xtv/event-id')) === id2 ? true : null));
        const t0 = Date.now();
        const noAck = await rejection(d.request(vmB, 'clean_shutdown', { timeoutMs: 300_000 }));
        t.ok(noAck instanceof ToolstackError && noAck.code === 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', `no ack: ${String(noAck)}`);
        t.ok(Date.now() - t0 >= E2E_XAPI_ACK_TIMEOUT_MS - 1000, `after the ack timeout (${Date.now() - t0} ms)`);
        t.equal((await d.state(vmB)).powerState, 'Running', 'still Running');
        t.equal(await d.readGuest(vmB, 'control/shutdown'), 'poweroff', 'the request is left in control/shutdown');

        // Suspend after the no-ack case: the unacknowledged poweroff is replaced by XAPI's fresh request.
        await d.request(vmB, 'suspend', { timeoutMs: 300_000 });
        t.deepEqual(await d.state(vmB), { powerState: 'Suspended', domid: null }, 'suspend: Suspended, no domain');
        t.deepEqual(await domainsOf(host, d, vmB), [], 'Xen has no domain for it');
        await d.request(vmB, 'resume', { timeoutMs: 300_000 });
        t.equal((await d.state(vmB)).powerState, 'Running', 'resume: Running');
        // A failure here is the guest's (it did not come back from the restore); the rest still runs.
        const resumes = await poll('the agent to report its resume', 120_000, async () => {
          const n = Number(await d.readGuest(vmB, 'data/xtv/resumes'));
          return n >= 1 ? n : null;
        }).catch(() => 0);
        t.ok(resumes >= 1, `the agent reports ${resumes} resume(s) and keeps serving`);

        await d.request(vmB, 'hard_shutdown', { timeoutMs: 120_000 });
        t.deepEqual(await d.state(vmB), { powerState: 'Halted', domid: null }, 'hard_shutdown: Halted');
        const bad = await rejection(d.request(vmB, 'clean_shutdown', { timeoutMs: 60_000 }));
        t.ok(
          bad instanceof ToolstackError && bad.code === 'VM_BAD_POWER_STATE' && bad.params[1] === 'running' && bad.params[2] === 'halted',
          `VM_BAD_POWER_STATE [ref, running, halted]: ${String(bad)}`,
        );
      })(),
    ]);

    // Other files may use the host's other endpoint meanwhile: only what this file made is looked for.
    const made = [vm, vmB].flatMap((v) => {
      const oc = (d.cachedRecord(v)?.['other_config'] ?? {}) as Record<string, string>;
      return [oc['xtv-kernel'], oc['xtv-initrd'], `/var/lib/xtv-xapi*/suspend/${v.id}.save`].filter((f): f is string => !!f);
    });
    await d.uninstall(vm);
    await d.uninstall(vmB);
    t.deepEqual(
      (await d.listOwned()).filter((v) => v.name.startsWith('xtv-e2e-xapi')),
      [],
      'uninstall: no xtv VM of this file left',
    );
    t.deepEqual(
      (await xapiDomains(host)).filter((n) => n === `xapi-${vm.id}` || n === `xapi-${vmB.id}`),
      [],
      'no domain of theirs left',
    );
    // Image files are named by content: a VM of another file on this endpoint may still boot the same ones.
    const records = await d.call<Record<string, Record<string, unknown>>>('VM.get_all_records');
    const stillBooted = new Set(Object.values(records).flatMap((r) => [String(r.PV_kernel), String(r.PV_ramdisk)]));
    const files = await host.exec(`ls -d ${made.join(' ')} 2>/dev/null; true`);
    t.equal(made.length, 6, 'the VMs named their kernel and initrd files');
    t.deepEqual(
      files.stdout
        .trim()
        .split('\n')
        .filter((l) => l !== '' && !stillBooted.has(l)),
      [],
      'no kernel, initrd or suspend image of theirs left in dom0 (but what other VMs still boot)',
    );
  } finally {
    await d.close();
  }
  const log = await host.exec('cat /var/log/xtv-xapi*.log | grep -c "uncaught\\|unhandled"; true');
  t.equal(log.stdout.trim(), '0', 'the endpoints logged no uncaught error');
}

test("XAPI driver on the embedded host's XenAPI test double", { timeout: 40 * 60_000 }, async (t) => {
  const img = image();
  if (!img) {
    t.fail(`no test image in ${IMAGE_DIR}: run npm run build:image (or set XTV_IMAGE_DIR)`);
    return;
  }
  await onE2eHost(
    async (host) => {
      const addr = embeddedAddress(host);
      if (!addr.xapi) {
        t.fail(`the host in ${host.stateDir} runs without the XenAPI test double`);
        return;
      }
      await exercise(t, host, addr, img);
    },
    { onProgress: (l) => t.comment(l) },
  );
});

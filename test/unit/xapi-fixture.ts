// Shared set-up for the XenAPI test double's tests: the endpoint on a fake
// hypervisor, the real `xen-api` client logged in to it, the harness's way of
// installing a PV VM, and the error a call rejects with.
import { createClient, type Xapi } from 'xen-api';
import { startEndpoint, type RunningEndpoint } from '../../dom0/xapi-double/src/endpoint.ts';
import { FakeHypervisor } from '../../testing/fake-hypervisor.ts';
import type { LifecycleConfig } from '../../dom0/xapi-double/src/lifecycle.ts';
import { DEFAULT_PROFILE, PROFILES, type ProfileName } from '../../dom0/xapi-double/src/profiles.ts';

export const USER = 'root';

/** Where each XAPI line boots PV kernels from (the double's dom0 has xtv-kernel and xtv-initrd in both). */
export const BOOT: Record<ProfileName, string> = { 'xenserver-8': '/var/lib/xcp/guest', 'xcp-ng-8.2': '/boot/guest' };

export interface DoubleOptions {
  password: string;
  /** The XAPI version the double passes for (default xenserver-8). */
  profile?: ProfileName;
  /** Over { pollMs: 0, restartDelayMs: 0 }. */
  lifecycle?: Partial<LifecycleConfig>;
  /** The client's transport (default: the one it detects). */
  transport?: 'json-rpc' | 'xml-rpc';
  /** Whether the client runs its event loop (default false). */
  watchEvents?: boolean;
  /** The hypervisor to run on (default a new FakeHypervisor); closed with the rest. */
  hv?: FakeHypervisor;
}

export interface Double {
  ep: RunningEndpoint;
  hv: FakeHypervisor;
  url: string;
  client: Xapi;
  close(): Promise<void>;
}

/** Starts the double on 127.0.0.1 (any port) and connects a client to it as USER. */
export async function startDouble(opts: DoubleOptions): Promise<Double> {
  const hv = opts.hv ?? new FakeHypervisor();
  const ep = await startEndpoint({
    user: USER,
    password: opts.password,
    hypervisor: hv,
    profile: PROFILES[opts.profile ?? DEFAULT_PROFILE],
    http: { port: 0, host: '127.0.0.1' },
    lifecycle: { pollMs: 0, restartDelayMs: 0, ...opts.lifecycle },
  });
  const url = `http://127.0.0.1:${ep.httpPort}`;
  const client = createClient({
    url,
    auth: { user: USER, password: opts.password },
    watchEvents: opts.watchEvents ?? false,
    ...(opts.transport ? { transport: opts.transport } : {}),
    eventPollDelay: 50,
    debounce: 10,
  });
  await client.connect();
  return {
    ep,
    hv,
    url,
    client,
    async close() {
      await client.disconnect().catch(() => undefined);
      await ep.close();
      await hv.close();
    },
  };
}

/** The error code (and params) a promise rejects with. */
export async function rejection(p: Promise<unknown>): Promise<{ code: string; params: string[] } | 'resolved'> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    const e = err as { code?: string; params?: string[] };
    return { code: String(e.code), params: e.params ?? [] };
  }
}

export interface InstallOptions {
  /** The VM's name_label (default xtv-test). */
  name?: string;
  /** The directory of xtv-kernel and xtv-initrd (default BOOT['xenserver-8']). */
  boot?: string;
  /** Also what the harness's driver sets besides: PV_bootloader "", PV_args "console=hvc0", domain_type pv. */
  asHarness?: boolean;
  /** Keys added to other_config at the end. */
  otherConfig?: Record<string, string>;
}

/** Clones "Other install media" into a halted PV VM with 32 MiB, the way the harness installs one. */
export async function installVm(c: Xapi, opts: InstallOptions = {}): Promise<string> {
  const boot = opts.boot ?? BOOT['xenserver-8'];
  const [tpl] = await c.call<string[]>('VM.get_by_name_label', 'Other install media');
  const ref = await c.call<string>('VM.clone', tpl, opts.name ?? 'xtv-test');
  await c.call('VM.set_is_a_template', ref, false);
  if (opts.asHarness) await c.call('VM.set_PV_bootloader', ref, '');
  await c.call('VM.set_PV_kernel', ref, `${boot}/xtv-kernel`);
  await c.call('VM.set_PV_ramdisk', ref, `${boot}/xtv-initrd`);
  if (opts.asHarness) await c.call('VM.set_PV_args', ref, 'console=hvc0');
  await c.call('VM.set_HVM_boot_policy', ref, '');
  if (opts.asHarness) await c.call('VM.set_domain_type', ref, 'pv');
  await c.call('VM.set_memory_limits', ref, 32 << 20, 32 << 20, 32 << 20, 32 << 20);
  for (const [key, value] of Object.entries(opts.otherConfig ?? {})) await c.call('VM.add_to_other_config', ref, key, value);
  return ref;
}

/** A VM's power state and domid (-1 when it has no domain). */
export async function powerOf(c: Xapi, ref: string): Promise<[string, number]> {
  return [await c.call<string>('VM.get_power_state', ref), Number(await c.call('VM.get_domid', ref))];
}

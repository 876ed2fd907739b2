// The XAPI driver: the harness's ToolstackDriver over the real `xen-api`
// client (Xen Orchestra's), plus a dom0 shell (SSH) for what XenAPI cannot do:
// copying the kernel into the host's boot directory and, by default, reading
// and writing the guest's xenstore. Power requests are XenAPI calls run as
// tasks (Async.VM.*), so a 20-minute XAPI answer is not cut by an HTTP
// timeout; the caller's bound is ours to enforce (ConnectionError on expiry:
// the task carries on in XAPI).
//
// Installing is `xe vm-create` + PV-kernel by hand: clone "Other install
// media", make it a non-template PV (or PVH) VM booting our kernel and
// initrd directly, tag it in other_config (xtv=1), and name it. What differs
// between XAPI versions (the boot directory) comes from the host's
// software_version (xapi-versions.ts); what differs between hosts (console
// logs, timeouts, dom0 at all) from hostFacts().
import { basename } from 'node:path';
import { createClient, type Xapi, type XapiRecord } from 'xen-api';
import { REPORT_DIR, TESTING_NODE, VMDATA_TESTING_NODE } from '../../../protocol/control.ts';
import { consoleLogFact, consoleLogFile, consoleTailCommand, parseConsoleTail } from '../console-log.ts';
import { sha256File } from '../sha256-file.ts';
import { watchXenstore } from '../xenstore-watch.ts';
import { checkRelPath, clockFrame, parseReadMany, parseXenstoredDomains } from '../xenstore-reads.ts';
import { frames, newMarker, scriptCommand } from '../dom0-script.ts';
import { migrationFact } from '../live-migration.ts';
import { parseXlInfo } from '../../../protocol/xl-output.ts';
import { readXapiTimeouts, XAPI_DEFAULT_TIMEOUTS } from './xapi-timeouts.ts';
import { useAgent } from './xapi-tls.ts';
import { xapiVersionOf, type XapiVersion } from './xapi-versions.ts';
import { currentOwner, formatOwner } from '../vm-owner.ts';
import { TargetUnreachableError, type HostTarget, type TargetExecResult } from '../../remote/target.ts';
import {
  ConnectionError,
  ToolstackError,
  type ChangeWatch,
  type ConsoleText,
  type DomainInfo,
  type HostFacts,
  type HostRequest,
  type InstallOptions,
  type PowerState,
  type RequestOptions,
  type ToolstackDriver,
  type VmRef,
  type XenstoredDomain,
} from '../driver.ts';

/** The other_config key that marks a VM as made by xtv. */
export const XTV_TAG = 'xtv';
/** The other_config key that says who made it (vm-owner.ts: "user@host pid N started ISO-TIME"), for `xtv gc`. */
export const XTV_OWNER_KEY = 'xtv-owner';
export const TEMPLATE = 'Other install media';

export interface XapiDriverOptions {
  url: string;
  user: string;
  /** Kept in memory only; never logged, never in an error message. */
  password: string;
  /** Accept a TLS certificate that does not verify (only when the user asked by name). */
  allowUnauthorized?: boolean;
  /** Verify the certificate against this CA (PEM text) instead of the system's store. */
  ca?: string;
  /** dom0's shell over SSH: image copies, and xenstore unless `xenstoreVia` is 'xapi'. Null: XenAPI only. */
  target: HostTarget | null;
  /** How writeGuest reaches the guest: dom0's xenstore over SSH (default) or XAPI's VM.set_xenstore_data (vm-data/ only). */
  xenstoreVia?: 'ssh' | 'xapi';
  /** Bound on calls that are not power requests (those take RequestOptions.timeoutMs). */
  callTimeoutMs?: number;
  /** false: do not use guest console logs even where dom0 keeps them (as on hosts that keep none). */
  consoleLog?: boolean;
}

/** Every request but migrate, whose destination host is looked up first. */
const REQUEST_CALLS: Record<Exclude<HostRequest, 'migrate'>, { method: string; args: unknown[] }> = {
  clean_shutdown: { method: 'VM.clean_shutdown', args: [] },
  hard_shutdown: { method: 'VM.hard_shutdown', args: [] },
  clean_reboot: { method: 'VM.clean_reboot', args: [] },
  hard_reboot: { method: 'VM.hard_reboot', args: [] },
  suspend: { method: 'VM.suspend', args: [] },
  resume: { method: 'VM.resume', args: [false, false] },
  pause: { method: 'VM.pause', args: [] },
  unpause: { method: 'VM.unpause', args: [] },
};

/** What a user does about an error a host's setup causes (docs/xapi-behaviour.md §4). */
const XAPI_ERROR_HINTS: Record<string, string> = {
  VM_NO_SUSPEND_SR:
    'the pool has no suspend image SR; set one with xe pool-param-set uuid=<pool> suspend-image-SR=<sr-uuid> (xtv doctor prints the exact line)',
};

/** Turns what the client threw into the driver contract's two kinds of failure. */
export function mapXapiError(err: unknown, call: string): Error {
  const e = err as { code?: unknown; params?: unknown; message?: string };
  // A task XAPI cancelled (a hard_shutdown or hard_reboot during a clean operation: status
  // "cancelled", error_info TASK_CANCELLED) reaches us as the client's Cancel, which has no code
  // (xen-api _getTaskResult.mjs).
  if (err !== null && typeof err === 'object' && err.constructor?.name === 'Cancel') return new ToolstackError('TASK_CANCELLED', [], call);
  if (err instanceof Error && typeof e.code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(e.code) && Array.isArray(e.params)) {
    const params = (e.params as unknown[]).map(String);
    const hint = XAPI_ERROR_HINTS[e.code];
    return new ToolstackError(e.code, params, call, hint ? `${call}: ${e.code} ${JSON.stringify(params)}: ${hint}` : undefined);
  }
  if (err instanceof ToolstackError || err instanceof ConnectionError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new ConnectionError(`${call}: ${why}`, { cause: err, timedOut: isNetworkTimeout(err) });
}

/** Timeout codes of undici (lib/core/errors.js) and of Node's sockets, on the error or its cause. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function isNetworkTimeout(err: unknown): boolean {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TIMEOUT_CODES.has(code)) return true;
  }
  return false;
}

/** The client's HTTP inactivity bound: event.from and 20-minute tasks keep connections idle for long. */
const INACTIVITY_TIMEOUT_MS = 24 * 3600 * 1000;
/** TCP connect and TLS handshake: generous, for a loaded host far away or emulated (each call is bounded anyway). */
const CONNECT_TIMEOUT_MS = 60_000;

function withTimeout<T>(p: Promise<T>, ms: number, call: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConnectionError(`${call}: no answer within ${Math.round(ms / 1000)} s (timeout)`, { timedOut: true })), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export class XapiDriver implements ToolstackDriver {
  readonly kind = 'xapi' as const;
  private readonly callTimeoutMs: number;
  private readonly refs = new Map<string, string>();
  /** The pool master's XAPI version, read at connect. */
  version!: XapiVersion;
  private facts: Promise<HostFacts> | null = null;
  private pool: Promise<{ pool: string; master: string }> | null = null;
  /** Each VM's console log file, found while its domain existed (the file is named after the domain). */
  private readonly consoleFiles = new Map<string, string>();

  private constructor(
    readonly client: Xapi,
    private readonly opts: XapiDriverOptions,
  ) {
    this.callTimeoutMs = opts.callTimeoutMs ?? 120_000;
  }

  /** Connects and logs in; ConnectionError when the host cannot be reached, ToolstackError when it says no (e.g. SESSION_AUTHENTICATION_FAILED). */
  static async connect(opts: XapiDriverOptions): Promise<XapiDriver> {
    const client = createClient({
      url: opts.url,
      auth: { user: opts.user, password: opts.password },
      allowUnauthorized: opts.allowUnauthorized === true,
      // The task watcher needs the event loop; VM records keep `xtv watch` current.
      watchEvents: ['pool', 'VM', 'task'],
      debounce: 50,
      eventPollDelay: 2000,
      httpInactivityTimeout: INACTIVITY_TIMEOUT_MS,
    });
    const d = new XapiDriver(client, opts);
    try {
      useAgent(client, {
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
        rejectUnauthorized: opts.allowUnauthorized !== true,
        inactivityTimeoutMs: INACTIVITY_TIMEOUT_MS,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      });
      await withTimeout(client.connect(), d.callTimeoutMs, `connect to ${safeUrl(opts.url)}`);
      await withTimeout(client.objectsFetched, d.callTimeoutMs, `first fetch of records from ${safeUrl(opts.url)}`);
    } catch (err) {
      await d.close().catch(() => undefined);
      throw mapXapiError(err, `session.login_with_password at ${safeUrl(opts.url)}`);
    }
    try {
      d.version = xapiVersionOf(await d.masterSoftwareVersion());
    } catch (err) {
      await d.close().catch(() => undefined);
      throw err;
    }
    return d;
  }

  /** The pool and its master host (refs), looked up once. */
  poolAndMaster(): Promise<{ pool: string; master: string }> {
    this.pool ??= (async () => {
      const [pool] = await this.call<string[]>('pool.get_all');
      if (!pool) throw new ToolstackError('XTV_NO_POOL', [], 'pool.get_all', 'pool.get_all: the host reports no pool');
      return { pool, master: await this.call<string>('pool.get_master', pool) };
    })();
    return this.pool;
  }

  /** host.software_version of the pool's master: what the host says it runs. */
  private async masterSoftwareVersion(): Promise<Record<string, string>> {
    return this.call<Record<string, string>>('host.get_software_version', (await this.poolAndMaster()).master);
  }

  /**
   * What this host offers, found out once: its version, whether dom0 is
   * reachable, whether (where) it keeps guest console logs, and the
   * acknowledgement and total timeouts its xenopsd and xapi use.
   */
  hostFacts(): Promise<HostFacts> {
    this.facts ??= (async () => {
      const notes = [`version: ${this.version.label}; PV kernels boot from ${this.version.bootDir}`];
      const target = this.opts.target;
      if (!target) {
        notes.push(
          "dom0: not reachable (no SSH): no kernel copies, guest xenstore only through VM.set_xenstore_data, no console log; xapi's default timeouts assumed",
        );
        return {
          version: this.version.label,
          dom0: null,
          consoleLogDir: null,
          timeouts: { ...XAPI_DEFAULT_TIMEOUTS },
          refusesNonSuspendable: this.version.refusesNonSuspendable,
          notes,
        };
      }
      const [c, t, virtCaps] = await Promise.all([
        consoleLogFact(target, this.opts.consoleLog !== false, this.callTimeoutMs),
        readXapiTimeouts(target, this.callTimeoutMs, this.version.suspendTimeoutsTunable).catch((err: unknown) => ({
          timeouts: { ...XAPI_DEFAULT_TIMEOUTS },
          notes: [`timeouts: xapi's defaults assumed (could not read dom0's config files: ${err instanceof Error ? err.message : String(err)})`],
        })),
        // XenServer's and XCP-ng's dom0 carry xl too; its virt_caps say what Xen can live-migrate.
        this.sh('xl info', scriptCommand('xl-info', newMarker(), 1, []))
          .then((text) => parseXlInfo(text)['virt_caps'] ?? '')
          .catch(() => undefined),
      ]);
      const m = migrationFact(virtCaps);
      notes.push(c.note, ...t.notes, m.note);
      return {
        version: this.version.label,
        dom0: target.description,
        consoleLogDir: c.dir,
        timeouts: t.timeouts,
        refusesNonSuspendable: this.version.refusesNonSuspendable,
        ...(m.cannotMigrate ? { cannotMigrate: m.cannotMigrate } : {}),
        notes,
      };
    })();
    return this.facts;
  }

  async call<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    try {
      return await withTimeout(this.client.call<T>(method, ...args), this.callTimeoutMs, method);
    } catch (err) {
      throw mapXapiError(err, method);
    }
  }

  /** An Async.* call: resolves with the task's result. */
  private async callAsync<T = unknown>(method: string, timeoutMs: number, ...args: unknown[]): Promise<T> {
    try {
      return await withTimeout(this.client.callAsync<T>(method, ...args), timeoutMs, method);
    } catch (err) {
      throw mapXapiError(err, method);
    }
  }

  private async ref(vm: VmRef): Promise<string> {
    if (vm.id.startsWith('OpaqueRef:')) return vm.id;
    const known = this.refs.get(vm.id);
    if (known) return known;
    const ref = await this.call<string>('VM.get_by_uuid', vm.id);
    this.refs.set(vm.id, ref);
    return ref;
  }

  /** dom0's shell, or null when the host is reached through XenAPI only. */
  get dom0(): HostTarget | null {
    return this.opts.target;
  }

  private needTarget(what: string): HostTarget {
    if (!this.opts.target) throw new ConnectionError(`${what} needs a shell in dom0 (SSH): give --identity or $XTV_SSH_IDENTITY for this host`);
    return this.opts.target;
  }

  /** Runs a script in dom0; any exit status is returned. ConnectionError when dom0 cannot be reached. */
  private async exec(call: string, script: string, opts: { input?: string; timeoutMs?: number } = {}): Promise<TargetExecResult> {
    try {
      return await this.needTarget(call).exec(script, {
        timeoutMs: opts.timeoutMs ?? this.callTimeoutMs,
        ...(opts.input !== undefined ? { input: opts.input } : {}),
      });
    } catch (err) {
      if (err instanceof TargetUnreachableError) throw ConnectionError.fromUnreachable(call, err);
      throw err;
    }
  }

  /** Runs a script in dom0 and returns its output; a non-zero exit is a ToolstackError. */
  private async sh(call: string, script: string, opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(call, script, opts);
    if (r.code !== 0) throw new ToolstackError(`DOM0_EXIT_${r.code}`, r.stderr.trim() ? [r.stderr.trim()] : [], call);
    return r.stdout;
  }

  // ---------------------------------------------------------------------------
  // install / uninstall

  /**
   * Copies a file into the host's boot directory unless dom0 already has it.
   * Files are named by content and only ever put in place by a rename once
   * the copy's sha256 checked out (put-file.sh), so one that is there is right.
   */
  private async putGuestFile(local: string, call: string): Promise<string> {
    const sha = await sha256File(local);
    const remote = `${this.version.bootDir}/xtv-${sha.slice(0, 16)}-${basename(local).replace(/[^A-Za-z0-9._-]/g, '_')}`;
    const marker = newMarker();
    const look = await this.sh(call, scriptCommand('missing-files', marker, 1, [remote]));
    if (!frames(look, marker).some((f) => f.word === 'missing')) return remote;
    const target = this.needTarget(call);
    const tmp = `${remote}.tmp.${process.pid}`;
    try {
      await target.copyTo(local, tmp, { timeoutMs: 600_000, mode: '0644' });
    } catch (err) {
      if (err instanceof TargetUnreachableError) throw ConnectionError.fromUnreachable(call, err);
      throw err;
    }
    await this.sh(call, scriptCommand('put-file', newMarker(), 1, [tmp, remote, sha]));
    return remote;
  }

  private async findByName(name: string): Promise<Array<{ ref: string; ours: boolean; uuid: string }>> {
    const refs = await this.call<string[]>('VM.get_by_name_label', name);
    return Promise.all(
      refs.map(async (ref) => {
        const rec = await this.call<Record<string, unknown>>('VM.get_record', ref);
        const oc = (rec.other_config ?? {}) as Record<string, string>;
        return { ref, ours: oc[XTV_TAG] !== undefined && rec.is_a_template !== true, uuid: String(rec.uuid) };
      }),
    );
  }

  async install(opts: InstallOptions): Promise<VmRef> {
    const call = `install ${opts.name}`;
    if (opts.domainType === 'pvh' && !this.version.pvh) {
      throw new ToolstackError(
        'XTV_NO_PVH',
        [this.version.label],
        call,
        `${call}: ${this.version.label} has no PVH guests (domain_type pvh came with xapi 23.9); use --domain-type pv`,
      );
    }
    const kernel = await this.putGuestFile(opts.kernelPath, call);
    const ramdisk = await this.putGuestFile(opts.initrdPath, call);
    const found = await this.findByName(opts.name);
    if (found.some((f) => !f.ours)) {
      throw new ToolstackError('XTV_NAME_IN_USE', [opts.name], call, `${call}: a VM named ${opts.name} exists and was not made by xtv; leaving it alone`);
    }
    let ref: string;
    let uuid: string;
    if (found.length > 0) {
      ({ ref, uuid } = found[0]!);
      const state = await this.call<string>('VM.get_power_state', ref);
      if (state !== 'Halted') {
        // Reusing a VM that runs: only the boot files and args can change, and they apply at its next start.
        await this.configure(ref, opts, kernel, ramdisk, false);
        this.refs.set(uuid, ref);
        return { name: opts.name, id: uuid };
      }
    } else {
      const [template] = await this.call<string[]>('VM.get_by_name_label', TEMPLATE);
      if (!template) throw new ToolstackError('XTV_NO_TEMPLATE', [TEMPLATE], call, `${call}: this host has no "${TEMPLATE}" template to clone`);
      ref = await this.callAsync<string>('VM.clone', this.callTimeoutMs, template, opts.name);
      await this.call('VM.set_is_a_template', ref, false);
      uuid = await this.call<string>('VM.get_uuid', ref);
    }
    await this.configure(ref, opts, kernel, ramdisk, true);
    this.refs.set(uuid, ref);
    return { name: opts.name, id: uuid };
  }

  private async configure(ref: string, opts: InstallOptions, kernel: string, ramdisk: string, halted: boolean): Promise<void> {
    await this.call('VM.set_PV_bootloader', ref, '');
    await this.call('VM.set_PV_kernel', ref, kernel);
    await this.call('VM.set_PV_ramdisk', ref, ramdisk);
    await this.call('VM.set_PV_args', ref, opts.kernelArgs);
    // "" marks the VM as not HVM; xapi then also sets domain_type to pv
    // (ocaml/xapi/xapi_vm.ml set_HVM_boot_policy), so the type comes after it.
    await this.call('VM.set_HVM_boot_policy', ref, '');
    await this.call('VM.set_domain_type', ref, opts.domainType);
    if (halted) {
      const bytes = opts.memoryMiB * 1024 * 1024;
      await this.call('VM.set_memory_limits', ref, bytes, bytes, bytes, bytes);
      await this.call('VM.set_VCPUs_max', ref, 1).catch(() => undefined);
      await this.call('VM.set_VCPUs_at_startup', ref, 1).catch(() => undefined);
    }
    const a = opts.actions ?? {};
    if (a.afterShutdown) await this.call('VM.set_actions_after_shutdown', ref, a.afterShutdown);
    if (a.afterReboot) await this.call('VM.set_actions_after_reboot', ref, a.afterReboot);
    if (a.afterCrash) await this.call('VM.set_actions_after_crash', ref, a.afterCrash);
    const oc = await this.call<Record<string, string>>('VM.get_other_config', ref);
    await this.call('VM.set_other_config', ref, {
      ...oc,
      [XTV_TAG]: '1',
      [XTV_OWNER_KEY]: formatOwner(currentOwner()),
      'xtv-name': opts.name,
      'xtv-kernel': kernel,
      'xtv-initrd': ramdisk,
    });
  }

  async uninstall(vm: VmRef): Promise<void> {
    const call = `uninstall ${vm.name}`;
    let ref: string;
    try {
      ref = await this.ref(vm);
    } catch (err) {
      if (err instanceof ToolstackError && err.code === 'UUID_INVALID') return; // already gone
      throw err;
    }
    const rec = await this.call<Record<string, unknown>>('VM.get_record', ref);
    const oc = (rec.other_config ?? {}) as Record<string, string>;
    if (oc[XTV_TAG] === undefined)
      throw new ToolstackError('XTV_NOT_OURS', [vm.name], call, `${call}: the VM has no other_config:${XTV_TAG}; leaving it alone`);
    if (rec.power_state !== 'Halted') await this.callAsync('VM.hard_shutdown', this.callTimeoutMs, ref);
    await this.callAsync('VM.destroy', this.callTimeoutMs, ref);
    this.refs.delete(vm.id);
    // The kernel files go when no other xtv VM boots them.
    const others = await this.call<Record<string, Record<string, unknown>>>('VM.get_all_records');
    const inUse = new Set<string>();
    for (const r of Object.values(others)) {
      const o = (r.other_config ?? {}) as Record<string, string>;
      if (o[XTV_TAG] !== undefined) inUse.add(String(r.PV_kernel)).add(String(r.PV_ramdisk));
    }
    const files = [oc['xtv-kernel'], oc['xtv-initrd']].filter((f): f is string => !!f && this.isOwnFile(f) && !inUse.has(f));
    if (files.length > 0 && this.opts.target) await this.sh(call, scriptCommand('remove-files', newMarker(), 1, files));
  }

  /** Exactly the names putGuestFile gives (other_config is anyone's to edit: nothing else is removed). */
  private isOwnFile(path: string): boolean {
    const dir = this.version.bootDir;
    return path.startsWith(`${dir}/`) && /^xtv-[0-9a-f]{16}-[A-Za-z0-9._-]+$/.test(path.slice(dir.length + 1)) && !path.includes('..');
  }

  // ---------------------------------------------------------------------------
  // power

  async start(vm: VmRef, opts: { paused?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.callAsync('VM.start', opts.timeoutMs ?? this.callTimeoutMs, await this.ref(vm), opts.paused === true, false);
  }

  async request(vm: VmRef, request: HostRequest, opts: RequestOptions): Promise<void> {
    const ref = await this.ref(vm);
    if (request === 'migrate') {
      // Live, to the host the VM runs on: a localhost migration (xapi_vm_migrate.ml pool_migrate). A VM that
      // runs nowhere is sent to the pool's master, so that XAPI itself answers for its power state.
      const on = await this.call<string>('VM.get_resident_on', ref);
      const host = on && on !== 'OpaqueRef:NULL' ? on : (await this.poolAndMaster()).master;
      await this.callAsync('VM.pool_migrate', opts.timeoutMs, ref, host, { live: 'true' });
      return;
    }
    const c = REQUEST_CALLS[request];
    await this.callAsync(c.method, opts.timeoutMs, ref, ...c.args);
  }

  async state(vm: VmRef): Promise<DomainInfo> {
    const ref = await this.ref(vm);
    const rec = await this.call<Record<string, unknown>>('VM.get_record', ref);
    const domid = Number(rec.domid);
    return { powerState: rec.power_state as PowerState, domid: Number.isInteger(domid) && domid >= 0 ? domid : null };
  }

  /** The VM's record from the client's cache (kept current by event.from); null when unknown. */
  cachedRecord(vm: VmRef): Record<string, unknown> | null {
    const r = this.client.getObject(vm.id, null) as Record<string, unknown> | null;
    return r ?? null;
  }

  private async domid(vm: VmRef): Promise<number | null> {
    return (await this.state(vm)).domid;
  }

  // ---------------------------------------------------------------------------
  // the guest's xenstore

  async readGuestMany(vm: VmRef, relPaths: readonly string[]): Promise<Record<string, string | null>> {
    relPaths.forEach(checkRelPath);
    const domid = await this.domid(vm);
    if (domid === null) return Object.fromEntries(relPaths.map((k) => [k, null]));
    const marker = newMarker();
    const out = await this.sh(`xenstore-read in domain ${domid}`, scriptCommand('read-many', marker, 1, ['', String(domid), ...relPaths]));
    return parseReadMany(out, marker, relPaths);
  }

  async readGuest(vm: VmRef, relPath: string): Promise<string | null> {
    return (await this.readGuestMany(vm, [relPath]))[relPath] ?? null;
  }

  /**
   * Writes a node under the domain's home. With xenstoreVia 'xapi' (or when
   * there is no dom0 shell), only vm-data/ nodes can be written, through
   * VM.set_xenstore_data: XAPI rewrites the whole vm-data subtree live.
   */
  async writeGuest(vm: VmRef, relPath: string, value: string, opts: { guestWritable?: boolean } = {}): Promise<void> {
    checkRelPath(relPath);
    const ref = await this.ref(vm);
    if (this.opts.xenstoreVia === 'xapi' || relPath === VMDATA_TESTING_NODE || (!this.opts.target && relPath.startsWith('vm-data/'))) {
      if (!relPath.startsWith('vm-data/')) {
        throw new ToolstackError(
          'XTV_NOT_VM_DATA',
          [relPath],
          'VM.set_xenstore_data',
          `XAPI writes a running guest's xenstore only under vm-data/ (VM.set_xenstore_data); ${relPath} needs dom0's xenstore over SSH (e.g. ${TESTING_NODE})`,
        );
      }
      const data = await this.call<Record<string, string>>('VM.get_xenstore_data', ref);
      await this.call('VM.set_xenstore_data', ref, { ...data, [relPath]: value });
      return;
    }
    const domid = await this.domid(vm);
    if (domid === null)
      throw new ToolstackError(
        'VM_BAD_POWER_STATE',
        [ref, 'running', 'halted'],
        `xenstore-write ${relPath}`,
        `xenstore-write ${relPath}: ${vm.name} has no domain`,
      );
    // The same script as the xl driver's: raw (-R), a value with a leading "-" taken as a value (--).
    const args = ['', String(domid), relPath, value, opts.guestWritable ? '1' : '0'];
    await this.sh(`xenstore-write ${relPath} in domain ${domid}`, scriptCommand('write-guest', newMarker(), 1, args));
  }

  async writeClock(vm: VmRef): Promise<number | null> {
    if (!this.opts.target || this.opts.xenstoreVia === 'xapi') return null;
    const domid = await this.domid(vm);
    if (domid === null) throw new ToolstackError('VM_BAD_POWER_STATE', [vm.id, 'running', 'halted'], 'write-clock', `write-clock: ${vm.name} has no domain`);
    const marker = newMarker();
    const call = `xenstore-write control/testing in domain ${domid} (dom0's clock)`;
    return clockFrame(call, await this.sh(call, scriptCommand('write-clock', marker, 1, ['', String(domid)])), marker);
  }

  async xenstoredDomains(): Promise<XenstoredDomain[] | null> {
    if (!this.opts.target) return null;
    const marker = newMarker();
    return parseXenstoredDomains(await this.sh('xenstore-list /local/domain', scriptCommand('xenstored-domains', marker, 1, [])), marker);
  }

  async listOwned(): Promise<VmRef[]> {
    const all = await this.call<Record<string, Record<string, unknown>>>('VM.get_all_records');
    return Object.entries(all)
      .filter(([, r]) => r.is_a_template !== true && ((r.other_config ?? {}) as Record<string, string>)[XTV_TAG] !== undefined)
      .map(([ref, r]) => {
        this.refs.set(String(r.uuid), ref);
        const owner = ((r.other_config ?? {}) as Record<string, string>)[XTV_OWNER_KEY];
        return typeof owner === 'string' && owner !== ''
          ? { name: String(r.name_label), id: String(r.uuid), owner }
          : { name: String(r.name_label), id: String(r.uuid) };
      });
  }

  /**
   * XAPI's events for the VM's record (the client's event.from loop keeps
   * them coming), and, with a shell in dom0, a xenstore watch on its agent's
   * report. It never ends by itself (XAPI's events go on when the xenstore
   * watch drops), so watchers keep their timer as the only fallback.
   */
  watchChanges(vm: VmRef, domid: number | null, onChange: () => void): ChangeWatch {
    const objects = this.client.objects;
    const mine = (objs: Record<string, XapiRecord>): boolean =>
      Object.values(objs).some((o) => o.$type === 'VM' && (o.$ref === vm.id || o.$id === vm.id || o['uuid'] === vm.id));
    const onUpdate = (objs: Record<string, XapiRecord>): void => {
      if (mine(objs)) onChange();
    };
    for (const e of ['add', 'update', 'remove']) objects.on(e, onUpdate);
    const xs = this.opts.target && domid !== null ? watchXenstore(this.opts.target, [`/local/domain/${domid}/${REPORT_DIR}`], onChange) : null;
    let stop!: (why: string) => void;
    const stopped = new Promise<string>((r) => {
      stop = r;
    });
    return {
      // XAPI's events keep going after the xenstore watch ends: only close() ends this one.
      ended: stopped,
      close(): void {
        for (const e of ['add', 'update', 'remove']) objects.off(e, onUpdate);
        xs?.close();
        stop('closed');
      },
    };
  }

  /**
   * The guest's console log, when dom0 keeps them (hostFacts().consoleLogDir);
   * null otherwise. xenconsoled names the file after the domain's xenstore
   * name, which the toolstack chooses: it is read while the domain exists and
   * remembered, so the log can still be found after the domain is gone.
   */
  async consoleLog(vm: VmRef, opts: { maxBytes?: number } = {}): Promise<ConsoleText | null> {
    const dir = (await this.hostFacts()).consoleLogDir;
    if (!dir || !this.opts.target) return null;
    let path = this.consoleFiles.get(vm.id);
    if (!path) {
      const domid = await this.domid(vm);
      if (domid === null) return null;
      const marker = newMarker();
      const out = await this.sh('read the domain name', scriptCommand('read-many', marker, 1, ['', String(domid), 'name']));
      const name = parseReadMany(out, marker, ['name'])['name'];
      if (!name) return null;
      path = consoleLogFile(dir, name);
      this.consoleFiles.set(vm.id, path);
    }
    const r = await this.exec('read console log', consoleTailCommand([path], opts.maxBytes ?? 65536));
    return r.code === 0 ? parseConsoleTail(r.stdout) : null;
  }

  async close(): Promise<void> {
    await this.client.disconnect().catch(() => undefined);
    // The event loop's pending event.from holds a connection open; drop it so
    // the process can exit. The client then reports that lost call with
    // console.warn: only that expected line is kept quiet, for a moment.
    const dispatcher = (this.client as unknown as { _undiciDispatcher?: { destroy(): Promise<void> } })._undiciDispatcher;
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      const e = args[1] as { code?: string } | undefined;
      if (args[0] === '_watchEvents' && (e?.code === 'UND_ERR_DESTROYED' || e?.code === 'UND_ERR_SOCKET')) return;
      warn(...args);
    };
    try {
      await dispatcher?.destroy().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      console.warn = warn;
    }
    await this.opts.target?.close();
  }
}

/** The URL without credentials, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(bad URL)';
  }
}

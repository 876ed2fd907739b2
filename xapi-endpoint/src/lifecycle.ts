// VM power operations and the watcher that reacts when a guest shuts itself
// down, following XAPI/xenopsd (see /work/shared/toolstack-behaviour.md and
// README.md here). Domains are built by the Hypervisor with every xl action
// set to "preserve" and without xl's background daemon, so a domain that shuts
// down stays there, shut down with its reason, until this module decides:
//
//   - a clean operation in progress owns its domain: it writes the request into
//     control/shutdown, waits for the acknowledgement, then for the shutdown,
//     and ends the way XAPI does whatever the reason was (clean_shutdown:
//     Halted; clean_reboot: Running with a new domid; suspend: Suspended when
//     the reason is suspend, else an INTERNAL_ERROR and the reason's action);
//   - otherwise the guest acted alone, and the VM's actions_after_* apply.
//
// Power states and domids come from the hypervisor every time (refresh); the
// database only mirrors them for records and events.
import { join } from 'node:path';
import type { Database, Record_ } from './database.ts';
import { ApiError, errors } from './errors.ts';
import { domainHome, type DomainSpec, type DomainStatus, type Hypervisor, type ShutdownReason } from './hypervisor.ts';
import { NULL_REF, XapiDate } from './values.ts';

export type PowerState = 'Halted' | 'Paused' | 'Running' | 'Suspended';

export interface LifecycleConfig {
  /** Only kernels and ramdisks under this directory boot (current XAPI: /var/lib/xcp/guest). */
  guestDir: string;
  /** Where suspend images go. */
  suspendDir: string;
  /** XAPI's domain_shutdown_ack_timeout (60 s) and vm_suspend_ack_timeout (30 s). */
  shutdownAckTimeoutMs: number;
  suspendAckTimeoutMs: number;
  /** XAPI's domain_shutdown_total_timeout and vm_suspend_timeout (1200 s each). */
  shutdownTotalTimeoutMs: number;
  suspendTotalTimeoutMs: number;
  /** A guest that reboots (or crashes with restart) less than `shortRunMs` after start waits this long first (xenopsd: 15 s). */
  restartDelayMs: number;
  shortRunMs: number;
  /** How often to look at Xen even without a xenstore event (catches changes made behind our back). */
  pollMs: number;
}

export const DEFAULT_LIFECYCLE: LifecycleConfig = {
  guestDir: '/var/lib/xcp/guest',
  suspendDir: '/var/lib/xtv-xapi/suspend',
  shutdownAckTimeoutMs: 60_000,
  suspendAckTimeoutMs: 30_000,
  shutdownTotalTimeoutMs: 1_200_000,
  suspendTotalTimeoutMs: 1_200_000,
  restartDelayMs: 15_000,
  shortRunMs: 120_000,
  pollMs: 5_000,
};

/** An operation in progress on one VM. */
interface Op {
  name: string;
  cancelled: boolean;
  /** The op decides what happens when the domain shuts down; the watcher keeps off. */
  ownsDomain: boolean;
}

interface Runtime {
  domid: number | null;
  startedAt: number;
  op: Op | null;
  suspendFile: string | null;
  /** Bumped whenever an operation starts or ends or the power state is set: a refresh whose
   *  snapshot of the domains is older than the last bump must not judge this VM by it. */
  changes: number;
}

const HARD_OPS = new Set(['hard_shutdown', 'hard_reboot']);

export class Lifecycle {
  private readonly runtime = new Map<string, Runtime>();
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  /** Bumped by every domain event and poll tick; `seen` is the value the last completed refresh started at. */
  private generation = 0;
  private seen = -1;
  private readonly changeListeners = new Set<() => void>();
  private readonly stops: Array<() => void> = [];
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;

  constructor(
    private readonly db: Database,
    private readonly hv: Hypervisor,
    readonly config: LifecycleConfig,
    private readonly hostRef: () => string,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.stops.push(hv.onDomainsChanged(() => this.kick()));
    if (config.pollMs > 0) {
      this.pollTimer = setInterval(() => this.kick(), config.pollMs);
      this.pollTimer.unref?.();
    }
  }

  close(): void {
    this.closed = true;
    for (const s of this.stops.splice(0)) s();
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const l of [...this.changeListeners]) l();
  }

  private kick(): void {
    this.generation++;
    // With no domain of ours and nothing under way, the event was some other domain's (on a shared
    // host, most are) or the poll found nothing to follow: no look now; the next read makes one.
    if (this.hasDomainsOrOps()) this.refresh().catch((err) => this.log(`refresh failed: ${String(err)}`));
    for (const l of [...this.changeListeners]) l();
  }

  private hasDomainsOrOps(): boolean {
    for (const [ref, vm] of this.db.all('VM')) {
      if (vm.is_control_domain === true) continue;
      const r = this.runtime.get(ref);
      if (r?.op || r?.domid != null || vm.power_state === 'Running' || vm.power_state === 'Paused') return true;
    }
    return false;
  }

  private rt(ref: string): Runtime {
    let r = this.runtime.get(ref);
    if (!r) {
      r = { domid: null, startedAt: 0, op: null, suspendFile: null, changes: 0 };
      this.runtime.set(ref, r);
    }
    return r;
  }

  powerState(ref: string): PowerState {
    return this.db.get('VM', ref).power_state as PowerState;
  }

  private setPower(ref: string, state: PowerState, domid: number | null): void {
    const r = this.rt(ref);
    r.domid = domid;
    r.changes++;
    const changes: Record_ = {
      power_state: state,
      domid: domid ?? -1,
      resident_on: state === 'Running' || state === 'Paused' ? this.hostRef() : NULL_REF,
    };
    if (state === 'Running' && this.db.get('VM', ref).power_state === 'Halted') changes.start_time = new XapiDate(new Date());
    this.db.update('VM', ref, changes);
    const host = this.hostRef();
    if (this.db.has('host', host)) {
      const resident = this.db.all('VM')
        .filter(([, v]) => v.power_state === 'Running' || v.power_state === 'Paused')
        .map(([r]) => r);
      this.db.update('host', host, { resident_VMs: resident });
    }
  }

  // ---------------------------------------------------------------------------
  // Keeping the records in line with Xen

  /** Reads Xen's domain list and brings every VM's power state and domid in line. Concurrent calls share a run. */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          await this.refreshOnce();
        } while (this.refreshAgain && !this.closed);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * For reads (get_record and the like): the records already reflect every
   * operation of ours, so they need a new look at Xen only when a domain event
   * or a poll tick came since the last one (a look in flight is awaited). A
   * look is an `xl list` in dom0, a fifth of a second of its emulated CPU, and
   * clients poll records often.
   */
  current(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (this.seen === this.generation) return Promise.resolve();
    return this.refresh();
  }

  private async refreshOnce(): Promise<void> {
    const generation = this.generation;
    // xl list takes seconds on a loaded host: an op can finish meanwhile (a suspend: domain
    // saved and gone, VM Suspended), and the older snapshot would then pass for news (seen: a
    // suspended VM adopted its dead domain again and ended Halted). Such VMs wait for the next look.
    const before = new Map([...this.db.all('VM')].map(([ref]) => [ref, this.rt(ref).changes]));
    const domains = await this.hv.listDomains();
    const byUuid = new Map(domains.map((d) => [d.uuid.toLowerCase(), d]));
    for (const [ref, vm] of this.db.all('VM')) {
      if (vm.is_control_domain === true) continue;
      const r = this.rt(ref);
      if (before.get(ref) !== r.changes) {
        this.refreshAgain = true;
        continue;
      }
      const dom = byUuid.get(String(vm.uuid).toLowerCase()) ?? null;
      if (r.op && !r.op.cancelled && r.op.ownsDomain) continue; // the op keeps the record itself
      if (dom === null) {
        if (r.domid !== null || vm.power_state === 'Running' || vm.power_state === 'Paused') {
          if (r.op) continue; // mid-operation (e.g. between destroy and create)
          this.log(`VM ${vm.uuid}: its domain is gone; Halted`);
          this.setPower(ref, 'Halted', null);
        }
        continue;
      }
      if (r.domid !== dom.domid && !r.op) {
        // A domain of ours we did not know (the endpoint restarted): adopt it.
        r.domid = dom.domid;
        if (r.startedAt === 0) r.startedAt = Date.now();
      }
      if (r.domid !== dom.domid) continue;
      if (dom.shutdownReason !== null) {
        if (!r.op && vm.power_state !== 'Paused') this.guestActedAlone(ref, dom);
        continue;
      }
      if (r.op) continue;
      const state: PowerState = dom.paused ? 'Paused' : 'Running';
      if (vm.power_state !== state || vm.domid !== dom.domid) this.setPower(ref, state, dom.domid);
    }
    this.seen = Math.max(this.seen, generation);
  }

  /** Resolves when something may have changed (domains, watched nodes, a poll), or after `ms`. */
  private nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.changeListeners.delete(done);
        resolve();
      };
      const t = setTimeout(done, Math.max(0, Math.min(ms, 1000)));
      this.changeListeners.add(done);
    });
  }

  /** Polls `check` on every change until it returns non-null or `deadline` passes (then null). */
  private async waitUntil<T>(op: Op, deadline: number, check: () => Promise<T | null>, watchPath?: string): Promise<T | null> {
    let stopWatch: (() => void) | null = null;
    if (watchPath) stopWatch = await this.hv.xsWatch(watchPath, () => { for (const l of [...this.changeListeners]) l(); });
    try {
      for (;;) {
        if (op.cancelled) throw errors.taskCancelled(op.name);
        if (this.closed) throw errors.internal('the endpoint is shutting down');
        const v = await check();
        if (v !== null) return v;
        const left = deadline - Date.now();
        if (left <= 0) return null;
        await this.nextChange(left);
      }
    } finally {
      stopWatch?.();
    }
  }

  private async domain(domid: number): Promise<DomainStatus | null> {
    return (await this.hv.listDomains()).find((d) => d.domid === domid) ?? null;
  }

  // ---------------------------------------------------------------------------
  // Operations

  private begin(ref: string, name: string): Op {
    const r = this.rt(ref);
    if (r.op && !r.op.cancelled) {
      if (!HARD_OPS.has(name)) throw errors.otherOperation('VM', ref);
      // Hard operations win: the clean one waiting on the guest gives up.
      r.op.cancelled = true;
      for (const l of [...this.changeListeners]) l();
    }
    const op: Op = { name, cancelled: false, ownsDomain: false };
    r.op = op;
    r.changes++;
    this.db.update('VM', ref, { current_operations: { [`op-${name}`]: name } });
    return op;
  }

  private end(ref: string, op: Op): void {
    const r = this.rt(ref);
    r.changes++;
    if (r.op === op) {
      r.op = null;
      this.db.update('VM', ref, { current_operations: {} });
    }
    // Whatever happened to the domain while the op held it is looked at now.
    this.kick();
  }

  private async run<T>(ref: string, name: string, body: (op: Op, r: Runtime) => Promise<T>): Promise<T> {
    const op = this.begin(ref, name);
    try {
      return await body(op, this.rt(ref));
    } finally {
      this.end(ref, op);
    }
  }

  private async expectState(ref: string, allowed: PowerState[]): Promise<PowerState> {
    await this.refresh();
    const vm = this.db.get('VM', ref);
    if (vm.is_a_template === true) throw errors.isTemplate(ref);
    if (vm.is_control_domain === true) throw new ApiError('OPERATION_NOT_ALLOWED', ['This operation cannot be performed on the control domain']);
    const state = vm.power_state as PowerState;
    if (!allowed.includes(state)) throw errors.badPowerState(ref, allowed.map((s) => s.toLowerCase()).join(', '), state.toLowerCase());
    return state;
  }

  /** The domain the VM's record asks for, checked the way XAPI checks it before building. */
  private specOf(ref: string): DomainSpec {
    const vm = this.db.get('VM', ref);
    let type = String(vm.domain_type);
    if (type === 'unspecified') type = vm.HVM_boot_policy === '' ? 'pv' : 'hvm';
    if (type !== 'pv' && type !== 'pvh') {
      throw errors.invalidValue('domain_type', `${type} (this XAPI test double boots pv and pvh kernels only)`);
    }
    if (vm.PV_bootloader !== '') throw errors.invalidValue('PV_bootloader', String(vm.PV_bootloader));
    const kernel = String(vm.PV_kernel);
    const ramdisk = String(vm.PV_ramdisk);
    for (const [field, path] of [['PV_kernel', kernel], ['PV_ramdisk', ramdisk]] as const) {
      if (path === '' && field === 'PV_ramdisk') continue;
      if (!isUnder(path, this.config.guestDir)) throw errors.invalidValue(field, path);
    }
    const staticMax = Number(vm.memory_static_max);
    return {
      uuid: String(vm.uuid),
      name: `xapi-${String(vm.uuid)}`,
      type,
      kernel,
      ramdisk,
      cmdline: String(vm.PV_args),
      memoryMiB: Math.max(1, Math.ceil(staticMax / (1024 * 1024))),
      vcpus: Math.max(1, Number(vm.VCPUs_at_startup) || 1),
    };
  }

  /** vm-data/ and FIST/ keys of xenstore_data: the only ones XAPI writes into the domain. */
  private guestXenstoreData(ref: string): Record<string, string> {
    const data = this.db.get('VM', ref).xenstore_data as Record<string, string>;
    return Object.fromEntries(Object.entries(data).filter(([k]) => k === 'vm-data' || k.startsWith('vm-data/') || k.startsWith('FIST/')));
  }

  /** Builds the VM's domain and lets it run (or leaves it paused). */
  private async boot(ref: string, paused: boolean): Promise<number> {
    const spec = this.specOf(ref);
    for (const f of [spec.kernel, spec.ramdisk]) {
      if (f !== '' && !(await this.hv.fileExists(f))) throw errors.invalidValue(f === spec.kernel ? 'PV_kernel' : 'PV_ramdisk', f);
    }
    const domid = await this.hv.create(spec, this.guestXenstoreData(ref));
    const r = this.rt(ref);
    r.startedAt = Date.now();
    if (!paused) await this.hv.unpause(domid);
    this.setPower(ref, paused ? 'Paused' : 'Running', domid);
    this.log(`VM ${spec.uuid}: domain ${domid} ${paused ? 'built, paused' : 'started'}`);
    return domid;
  }

  /** Destroys the VM's domain. A reboot keeps the record Running meanwhile: XAPI never shows a rebooting VM as Halted. */
  private async destroyDomain(ref: string, opts: { rebooting?: boolean } = {}): Promise<void> {
    const r = this.rt(ref);
    if (r.domid !== null && (await this.domain(r.domid)) !== null) await this.hv.destroy(r.domid);
    if (opts.rebooting) r.domid = null;
    else this.setPower(ref, 'Halted', null);
  }

  async start(ref: string, paused: boolean): Promise<void> {
    await this.expectState(ref, ['Halted']);
    await this.run(ref, 'start', async () => {
      await this.boot(ref, paused);
    });
  }

  async pause(ref: string): Promise<void> {
    await this.expectState(ref, ['Running']);
    await this.run(ref, 'pause', async (_op, r) => {
      await this.hv.pause(r.domid!);
      this.setPower(ref, 'Paused', r.domid);
    });
  }

  async unpause(ref: string): Promise<void> {
    await this.expectState(ref, ['Paused']);
    await this.run(ref, 'unpause', async (_op, r) => {
      await this.hv.unpause(r.domid!);
      this.setPower(ref, 'Running', r.domid);
    });
  }

  async hardShutdown(ref: string): Promise<void> {
    const state = await this.expectState(ref, ['Running', 'Paused', 'Suspended']);
    await this.run(ref, 'hard_shutdown', async (_op, r) => {
      if (state === 'Suspended') {
        if (r.suspendFile) await this.hv.removeFile(r.suspendFile);
        r.suspendFile = null;
        this.db.update('VM', ref, { last_booted_record: '' });
        this.setPower(ref, 'Halted', null);
        return;
      }
      await this.destroyDomain(ref);
    });
  }

  async hardReboot(ref: string): Promise<void> {
    await this.expectState(ref, ['Running', 'Paused']);
    await this.run(ref, 'hard_reboot', async () => {
      await this.destroyDomain(ref, { rebooting: true });
      await this.boot(ref, false);
    });
  }

  /**
   * Writes `request` into control/shutdown and waits for the acknowledgement
   * ("" or the node gone; a domain that has already shut down counts too, since
   * its node goes with it). Returns false when the ack did not come in time.
   */
  private async requestAndWaitAck(op: Op, domid: number, request: string, ackTimeoutMs: number, t0: number): Promise<boolean> {
    const node = `${domainHome(domid)}/control/shutdown`;
    await this.hv.xsWriteFresh(node, request);
    this.log(`domain ${domid}: wrote ${request} into control/shutdown`);
    const acked = await this.waitUntil(op, t0 + ackTimeoutMs, async () => {
      const dom = await this.domain(domid);
      if (dom === null || dom.shutdownReason !== null) return true;
      const v = await this.hv.xsRead(node);
      return v === null || v === '' ? true : null;
    }, node);
    return acked !== null;
  }

  /** Waits for the domain to shut down (any reason); null when `deadline` passed first. */
  private waitShutdown(op: Op, domid: number, deadline: number): Promise<{ reason: ShutdownReason | 'gone' } | null> {
    return this.waitUntil(op, deadline, async () => {
      const dom = await this.domain(domid);
      if (dom === null) return { reason: 'gone' as const };
      return dom.shutdownReason !== null ? { reason: dom.shutdownReason } : null;
    });
  }

  async cleanShutdown(ref: string): Promise<void> {
    await this.expectState(ref, ['Running']);
    await this.run(ref, 'clean_shutdown', async (op, r) => {
      op.ownsDomain = true;
      const domid = r.domid!;
      const t0 = Date.now();
      if (!(await this.requestAndWaitAck(op, domid, 'poweroff', this.config.shutdownAckTimeoutMs, t0))) throw errors.shutdownAck(ref);
      const down = await this.waitShutdown(op, domid, t0 + this.config.shutdownTotalTimeoutMs);
      if (down === null) throw errors.shutdownTimeout(ref, Math.round(this.config.shutdownTotalTimeoutMs / 1000));
      this.log(`domain ${domid}: shut down (${down.reason}) after clean_shutdown; Halted`);
      await this.destroyDomain(ref);
    });
  }

  async cleanReboot(ref: string): Promise<void> {
    await this.expectState(ref, ['Running']);
    await this.run(ref, 'clean_reboot', async (op, r) => {
      op.ownsDomain = true;
      const domid = r.domid!;
      const t0 = Date.now();
      if (!(await this.requestAndWaitAck(op, domid, 'reboot', this.config.shutdownAckTimeoutMs, t0))) throw errors.shutdownAck(ref);
      const down = await this.waitShutdown(op, domid, t0 + this.config.shutdownTotalTimeoutMs);
      if (down === null) throw errors.shutdownTimeout(ref, Math.round(this.config.shutdownTotalTimeoutMs / 1000));
      this.log(`domain ${domid}: shut down (${down.reason}) after clean_reboot; starting again`);
      await this.destroyDomain(ref, { rebooting: true });
      await this.boot(ref, false);
    });
  }

  /** VM.shutdown: clean, falling back to hard when the clean one fails (XAPI's generic shutdown). */
  async shutdown(ref: string): Promise<void> {
    try {
      await this.cleanShutdown(ref);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'VM_BAD_POWER_STATE') throw err;
      await this.hardShutdown(ref);
    }
  }

  async suspend(ref: string): Promise<void> {
    await this.expectState(ref, ['Running']);
    let actual: { ref: string; dom: DomainStatus } | null = null;
    await this.run(ref, 'suspend', async (op, r) => {
      op.ownsDomain = true;
      const domid = r.domid!;
      const t0 = Date.now();
      if (!(await this.requestAndWaitAck(op, domid, 'suspend', this.config.suspendAckTimeoutMs, t0))) throw errors.suspendAck(ref);
      const down = await this.waitShutdown(op, domid, t0 + this.config.suspendTotalTimeoutMs);
      if (down === null) throw errors.suspendTimeout(ref, Math.round(this.config.suspendTotalTimeoutMs / 1000));
      if (down.reason === 'gone') {
        this.setPower(ref, 'Halted', null);
        throw errors.internal('Domain has not been suspended (it disappeared)');
      }
      if (down.reason !== 'suspend') {
        // xenopsd's save fails; then the domain's actual reason decides (after this op ends).
        actual = { ref, dom: { domid, uuid: String(this.db.get('VM', ref).uuid), paused: false, shutdownReason: down.reason } };
        throw errors.internal(`Domain has not been suspended (shutdown reason ${down.reason})`);
      }
      const file = join(this.config.suspendDir, `${String(this.db.get('VM', ref).uuid)}.save`);
      await this.hv.save(domid, file);
      r.suspendFile = file;
      this.setPower(ref, 'Suspended', null);
      this.log(`domain ${domid}: suspended to ${file}`);
    }).catch((err) => {
      if (actual) this.guestActedAlone(actual.ref, actual.dom);
      throw err;
    });
  }

  async resume(ref: string, paused: boolean): Promise<void> {
    await this.expectState(ref, ['Suspended']);
    await this.run(ref, 'resume', async (_op, r) => {
      if (!r.suspendFile) throw errors.internal('no suspend image for this VM');
      const domid = await this.hv.restore(r.suspendFile, String(this.db.get('VM', ref).uuid));
      r.startedAt = Date.now();
      if (!paused) await this.hv.unpause(domid);
      await this.hv.removeFile(r.suspendFile);
      r.suspendFile = null;
      this.setPower(ref, paused ? 'Paused' : 'Running', domid);
    });
  }

  /** VM.set_xenstore_data on a VM with a domain: the whole vm-data subtree rewritten in one transaction. */
  async xenstoreDataChanged(ref: string): Promise<void> {
    await this.refresh();
    const r = this.rt(ref);
    const state = this.powerState(ref);
    if (r.domid === null || (state !== 'Running' && state !== 'Paused')) return;
    const entries = Object.fromEntries(Object.entries(this.guestXenstoreData(ref)).filter(([k]) => k.startsWith('vm-data/')));
    await this.hv.xsReplaceTree(domainHome(r.domid), 'vm-data', entries);
  }

  /** Drops what the runtime knows of a destroyed VM (and its suspend image). */
  async forget(ref: string): Promise<void> {
    const r = this.runtime.get(ref);
    if (r?.suspendFile) await this.hv.removeFile(r.suspendFile).catch(() => undefined);
    this.runtime.delete(ref);
  }

  // ---------------------------------------------------------------------------
  // The guest acting alone (xenopsd's VM_check_state)

  private guestActedAlone(ref: string, dom: DomainStatus): void {
    const r = this.rt(ref);
    if (r.op) return;
    const op: Op = { name: 'guest-shutdown', cancelled: false, ownsDomain: true };
    r.op = op;
    void this.actOnShutdown(ref, dom, op)
      .catch((err) => this.log(`VM ${String(dom.uuid)}: acting on its shutdown failed: ${String(err)}`))
      .finally(() => this.end(ref, op));
  }

  private async actOnShutdown(ref: string, dom: DomainStatus, op: Op): Promise<void> {
    const vm = this.db.get('VM', ref);
    const reason = dom.shutdownReason!;
    let action: string;
    switch (reason) {
      case 'poweroff': action = String(vm.actions_after_shutdown); break;
      case 'reboot': case 'watchdog': case 'soft_reset': action = String(vm.actions_after_reboot); break;
      case 'crash': action = String(vm.actions_after_crash); break;
      case 'suspend': action = 'destroy'; break; // "unexpectedly suspended": no image, Halted
    }
    const ranFor = Date.now() - this.rt(ref).startedAt;
    const restart = ['restart', 'rename_restart', 'coredump_and_restart'].includes(action);
    this.log(`VM ${String(vm.uuid)}: domain ${dom.domid} shut down by itself (${reason}); action ${action}`);
    if (action === 'preserve') {
      this.setPower(ref, 'Paused', dom.domid);
      return;
    }
    if (!restart || (reason === 'crash' && ranFor < this.config.shortRunMs)) {
      await this.destroyDomain(ref);
      return;
    }
    if (ranFor < this.config.shortRunMs && this.config.restartDelayMs > 0) {
      await this.waitUntil(op, Date.now() + this.config.restartDelayMs, async () => null);
    }
    await this.destroyDomain(ref, { rebooting: true });
    await this.boot(ref, false);
  }
}

function isUnder(path: string, dir: string): boolean {
  const d = dir.endsWith('/') ? dir : `${dir}/`;
  return path.startsWith(d) && !path.slice(d.length).split('/').includes('..') && path.length > d.length;
}

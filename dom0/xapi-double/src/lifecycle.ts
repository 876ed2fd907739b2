// VM power operations and the watcher that reacts when a guest shuts itself
// down, following XAPI/xenopsd (README.md here). Domains are built by the
// Hypervisor with every xl action set to "preserve" and without xl's
// background daemon, so a domain that shuts down stays there, shut down with
// its reason, until this module decides:
//
//   - a clean operation in progress owns its domain: it writes the request into
//     control/shutdown, waits for the acknowledgement, then for the shutdown,
//     and ends the way XAPI does whatever the reason was (clean_shutdown:
//     Halted; clean_reboot: Running with a new domid; suspend: Suspended when
//     the reason is suspend, else the reason's action and then an INTERNAL_ERROR);
//   - otherwise the guest acted alone, and the VM's actions_after_* apply.
//
// Power states and domids come from the hypervisor every time (refresh); the
// database only mirrors them for records and events.
//
// What XAPI does per request, with upstream file and function:
// docs/toolstack-behaviour.md (the #anchors below).
// Short names in the cites (xapi-project/xen-api; the same at v1.249.42
// unless a profile says otherwise):
//   LC = ocaml/xapi/xapi_vm_lifecycle.ml   MF = ocaml/xapi/message_forwarding.ml
//   XS = ocaml/xenopsd/lib/xenops_server.ml  XX = ocaml/xapi/xapi_xenops.ml
import { join } from 'node:path';
import { bootFiles } from './boot-files.ts';
import type { Database, Record_ } from './database.ts';
import { errors } from './errors.ts';
import { domainHome, type DomainSpec, type DomainStatus, type Hypervisor, type ShutdownReason } from './hypervisor.ts';
import type { Profile } from './profiles.ts';
import { NULL_REF } from './values.ts';
import { XL_UNQUOTABLE } from '../../../protocol/xl-config-syntax.ts';

export type PowerState = 'Halted' | 'Paused' | 'Running' | 'Suspended';

/** The VM operations the double checks, by XAPI's names (Record_util.vm_operation_to_string). */
export type VmOperation =
  | 'start'
  | 'start_on'
  | 'pause'
  | 'unpause'
  | 'clean_shutdown'
  | 'clean_reboot'
  | 'hard_shutdown'
  | 'hard_reboot'
  | 'shutdown'
  | 'suspend'
  | 'pool_migrate'
  | 'resume'
  | 'resume_on'
  | 'clone'
  | 'copy'
  | 'destroy'
  | 'provision'
  | 'changing_dynamic_range';

export interface LifecycleConfig {
  /** Where suspend images go. */
  suspendDir: string;
  /** xenopsd's domain_shutdown_ack_timeout (60 s) and vm_suspend_ack_timeout (30 s) (docs/toolstack-behaviour.md#timeouts). */
  shutdownAckTimeoutMs: number;
  suspendAckTimeoutMs: number;
  /** xapi's domain_shutdown_total_timeout (from the request) and xenopsd's vm_suspend_timeout (from the ack): 1200 s each. */
  shutdownTotalTimeoutMs: number;
  suspendTotalTimeoutMs: number;
  /** A guest that reboots (or crashes with restart) less than `shortRunMs` after start waits this long first (xenopsd: 15 s). */
  restartDelayMs: number;
  shortRunMs: number;
  /**
   * How often to look at Xen even without a xenstore event, while a VM of ours has a domain: a
   * safety net for changes made behind our back (an `xl pause` by hand). A guest's shutdown fires
   * @releaseDomain (xenstored_domain.c domain_cleanup), which is looked at at once; each look is an
   * `xl list -v` (~0.2 CPU-s of an emulated dom0, per endpoint), hence not often.
   */
  pollMs: number;
}

export const DEFAULT_LIFECYCLE: LifecycleConfig = {
  suspendDir: '/var/lib/xtv-xapi/suspend',
  shutdownAckTimeoutMs: 60_000,
  suspendAckTimeoutMs: 30_000,
  shutdownTotalTimeoutMs: 1_200_000,
  suspendTotalTimeoutMs: 1_200_000,
  restartDelayMs: 15_000,
  shortRunMs: 120_000,
  pollMs: 20_000,
};

/** The power states each operation needs, in XAPI's order (LC allowed_power_states; docs/toolstack-behaviour.md#power-states). */
const ALLOWED_POWER_STATES: Record<VmOperation, PowerState[]> = {
  start: ['Halted'],
  start_on: ['Halted'],
  unpause: ['Paused'],
  resume: ['Suspended'],
  resume_on: ['Suspended'],
  clean_reboot: ['Running'],
  clean_shutdown: ['Running'],
  pause: ['Running'],
  suspend: ['Running'],
  pool_migrate: ['Running'],
  hard_reboot: ['Paused', 'Running'],
  shutdown: ['Paused', 'Suspended', 'Running'],
  hard_shutdown: ['Paused', 'Suspended', 'Running'],
  // clone and copy also allow Suspended for snapshots or with clone_suspended_vm enabled; neither exists here.
  clone: ['Halted'],
  copy: ['Halted'],
  destroy: ['Halted', 'Suspended'],
  provision: ['Halted'],
  changing_dynamic_range: ['Halted', 'Running'],
};

/** Of these operations, what a template allows (LC check_template) and what the control domain allows (LC check_operation_error). */
const TEMPLATE_OPS = new Set<VmOperation>(['clone', 'copy', 'provision', 'changing_dynamic_range']);
const CONTROL_DOMAIN_OPS = new Set<VmOperation>(['start', 'start_on', 'changing_dynamic_range']);

/**
 * The operations a guest's data/cant_suspend_reason refuses on a live VM (LC check_op_for_feature,
 * profile refusesNonSuspendable): suspend, checkpoint, pool_migrate, migrate_send. Of these the
 * double has suspend and pool_migrate.
 */
const SUSPEND_LIKE_OPS = new Set<string>(['suspend', 'checkpoint', 'pool_migrate', 'migrate_send']);

/** What a hard operation cancels before it acts (MF hard_shutdown, hard_reboot: `cancel ~ops`; docs/toolstack-behaviour.md#hard_shutdown). */
const CANCELLED_BY: Partial<Record<VmOperation, VmOperation[]>> = {
  hard_shutdown: ['clean_shutdown', 'clean_reboot', 'hard_reboot', 'pool_migrate', 'shutdown', 'suspend'],
  hard_reboot: ['clean_shutdown', 'clean_reboot', 'pool_migrate', 'suspend'],
};

/** LC is_allowed_concurrently, for the one operation in progress the double keeps per VM. */
function allowedConcurrently(op: VmOperation, current: VmOperation): boolean {
  if (op === 'hard_shutdown') return current !== 'hard_shutdown';
  if (op === 'hard_reboot') return current !== 'hard_shutdown' && current !== 'hard_reboot';
  return false;
}

/** An operation in progress on one VM; 'guest-shutdown' is the double's reaction to a guest acting alone (xenopsd's VM_check_state). */
interface Op {
  name: VmOperation | 'guest-shutdown';
  /** Its key in current_operations: the Async task, else a ref of its own (XAPI makes a task for every call). */
  task: string;
  cancelled: boolean;
  /** The op decides what happens when the domain shuts down; the watcher keeps off. */
  ownsDomain: boolean;
  /** Settles when the op has ended. */
  done: Promise<void>;
  finish(): void;
}

interface Runtime {
  domid: number | null;
  /** xenopsd's last_start_time: set when a domain is built, kept across suspend and resume. */
  startedAt: number;
  /** The op in charge of the VM. */
  op: Op | null;
  /** Every XenAPI operation still running (a cancelled one ends after the hard one that cancelled it began). */
  readonly ops: Set<Op>;
  suspendFile: string | null;
  /** Bumped whenever an operation starts or ends or the power state is set: a refresh whose
   *  snapshot of the domains is older than the last bump must not judge this VM by it. */
  changes: number;
}

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
    readonly hv: Hypervisor,
    private readonly profile: Profile,
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
    this.notify();
  }

  private notify(): void {
    for (const l of [...this.changeListeners]) l();
  }

  private kick(): void {
    this.generation++;
    // With no domain of ours and nothing under way, the event was some other domain's (on a shared
    // host, most are) or the poll found nothing to follow: no look now; the next read makes one.
    if (this.hasDomainsOrOps()) this.refresh().catch((err) => this.log(`refresh failed: ${String(err)}`));
    this.notify();
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
      r = { domid: null, startedAt: 0, op: null, ops: new Set(), suspendFile: null, changes: 0 };
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
    this.db.update('VM', ref, changes);
    const host = this.hostRef();
    if (this.db.has('host', host)) {
      const resident = this.db
        .all('VM')
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
    // Only domains whose uuid is one of our VMs' are looked at: other toolstacks' (another
    // endpoint's, xl's) are none of our business.
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
      if (r.domid !== dom.domid && !r.op && dom.shutdownReason === null && !dom.dying) {
        // A live domain of ours we did not know (the endpoint restarted): adopt it. Not one that is
        // shut down: that is one we destroyed and Xen still lists while it dies (seen under load:
        // a clean_shutdown answered by a reboot ended Halted, then the dying domain was taken for
        // a guest's own reboot and the VM restarted).
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
    if (watchPath) stopWatch = await this.hv.xsWatch(watchPath, () => this.notify());
    try {
      for (;;) {
        if (op.cancelled) throw errors.taskCancelled(op.task);
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
  // Checks and bookkeeping of operations

  /** Waits until Xen has been looked at and no reaction to a guest's own shutdown is under way
   *  (xenopsd queues every operation behind its VM_check_state). */
  private async settle(ref: string): Promise<void> {
    for (;;) {
      await this.refresh();
      const cur = this.rt(ref).op;
      if (cur?.name !== 'guest-shutdown') return;
      await cur.done;
    }
  }

  /**
   * XAPI's checks before an operation, in its order (LC check_operation_error): blocked
   * operations, the power state, operations in progress, templates, the control domain, then
   * the guest's features (LC check_op_for_feature: only its cant_suspend_reason here, read
   * beforehand by `cantSuspendReason`).
   * Synchronous, so that the caller can register its operation before anything else runs.
   */
  private checkNow(ref: string, name: VmOperation, cantSuspendReason: string | null = null): PowerState {
    const vm = this.db.get('VM', ref);
    const blocked = (vm.blocked_operations as Record<string, string>)[name];
    if (blocked !== undefined) throw errors.operationBlocked(ref, blocked);
    const state = vm.power_state as PowerState;
    const allowed = ALLOWED_POWER_STATES[name];
    if (!allowed.includes(state)) {
      // LC report_power_state_error: the expected states lower case, joined with ", ".
      throw errors.badPowerState(ref, allowed.map((s) => s.toLowerCase()).join(', '), state.toLowerCase());
    }
    const cur = this.rt(ref).op;
    if (cur && cur.name !== 'guest-shutdown' && !allowedConcurrently(name, cur.name)) {
      throw errors.otherOperation(this.profile.otherOperationShape, ref, cur.name, cur.task);
    }
    if (vm.is_a_template === true) {
      // LC check_template: templates allow these, and destroy unless they are default ones.
      const defaultTemplate =
        vm.is_default_template === true || ['1', 'true'].includes(String((vm.other_config as Record<string, string>).default_template ?? '').toLowerCase());
      if (!(TEMPLATE_OPS.has(name) || (name === 'destroy' && !defaultTemplate))) throw errors.isTemplate(ref, name);
    } else if (name === 'provision') {
      throw errors.onlyProvisionTemplate();
    }
    if (vm.is_control_domain === true) {
      if (name === 'destroy') throw errors.operationNotAllowed('This operation is not allowed on dom0');
      if (!CONTROL_DOMAIN_OPS.has(name)) throw errors.operationNotAllowed('This operation is not allowed on a control domain');
    }
    // LC check_op_for_feature: on a live VM (Xapi_vm_lifecycle_helpers.is_live: Running or Paused),
    // whatever its domain type and before the implicit support of PV guests is considered.
    if (cantSuspendReason !== null && SUSPEND_LIKE_OPS.has(name) && (state === 'Running' || state === 'Paused')) {
      throw errors.nonSuspendable(ref, cantSuspendReason);
    }
    return state;
  }

  /**
   * What VM_guest_metrics.other would hold as data-cant-suspend-reason, read from the guest's own
   * nodes the way xapi's guest agent reads them (xapi_guest_agent.ml get_initial_guest_metrics:
   * control/feature-suspend present, any value, and data/cant_suspend_reason present, any value,
   * "" included, give data-cant-suspend-reason = the reason in place of feature-suspend); null when
   * the guest does not say so. XAPI reads the guest metrics record, which xenopsd's events keep up
   * to date; the double keeps no guest metrics and reads xenstore at the time of the call.
   */
  private async cantSuspendReason(domid: number): Promise<string | null> {
    const home = domainHome(domid);
    const [feature, reason] = await Promise.all([this.hv.xsRead(`${home}/control/feature-suspend`), this.hv.xsRead(`${home}/data/cant_suspend_reason`)]);
    return feature !== null && reason !== null ? reason : null;
  }

  /**
   * settle, then checkNow. When the checks need the guest's nodes (the line refuses non-suspendable
   * guests, the operation is one it refuses, the VM has a domain), they are read in between, and
   * read again if the VM changed meanwhile (a new domain, an operation, the guest acting alone), so
   * that the checks still run on a settled VM and the caller can register its operation at once.
   */
  private async settleAndCheck(ref: string, name: VmOperation): Promise<void> {
    for (;;) {
      await this.settle(ref);
      const r = this.rt(ref);
      const { domid, changes } = r;
      if (!this.profile.refusesNonSuspendable || !SUSPEND_LIKE_OPS.has(name) || domid === null) {
        this.checkNow(ref, name);
        return;
      }
      const reason = await this.cantSuspendReason(domid);
      if (this.rt(ref) === r && r.domid === domid && r.changes === changes && r.op?.name !== 'guest-shutdown') {
        this.checkNow(ref, name, reason);
        return;
      }
    }
  }

  /** The checks alone, for operations the double does in one go (VM.destroy, VM.clone). */
  async checkOperation(ref: string, name: VmOperation): Promise<void> {
    await this.settleAndCheck(ref, name);
  }

  private newOp(name: Op['name'], task: string): Op {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    return { name, task, cancelled: false, ownsDomain: false, done, finish };
  }

  /** current_operations: task → operation, for the XenAPI operations under way. */
  private showOperations(ref: string): void {
    if (!this.db.has('VM', ref)) return;
    const ops = [...this.rt(ref).ops].map((o) => [o.task, o.name]);
    this.db.update('VM', ref, { current_operations: Object.fromEntries(ops) });
  }

  /**
   * Checks and registers an operation. A hard operation allowed next to another one cancels
   * it when it may (CANCELLED_BY) and waits for it to end either way (MF `cancel` waits for the
   * cancelled tasks; xenopsd runs one operation of a VM at a time).
   */
  private async begin(ref: string, name: VmOperation, task: string | null): Promise<Op> {
    await this.settleAndCheck(ref, name);
    const r = this.rt(ref);
    const op = this.newOp(name, task ?? this.db.newRef());
    const prev = r.op;
    r.op = op;
    r.ops.add(op);
    r.changes++;
    this.showOperations(ref);
    if (prev) {
      if (CANCELLED_BY[name]?.includes(prev.name as VmOperation)) {
        this.log(`VM ${String(this.db.get('VM', ref).uuid)}: ${name} cancels ${prev.name}`);
        prev.cancelled = true;
        this.notify();
      }
      await prev.done;
      await this.refresh();
    }
    return op;
  }

  private end(ref: string, op: Op): void {
    const r = this.rt(ref);
    r.changes++;
    r.ops.delete(op);
    if (r.op === op) r.op = null;
    this.showOperations(ref);
    op.finish();
    // Whatever happened to the domain while the op held it is looked at now.
    this.kick();
  }

  private async run<T>(ref: string, name: VmOperation, task: string | null, body: (op: Op, r: Runtime) => Promise<T>): Promise<T> {
    const op = await this.begin(ref, name, task);
    try {
      return await body(op, this.rt(ref));
    } finally {
      this.end(ref, op);
    }
  }

  /** Marks the operation running as `task` cancelled (task.cancel); false when there is none. */
  cancelTask(task: string): boolean {
    for (const r of this.runtime.values()) {
      for (const op of r.ops) {
        if (op.task === task) {
          op.cancelled = true;
          this.notify();
          return true;
        }
      }
    }
    return false;
  }

  // ---------------------------------------------------------------------------
  // Domains

  /** The domain the VM's record asks for, with the kernel and ramdisk its line allows (boot-files.ts). */
  private async specOf(ref: string): Promise<DomainSpec> {
    const vm = this.db.get('VM', ref);
    const type = domainTypeOf(vm);
    if (type !== 'pv' && type !== 'pvh') {
      throw errors.invalidValue('domain_type', `${type} (this XAPI test double boots pv and pvh kernels only)`);
    }
    if (vm.PV_bootloader !== '') throw errors.invalidValue('PV_bootloader', String(vm.PV_bootloader));
    // The domain config is a text file (protocol/xl-config-syntax.ts quoteXlString): a newline, a quote or a tab is
    // escaped and reaches the guest as is; the few control characters xl cannot spell at all are
    // refused here, before anything is built, as the double refuses other values it cannot boot.
    // (XAPI passes PV_args to libxl without a file and has no such case.)
    for (const f of ['PV_args', 'PV_kernel', 'PV_ramdisk']) {
      if (XL_UNQUOTABLE.test(String(vm[f])))
        throw errors.invalidValue(f, String(vm[f]), 'holds a control character the xl config of this test double cannot carry');
    }
    const files = await bootFiles(this.profile, this.hv, String(vm.PV_kernel), String(vm.PV_ramdisk));
    const staticMax = Number(vm.memory_static_max);
    return {
      uuid: String(vm.uuid),
      name: `xapi-${String(vm.uuid)}`,
      type,
      kernel: files.kernel,
      ramdisk: files.ramdisk,
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
    const spec = await this.specOf(ref);
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

  /** A suspended VM's image goes, and it is Halted (xapi_vm.ml hard_shutdown, `Suspended`). */
  private async dropSuspendImage(ref: string, r: Runtime): Promise<void> {
    if (r.suspendFile) await this.hv.removeFile(r.suspendFile);
    r.suspendFile = null;
    this.db.update('VM', ref, { last_booted_record: '' });
    this.setPower(ref, 'Halted', null);
  }

  // ---------------------------------------------------------------------------
  // Operations (`task`: the Async task the call runs in, or null)

  async start(ref: string, paused: boolean, task: string | null, name: 'start' | 'start_on' = 'start'): Promise<void> {
    await this.run(ref, name, task, async () => {
      this.validateActionsAfterCrash(ref);
      await this.boot(ref, paused);
    });
  }

  /**
   * xapi_vm_helpers.ml validate_actions_after_crash, from assert_can_boot_here at every start (the
   * setter takes any value of the enum): rename_restart would leave a domain behind; a coredump is
   * only for PV domains. Both VALUE_NOT_SUPPORTED [field; value; reason] (at v1.249.42 and master).
   */
  private validateActionsAfterCrash(ref: string): void {
    const vm = this.db.get('VM', ref);
    const value = String(vm.actions_after_crash);
    const fld = 'VM.actions_after_crash';
    if (value === 'rename_restart') throw errors.valueNotSupported(fld, value, 'option would leak a domain; VMs and not domains are managed by this API');
    if ((value === 'coredump_and_destroy' || value === 'coredump_and_restart') && domainTypeOf(vm) !== 'pv')
      throw errors.valueNotSupported(fld, value, 'cannot invoke a coredump of an HVM, PVH or PV-in-PVH domain');
  }

  async pause(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'pause', task, async (_op, r) => {
      await this.hv.pause(r.domid!);
      this.setPower(ref, 'Paused', r.domid);
    });
  }

  async unpause(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'unpause', task, async (_op, r) => {
      await this.hv.unpause(r.domid!);
      this.setPower(ref, 'Running', r.domid);
    });
  }

  /** The state is read after any cancelled operation has ended: it may have changed the VM meanwhile. */
  async hardShutdown(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'hard_shutdown', task, async (op, r) => {
      op.ownsDomain = true;
      const state = this.powerState(ref);
      if (state === 'Suspended') await this.dropSuspendImage(ref, r);
      else if (state !== 'Halted') await this.destroyDomain(ref); // xapi_vm.ml hard_shutdown: Halted → nothing to do (docs/toolstack-behaviour.md#hard_shutdown)
    });
  }

  async hardReboot(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'hard_reboot', task, async (op) => {
      op.ownsDomain = true;
      // xapi_vm.ml hard_reboot, on the state once the cancelled operations have ended (docs/toolstack-behaviour.md#hard_reboot).
      const state = this.powerState(ref);
      if (state === 'Suspended') throw errors.badPowerState(ref, 'running', 'suspended');
      if (state !== 'Halted') await this.destroyDomain(ref, { rebooting: true });
      await this.boot(ref, false);
    });
  }

  /**
   * Writes `request` into control/shutdown and waits for the acknowledgement
   * ("" or the node gone; a domain that has already shut down counts too: xenopsd
   * then removes a non-empty node, ocaml/xenopsd/xc/cancel_utils.ml on_shutdown).
   * Returns false when the ack did not come in time. docs/toolstack-behaviour.md#acknowledgement
   */
  private async requestAndWaitAck(op: Op, domid: number, request: string, ackTimeoutMs: number, t0: number): Promise<boolean> {
    const node = `${domainHome(domid)}/control/shutdown`;
    await this.hv.xsWriteFresh(node, request);
    this.log(`domain ${domid}: wrote ${request} into control/shutdown`);
    const deadline = t0 + ackTimeoutMs;
    const acked = await this.waitUntil(
      op,
      deadline,
      async () => {
        // What counts is when it was seen, not when the look ended: xenopsd's watch sees the node
        // change as it happens. The node first (one read on the open xenstore connection); an
        // `xl list` takes seconds in a loaded emulated dom0, and once let an ack 3.8 s late pass
        // as in time because the look had started before the window closed.
        if (Date.now() > deadline) return null;
        const v = await this.hv.xsRead(node);
        if (v === null || v === '') return true;
        return (await this.shutDownBy(domid, deadline)) ? true : null;
      },
      node,
    );
    return acked !== null;
  }

  /**
   * Whether the domain is gone or shut down, by a look at Xen that ended by `deadline`: a look
   * that ends later cannot tell a shutdown in time from a late one, so it does not count.
   */
  private async shutDownBy(domid: number, deadline: number): Promise<{ reason: ShutdownReason | 'gone' } | null> {
    const dom = await this.domain(domid);
    if (Date.now() > deadline) return null;
    if (dom === null) return { reason: 'gone' };
    return dom.shutdownReason !== null ? { reason: dom.shutdownReason } : null;
  }

  /** Waits for the domain to shut down (any reason); null when `deadline` passed first. */
  private waitShutdown(op: Op, domid: number, deadline: number): Promise<{ reason: ShutdownReason | 'gone' } | null> {
    return this.waitUntil(op, deadline, () => this.shutDownBy(domid, deadline));
  }

  /**
   * xenopsd's VM_shutdown_domain (XS): the ack within min(ack timeout, total), then the
   * shutdown within what is left of the total, which xapi passes (domain_shutdown_total_timeout).
   * docs/toolstack-behaviour.md#clean_shutdown
   */
  private async cleanShutdownDomain(ref: string, op: Op, domid: number, request: 'poweroff' | 'reboot'): Promise<ShutdownReason | 'gone'> {
    const t0 = Date.now();
    const total = this.config.shutdownTotalTimeoutMs;
    if (!(await this.requestAndWaitAck(op, domid, request, Math.min(this.config.shutdownAckTimeoutMs, total), t0))) throw errors.shutdownAck(ref);
    const down = await this.waitShutdown(op, domid, t0 + total);
    if (down === null) throw errors.shutdownTimeout(ref, total / 1000);
    return down.reason;
  }

  async cleanShutdown(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'clean_shutdown', task, async (op, r) => {
      op.ownsDomain = true;
      const domid = r.domid!;
      const reason = await this.cleanShutdownDomain(ref, op, domid, 'poweroff');
      this.log(`domain ${domid}: shut down (${reason}) after clean_shutdown; Halted`);
      await this.destroyDomain(ref);
    });
  }

  async cleanReboot(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'clean_reboot', task, async (op, r) => {
      op.ownsDomain = true;
      const domid = r.domid!;
      const reason = await this.cleanShutdownDomain(ref, op, domid, 'reboot');
      this.log(`domain ${domid}: shut down (${reason}) after clean_reboot; starting again`);
      await this.destroyDomain(ref, { rebooting: true });
      await this.boot(ref, false);
    });
  }

  /**
   * VM.shutdown: a suspended VM loses its image (MF shutdown); otherwise a clean shutdown,
   * and a hard one when that fails for any reason (xapi_vm.ml shutdown; docs/toolstack-behaviour.md#clean_shutdown).
   */
  async shutdown(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'shutdown', task, async (op, r) => {
      op.ownsDomain = true;
      if (this.powerState(ref) === 'Suspended') {
        await this.dropSuspendImage(ref, r);
        return;
      }
      try {
        await this.cleanShutdownDomain(ref, op, r.domid!, 'poweroff');
      } catch (err) {
        this.log(`VM ${String(this.db.get('VM', ref).uuid)}: clean shutdown failed (${String(err)}); hard shutdown`);
      }
      await this.destroyDomain(ref);
    });
  }

  /** Helpers.choose_suspend_sr (ocaml/xapi/helpers.ml): VM.suspend_SR, the pool's suspend_image_SR, the host's suspend_image_sr; the first that is an SR. */
  private suspendSr(ref: string): string | null {
    const pool = this.db.all('pool')[0]?.[1];
    const host = this.db.has('host', this.hostRef()) ? this.db.get('host', this.hostRef()) : null;
    for (const sr of [this.db.get('VM', ref).suspend_SR, pool?.suspend_image_SR, host?.suspend_image_sr]) {
      if (typeof sr === 'string' && this.db.has('SR', sr)) return sr;
    }
    return null;
  }

  async suspend(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'suspend', task, async (op, r) => {
      op.ownsDomain = true;
      // After the operation checks, before the request (XX suspend; docs/toolstack-behaviour.md#suspend).
      if (this.suspendSr(ref) === null) throw errors.noSuspendSr(ref);
      const domid = await this.guestSuspends(ref, op, r);
      const file = join(this.config.suspendDir, `${String(this.db.get('VM', ref).uuid)}.save`);
      await this.hv.save(domid, file);
      r.suspendFile = file;
      this.setPower(ref, 'Suspended', null);
      this.log(`domain ${domid}: suspended to ${file}`);
    });
  }

  /**
   * VM.pool_migrate to the host the VM runs on (xapi_vm_migrate.ml pool_migrate: a localhost
   * migration is allowed). xenopsd's VM_migrate asks the guest to suspend through the same
   * save callback as VM.suspend, so with the same acknowledgement and suspend timeouts and
   * errors (XSX save; docs/toolstack-behaviour.md#migrate), and the domain is made anew on the
   * receiving side (XS VM_receive_memory): Running, a new domid, the same VM. xenopsd streams the
   * memory, copied live first; the double saves to a file and restores it, which the guest cannot
   * tell apart (it is asked once its memory is copied either way). A failure leaves a guest that did
   * not suspend running (XS trigger_cleanup_after_failure: VM_check_state only).
   */
  async poolMigrate(ref: string, task: string | null): Promise<void> {
    await this.run(ref, 'pool_migrate', task, async (op, r) => {
      op.ownsDomain = true;
      const uuid = String(this.db.get('VM', ref).uuid);
      const domid = await this.guestSuspends(ref, op, r);
      const file = join(this.config.suspendDir, `${uuid}.migrate`);
      try {
        await this.hv.save(domid, file);
        const newDomid = await this.hv.restore(file, uuid);
        await this.hv.unpause(newDomid);
        this.setPower(ref, 'Running', newDomid);
        this.log(`domain ${domid}: migrated to this host as domain ${newDomid}`);
      } finally {
        await this.hv.removeFile(file).catch(() => undefined);
      }
    });
  }

  /**
   * Asks the VM's guest to suspend and waits until it has, as xenopsd's save callback does for
   * VM.suspend and VM.pool_migrate alike (XSX save); resolves with the suspended domain's domid.
   */
  private async guestSuspends(ref: string, op: Op, r: Runtime): Promise<number> {
    const domid = r.domid!;
    if (!(await this.requestAndWaitAck(op, domid, 'suspend', this.config.suspendAckTimeoutMs, Date.now()))) throw errors.suspendAck(ref);
    // The suspend timeout runs from the ack (ocaml/xenopsd/xc/xenops_server_xen.ml save; docs/toolstack-behaviour.md#timeouts).
    const down = await this.waitShutdown(op, domid, Date.now() + this.config.suspendTotalTimeoutMs);
    if (down === null) throw errors.suspendTimeout(ref, this.config.suspendTotalTimeoutMs / 1000);
    // The save fails on a domain that did not suspend; xenopsd then runs VM_check_state
    // before it answers (XS perform → trigger_cleanup_after_failure → immediate_operation), so
    // the reason's action — a 15 s delay and a new domain for a quick reboot — comes first.
    // "xenopsd internal error: " is xapi's (XX transform_xenops_exn); the rest of the message
    // comes from the domain builder on a real host and is the double's own wording here.
    if (down.reason === 'gone') {
      this.setPower(ref, 'Halted', null);
      throw errors.internal('xenopsd internal error: Domain has not been suspended (it disappeared)');
    }
    if (down.reason !== 'suspend') {
      await this.actOnShutdown(ref, { domid, uuid: String(this.db.get('VM', ref).uuid), paused: false, shutdownReason: down.reason }, op);
      throw errors.internal(`xenopsd internal error: Domain has not been suspended (shutdown reason ${down.reason})`);
    }
    return domid;
  }

  async resume(ref: string, paused: boolean, task: string | null, name: 'resume' | 'resume_on' = 'resume'): Promise<void> {
    await this.run(ref, name, task, async (_op, r) => {
      if (!r.suspendFile) {
        // XX resume: no suspend VDI → Halted, then the error (docs/toolstack-behaviour.md#resume).
        this.setPower(ref, 'Halted', null);
        throw errors.hasNoSuspendVdi(ref);
      }
      const domid = await this.hv.restore(r.suspendFile, String(this.db.get('VM', ref).uuid));
      // startedAt stays: xenopsd keeps last_start_time across suspend and resume.
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
  // The guest acting alone (xenopsd's VM_check_state; docs/toolstack-behaviour.md#the-guest-acting-alone)

  private guestActedAlone(ref: string, dom: DomainStatus): void {
    const r = this.rt(ref);
    if (r.op) return;
    // Not in current_operations: XAPI shows nothing for xenopsd's own reaction.
    const op = this.newOp('guest-shutdown', '');
    op.ownsDomain = true;
    r.op = op;
    void this.actOnShutdown(ref, dom, op)
      .catch((err) => this.log(`VM ${String(dom.uuid)}: acting on its shutdown failed: ${String(err)}`))
      .finally(() => this.end(ref, op));
  }

  /** XS VM_check_state: the action for the domain's shutdown reason. */
  private async actOnShutdown(ref: string, dom: DomainStatus, op: Op): Promise<void> {
    const vm = this.db.get('VM', ref);
    const reason = dom.shutdownReason!;
    let action: string;
    switch (reason) {
      case 'poweroff':
        action = String(vm.actions_after_shutdown);
        break;
      // Upstream, soft_reset (code 5) follows actions_after_softreboot instead (1.249: always a soft reset).
      case 'reboot':
      case 'watchdog':
      case 'soft_reset':
        action = String(vm.actions_after_reboot);
        break;
      case 'crash':
        action = String(vm.actions_after_crash);
        break;
      case 'suspend':
        action = 'destroy';
        break; // "unexpectedly suspended": no image, Halted (docs/toolstack-behaviour.md#guest-suspend)
    }
    const ranFor = Date.now() - this.rt(ref).startedAt;
    // XX on_action_behaviour: these three are Vm.Start.
    const restart = ['restart', 'rename_restart', 'coredump_and_restart'].includes(action);
    this.log(`VM ${String(vm.uuid)}: domain ${dom.domid} shut down (${reason}); action ${action}`);
    if (action === 'preserve') {
      // xapi_xenops.ml on_action_behaviour: preserve -> [Pause], VM_pause: the shut-down domain is kept
      // and paused (Xen pauses a shut-down domain as any other), and the VM shows Paused.
      await this.hv.pause(dom.domid).catch((err: unknown) => this.log(`VM ${String(vm.uuid)}: pausing the kept domain ${dom.domid} failed: ${String(err)}`));
      this.setPower(ref, 'Paused', dom.domid);
      return;
    }
    // A crash less than 120 s after the start turns Start into Shutdown (`run_time < 120.`; docs/toolstack-behaviour.md#guest-crash).
    if (!restart || (reason === 'crash' && ranFor < this.config.shortRunMs)) {
      await this.destroyDomain(ref);
      return;
    }
    // A restart less than minimum_reboot_delay (120 s) after the start waits 15 s first (VM_delay; docs/toolstack-behaviour.md#guest-reboot).
    if (ranFor < this.config.shortRunMs && this.config.restartDelayMs > 0) {
      await this.waitUntil(op, Date.now() + this.config.restartDelayMs, async () => null);
    }
    await this.destroyDomain(ref, { rebooting: true });
    await this.boot(ref, false);
  }
}

/** The VM's domain type; xapi_vm_helpers.ml ensure_domain_type_is_specified: an unspecified one follows HVM_boot_policy. */
function domainTypeOf(vm: Record<string, unknown>): string {
  const type = String(vm.domain_type);
  if (type === 'unspecified') return vm.HVM_boot_policy === '' ? 'pv' : 'hvm';
  return type;
}

// A FAKE toolstack for unit tests: an in-memory simulation of an xl or XAPI
// host with a simulated guest agent, implementing ToolstackDriver with times
// scaled down to milliseconds. It follows the facts in docs/toolstack-behaviour.md
// (the #anchors below; detail in docs/xl-behaviour.md and docs/xapi-behaviour.md)
// closely enough for the runner's tests; it proves nothing about a real toolstack.
import { EventEmitter } from 'node:events';
import {
  CANT_SUSPEND_REASON_NODE,
  CONTROL_PROTOCOL,
  FEATURES,
  decodeTesting,
  encodeCommand,
  featureNode,
  isCapabilityMessage,
  isClockMessage,
  type TestingCommand,
} from '../protocol/control.ts';
import {
  ToolstackError,
  type ConsoleText,
  type DomainType,
  type DomainInfo,
  type HostFacts,
  type HostRequest,
  type InstallOptions,
  type PowerState,
  type ToolstackDriver,
  type ToolstackKind,
  type VmRef,
  type XenstoredDomain,
} from '../harness/toolstack/driver.ts';
import { currentOwner, formatOwner } from '../harness/toolstack/vm-owner.ts';

export interface FakeOptions {
  kind: ToolstackKind;
  /** Scaled ack timeout (xl 60 s, XAPI 60 s / 30 s for suspend; docs/toolstack-behaviour.md#timeouts). */
  ackTimeoutMs?: number;
  /** Scaled total timeout (XAPI 1200 s). */
  totalTimeoutMs?: number;
  bootMs?: number;
  agentDelayMs?: number;
  restartDelayMs?: number;
  /** Extra time every request takes (to interrupt a run midway). */
  requestDelayMs?: number;
  /** VMs whose guest never reports ready (to test error verdicts). */
  neverReady?: (name: string) => boolean;
  /**
   * Break a rule on purpose (to test fail verdicts): xl's daemon restarts a powered-off domain; or the
   * toolstack forgets a powered-off domain that Xen and xenstored still hold (it reports the VM Halted);
   * or a resume boots the guest afresh instead of restoring it.
   */
  misbehave?: 'restart-on-poweroff' | 'forget-domain-on-poweroff' | 'boot-on-resume';
  /** false: no xenstoredDomains (as a driver without dom0). Default true. */
  xenstored?: boolean;
  /** false: the fake host keeps no guest console log (as XenServer's and XCP-ng's dom0 by default). */
  consoleLog?: boolean;
  /** What the simulated agent reports under data/xtv/protocols (an older image's, to test the check). Default: CONTROL_PROTOCOL. */
  agentProtocols?: string;
  /** Domain types the fake host cannot live-migrate (HostFacts.cannotMigrate), with the reason: a migration of one fails. */
  cannotMigrate?: Partial<Record<DomainType, string>>;
}

interface FakeDomain {
  domid: number;
  paused: number;
  shutdownReason?: string;
  store: Map<string, string>;
  pending: TestingCommand | null;
  /** Guest work deferred while paused. */
  deferred: Array<() => void>;
  seq: number;
}

interface FakeVm {
  ref: VmRef;
  opts: InstallOptions;
  domain: FakeDomain | null;
  saved: boolean;
  console: string[];
  /** A toolstack operation that owns the domain's next shutdown (XAPI clean ops, xl save). */
  op: HostRequest | null;
  startedAt: number;
  /** Who made it, as the real drivers record it (vm-owner.ts); undefined: no record (as an older xtv's VM). Tests may set it. */
  owner: string | undefined;
  /** The guest's life across suspends (its report's continuity keys); undefined before its first boot. */
  life?: { bootId: string; bootAt: number; resumes: number; domids: string[]; suspendedAt: number | null; resumedAt: number | null };
}

const WORD: Partial<Record<HostRequest, string>> = { clean_shutdown: 'poweroff', clean_reboot: 'reboot', suspend: 'suspend', migrate: 'suspend' };

export class FakeToolstackDriver implements ToolstackDriver {
  readonly kind: ToolstackKind;
  readonly vms = new Map<string, FakeVm>();
  /** Every call made, for assertions. */
  readonly calls: string[] = [];
  private nextDomid = 1;
  private readonly ev = new EventEmitter();
  private readonly o: Required<Omit<FakeOptions, 'neverReady' | 'misbehave' | 'cannotMigrate'>> &
    Pick<FakeOptions, 'neverReady' | 'misbehave' | 'cannotMigrate'>;
  private readonly timers = new Set<NodeJS.Timeout>();
  closed = false;

  constructor(o: FakeOptions) {
    this.kind = o.kind;
    this.o = {
      ackTimeoutMs: 1000,
      totalTimeoutMs: 4000,
      bootMs: 5,
      agentDelayMs: 1,
      restartDelayMs: 20,
      requestDelayMs: 0,
      consoleLog: true,
      agentProtocols: CONTROL_PROTOCOL,
      xenstored: true,
      ...o,
    };
    if (!this.o.xenstored) this.xenstoredDomains = undefined;
    this.ev.setMaxListeners(0);
  }

  // ---- ToolstackDriver

  async hostFacts(): Promise<HostFacts> {
    const consoleLogDir = this.o.consoleLog ? '/fake/console' : null;
    // Its scaled windows, declared as a tuned host declares its own: the models and the timing cases read them.
    const timeouts = {
      shutdownAckMs: this.o.ackTimeoutMs,
      suspendAckMs: this.kind === 'xapi' ? this.o.ackTimeoutMs / 2 : this.o.ackTimeoutMs,
      shutdownTotalMs: this.kind === 'xapi' ? this.o.totalTimeoutMs : this.o.ackTimeoutMs,
      suspendTotalMs: this.kind === 'xapi' ? this.o.totalTimeoutMs : this.o.ackTimeoutMs,
    };
    // As xapi from v25.24.0 (docs/toolstack-behaviour.md#guest-features).
    const refusesNonSuspendable = this.kind === 'xapi';
    return {
      version: `fake ${this.kind}`,
      dom0: 'fake',
      consoleLogDir,
      timeouts,
      refusesNonSuspendable,
      ...(this.o.cannotMigrate ? { cannotMigrate: this.o.cannotMigrate } : {}),
      notes: [`console log: ${consoleLogDir ?? 'none'}`],
    };
  }

  async install(opts: InstallOptions): Promise<VmRef> {
    this.calls.push(`install ${opts.name}`);
    const existing = this.vms.get(opts.name);
    if (existing) return existing.ref;
    const ref = { name: opts.name, id: `fake:${opts.name}` };
    this.vms.set(opts.name, { ref, opts, domain: null, saved: false, console: [], op: null, startedAt: 0, owner: formatOwner(currentOwner()) });
    return ref;
  }

  async uninstall(vm: VmRef): Promise<void> {
    this.calls.push(`uninstall ${vm.name}`);
    const v = this.vms.get(vm.name);
    if (!v) return;
    if (this.kind === 'xapi' && v.domain) throw new ToolstackError('VM_BAD_POWER_STATE', [vm.id, 'Halted', this.powerOf(v)], 'VM.destroy');
    this.destroyDomain(v);
    this.vms.delete(vm.name);
  }

  async start(vm: VmRef, opts?: { paused?: boolean; timeoutMs?: number }): Promise<void> {
    this.calls.push(`start ${vm.name}`);
    const v = this.get(vm);
    if (v.domain || v.saved) throw this.err(v, 'start', 'Halted');
    this.createDomain(v, opts?.paused ?? false);
  }

  async request(vm: VmRef, request: HostRequest, _opts: { timeoutMs: number }): Promise<void> {
    this.calls.push(`request ${vm.name} ${request}`);
    if (this.o.requestDelayMs > 0) await this.sleep(this.o.requestDelayMs);
    const v = this.get(vm);
    return this.kind === 'xl' ? this.xlRequest(v, request) : this.xapiRequest(v, request);
  }

  async state(vm: VmRef): Promise<DomainInfo & { paused?: boolean }> {
    const v = this.get(vm);
    const d = v.domain;
    const info: DomainInfo & { paused?: boolean } = { powerState: this.powerOf(v), domid: d ? d.domid : null };
    // Xen's shutdown reason is what `xl list` shows; XAPI's driver reads the VM record only.
    if (d?.shutdownReason && this.kind === 'xl') info.shutdownReason = d.shutdownReason;
    if (d) info.paused = d.paused > 0;
    return info;
  }

  async readGuest(vm: VmRef, relPath: string): Promise<string | null> {
    const d = this.vms.get(vm.name)?.domain;
    return d ? (d.store.get(relPath) ?? null) : null;
  }

  async writeGuest(vm: VmRef, relPath: string, value: string): Promise<void> {
    const v = this.get(vm);
    const d = v.domain;
    if (!d) throw new ToolstackError('NO_DOMAIN', [vm.name], `xenstore-write ${relPath}`);
    d.store.set(relPath, value);
    if (relPath === 'control/testing') this.guest(v, d, () => this.agentTesting(v, d));
    if (relPath === 'control/shutdown') this.guest(v, d, () => this.agentShutdown(v, d));
    this.changed();
  }

  /** Every domain's home, named after its VM, and the ones the toolstack forgot (misbehave). */
  xenstoredDomains?: () => Promise<XenstoredDomain[]> = async () => [
    ...[...this.vms.values()].flatMap((v) => (v.domain ? [{ domid: v.domain.domid, name: v.ref.name }] : [])),
    ...this.forgotten,
  ];
  /** Domains the misbehaving toolstack no longer reports but xenstored still holds. */
  private readonly forgotten: XenstoredDomain[] = [];

  async listOwned(): Promise<VmRef[]> {
    return [...this.vms.values()].map((v) => (v.owner === undefined ? v.ref : { ...v.ref, owner: v.owner }));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  async consoleLog(vm: VmRef): Promise<ConsoleText | null> {
    const v = this.vms.get(vm.name);
    return v && this.o.consoleLog ? { text: v.console.join('\n'), path: `/fake/console/${vm.name}.log` } : null;
  }

  async toolstackLog(vm: VmRef): Promise<string | null> {
    return this.calls.filter((c) => c.includes(vm.name)).join('\n');
  }

  /** Names of VMs that still exist (installed or with a domain). */
  leftovers(): string[] {
    return [...this.vms.keys()];
  }

  // ---- the simulated hypervisor

  private get(vm: VmRef): FakeVm {
    const v = this.vms.get(vm.name);
    if (!v) throw new ToolstackError(this.kind === 'xapi' ? 'HANDLE_INVALID' : 'XL_EXIT_1', ['VM', vm.id], 'lookup');
    return v;
  }

  private powerOf(v: FakeVm): PowerState {
    const d = v.domain;
    if (!d) return v.saved ? 'Suspended' : 'Halted';
    if (d.shutdownReason === 'suspend') return 'Suspended';
    // A domain kept shut down (on_*=preserve): xl shows it (xl-power-state.ts) as Halted; XAPI pauses it and says Paused.
    if (d.shutdownReason && this.kind === 'xl') return 'Halted';
    return d.paused > 0 ? 'Paused' : 'Running';
  }

  private err(v: FakeVm, op: string, expected: string): ToolstackError {
    return this.kind === 'xapi'
      ? new ToolstackError('VM_BAD_POWER_STATE', [v.ref.id, expected, this.powerOf(v)], `VM.${op}`)
      : new ToolstackError('XL_EXIT_1', [], `xl ${op} ${v.ref.name}`);
  }

  private changed(): void {
    this.ev.emit('change');
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) f();
    }, ms);
    this.timers.add(t);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.later(ms, r));
  }

  /** Resolves true once cond() holds, false after ms. */
  private waitFor(cond: () => boolean, ms: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const on = (): void => {
        if (cond()) {
          done();
          resolve(true);
        }
      };
      const t = setTimeout(() => {
        done();
        resolve(false);
      }, ms);
      const done = (): void => {
        clearTimeout(t);
        this.ev.off('change', on);
      };
      this.ev.on('change', on);
    });
  }

  /** A new domain; `resumed`: the same guest, restored from its save image (a boot otherwise). */
  private createDomain(v: FakeVm, paused = false, resumed = false): void {
    const d: FakeDomain = { domid: this.nextDomid++, paused: paused ? 1 : 0, store: new Map(), pending: null, deferred: [], seq: 0 };
    v.domain = d;
    v.startedAt = Date.now();
    if (this.o.misbehave === 'boot-on-resume') resumed = false;
    if (!resumed || !v.life) v.life = { bootId: `boot-${d.domid}`, bootAt: Date.now(), resumes: 0, domids: [], suspendedAt: null, resumedAt: null };
    else {
      v.life.resumes++;
      v.life.resumedAt = Date.now();
    }
    v.life.domids.push(String(d.domid));
    const life = v.life;
    if (!this.o.neverReady?.(v.ref.name)) {
      this.later(this.o.bootMs, () =>
        this.guest(v, d, () => {
          // The name the toolstack writes into the domain's home (libxl, xenopsd), as xenstoredDomains shows it.
          d.store.set('name', v.ref.name);
          d.store.set('data/xtv/boot-id', life.bootId);
          d.store.set('data/xtv/domid', String(d.domid));
          d.store.set('data/xtv/resumes', String(life.resumes));
          d.store.set('data/xtv/run-ms', String(Date.now() - life.bootAt));
          d.store.set('data/xtv/domids', life.domids.join(' '));
          d.store.set('data/xtv/suspended-at', life.suspendedAt === null ? '' : new Date(life.suspendedAt).toISOString());
          d.store.set('data/xtv/resumed-at', life.resumedAt === null ? '' : new Date(life.resumedAt).toISOString());
          d.store.set('data/xtv/pending', '');
          d.store.set('data/xtv/protocols', this.o.agentProtocols);
          for (const f of ['poweroff', 'reboot', 'suspend'] as const) d.store.set(featureNode(f), '1');
          this.reportFeatures(d);
          // As the agent: a restored guest says "resumed" (guest/agent/agent.ts), a booted one "ready".
          const state = resumed ? 'resumed' : 'ready';
          d.store.set('data/xtv/state', state);
          this.consoleLine(v, state, `domid=${d.domid}`);
          this.changed();
        }),
      );
    }
    this.changed();
  }

  private destroyDomain(v: FakeVm): void {
    v.domain = null;
    this.changed();
  }

  /** A guest shutdown of this reason: the toolstack's reaction. */
  private shutdown(v: FakeVm, d: FakeDomain, reason: string): void {
    if (v.domain !== d) return;
    d.shutdownReason = reason;
    this.changed();
    if (v.op) return; // the operation in progress deals with it
    this.react(v, reason);
  }

  /** xl's daemon / XAPI's VM_check_state for a shutdown nobody asked for (docs/toolstack-behaviour.md#the-guest-acting-alone). */
  private react(v: FakeVm, reason: string): void {
    const acts =
      this.kind === 'xl'
        ? {
            poweroff: v.opts.actions?.afterShutdown ?? 'destroy',
            reboot: v.opts.actions?.afterReboot ?? 'restart',
            crash: v.opts.actions?.afterCrash ?? 'destroy',
            suspend: 'stay',
          }
        : {
            poweroff: v.opts.actions?.afterShutdown ?? 'destroy',
            reboot: v.opts.actions?.afterReboot ?? 'restart',
            // A restart within 120 s becomes a shutdown (a scaled run is always that soon); preserve pauses.
            crash: v.opts.actions?.afterCrash === 'preserve' ? 'pause' : 'destroy',
            suspend: 'destroy',
          };
    let act = (acts as Record<string, string>)[reason] ?? 'destroy';
    if (this.o.misbehave === 'restart-on-poweroff' && reason === 'poweroff') act = 'restart';
    if (this.o.misbehave === 'forget-domain-on-poweroff' && reason === 'poweroff' && v.domain) this.forgotten.push({ domid: v.domain.domid, name: v.ref.name });
    // xl's rename-restart, coredump-*: as restart and destroy (the old domain kept under another name is not modelled here).
    act = { 'rename-restart': 'restart', 'coredump-restart': 'restart', 'coredump-destroy': 'destroy', preserve: 'stay' }[act] ?? act;
    if (act === 'stay') return;
    if (act === 'pause') {
      v.domain!.paused++;
      this.changed();
      return;
    }
    this.destroyDomain(v);
    if (act === 'restart')
      this.later(this.o.restartDelayMs, () => {
        if (!v.domain && this.vms.get(v.ref.name) === v) this.createDomain(v);
      });
  }

  // ---- the simulated guest agent

  private guest(v: FakeVm, d: FakeDomain, f: () => void): void {
    this.later(this.o.agentDelayMs, () => {
      if (v.domain !== d || d.shutdownReason) return;
      if (d.paused > 0) d.deferred.push(f);
      else f();
    });
  }

  private consoleLine(v: FakeVm, kind: string, fields: string): void {
    v.console.push(`xtv-agent ${new Date().toISOString()} ${kind} ${fields}`);
  }

  private report(v: FakeVm, d: FakeDomain, node: string, value: string, ack: string, ackValue: string, action: string): void {
    d.seq++;
    const set = (k: string, val: string): void => {
      d.store.set(`data/xtv/${k}`, val);
    };
    set('event-seq', String(d.seq));
    set('event-node', node);
    set('event-value', value);
    set('event-decision', 'accepted');
    set('event-ack', ack);
    set('event-ack-value', ackValue);
    set('event-action', action);
    set('pending', d.pending ? encodeCommand(d.pending) : '');
    this.consoleLine(
      v,
      'event',
      `seq=${d.seq} node=${node} value=${JSON.stringify(value)} decision=accepted ack=${ack}${ack === 'write' ? ` ack-value=${JSON.stringify(ackValue)}` : ''} action=${action}`,
    );
  }

  /** The report's `features` key as the agent writes it: each flag present, then the reason. */
  private reportFeatures(d: FakeDomain): void {
    const parts = FEATURES.filter((f) => d.store.has(featureNode(f))).map((f) => `${f}=${d.store.get(featureNode(f))}`);
    const reason = d.store.get(CANT_SUSPEND_REASON_NODE);
    if (reason !== undefined) parts.push(`cant-suspend-reason=${JSON.stringify(reason)}`);
    d.store.set('data/xtv/features', parts.join(' '));
  }

  private agentTesting(v: FakeVm, d: FakeDomain): void {
    const raw = d.store.get('control/testing') ?? '';
    const dec = decodeTesting(raw);
    if (dec.kind === 'empty') return;
    d.store.set('control/testing', '');
    if (dec.kind === 'rejected') return;
    const c = dec.value;
    if (isCapabilityMessage(c)) {
      // As the agent does (guest/agent/capabilities.ts): write the flags and the reason, report them.
      for (const [f, val] of c.features) {
        if (val === null) d.store.delete(featureNode(f));
        else d.store.set(featureNode(f), val ? '1' : '0');
      }
      if (c.cantSuspendReason === null) d.store.delete(CANT_SUSPEND_REASON_NODE);
      else if (c.cantSuspendReason !== undefined) d.store.set(CANT_SUSPEND_REASON_NODE, c.cantSuspendReason);
      this.reportFeatures(d);
      this.report(v, d, 'control/testing', raw, 'ok', '', 'none');
      this.changed();
      return;
    }
    if (isClockMessage(c)) {
      // As the agent does: its clock minus dom0's (here one clock for both).
      d.store.set('data/xtv/clock-skew-ms', String(Date.now() - c.dom0Ms));
      this.report(v, d, 'control/testing', raw, 'ok', '', 'none');
      this.changed();
      return;
    }
    if (c.when === 'now') {
      this.report(v, d, 'control/testing', raw, 'ok', '', c.action);
      this.act(v, d, c.action);
    } else {
      d.pending = c;
      this.report(v, d, 'control/testing', raw, 'ok', '', 'none');
    }
    this.changed();
  }

  private agentShutdown(v: FakeVm, d: FakeDomain): void {
    const req = d.store.get('control/shutdown');
    if (req === undefined || req === '') return;
    const p = d.pending;
    d.pending = null;
    const ack = p ? p.ack : { kind: 'ok' as const };
    const action = p ? p.action : req;
    // As the agent does (guest/agent/agent.ts): ack ackAfterMs after reading, act actAfterMs after the ack.
    const ackNow = (): void => {
      if (v.domain !== d || d.shutdownReason) return;
      let ackWord: string = ack.kind;
      let ackValue = '';
      if (ack.kind === 'ok') d.store.set('control/shutdown', '');
      else if (ack.kind === 'delete') d.store.delete('control/shutdown');
      else if (ack.kind === 'write') {
        d.store.set('control/shutdown', ack.value);
        ackWord = 'write';
        ackValue = ack.value;
      }
      this.report(v, d, 'control/shutdown', req, ackWord, ackValue, action);
      this.changed();
      if (p?.actAfterMs) this.later(p.actAfterMs, () => this.guest(v, d, () => this.act(v, d, action)));
      else this.act(v, d, action);
    };
    if (p?.ackAfterMs) this.later(p.ackAfterMs, () => this.guest(v, d, ackNow));
    else ackNow();
  }

  private act(v: FakeVm, d: FakeDomain, action: string): void {
    const reason = action === 'halt' ? 'poweroff' : action;
    if (action === 'ignore') return;
    this.later(this.o.agentDelayMs, () => this.shutdown(v, d, reason));
  }

  // ---- requests

  private writeRequest(v: FakeVm, d: FakeDomain, word: string): void {
    d.store.set('control/shutdown', word);
    this.guest(v, d, () => this.agentShutdown(v, d));
    this.changed();
  }

  private async xlRequest(v: FakeVm, r: HostRequest): Promise<void> {
    const d = v.domain;
    const fail = (why: string): ToolstackError => new ToolstackError('XL_EXIT_1', [], `xl ${r} ${v.ref.name}`, why);
    switch (r) {
      case 'clean_shutdown':
      case 'clean_reboot': {
        if (!d || d.shutdownReason) throw fail('no such domain');
        // docs/toolstack-behaviour.md#clean_shutdown: "" or the node gone (also when the domain is destroyed).
        this.writeRequest(v, d, WORD[r]!);
        const acked = await this.waitFor(
          () => v.domain !== d || d.store.get('control/shutdown') === '' || !d.store.has('control/shutdown'),
          this.o.ackTimeoutMs,
        );
        if (!acked) throw fail("guest didn't acknowledge control request");
        return;
      }
      case 'suspend':
      case 'migrate': {
        // xl migrate asks the guest to suspend as xl save does (libxl_domain_suspend: docs/toolstack-behaviour.md#migrate).
        if (!d || d.shutdownReason) throw fail('no such domain');
        if (r === 'migrate' && this.o.cannotMigrate?.[v.opts.domainType]) throw fail('Failed to enable logdirty: 95');
        v.op = r;
        try {
          // docs/toolstack-behaviour.md#suspend. Unlike libxl, a shutdown also counts as the ack here
          // (libxl waits its 60 s for the node); only the unmodelled save-unacked-acts cases differ.
          this.writeRequest(v, d, 'suspend');
          const acked = await this.waitFor(
            () => v.domain !== d || d.store.get('control/shutdown') !== 'suspend' || d.shutdownReason !== undefined,
            this.o.ackTimeoutMs,
          );
          if (!acked) {
            d.store.set('control/shutdown', '');
            throw fail("guest didn't acknowledge suspend request");
          }
          const down = await this.waitFor(() => d.shutdownReason !== undefined, this.o.ackTimeoutMs);
          if (!down) throw fail('guest did not suspend');
          if (d.shutdownReason !== 'suspend') {
            v.op = null;
            this.react(v, d.shutdownReason!);
            throw fail(`guest shut down for ${d.shutdownReason}, not suspend`);
          }
          if (v.life) v.life.suspendedAt = Date.now();
          this.destroyDomain(v);
          // A migration's receiving end makes the domain again on the same host: the guest resumes there.
          if (r === 'migrate') this.createDomain(v, false, true);
          else v.saved = true;
          return;
        } finally {
          v.op = null;
        }
      }
      case 'resume':
        if (!v.saved || d) throw fail('no save file');
        v.saved = false;
        this.createDomain(v, false, true);
        return;
      case 'hard_shutdown':
        // As the xl driver does: a saved VM's hard shutdown discards its save image (docs/toolstack-behaviour.md#hard_shutdown).
        if (!d && v.saved) {
          v.saved = false;
          this.changed();
          return;
        }
        if (!d) throw fail('no such domain');
        this.destroyDomain(v);
        return;
      case 'hard_reboot':
        if (!d) throw fail('no such domain');
        this.destroyDomain(v);
        this.createDomain(v);
        return;
      case 'pause':
        if (!d || d.shutdownReason) throw fail('no such domain');
        d.paused++;
        this.changed();
        return;
      case 'unpause':
        // As seen on Xen 4.17: unpausing a running domain succeeds and changes nothing (docs/toolstack-behaviour.md#unpause).
        if (!d || d.shutdownReason) throw fail('no such domain');
        if (d.paused === 0) return;
        d.paused--;
        if (d.paused === 0) for (const f of d.deferred.splice(0)) f();
        this.changed();
        return;
    }
  }

  private async xapiRequest(v: FakeVm, r: HostRequest): Promise<void> {
    const ps = this.powerOf(v);
    const allowed: Record<HostRequest, PowerState[]> = {
      clean_shutdown: ['Running'],
      clean_reboot: ['Running'],
      suspend: ['Running'],
      migrate: ['Running'],
      pause: ['Running'],
      hard_shutdown: ['Paused', 'Suspended', 'Running'],
      hard_reboot: ['Paused', 'Running'],
      unpause: ['Paused'],
      resume: ['Suspended'],
    };
    if (!allowed[r].includes(ps)) throw this.err(v, r, allowed[r].join(', '));
    const d = v.domain;
    switch (r) {
      case 'clean_shutdown':
      case 'clean_reboot':
      case 'suspend':
      case 'migrate': {
        const dd = d!;
        // VM.pool_migrate asks the guest as VM.suspend does, with its timeouts and errors (docs/toolstack-behaviour.md#migrate).
        const suspends = r === 'suspend' || r === 'migrate';
        const call = r === 'migrate' ? 'VM.pool_migrate' : `VM.${r}`;
        // xapi_vm_lifecycle.ml check_op_for_feature (docs/toolstack-behaviour.md#guest-features): refused before the guest is asked.
        const reason = dd.store.get(CANT_SUSPEND_REASON_NODE);
        if (suspends && reason !== undefined && dd.store.has(featureNode('suspend'))) throw new ToolstackError('VM_NON_SUSPENDABLE', [v.ref.id, reason], call);
        v.op = r; // docs/toolstack-behaviour.md#clean_shutdown, #clean_reboot, #suspend
        try {
          this.writeRequest(v, dd, WORD[r]!);
          const acked = await this.waitFor(
            () => dd.shutdownReason !== undefined || dd.store.get('control/shutdown') === '' || !dd.store.has('control/shutdown'),
            suspends ? this.o.ackTimeoutMs / 2 : this.o.ackTimeoutMs,
          );
          if (!acked) throw new ToolstackError(suspends ? 'VM_FAILED_SUSPEND_ACKNOWLEDGMENT' : 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', [v.ref.id], call);
          const down = await this.waitFor(() => dd.shutdownReason !== undefined, this.o.totalTimeoutMs);
          if (!down) throw new ToolstackError(suspends ? 'VM_SUSPEND_TIMEOUT' : 'VM_SHUTDOWN_TIMEOUT', [v.ref.id], call);
          if (suspends) {
            if (dd.shutdownReason !== 'suspend') {
              // xenopsd runs the actual reason's action before it answers: a restart waits out its delay first (docs/toolstack-behaviour.md#suspend).
              v.op = null;
              const reason = dd.shutdownReason!;
              this.react(v, reason);
              if (reason === 'reboot') await this.waitFor(() => v.domain !== null, this.o.restartDelayMs * 5);
              throw new ToolstackError('INTERNAL_ERROR', ['Domain has not been suspended'], call);
            }
            if (v.life) v.life.suspendedAt = Date.now();
            this.destroyDomain(v);
            // A migration to the same host: the guest resumes in a new domain there.
            if (r === 'migrate') this.createDomain(v, false, true);
            else v.saved = true;
            return;
          }
          this.destroyDomain(v);
          if (r === 'clean_reboot') this.createDomain(v);
          return;
        } finally {
          v.op = null;
        }
      }
      case 'hard_shutdown':
        this.destroyDomain(v);
        v.saved = false;
        return;
      case 'hard_reboot':
        this.destroyDomain(v);
        this.createDomain(v);
        return;
      case 'pause':
        d!.paused++;
        this.changed();
        return;
      case 'unpause':
        d!.paused = 0;
        for (const f of d!.deferred.splice(0)) f();
        this.changed();
        return;
      case 'resume':
        v.saved = false;
        this.createDomain(v, false, true);
        return;
    }
  }
}

/** Runner bounds scaled to the fake's milliseconds: its ack timeout is 1 s (XAPI's suspend ack 0.5 s),
 *  its total timeout 4 s; "fast" leaves 300 ms of slack for a loaded machine. */
export const FAKE_TIMING = {
  install: 2_000,
  boot: 3_000,
  prime: 2_000,
  request: { fast: 3_000, 'ack-timeout': 5_000, 'total-timeout': 8_000 },
  settle: 3_000,
  confirm: 30,
  quiet: 200,
  cleanup: 2_000,
  pollMin: 2,
  pollMax: 20,
  fastMax: 300,
  totalMin: 3_000,
  evidence: 1_000,
  restartDelay: 20,
  crashShortRun: 0,
} as const;

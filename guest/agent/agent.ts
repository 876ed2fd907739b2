// The agent's logic: owns control/shutdown, control/testing and
// vm-data/xtv/testing, reacts to watch events (never polls), acknowledges and
// acts exactly as a test asked, and keeps a report under data/xtv/. All I/O
// goes through an AgentStore (xenstore) and a Platform (clock, console,
// actions), so the same code runs as PID 1 under QuickJS and in Node tests.
//
// Every xenstore path here is RELATIVE to the domain's home: after a save and
// restore the domid changes, and relative paths keep naming the right nodes.
import {
  CONTROL_PROTOCOL,
  SHUTDOWN_NODE,
  TESTING_NODE,
  VMDATA_TESTING_NODE,
  KERNEL_SHUTDOWN_NODE,
  decodeShutdown,
  decodeTesting,
  decodeVmData,
  describeCapabilities,
  describeCommand,
  describeMessage,
  encodeCommand,
  encodeUtf8,
  isCapabilityMessage,
  isClockMessage,
  type Ack,
  type Action,
  type CapabilityMessage,
  type ClockMessage,
  type NodeDecoded,
  type TestingCommand,
  type TestingMessage,
} from '../../protocol/control.ts';
import { decodeUtf8 } from '../../protocol/utf8.ts';
import type { Platform, PlatformAction } from './platform.ts';
import { SerialQueue } from './serial-queue.ts';
import { describeError, errorCode, tryReadBytes, type AgentStore } from './store.ts';
import { consoleLine, eventLine, isoTime, reportEntries, type AgentStatus, type EventRecord } from './report.ts';
import { DOMIDS_KEPT } from '../../protocol/report-keys.ts';
import { AGENT_VERSION } from './version.ts';
import { REPORT_VALUE_MAX_BYTES } from '../../protocol/report-limits.ts';
import { Capabilities } from './capabilities.ts';
import { DelayedStep, describeDelayed } from './delayed-step.ts';

/** Watch tokens, one per node; the token (not the path) says which node fired. */
export const WATCH_TOKENS = {
  shutdown: 'xtv:shutdown',
  testing: 'xtv:testing',
  vmdata: 'xtv:vm-data',
} as const;
const RESUME_TOKEN_PREFIX = 'xtv:resume:';
/** Read to learn our domid; watched while suspended to notice the resume. */
export const DOMID_NODE = 'domid';

export interface AgentOptions {
  platform: Platform;
  version?: string;
  /** How long the kernel may take to acknowledge "suspend" on KERNEL_SHUTDOWN_NODE before it is reported as a failure. */
  kernelAckTimeoutMs?: number;
  /** Bound on the wait for the resume probe's registration event. */
  probeArmTimeoutMs?: number;
  /** First delay before a failed report write is tried again (doubles each time, capped at 5 s). Default 200. */
  reportRetryBaseMs?: number;
  /** How many times in a row a failed report write is retried before waiting for the next event. Default 6. */
  reportRetries?: number;
}

const EMPTY = new Uint8Array(0);

/** Byte-exact identity of a node's value (null: absent), cheap to compare. */
function valueKey(v: Uint8Array | null): string | null {
  if (v === null) return null;
  let s = '';
  for (let i = 0; i < v.length; i++) s += String.fromCharCode(v[i]!);
  return s;
}

const TERMINAL: readonly string[] = ['poweroff', 'reboot', 'halt', 'crash'];
const REPORT_WRITES_IN_FLIGHT = 8;
const REPORT_RETRY_MAX_DELAY_MS = 5_000;
/** The least a report value is cut to after xenstored refused the report as too big (room for the cut marker and some text). */
const REPORT_VALUE_MIN_BYTES = 256;

export class Agent {
  readonly status: AgentStatus;
  private readonly platform: Platform;
  private readonly kernelAckTimeoutMs: number;
  private readonly probeArmTimeoutMs: number;
  private readonly reportRetryBaseMs: number;
  private readonly reportRetries: number;
  /** Report writes that failed in a row (0 after a success). */
  private reportFailures = 0;
  /** Cancels the retry of a failed report write that is due, if any. */
  private cancelReportRetry: (() => void) | null = null;
  /** What a report value is cut to: REPORT_VALUE_MAX_BYTES, halved each time xenstored still refuses a node as too big. */
  private reportValueMax = REPORT_VALUE_MAX_BYTES;
  private readonly queue: SerialQueue;
  private store: AgentStore | null = null;
  private unsubscribe: (() => void) | null = null;
  private attachedOnce = false;
  private pending: TestingCommand | null = null;
  /** An acknowledgement or action asked to wait (ackAfterMs, actAfterMs). */
  private readonly delayed: DelayedStep;
  /** The control/feature-* flags and data/cant_suspend_reason as tests set them. */
  private readonly capabilities = new Capabilities();
  /** What each node held when we last dealt with it (after our own ack); undefined until first seen.
   *  A watch event whose value equals this is our own write's echo or a re-fire: nothing new. */
  private readonly left: { shutdown: string | null | undefined; testing: string | null | undefined } = { shutdown: undefined, testing: undefined };
  private vmdataId: string | null = null;
  private vmdataKey: string | null = null;
  private seq = 0;
  private probe: { token: string; fired: number; armed: (() => void) | null } | null = null;
  private probes = 0;
  private cancelKernelCheck: (() => void) | null = null;
  private readonly eventListeners = new Set<(e: EventRecord) => void>();
  /** Report values as last written, by path: only changes are written again. */
  private readonly written = new Map<string, string>();

  constructor(opts: AgentOptions) {
    this.platform = opts.platform;
    this.kernelAckTimeoutMs = opts.kernelAckTimeoutMs ?? 30_000;
    this.probeArmTimeoutMs = opts.probeArmTimeoutMs ?? 2_000;
    this.reportRetryBaseMs = opts.reportRetryBaseMs ?? 200;
    this.reportRetries = opts.reportRetries ?? 6;
    this.status = {
      version: opts.version ?? AGENT_VERSION,
      protocols: CONTROL_PROTOCOL,
      bootId: this.safe(() => opts.platform.randomId(), 'no-boot-id'),
      domid: 'unknown',
      state: 'starting',
      resumes: 0,
      runMs: 0,
      domids: [],
      suspendedAt: null,
      resumedAt: null,
      clockSkewMs: null,
      pending: '',
      delayed: '',
      features: '',
      counters: { received: 0, rejected: 0, acked: 0, actions: 0, errors: 0 },
      lastError: '',
      lastEvent: null,
    };
    this.queue = new SerialQueue((task, e) => {
      this.recordError(task, e);
      this.queue.schedule('report', () => this.writeReport());
    });
    this.delayed = new DelayedStep(
      (ms, fn) => this.platform.setTimer(ms, fn),
      (name, fn) => this.queue.schedule(name, fn),
    );
    this.status.features = this.capabilities.describe();
  }

  /** Called with each event after its report is written (tests wait on it). */
  onEvent(listener: (e: EventRecord) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** Resolves when every task queued so far has run. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * Starts serving on a xenstore connection: report, feature flags, watches.
   * Called again with a new connection after the previous one died; what the
   * agent knows (pending command, counters, vm-data id) carries over.
   * Rejects when the start-up could not complete (the caller reconnects).
   */
  attach(store: AgentStore): Promise<void> {
    this.unsubscribe?.();
    this.store = store;
    this.unsubscribe = store.onWatch((path, token) => this.onWatchEvent(path, token));
    return new Promise((resolve, reject) => {
      this.queue.schedule('start', async () => {
        try {
          await this.startup(store);
          resolve();
        } catch (e) {
          reject(e instanceof Error ? e : new Error(describeError(e)));
        }
      });
    });
  }

  /** Forgets the connection (it died); watch events stop until the next attach. */
  detach(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.store = null;
  }

  // -------------------------------------------------------------------------
  // Start-up and watch dispatch

  private async startup(store: AgentStore): Promise<void> {
    const first = !this.attachedOnce;
    this.forgetReport();
    this.status.domid = await this.readDomid(store);
    this.noteDomid();
    this.status.runMs = this.uptime();
    if (first) {
      this.status.state = 'starting';
      await this.writeReport();
      // A vm-data message already there at start was written before this boot
      // (XAPI rewrites vm-data from VM.xenstore_data when the VM starts): it is
      // the baseline, not a new message, or a now:reboot would loop forever.
      const raw = await tryReadBytes(store, VMDATA_TESTING_NODE);
      if (raw !== null) this.baselineVmData(raw);
    }
    await this.writeFeatures(store);
    for (const [node, token] of [
      [SHUTDOWN_NODE, WATCH_TOKENS.shutdown],
      [TESTING_NODE, WATCH_TOKENS.testing],
      [VMDATA_TESTING_NODE, WATCH_TOKENS.vmdata],
    ] as const) {
      await store.watch(node, token);
    }
    if (first || this.status.state === 'starting') this.status.state = 'ready';
    this.attachedOnce = true;
    await this.writeReport();
    this.line(first ? 'ready' : 'reattached', [
      ['version', this.status.version],
      ['protocols', this.status.protocols],
      ['domid', this.status.domid],
      ['boot-id', this.status.bootId],
      ['platform', this.platform.name],
      ['state', this.status.state],
    ]);
  }

  private baselineVmData(raw: Uint8Array): void {
    const d = decodeVmData(raw);
    if (d.kind === 'empty') return;
    this.vmdataKey = valueKey(raw);
    if (d.kind === 'message') this.vmdataId = d.value.id;
    this.line('vm-data-baseline', [
      ['id', this.vmdataId ?? ''],
      ['value', decodeUtf8(raw)],
      ['note', 'present at start: not acted on'],
    ]);
  }

  private onWatchEvent(_path: string, token: string): void {
    // Runs inside the client's dispatcher: only queue work, never throw.
    try {
      if (token === WATCH_TOKENS.shutdown) this.queue.schedule('shutdown', () => this.handleShutdown());
      else if (token === WATCH_TOKENS.testing) this.queue.schedule('testing', () => this.handleTesting());
      else if (token === WATCH_TOKENS.vmdata) this.queue.schedule('vmdata', () => this.handleVmData());
      else if (this.probe && token === this.probe.token) {
        this.probe.fired++;
        if (this.probe.fired === 1) this.probe.armed?.();
        else this.queue.schedule('resume', () => this.markResumed('watches fired again after suspend'));
      }
    } catch (e) {
      this.recordError('watch event', e);
    }
  }

  private requireStore(): AgentStore {
    if (!this.store) throw new Error('no xenstore connection');
    return this.store;
  }

  // -------------------------------------------------------------------------
  // control/shutdown

  private async handleShutdown(): Promise<void> {
    const store = this.store;
    if (!store) return; // detached: the next attach's watches fire again and bring us back here
    const raw = await tryReadBytes(store, SHUTDOWN_NODE);
    const key = valueKey(raw);
    if (key === this.left.shutdown) return; // our own ack, or a re-fire: nothing new
    const d = decodeShutdown(raw ?? EMPTY);
    if (d.kind === 'empty') {
      this.left.shutdown = key;
      return;
    }
    await this.noticeActivityWhileSuspending();
    const ev = this.newEvent(SHUTDOWN_NODE, raw ?? EMPTY);
    if (d.kind === 'rejected') {
      // Left unacknowledged, as Linux leaves what it does not understand.
      this.left.shutdown = key;
      ev.decision = 'rejected';
      ev.error = d.error.message;
      ev.ack = 'none';
      ev.note = 'left unacknowledged; nothing done';
      this.status.counters.rejected++;
      await this.finish(ev);
      return;
    }
    const waiting = this.delayed.waiting;
    if (waiting) {
      // A slow guest is still busy with the last request: this one is seen,
      // reported and left where it is (the toolstack may be retrying).
      this.left.shutdown = key;
      ev.command = `request ${d.value}`;
      ev.ack = 'none';
      ev.note = `left unacknowledged: waiting for the ${describeDelayed(waiting)}`;
      await this.finish(ev);
      return;
    }
    let ack: Ack = { kind: 'ok' };
    let action: Action = d.value;
    let ackAfterMs = 0;
    let actAfterMs = 0;
    ev.command = `request ${d.value}`;
    if (this.pending) {
      const p = this.pending;
      ack = p.ack;
      action = p.action;
      ackAfterMs = p.ackAfterMs ?? 0;
      actAfterMs = p.actAfterMs ?? 0;
      ev.command = describeCommand(p);
      ev.note = `pending command used instead of request ${d.value}`;
      this.pending = null;
      this.status.pending = '';
    }
    const ackAndAct = async (): Promise<void> => {
      await this.acknowledgeShutdown(ack, key, ev);
      ev.ackedAtMs = this.uptime();
      await this.actAfter(ev, action, actAfterMs);
    };
    if (ackAfterMs > 0) {
      // The request stays in control/shutdown meanwhile; a re-fire of the same value is not new.
      this.left.shutdown = key;
      this.addNote(ev, `acknowledging in ${ackAfterMs} ms`);
      this.wait(ev, 'ack', ackAfterMs, ackAndAct);
      await this.finish(ev);
      return;
    }
    await ackAndAct();
  }

  /** Queues `step` after `ms` as the one delayed step, and says so in the report. */
  private wait(ev: EventRecord, what: string, ms: number, step: () => Promise<void>): void {
    this.delayed.start({ what, seq: ev.seq, dueAtMs: this.uptime() + ms }, ms, async () => {
      this.status.delayed = '';
      await step();
    });
    this.status.delayed = describeDelayed(this.delayed.waiting);
  }

  /** Acts now, or after `ms` (reporting the acknowledgement first). */
  private async actAfter(ev: EventRecord, action: Action, ms: number): Promise<void> {
    if (ms <= 0) {
      await this.act(ev, action);
      return;
    }
    this.addNote(ev, `acting (${action}) in ${ms} ms`);
    this.wait(ev, `action ${action}`, ms, () => this.act(ev, action));
    await this.finish(ev);
  }

  private async acknowledgeShutdown(ack: Ack, requestKey: string | null, ev: EventRecord): Promise<void> {
    const store = this.requireStore();
    try {
      switch (ack.kind) {
        case 'none':
          this.left.shutdown = requestKey;
          ev.ack = 'none';
          return;
        case 'ok':
          await store.write(SHUTDOWN_NODE, '');
          this.left.shutdown = '';
          ev.ack = 'ok';
          break;
        case 'delete':
          try {
            await store.rm(SHUTDOWN_NODE);
          } catch (e) {
            if (errorCode(e) !== 'ENOENT') throw e;
          }
          this.left.shutdown = null;
          ev.ack = 'delete';
          break;
        case 'write': {
          const bytes = encodeUtf8(ack.value);
          await store.write(SHUTDOWN_NODE, bytes);
          this.left.shutdown = valueKey(bytes);
          ev.ack = 'write';
          ev.ackValue = ack.value;
          break;
        }
      }
      this.status.counters.acked++;
    } catch (e) {
      this.left.shutdown = requestKey;
      ev.ack = 'failed';
      this.addNote(ev, `ack failed: ${errorCode(e) ?? describeError(e)}`);
      this.recordError(`acknowledging ${SHUTDOWN_NODE}`, e);
    }
  }

  // -------------------------------------------------------------------------
  // control/testing and vm-data/xtv/testing

  private async handleTesting(): Promise<void> {
    const store = this.store;
    if (!store) return; // detached: the next attach's watches fire again and bring us back here
    const raw = await tryReadBytes(store, TESTING_NODE);
    const key = valueKey(raw);
    if (key === this.left.testing) return;
    const d = decodeTesting(raw ?? EMPTY);
    if (d.kind === 'empty') {
      this.left.testing = key;
      return;
    }
    await this.noticeActivityWhileSuspending();
    const ev = this.newEvent(TESTING_NODE, raw ?? EMPTY);
    // Acknowledge as soon as it is read, valid or not (the anchor's rule).
    try {
      await store.write(TESTING_NODE, '');
      this.left.testing = '';
      ev.ack = 'ok';
      ev.ackedAtMs = this.uptime();
      this.status.counters.acked++;
    } catch (e) {
      // dom0 may have created the node read-only for the guest (EACCES): the
      // message still counts, and stays there, so remember it as handled.
      this.left.testing = key;
      ev.ack = 'failed';
      this.addNote(ev, `ack failed: ${errorCode(e) ?? describeError(e)}`);
      this.recordError(`acknowledging ${TESTING_NODE}`, e);
    }
    await this.applyTesting(ev, d);
  }

  private async handleVmData(): Promise<void> {
    const store = this.store;
    if (!store) return; // detached: the next attach's watches fire again and bring us back here
    const raw = await tryReadBytes(store, VMDATA_TESTING_NODE);
    if (raw === null) return; // the subtree was removed: nothing to do
    const d = decodeVmData(raw);
    if (d.kind === 'empty') return;
    const key = valueKey(raw);
    if (d.kind === 'rejected') {
      if (key === this.vmdataKey) return; // the same bad value rewritten
      this.vmdataKey = key;
      await this.noticeActivityWhileSuspending();
      const ev = this.newEvent(VMDATA_TESTING_NODE, raw);
      ev.ack = 'n/a';
      await this.applyTesting(ev, d);
      return;
    }
    const { id, message } = d.value;
    // XAPI rewrites the whole vm-data subtree on every set: same id, same message.
    if (id === this.vmdataId) return;
    this.vmdataId = id;
    this.vmdataKey = key;
    if (message.kind === 'empty') {
      this.line('vm-data-empty', [
        ['id', id],
        ['note', 'id carries no message'],
      ]);
      return;
    }
    await this.noticeActivityWhileSuspending();
    const ev = this.newEvent(VMDATA_TESTING_NODE, raw);
    ev.id = id;
    ev.ack = 'n/a'; // XAPI owns vm-data; the report is the acknowledgement
    await this.applyTesting(ev, message);
  }

  /** The common part: a rejected message changes nothing; a new one replaces the pending one. */
  private async applyTesting(ev: EventRecord, d: NodeDecoded<TestingMessage> | { kind: 'rejected'; error: { message: string } }): Promise<void> {
    if (d.kind === 'empty') return;
    if (d.kind === 'rejected') {
      ev.decision = 'rejected';
      ev.error = d.error.message;
      this.addNote(ev, 'nothing changed');
      this.status.counters.rejected++;
      await this.finish(ev);
      return;
    }
    if (isCapabilityMessage(d.value)) {
      await this.applyCapabilities(ev, d.value);
      return;
    }
    if (isClockMessage(d.value)) {
      await this.applyClock(ev, d.value);
      return;
    }
    const cmd = d.value;
    ev.command = describeCommand(cmd);
    // A new test begins: whatever control/shutdown still holds from the last
    // one (a request left there by ack "none", or a rejected value) is
    // forgotten, so that the toolstack's next request counts even if it
    // rewrites the same word (XAPI removes and rewrites it; xl overwrites it).
    this.left.shutdown = undefined;
    const replaced = this.pending;
    if (cmd.when === 'onshutdown') {
      this.pending = cmd;
      this.status.pending = encodeCommand(cmd);
      this.addNote(ev, 'stored as pending until the next shutdown request');
    } else {
      this.pending = null;
      this.status.pending = '';
    }
    if (replaced) this.addNote(ev, `replaced pending: ${describeCommand(replaced)}`);
    const cancelled = this.delayed.cancel();
    if (cancelled) {
      this.status.delayed = '';
      this.addNote(ev, `replaced delayed: the ${describeDelayed(cancelled)}`);
    }
    if (cmd.when === 'onshutdown') await this.finish(ev);
    else await this.actAfter(ev, cmd.action, cmd.actAfterMs ?? 0);
  }

  /**
   * dom0's clock: the report's clock-skew-ms becomes ours minus dom0's (its transit included, which
   * the harness, knowing when it wrote, allows for). Nothing else changes.
   */
  private async applyClock(ev: EventRecord, m: ClockMessage): Promise<void> {
    ev.command = describeMessage(m);
    this.status.clockSkewMs = this.now() - m.dom0Ms;
    this.status.runMs = this.uptime();
    this.addNote(ev, `guest clock - dom0 clock = ${this.status.clockSkewMs} ms`);
    await this.finish(ev);
  }

  /** Adds the current domid to the history, unless it is the last one there (a reattach in the same domain). */
  private noteDomid(): void {
    if (this.status.domids.at(-1) !== this.status.domid) this.status.domids.push(this.status.domid);
    if (this.status.domids.length > DOMIDS_KEPT) this.status.domids.splice(0, this.status.domids.length - DOMIDS_KEPT);
  }

  /** A capabilities message changes what the guest advertises; the pending command and any delayed step stay. */
  private async applyCapabilities(ev: EventRecord, m: CapabilityMessage): Promise<void> {
    ev.command = describeCapabilities(m);
    const store = this.store;
    const refused = store ? await this.capabilities.apply(store, m) : ['no xenstore connection'];
    this.status.features = this.capabilities.describe();
    if (refused.length) this.addNote(ev, `not written: ${refused.join(', ')}`);
    await this.finish(ev);
  }

  // -------------------------------------------------------------------------
  // Actions

  /** Reports the event, then performs the action (the report is the last thing a dying domain writes). */
  private async act(ev: EventRecord, action: Action): Promise<void> {
    ev.action = action;
    ev.actedAtMs = this.uptime();
    if (action === 'ignore') {
      await this.finish(ev);
      return;
    }
    this.status.counters.actions++;
    this.status.state = action === 'suspend' ? 'suspending' : 'acting';
    if (action === 'suspend') {
      this.status.suspendedAt = this.now();
      this.status.runMs = this.uptime();
    }
    await this.finish(ev);
    if (action === 'suspend') await this.suspend();
    else if (TERMINAL.includes(action)) await this.performTerminal(action as PlatformAction);
  }

  private async performTerminal(action: PlatformAction): Promise<void> {
    try {
      await this.platform.perform(action);
    } catch (e) {
      // Only reached when the domain did not go away.
      this.recordError(`performing ${action}`, e);
      this.status.state = 'ready';
      await this.writeReport();
    }
  }

  /**
   * Asks the patched kernel to suspend (it watches KERNEL_SHUTDOWN_NODE
   * instead of control/shutdown, acknowledges with "" and suspends in-kernel).
   * The agent keeps running after the resume; it learns of the resume from a
   * probe watch on `domid`: a watch fires once when registered, and again only
   * when the kernel re-registers watches after resuming (or the toolstack
   * rewrites domid), so its second event means "resumed".
   */
  private async suspend(): Promise<void> {
    try {
      const store = this.requireStore();
      const token = `${RESUME_TOKEN_PREFIX}${++this.probes}`;
      const armed = new Promise<boolean>((resolve) => {
        const cancel = this.platform.setTimer(this.probeArmTimeoutMs, () => resolve(false));
        this.probe = {
          token,
          fired: 0,
          armed: () => {
            cancel();
            resolve(true);
          },
        };
      });
      await store.watch(DOMID_NODE, token);
      if (!(await armed)) this.line('note', [['message', `resume probe did not fire within ${this.probeArmTimeoutMs} ms; suspending anyway`]]);
      await store.write(KERNEL_SHUTDOWN_NODE, 'suspend');
      this.line('suspend', [
        ['node', KERNEL_SHUTDOWN_NODE],
        ['value', 'suspend'],
        ['domid', this.status.domid],
      ]);
      this.cancelKernelCheck = this.platform.setTimer(this.kernelAckTimeoutMs, () => this.queue.schedule('suspend-check', () => this.checkKernelAck()));
    } catch (e) {
      this.recordError('suspending', e);
      await this.dropProbe();
      this.status.state = 'suspend-failed';
      await this.writeReport();
    }
  }

  /** Runs kernelAckTimeoutMs after the request: a kernel that never took it is reported. */
  private async checkKernelAck(): Promise<void> {
    this.cancelKernelCheck = null;
    if (this.status.state !== 'suspending') return;
    const store = this.store;
    if (!store) return; // detached: the next attach's watches fire again and bring us back here
    const raw = await tryReadBytes(store, KERNEL_SHUTDOWN_NODE);
    if (raw === null || raw.length === 0) return; // acknowledged: the resume will be noticed by the probe
    this.recordError(
      'suspending',
      new Error(
        `the kernel did not acknowledge "suspend" on ${KERNEL_SHUTDOWN_NODE} within ${this.kernelAckTimeoutMs} ms ` +
          '(is the kernel patched and booted with xen_shutdown_node=data/xtv/kernel-shutdown?)',
      ),
    );
    // Take the request back so that the kernel does not suspend later out of the blue.
    try {
      await store.write(KERNEL_SHUTDOWN_NODE, '');
    } catch (e) {
      this.recordError(`clearing ${KERNEL_SHUTDOWN_NODE}`, e);
    }
    await this.dropProbe();
    this.status.state = 'suspend-failed';
    await this.writeReport();
  }

  /** A new message while "suspending" means we are running again (a cancelled suspend fires no watches). */
  private async noticeActivityWhileSuspending(): Promise<void> {
    if (this.status.state === 'suspending') await this.markResumed('a message arrived while suspending');
  }

  private async markResumed(reason: string): Promise<void> {
    if (this.status.state !== 'suspending' && this.status.state !== 'suspend-failed') {
      await this.dropProbe();
      return;
    }
    this.cancelKernelCheck?.();
    this.cancelKernelCheck = null;
    await this.dropProbe();
    const store = this.requireStore();
    const previous = this.status.domid;
    this.status.domid = await this.readDomid(store);
    this.noteDomid();
    this.status.state = 'resumed';
    this.status.resumes++;
    this.status.resumedAt = this.now();
    this.status.runMs = this.uptime();
    // A restore into a new domain starts with an empty data/ and control/: write everything again.
    this.forgetReport();
    await this.writeFeatures(store);
    await this.writeReport();
    this.line('resumed', [
      ['domid', this.status.domid],
      ['previous-domid', previous],
      ['resumes', String(this.status.resumes)],
      ['reason', reason],
    ]);
  }

  private async dropProbe(): Promise<void> {
    const probe = this.probe;
    this.probe = null;
    if (!probe || !this.store) return;
    try {
      await this.store.unwatch(DOMID_NODE, probe.token);
    } catch {
      // After a restore the kernel re-registered it; either way it is harmless now.
    }
  }

  // -------------------------------------------------------------------------
  // Report, console, errors

  private newEvent(node: string, value: Uint8Array): EventRecord {
    this.status.counters.received++;
    return {
      seq: ++this.seq,
      node,
      value,
      id: '',
      decision: 'accepted',
      error: '',
      command: '',
      ack: 'none',
      ackValue: '',
      action: 'none',
      note: '',
      timeMs: this.now(),
      readAtMs: this.uptime(),
      ackedAtMs: null,
      actedAtMs: null,
    };
  }

  private addNote(ev: EventRecord, note: string): void {
    ev.note = ev.note ? `${ev.note}; ${note}` : note;
  }

  private async finish(ev: EventRecord): Promise<void> {
    this.status.lastEvent = ev;
    await this.writeReport();
    this.platform.consoleLine(eventLine(ev, this.status));
    for (const l of this.eventListeners) {
      try {
        l(ev);
      } catch {
        // A listener's failure is not the agent's.
      }
    }
  }

  /**
   * The report in one transaction, so a reader never sees half an event. Only
   * keys whose value changed since the last successful write are sent (fewer
   * round trips per event); forgetReport() makes the next write complete.
   */
  private async writeReport(): Promise<void> {
    const store = this.store;
    if (!store) return;
    const entries = reportEntries(this.status, this.reportValueMax);
    const identity = (value: string | Uint8Array): string => (typeof value === 'string' ? `s${value}` : `b${valueKey(value)}`);
    const changed = entries.filter(([path, value]) => this.written.get(path) !== identity(value));
    if (changed.length === 0) return;
    try {
      await store.transaction(async (tx) => {
        // A few writes in flight at a time: fast, yet well below xenstored's
        // per-domain limit on outstanding requests (20 in Xen 4.17). On the
        // Linux xenbus device the client still sends them one by one (the
        // device's maxInFlight, XENBUS_DEVICE_MAX_IN_FLIGHT in xenstore/transport.ts).
        for (let i = 0; i < changed.length; i += REPORT_WRITES_IN_FLIGHT) {
          await Promise.all(changed.slice(i, i + REPORT_WRITES_IN_FLIGHT).map(([path, value]) => tx.write(path, value)));
        }
      });
      for (const [path, value] of changed) this.written.set(path, identity(value));
      this.reportFailures = 0;
      this.cancelReportRetry?.();
      this.cancelReportRetry = null;
    } catch (e) {
      this.forgetReport();
      this.recordError('writing the report', e);
      this.shrinkReportValues(e);
      this.retryReport();
    }
  }

  /**
   * The values are cut to what Xen 4.17's default quotas allow
   * (protocol/report-limits.ts), but a host may run xenstored with smaller
   * ones (`xenstored --entry-size`), or dom0 may have given the report's
   * nodes more permissions than we allow for: a report refused as too big
   * (ENOSPC from C xenstored, E2BIG from oxenstored) is retried with values
   * cut to half, down to REPORT_VALUE_MIN_BYTES, for the rest of the boot.
   */
  private shrinkReportValues(e: unknown): void {
    const code = errorCode(e);
    if ((code !== 'ENOSPC' && code !== 'E2BIG') || this.reportValueMax <= REPORT_VALUE_MIN_BYTES) return;
    this.reportValueMax = Math.max(REPORT_VALUE_MIN_BYTES, Math.floor(this.reportValueMax / 2));
    this.line('note', [['message', `xenstore refused the report (${code}): report values cut to ${this.reportValueMax} bytes from now on`]]);
  }

  /**
   * A report that failed to land (state=ready among it, at start-up) is not
   * left for the next event, which may never come: it is written again after
   * a growing delay, a bounded number of times. The retry writes the whole
   * report, errors and last-error included, so the failure shows in it.
   */
  private retryReport(): void {
    if (this.cancelReportRetry) return; // one is already due
    this.reportFailures++;
    if (this.reportFailures > this.reportRetries) {
      this.line('note', [['message', `the report could not be written ${this.reportFailures} times in a row; next try at the next event`]]);
      this.reportFailures = 0;
      return;
    }
    const delay = Math.min(this.reportRetryBaseMs * 2 ** (this.reportFailures - 1), REPORT_RETRY_MAX_DELAY_MS);
    try {
      this.cancelReportRetry = this.platform.setTimer(delay, () => {
        this.cancelReportRetry = null;
        this.queue.schedule('report', () => this.writeReport());
      });
    } catch (e) {
      this.cancelReportRetry = null;
      this.recordError('scheduling a report retry', e);
    }
  }

  /** The next report write sends every key (a new connection, or a new domain after a restore). */
  private forgetReport(): void {
    this.written.clear();
  }

  private async writeFeatures(store: AgentStore): Promise<void> {
    // Some toolstacks keep control/ read-only for the guest: not an error.
    const refused = await this.capabilities.writeAll(store);
    if (refused.length) this.line('note', [['message', `feature flags not written: ${refused.join(', ')}`]]);
  }

  private async readDomid(store: AgentStore): Promise<string> {
    try {
      const raw = await tryReadBytes(store, DOMID_NODE);
      const text = raw === null ? '' : decodeUtf8(raw).trim();
      return text || 'unknown';
    } catch (e) {
      this.recordError('reading domid', e);
      return 'unknown';
    }
  }

  /** Counts and reports an error; the next report write carries it. Never throws. */
  recordError(where: string, e: unknown): void {
    try {
      this.status.counters.errors++;
      const message = `${where}: ${describeError(e)}`;
      this.status.lastError = `${isoTime(this.now())} ${message}`;
      this.line('error', [
        ['where', where],
        ['message', describeError(e)],
      ]);
    } catch {
      // Nothing left to report with.
    }
  }

  private line(kind: string, fields: Array<[string, string]>): void {
    try {
      this.platform.consoleLine(consoleLine(this.now(), kind, fields));
    } catch {
      // The console is the last resort; if it fails there is nowhere to say so.
    }
  }

  private now(): number {
    return this.safe(() => this.platform.nowMs(), 0);
  }

  private uptime(): number {
    return this.safe(() => this.platform.uptimeMs(), 0);
  }

  private safe<T>(f: () => T, fallback: T): T {
    try {
      return f();
    } catch {
      return fallback;
    }
  }
}

// One interface for every toolstack the harness drives (xl over SSH, XAPI
// through the xen-api client). The matrix runner, the CLI and the tests speak
// only this; each driver is a small module behind it.
//
// Two kinds of failure are kept apart, so "the toolstack answered no" is one
// check: ToolstackError (it answered, with an error code, e.g. XAPI's
// VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT or xl's exit status) and ConnectionError
// (we could not reach it, or it did not answer in time).

export type ToolstackKind = 'xl' | 'xapi';
export type DomainType = 'pv' | 'pvh';

/** XAPI's power-state words; xl's domain states are mapped onto them. */
export type PowerState = 'Running' | 'Paused' | 'Suspended' | 'Halted';

/**
 * What a host can ask of a VM. "clean_*", "suspend" and "migrate" go through the guest's control/shutdown
 * (a live migration asks the guest to suspend once its memory is copied). migrate is to the VM's own host:
 * xl's `xl migrate NAME localhost`, XAPI's VM.pool_migrate to the host it runs on.
 */
export const HOST_REQUESTS = ['clean_shutdown', 'hard_shutdown', 'clean_reboot', 'hard_reboot', 'suspend', 'resume', 'pause', 'unpause', 'migrate'] as const;
export type HostRequest = (typeof HOST_REQUESTS)[number];

/** A VM the harness made. `id` is the toolstack's own handle (xl: the domain name; XAPI: the VM's opaque ref or uuid). */
export interface VmRef {
  name: string;
  id: string;
  /**
   * Who made it, as install recorded it (vm-owner.ts: "user@host pid N started ISO-TIME"); set by
   * listOwned, absent when the VM carries no record (made by an older xtv).
   */
  owner?: string;
}

export interface InstallOptions {
  /** Also the VM's name-label / xl domain name, and the report cell's name. */
  name: string;
  domainType: DomainType;
  memoryMiB: number;
  /** Local paths of the image; the driver copies them to the host. */
  kernelPath: string;
  initrdPath: string;
  /** Kernel command line (the image's README lists what it needs). */
  kernelArgs: string;
  /** xl's on_poweroff / on_reboot / on_crash, XAPI's actions_after_*. Defaults: the toolstack's. */
  actions?: { afterShutdown?: string; afterReboot?: string; afterCrash?: string };
}

/** What the hypervisor and the toolstack say about a VM right now. */
export interface DomainInfo {
  powerState: PowerState;
  /** null when no domain exists (Halted; Suspended to disk). */
  domid: number | null;
  /** Xen's shutdown reason while a domain is shut down but not yet destroyed (poweroff, reboot, suspend, crash, watchdog, soft_reset). */
  shutdownReason?: string;
}

/** One domain as xenstored holds it: its home /local/domain/D and the name the toolstack wrote there (null: none). */
export interface XenstoredDomain {
  domid: number;
  name: string | null;
}

export interface RequestOptions {
  /** Bound on the whole call; past it the driver stops waiting and throws ConnectionError('timeout'). */
  timeoutMs: number;
}

/** The toolstack's own timeouts on one host (ms): XAPI's can be tuned per host (/etc/xenopsd.conf, /etc/xapi.conf). */
export interface ToolstackTimeouts {
  shutdownAckMs: number;
  suspendAckMs: number;
  shutdownTotalMs: number;
  suspendTotalMs: number;
}

/**
 * What one host offers, as the driver found it out (or the user declared it).
 * No code asks which kind of host it is: it asks for these, and every path
 * works with each of them absent.
 */
export interface HostFacts {
  /** What the host says it runs, e.g. "XCP-ng 8.2.1 (xapi 1.20)" or "xl (Xen 4.17.3)". */
  version: string;
  /** dom0 reachable over SSH (xenstore reads and writes, kernel copies, console logs). */
  dom0: string | null;
  /** Where dom0 keeps guest console logs; null when it keeps none or they are not to be used. */
  consoleLogDir: string | null;
  /** The toolstack's timeouts on this host, when they can differ from one host to another. */
  timeouts?: ToolstackTimeouts;
  /**
   * Whether the toolstack refuses suspend (checkpoint, migration) of a guest that has both
   * control/feature-suspend and data/cant_suspend_reason, before asking it (xapi from v25.24.0:
   * VM_NON_SUSPENDABLE; docs/toolstack-behaviour.md#guest-features). Absent: it does not.
   */
  refusesNonSuspendable?: boolean;
  /**
   * Domain types this host cannot live-migrate, each with the reason (live-migration.ts: a PV
   * domain's log-dirty mode needs Xen's shadow paging). Absent: it can migrate every type.
   */
  cannotMigrate?: Partial<Record<DomainType, string>>;
  /** How each fact was found, one line each (for reports and `xtv doctor`). */
  notes: string[];
}

export interface ToolstackDriver {
  readonly kind: ToolstackKind;
  /** What this host offers (found out once, then remembered). */
  hostFacts(): Promise<HostFacts>;
  /** Registers the VM (idempotent: an existing VM of that name is reused after checking it is ours). */
  install(opts: InstallOptions): Promise<VmRef>;
  /** Removes everything install made (VM record or config, copied kernel files). */
  uninstall(vm: VmRef): Promise<void>;
  /** Starts a halted VM, optionally paused. */
  /** timeoutMs: the bound on the call (default: the driver's own); a start is slow when the host is busy. */
  start(vm: VmRef, opts?: { paused?: boolean; timeoutMs?: number }): Promise<void>;
  /** Sends a host request and returns when the toolstack's call returns; rejects with ToolstackError when it answers no. */
  request(vm: VmRef, request: HostRequest, opts: RequestOptions): Promise<void>;
  state(vm: VmRef): Promise<DomainInfo>;
  /** Reads a node relative to the VM's current domain home (null when absent or no domain). */
  readGuest(vm: VmRef, relPath: string): Promise<string | null>;
  /** Writes a node relative to the domain home. guestWritable: make the node writable by the guest (control/testing must be, so the agent can acknowledge). */
  writeGuest(vm: VmRef, relPath: string, value: string, opts?: { guestWritable?: boolean }): Promise<void>;
  /**
   * Writes {"clock": MS} into the guest's control/testing, MS dom0's own wall clock (ms since the
   * epoch) read in dom0 just before the write, and resolves with MS: the guest reports its clock
   * minus dom0's (#17). Optional; null when dom0 cannot be reached.
   */
  writeClock?(vm: VmRef): Promise<number | null>;
  /**
   * Calls onChange when the VM may have changed (its domain came or went, its
   * agent's report moved, the toolstack's record changed), so that a watcher
   * looks then instead of on a timer. `domid`: the domain whose report to
   * watch (null: none). Optional: without it, or once it has ended, watchers look on a timer.
   */
  watchChanges?(vm: VmRef, domid: number | null, onChange: () => void): ChangeWatch;
  /**
   * xenstored's list of domains (the homes under /local/domain), each with its name, read in dom0
   * with xenstore-list / xenstore-read and nothing of the toolstack's: the view a case holds the
   * toolstack's account against. Optional; null when dom0 cannot be reached.
   */
  xenstoredDomains?(): Promise<XenstoredDomain[] | null>;
  /** VMs on the host tagged as made by xtv (for `xtv gc`), each with the owner install recorded on it. */
  listOwned(): Promise<VmRef[]>;
  /**
   * The end of the guest's console as dom0 logged it (the agent writes one
   * line per event), with where it is kept; null when the host keeps no log
   * of it (see HostFacts.consoleLogDir). Optional.
   */
  consoleLog?(vm: VmRef, opts?: { maxBytes?: number }): Promise<ConsoleText | null>;
  /** Several nodes in one round trip (null: absent). Optional: readGuest is used without it. */
  readGuestMany?(vm: VmRef, relPaths: readonly string[]): Promise<Record<string, string | null>>;
  /** The toolstack's log lines about this VM since `sinceMs` (epoch ms); null when there is none. Optional. */
  toolstackLog?(vm: VmRef, sinceMs: number): Promise<string | null>;
  /** Forgets connections; never leaves anything running that it started itself. */
  close(): Promise<void>;
}

/** A console log's text and the file it came from. */
export interface ConsoleText {
  text: string;
  path: string;
}

/** A running watchChanges: close() stops it; `ended` says why it stopped by itself. */
export interface ChangeWatch {
  close(): void;
  readonly ended: Promise<string>;
}

/** The toolstack answered, and the answer was no. */
export class ToolstackError extends Error {
  override name = 'ToolstackError';
  constructor(
    /** XAPI's error code (e.g. VM_BAD_POWER_STATE) or, for xl, a code the driver derives (e.g. XL_EXIT_1). */
    readonly code: string,
    readonly params: string[] = [],
    /** The call that failed, e.g. "VM.clean_shutdown" or "xl shutdown -w xtv-1"; never holds secrets. */
    readonly call = '',
    message?: string,
  ) {
    super(message ?? `${call ? call + ': ' : ''}${code}${params.length ? ' ' + JSON.stringify(params) : ''}`);
  }
}

/** We could not reach the toolstack, or it did not answer within the bound (then `timedOut`). */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  readonly timedOut: boolean;
  constructor(message: string, opts: { cause?: unknown; timedOut?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.timedOut = opts.timedOut ?? false;
  }

  /** dom0 could not be reached for `call` (what: e.g. "copying FILE: "): the drivers' one translation of it. */
  static fromUnreachable(call: string, err: { message: string; timedOut: boolean }, what = ''): ConnectionError {
    return new ConnectionError(`${call}: ${what}${err.message}`, { cause: err, timedOut: err.timedOut });
  }
}

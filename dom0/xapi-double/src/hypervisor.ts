// What the endpoint needs from the machine it runs on: domains and xenstore.
// In dom0 this is xl + xenstored (xl-hypervisor.ts); in unit tests an
// in-memory double with scriptable guests (fake-hypervisor.ts). The lifecycle
// logic above it is the same for both.

/** Xen's shutdown codes (xen/include/public/sched.h), as names. */
export const SHUTDOWN_REASONS = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'] as const;
export type ShutdownReason = (typeof SHUTDOWN_REASONS)[number];

export interface DomainStatus {
  domid: number;
  /** The VM's uuid (domains are created with uuid = the VM's). */
  uuid: string;
  paused: boolean;
  /** Set once the domain has shut down (it stays until destroyed). */
  shutdownReason: ShutdownReason | null;
  /** Destroyed, and still listed while Xen tears it down (xl list's state letter d). */
  dying?: boolean;
}

export interface DomainSpec {
  uuid: string;
  name: string;
  type: 'pv' | 'pvh';
  kernel: string;
  ramdisk: string;
  cmdline: string;
  memoryMiB: number;
  vcpus: number;
}

export interface HostInfo {
  /** xen_caps, e.g. ["xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_64"]: XAPI's host.capabilities. */
  xenCaps: string[];
  freeMemoryBytes: number;
}

export interface Hypervisor {
  /** Guest domains (dom0 excluded), as Xen sees them right now. */
  listDomains(): Promise<DomainStatus[]>;
  /** Builds a domain, paused, and writes `xenstore` (paths relative to its home) before returning its domid. */
  create(spec: DomainSpec, xenstore: Record<string, string>): Promise<number>;
  destroy(domid: number): Promise<void>;
  pause(domid: number): Promise<void>;
  unpause(domid: number): Promise<void>;
  /** Saves a domain that has suspended itself to `file`, then destroys it. */
  save(domid: number, file: string): Promise<void>;
  /** Restores a saved domain (whose uuid the image keeps), paused; returns its new domid. */
  restore(file: string, uuid: string): Promise<number>;
  removeFile(file: string): Promise<void>;
  /** dom0's realpath(3); rejects with the errno as `code` (ENOENT, EACCES, ...). */
  realpath(path: string): Promise<string>;
  /** stat(2) says a regular file (symlinks followed). */
  isRegularFile(path: string): Promise<boolean>;
  /** access(2) with F_OK and R_OK. */
  isReadable(path: string): Promise<boolean>;

  /** What Xen says about the machine (`xl info`): its capabilities (host.capabilities) and free memory. */
  hostInfo(): Promise<HostInfo>;

  /** Reads a xenstore node (absolute path); null when absent. */
  xsRead(path: string): Promise<string | null>;
  /** XAPI's request write: removes the node and writes `value`, in one transaction. */
  xsWriteFresh(path: string, value: string): Promise<void>;
  /** Removes `home`/`subtree` and writes `entries` (paths relative to `home`), in one transaction. */
  xsReplaceTree(home: string, subtree: string, entries: Record<string, string>): Promise<void>;
  /** Calls `cb` on every change at or below `path`; resolves with the function that stops it. */
  xsWatch(path: string, cb: () => void): Promise<() => void>;
  /** Calls `cb` whenever a domain shuts down or goes away (it may call it on other changes too). */
  onDomainsChanged(cb: () => void): () => void;
  close(): Promise<void>;
}

export function domainHome(domid: number): string {
  return `/local/domain/${domid}`;
}

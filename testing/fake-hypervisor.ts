// An in-memory Hypervisor for unit tests: domains, a xenstore map with
// watches, and a scriptable guest in each domain that reacts to
// control/shutdown the way a test asks (ack ok/none/delete/bogus; then an
// action, possibly different from the request). Nothing here touches Xen.
import { posix } from 'node:path';
import { domainHome, type DomainSpec, type DomainStatus, type HostInfo, type Hypervisor, type ShutdownReason } from '../dom0/xapi-double/src/hypervisor.ts';

export interface GuestScript {
  /** How the guest acknowledges control/shutdown: "" (ok), leave it (none), remove it (delete), or write a string. */
  ack: 'ok' | 'none' | 'delete' | { write: string };
  /** What it does then: the requested action (as-requested), another one, or nothing. */
  action: 'as-requested' | 'ignore' | ShutdownReason;
  /** Delay before acting, ms. */
  delayMs?: number;
}

interface FakeDomain {
  domid: number;
  spec: DomainSpec;
  paused: boolean;
  shutdownReason: ShutdownReason | null;
}

export class FakeHypervisor implements Hypervisor {
  readonly domains = new Map<number, FakeDomain>();
  readonly xenstore = new Map<string, string>();
  /** dom0's regular files (directories are what lies above them); no symlinks. */
  readonly files = new Set<string>(['/var/lib/xcp/guest/xtv-kernel', '/var/lib/xcp/guest/xtv-initrd', '/boot/guest/xtv-kernel', '/boot/guest/xtv-initrd']);
  readonly saved = new Map<string, DomainSpec>();
  /** What every new guest does on control/shutdown, unless `scripts` has one for its VM uuid. */
  defaultScript: GuestScript = { ack: 'ok', action: 'as-requested' };
  readonly scripts = new Map<string, GuestScript>();
  /** Every call, for assertions ("create xapi-…", "destroy 3"). */
  readonly calls: string[] = [];
  /** How many times the domain list was read (each is an `xl list` on a real host). */
  lists = 0;
  private nextDomid = 1;
  private readonly watches = new Set<{ path: string; cb: () => void }>();
  private readonly domainListeners = new Set<() => void>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  /** A machine with hardware virtualisation and 8 GiB free. */
  async hostInfo(): Promise<HostInfo> {
    return { xenCaps: ['xen-3.0-x86_64', 'hvm-3.0-x86_32', 'hvm-3.0-x86_32p', 'hvm-3.0-x86_64'], freeMemoryBytes: 8 * 1024 ** 3 };
  }

  async listDomains(): Promise<DomainStatus[]> {
    this.lists++;
    return [
      ...[...this.domains.values()].map((d) => ({ domid: d.domid, uuid: d.spec.uuid, paused: d.paused, shutdownReason: d.shutdownReason })),
      ...this.dying.values(),
    ];
  }

  async create(spec: DomainSpec, xenstore: Record<string, string>): Promise<number> {
    this.calls.push(`create ${spec.name}`);
    if (!this.files.has(spec.kernel)) throw new Error(`xl create: kernel ${spec.kernel} not found`);
    const domid = this.nextDomid++;
    this.domains.set(domid, { domid, spec, paused: true, shutdownReason: null });
    const home = domainHome(domid);
    this.set(`${home}/name`, spec.name);
    this.set(`${home}/control/shutdown`, '');
    for (const [k, v] of Object.entries(xenstore)) this.set(`${home}/${k}`, v);
    this.fireDomains();
    return domid;
  }

  /** How long a destroyed domain stays listed, dying, as Xen lists it while tearing it down under load (0: not at all). */
  dyingMs = 0;
  private readonly dying = new Map<number, DomainStatus>();

  async destroy(domid: number): Promise<void> {
    this.calls.push(`destroy ${domid}`);
    const d = this.domains.get(domid);
    if (!d || !this.domains.delete(domid)) throw new Error(`xl destroy: domain ${domid} does not exist`);
    if (this.dyingMs > 0) {
      this.dying.set(domid, { domid, uuid: d.spec.uuid, paused: d.paused, shutdownReason: d.shutdownReason, dying: true });
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.dying.delete(domid);
        this.fireDomains();
      }, this.dyingMs);
      this.timers.add(t);
    }
    const home = domainHome(domid);
    for (const k of [...this.xenstore.keys()]) if (k === home || k.startsWith(`${home}/`)) this.xenstore.delete(k);
    this.fireWatches(home);
    this.fireDomains();
  }

  async pause(domid: number): Promise<void> {
    this.calls.push(`pause ${domid}`);
    this.dom(domid).paused = true;
  }

  async unpause(domid: number): Promise<void> {
    this.calls.push(`unpause ${domid}`);
    this.dom(domid).paused = false;
  }

  async save(domid: number, file: string): Promise<void> {
    this.calls.push(`save ${domid}`);
    const d = this.dom(domid);
    if (d.shutdownReason !== 'suspend') throw new Error(`xl save: domain ${domid} has not suspended`);
    this.saved.set(file, d.spec);
    this.files.add(file);
    await this.destroy(domid);
  }

  async restore(file: string, _uuid: string): Promise<number> {
    this.calls.push('restore');
    const spec = this.saved.get(file);
    if (!spec) throw new Error(`xl restore: ${file} not found`);
    return this.create(spec, {});
  }

  async removeFile(file: string): Promise<void> {
    this.files.delete(file);
    this.saved.delete(file);
  }

  async realpath(path: string): Promise<string> {
    const p = path === '' ? '' : posix.resolve('/', path);
    const isDir = p === '/' || [...this.files].some((f) => f.startsWith(`${p}/`));
    if (p === '' || (!this.files.has(p) && !isDir)) throw Object.assign(new Error(`realpath ${path}: no such file`), { code: 'ENOENT' });
    return p;
  }

  async isRegularFile(path: string): Promise<boolean> {
    return this.files.has(path);
  }

  async isReadable(path: string): Promise<boolean> {
    return path !== '' && this.files.has(posix.normalize(path));
  }

  async xsRead(path: string): Promise<string | null> {
    return this.xenstore.get(path) ?? null;
  }

  async xsWriteFresh(path: string, value: string): Promise<void> {
    this.xenstore.delete(path);
    this.set(path, value);
    this.guestSees(path);
  }

  async xsReplaceTree(home: string, subtree: string, entries: Record<string, string>): Promise<void> {
    const dir = `${home}/${subtree}`;
    this.calls.push(`replace ${dir}`);
    for (const k of [...this.xenstore.keys()]) if (k === dir || k.startsWith(`${dir}/`)) this.xenstore.delete(k);
    for (const [k, v] of Object.entries(entries)) this.xenstore.set(`${home}/${k}`, v);
    this.fireWatches(dir);
  }

  async xsWatch(path: string, cb: () => void): Promise<() => void> {
    const w = { path, cb };
    this.watches.add(w);
    queueMicrotask(cb); // xenstored fires a new watch once at once
    return () => {
      this.watches.delete(w);
    };
  }

  onDomainsChanged(cb: () => void): () => void {
    this.domainListeners.add(cb);
    return () => {
      this.domainListeners.delete(cb);
    };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ---- what a guest does (tests call these to act as the guest) ------------

  /** The guest shuts its own domain down with `reason` (poweroff, reboot, crash, suspend...). */
  guestShutdown(domid: number, reason: ShutdownReason): void {
    const d = this.domains.get(domid);
    if (!d || d.shutdownReason !== null) return;
    d.shutdownReason = reason;
    this.fireDomains();
  }

  domidOf(uuid: string): number | null {
    for (const d of this.domains.values()) if (d.spec.uuid === uuid) return d.domid;
    return null;
  }

  private dom(domid: number): FakeDomain {
    const d = this.domains.get(domid);
    if (!d) throw new Error(`domain ${domid} does not exist`);
    return d;
  }

  private set(path: string, value: string): void {
    this.xenstore.set(path, value);
    this.fireWatches(path);
  }

  private fireWatches(path: string): void {
    for (const w of [...this.watches]) {
      if (path === w.path || path.startsWith(`${w.path}/`) || w.path.startsWith(`${path}/`)) queueMicrotask(w.cb);
    }
  }

  private fireDomains(): void {
    for (const cb of [...this.domainListeners]) queueMicrotask(cb);
  }

  /** The scripted guest reacting to a write of control/shutdown. */
  private guestSees(path: string): void {
    const m = /^\/local\/domain\/(\d+)\/control\/shutdown$/.exec(path);
    if (!m) return;
    const d = this.domains.get(Number(m[1]));
    if (!d || d.paused || d.shutdownReason !== null) return;
    const request = this.xenstore.get(path) ?? '';
    if (request === '') return;
    const script = this.scripts.get(d.spec.uuid) ?? this.defaultScript;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.domains.has(d.domid) || d.shutdownReason !== null) return;
      if (script.ack === 'ok') this.set(path, '');
      else if (script.ack === 'delete') {
        this.xenstore.delete(path);
        this.fireWatches(path);
      } else if (script.ack !== 'none') this.set(path, script.ack.write);
      const action = script.action === 'as-requested' ? requestToReason(request) : script.action;
      if (action !== 'ignore' && action !== null) this.guestShutdown(d.domid, action);
    }, script.delayMs ?? 5);
    this.timers.add(t);
  }
}

function requestToReason(request: string): ShutdownReason | null {
  switch (request) {
    case 'poweroff':
    case 'halt':
      return 'poweroff';
    case 'reboot':
      return 'reboot';
    case 'suspend':
      return 'suspend';
    case 'crash':
      return 'crash';
    default:
      return null;
  }
}

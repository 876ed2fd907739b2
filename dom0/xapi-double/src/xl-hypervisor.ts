// The Hypervisor in dom0: domains through `xl`, xenstore through xenstored's
// socket (the project's xenstore client). Every domain is created with
// `xl create -e` (no background xl process watching it) and with every
// on_* action "preserve", so that a domain that shuts down stays, shut down
// with its reason, until the endpoint's lifecycle decides what XAPI would do.
// Domain state is read with `xl list -v` (state letters and uuid) each time.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { XenstoreClient } from '../../../xenstore/client.ts';
import { connectUnixSocket, XENSTORED_SOCKET } from '../../../xenstore/transport-node.ts';
import { parseXlInfo, stderrSummary } from '../../../protocol/xl-output.ts';
import { domainHome, type DomainSpec, type DomainStatus, type HostInfo, type Hypervisor, type ShutdownReason } from './hypervisor.ts';
import { quoteXlString } from '../../../protocol/xl-config-syntax.ts';

/** The 5th state letter of `xl list` by shutdown code (xl_info.c: "-rscwS"). */
const REASON_LETTERS: Record<string, ShutdownReason> = { '-': 'poweroff', r: 'reboot', s: 'suspend', c: 'crash', w: 'watchdog', S: 'soft_reset' };

/** Parses `xl list -v`: name, id, mem, vcpus, state (rbps + reason + d, xen tools/xl/xl_info.c list_domains), time, uuid, ... */
export function parseXlListVerbose(text: string): DomainStatus[] {
  const out: DomainStatus[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\d+)\s+\d+\s+\d+\s+([-a-zA-Z?]{6})\s+[\d.]+\s+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/.exec(line);
    if (!m) continue;
    const domid = Number(m[2]);
    if (domid === 0) continue;
    const state = m[3]!;
    const shut = state[3] === 's';
    out.push({
      domid,
      uuid: m[4]!,
      paused: state[2] === 'p',
      shutdownReason: shut ? (REASON_LETTERS[state[4]!] ?? 'crash') : null,
      ...(state[5] === 'd' ? { dying: true } : {}),
    });
  }
  return out;
}

/** An xl config that leaves every shutdown to the endpoint. */
export function xlConfig(spec: DomainSpec): string {
  // Every value quoted by xl's own syntax (protocol/xl-config-syntax.ts): no value can add a line or a
  // setting, and PV_args with a newline reaches the guest as XAPI passes it.
  const q = quoteXlString;
  const lines = [
    `name = ${q(spec.name)}`,
    `uuid = ${q(spec.uuid)}`,
    `type = ${q(spec.type)}`,
    `kernel = ${q(spec.kernel)}`,
    ...(spec.ramdisk ? [`ramdisk = ${q(spec.ramdisk)}`] : []),
    `cmdline = ${q(spec.cmdline)}`,
    `memory = ${spec.memoryMiB}`,
    `maxmem = ${spec.memoryMiB}`,
    `vcpus = ${spec.vcpus}`,
    'on_poweroff = "preserve"',
    'on_reboot = "preserve"',
    'on_crash = "preserve"',
    'on_watchdog = "preserve"',
    'on_soft_reset = "preserve"',
  ];
  return `${lines.join('\n')}\n`;
}

export interface XlHypervisorOptions {
  /** Where configs are written. */
  runDir: string;
  xl?: string;
  xenstoredSocket?: string;
  /** Bound on each xl command. */
  xlTimeoutMs?: number;
  log?: (line: string) => void;
}

export class XlHypervisor implements Hypervisor {
  private readonly listeners = new Set<() => void>();
  private nextToken = 1;

  private constructor(
    private readonly xs: XenstoreClient,
    private readonly opts: Required<Omit<XlHypervisorOptions, 'log'>> & { log: (l: string) => void },
  ) {}

  static async open(opts: XlHypervisorOptions): Promise<XlHypervisor> {
    const full = {
      xl: 'xl',
      xenstoredSocket: XENSTORED_SOCKET,
      // A bound against a wedged xl, not a toolstack rule (xenopsd puts none on a domain build): an
      // emulated host building several domains at once has taken over 120 s for one xl create.
      xlTimeoutMs: 300_000,
      log: () => {},
      ...opts,
    };
    const transport = await connectUnixSocket(full.xenstoredSocket);
    const xs = new XenstoreClient(transport, { requestTimeoutMs: 30_000, onWarning: (e) => full.log(`xenstore: ${e.message}`) });
    const hv = new XlHypervisor(xs, full);
    // xenstored fires this when a domain shuts down or goes. (Not @introduceDomain: a domain of
    // ours only appears when the endpoint makes it, and it then knows; other domains' are noise.)
    xs.onWatch((_path, token) => {
      if (token === 'xtv-xapi-domains') for (const l of [...hv.listeners]) l();
    });
    await xs.watch('@releaseDomain', 'xtv-xapi-domains');
    xs.onClose((err) => full.log(`xenstored connection closed${err ? `: ${err.message}` : ''}`));
    await mkdir(full.runDir, { recursive: true });
    return hv;
  }

  private xl(args: string[], timeoutMs = this.opts.xlTimeoutMs): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.opts.xl, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) {
          const why = stderrSummary(stderr.trim()) || err.message;
          reject(new Error(`xl ${args.join(' ')}: ${why}`));
        } else resolve(stdout);
      });
    });
  }

  async hostInfo(): Promise<HostInfo> {
    const info = parseXlInfo(await this.xl(['info'], 30_000));
    return { xenCaps: (info['xen_caps'] ?? '').split(/\s+/).filter(Boolean), freeMemoryBytes: Number(info['free_memory'] ?? 0) * 1024 * 1024 };
  }

  async listDomains(): Promise<DomainStatus[]> {
    return parseXlListVerbose(await this.xl(['list', '-v'], 30_000));
  }

  private async domidOf(uuid: string): Promise<number> {
    const d = (await this.listDomains()).find((x) => x.uuid.toLowerCase() === uuid.toLowerCase());
    if (!d) throw new Error(`no domain with uuid ${uuid} after building it`);
    return d.domid;
  }

  async create(spec: DomainSpec, xenstore: Record<string, string>): Promise<number> {
    const cfg = join(this.opts.runDir, `${spec.uuid}.cfg`);
    await writeFile(cfg, xlConfig(spec));
    await this.xl(['create', '-e', '-p', cfg]);
    const domid = await this.domidOf(spec.uuid);
    await this.controlAsXenopsd(domid);
    if (Object.keys(xenstore).length > 0) {
      const home = domainHome(domid);
      await this.xs.transaction(async (tx) => {
        for (const [k, v] of Object.entries(xenstore)) await tx.write(`${home}/${k}`, v);
      });
    }
    this.opts.log(`created domain ${domid} for ${spec.uuid}`);
    return domid;
  }

  async destroy(domid: number): Promise<void> {
    await this.xl(['destroy', String(domid)]);
  }

  async pause(domid: number): Promise<void> {
    await this.xl(['pause', String(domid)]);
  }

  async unpause(domid: number): Promise<void> {
    await this.xl(['unpause', String(domid)]);
  }

  async save(domid: number, file: string): Promise<void> {
    await mkdir(dirname(file), { recursive: true });
    // The domain has already suspended itself (XAPI's own request was acked
    // and acted on). libxl still writes "suspend" into control/shutdown and
    // waits up to 60 s for an ack that a suspended guest cannot give, before
    // it notices the domain is suspended already. We give that ack on the
    // guest's behalf, so the save costs what the copy costs.
    const node = `${domainHome(domid)}/control/shutdown`;
    const ackForSuspendedGuest = (): void => {
      this.xs
        .transaction(async (tx) => {
          if ((await tx.tryRead(node)) === 'suspend') await tx.write(node, '');
        })
        .catch(() => undefined);
    };
    const stop = await this.xsWatch(node, ackForSuspendedGuest);
    try {
      await this.xl(['save', String(domid), file]);
    } finally {
      stop();
    }
  }

  async restore(file: string, uuid: string): Promise<number> {
    await this.xl(['restore', '-e', '-p', file]);
    // By uuid (the image's config keeps the VM's), as for create: other domains may come and
    // go on the host meanwhile, so "the one new domain" is not a way to tell.
    const domid = await this.domidOf(uuid);
    await this.controlAsXenopsd(domid);
    return domid;
  }

  /**
   * The guest's control/ as xenopsd makes it: the guest's own
   * (`ocaml/xenopsd/xc/domain.ml make`: `mksubdirs dom_path [...; "control"; ...] rwperm`,
   * `xenbus_utils.ml rwperm_for_guest`: owner the domain, others nothing). libxl, which built
   * the domain, left it read-only to the guest with only the nodes it made inside writable; a
   * node dom0 creates there later (a control/shutdown the guest deleted, written again by the
   * next request) takes control/'s permissions (xenstored construct_node), so without this a
   * guest could not answer again where under xenopsd it can (docs/toolstack-behaviour.md#acknowledgement).
   */
  private async controlAsXenopsd(domid: number): Promise<void> {
    await this.xs.setPerms(`${domainHome(domid)}/control`, [`n${domid}`]);
  }

  async removeFile(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  realpath(path: string): Promise<string> {
    return realpath(path);
  }

  async isRegularFile(path: string): Promise<boolean> {
    return stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  async isReadable(path: string): Promise<boolean> {
    return access(path, constants.F_OK | constants.R_OK).then(
      () => true,
      () => false,
    );
  }

  async xsRead(path: string): Promise<string | null> {
    return this.xs.tryRead(path);
  }

  async xsWriteFresh(path: string, value: string): Promise<void> {
    await this.xs.transaction(async (tx) => {
      // The new node keeps the old one's permissions: libxl makes control/shutdown
      // the guest's own (under a control/ it may only read), and the guest must
      // still be able to acknowledge. xenopsd's guests can, too.
      let perms: string[] | null = null;
      if ((await tx.tryRead(path)) !== null) {
        perms = await tx.getPerms(path);
        await tx.rm(path);
      }
      await tx.write(path, value);
      if (perms) await tx.setPerms(path, perms);
    });
  }

  async xsReplaceTree(home: string, subtree: string, entries: Record<string, string>): Promise<void> {
    await this.xs.transaction(async (tx) => {
      if ((await tx.tryRead(`${home}/${subtree}`)) !== null) await tx.rm(`${home}/${subtree}`);
      for (const [k, v] of Object.entries(entries)) await tx.write(`${home}/${k}`, v);
    });
  }

  async xsWatch(path: string, cb: () => void): Promise<() => void> {
    const token = `xtv-xapi-${this.nextToken++}`;
    const off = this.xs.onWatch((_p, t) => {
      if (t === token) cb();
    });
    await this.xs.watch(path, token);
    return () => {
      off();
      this.xs.unwatch(path, token).catch(() => undefined);
    };
  }

  onDomainsChanged(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => {
      this.listeners.delete(cb);
    };
  }

  async close(): Promise<void> {
    this.xs.close();
  }
}

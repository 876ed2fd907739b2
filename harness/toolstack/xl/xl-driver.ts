// The xl toolstack driver: every operation is a short POSIX shell script
// (../dom0-scripts/xl-*.sh, run as dom0-script.ts says) in dom0 through a
// HostTarget (SSH to a Debian/Ubuntu Xen host, the embedded one included), so
// the same code drives any of them. What each request runs is in
// xl-request.sh; the xl model in harness/matrix/model-xl.ts assumes exactly
// that.
// Domains are created with a plain `xl create` (not -e), so the xl daemon (tools/xl/xl_vmcontrol.c
// main_create: -e turns the daemon off, -F only keeps it in the foreground) handles the guest's own
// poweroff/reboot/crash the way a real setup does.
//
// Every xl call is bounded twice: by `timeout` in dom0 (so nothing lingers
// there: `xl shutdown -w` of a guest that acks and ignores never returns) and
// by the exec's own bound. Non-zero exit: ToolstackError with xl's stderr;
// no answer: ConnectionError.
import { basename, dirname } from 'node:path';
import {
  ConnectionError,
  ToolstackError,
  type ChangeWatch,
  type ConsoleText,
  type DomainInfo,
  type HostFacts,
  type HostRequest,
  type InstallOptions,
  type RequestOptions,
  type ToolstackDriver,
  type VmRef,
  type XenstoredDomain,
} from '../driver.ts';
import { consoleLogFact, consoleLogFiles, consoleTailArgs, parseConsoleTail } from '../console-log.ts';
import { sha256File } from '../sha256-file.ts';
import { migrationFact } from '../live-migration.ts';
import { DEFAULT_XL_PATHS, XL_MARKER, checkVmName, configPath, imagePath, ownerOfMarkerLine, renderXlConfig, savePath, type XlPaths } from './xl-config.ts';
import { currentOwner, formatOwner } from '../vm-owner.ts';
import { domainInfoOf } from './xl-power-state.ts';
import { parseXlInfo, parseXlList, stderrSummary, type XlListEntry } from '../../../protocol/xl-output.ts';
import { domainWatchPaths, watchXenstore } from '../xenstore-watch.ts';
import { REPORT_DIR } from '../../../protocol/control.ts';
import { TargetCommandError, TargetUnreachableError, type HostTarget, type TargetExecResult } from '../../remote/target.ts';
import { checkRelPath, clockFrame, parseReadMany, parseXenstoredDomains } from '../xenstore-reads.ts';
import { Dom0Exit, lastFrame, newMarker, scriptCommand, type Dom0ScriptName, frames } from '../dom0-script.ts';

export interface XlDriverOptions {
  paths?: Partial<XlPaths>;
  /** Bound on calls other than requests (install, start, state, xenstore). Default 120 s. */
  timeoutMs?: number;
  /** Bound on copying one image file into dom0. Default 300 s. */
  copyTimeoutMs?: number;
  /** false: do not use guest console logs even where dom0 keeps them (as on hosts that keep none). */
  consoleLog?: boolean;
}

/** How long a request waits for xl to re-create a restarting VM's domain (see xl-request.sh). */
const RESTART_WAIT_SEC = 30;

/** How long a dom0 script waits for the install lock (xtv_lock in lib.sh). */
const LOCK_WAIT_SEC = 60;

/** `timeout` exit statuses: coreutils 124; busybox reports the signal (TERM 143, KILL 137). */
const TIMEOUT_STATUSES = new Set([124, 137, 143]);

/** Grace between TERM and KILL for a timed-out xl (timeout -k 5 in lib.sh's xtv_xl). */
const KILL_AFTER_SEC = 5;

/** What listDomains reports: xl list's domains, and the VMs with a save image. */
export interface DomainList {
  domains: XlListEntry[];
  saved: Set<string>;
}

const noop = (): void => undefined;

export class XlDriver implements ToolstackDriver {
  readonly kind = 'xl' as const;
  readonly paths: XlPaths;
  private readonly timeoutMs: number;
  private readonly copyTimeoutMs: number;
  /** install/uninstall share image files: one at a time within this process. */
  private installChain: Promise<unknown> = Promise.resolve();
  /** Last domid seen per VM name (a hint, always checked: xtv_domid in lib.sh, read-many.sh). */
  private readonly domids = new Map<string, number>();
  /** The xl list in flight, and the one queued behind it for whoever asked meanwhile (see listDomains). */
  private listing: Promise<DomainList> | null = null;
  private nextListing: Promise<DomainList> | null = null;

  private facts: Promise<HostFacts> | null = null;
  private info: Promise<{ code: number; text: string; fields: Record<string, string> }> | null = null;
  private readonly consoleLogWanted: boolean | undefined;

  constructor(
    readonly target: HostTarget,
    opts: XlDriverOptions = {},
  ) {
    this.paths = { ...DEFAULT_XL_PATHS, ...opts.paths };
    this.consoleLogWanted = opts.consoleLog;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.copyTimeoutMs = opts.copyTimeoutMs ?? 300_000;
  }

  // ---------------------------------------------------------------------------
  // Running things in dom0

  /**
   * Runs dom0 script `name` with `args`. Each xl call in it is bounded by
   * `timeoutMs` in dom0; `steps` is how many bounded xl calls it makes in a
   * row, so that the exec's own bound stays above theirs.
   */
  private async run(
    call: string,
    name: Dom0ScriptName,
    args: readonly string[],
    timeoutMs: number,
    opts: { input?: string; steps?: number } = {},
  ): Promise<TargetExecResult & { marker: string }> {
    const t0 = Date.now();
    const marker = newMarker();
    const command = scriptCommand(name, marker, Math.max(1, Math.ceil(timeoutMs / 1000)), args);
    const execBound = timeoutMs * (opts.steps ?? 1) + (KILL_AFTER_SEC + 15) * 1000;
    try {
      const r = await this.target.exec(command, { timeoutMs: execBound, ...(opts.input !== undefined ? { input: opts.input } : {}) });
      if (TIMEOUT_STATUSES.has(r.code) && Date.now() - t0 >= timeoutMs - 1000) {
        throw new ConnectionError(`${call}: no answer within ${Math.round(timeoutMs / 1000)} s on ${this.target.description} (stopped with timeout in dom0)`, {
          timedOut: true,
        });
      }
      return { ...r, marker };
    } catch (err) {
      if (err instanceof TargetUnreachableError) throw ConnectionError.fromUnreachable(call, err);
      throw err;
    }
  }

  /** Turns a non-zero exit into the ToolstackError that names it. */
  private check(call: string, r: TargetExecResult, vm?: VmRef): TargetExecResult {
    if (r.code === 0) return r;
    const stderr = r.stderr.trim();
    const name = vm?.name ?? '';
    switch (r.code as Dom0Exit) {
      case Dom0Exit.NoDomain:
        throw new ToolstackError('XL_NO_DOMAIN', [name], call, `${call}: no domain named ${name} exists`);
      case Dom0Exit.NotOurs:
        throw new ToolstackError('XL_NOT_OURS', [name], call, `${call}: ${configPath(this.paths, name)} exists but was not made by xtv; leaving it alone`);
      case Dom0Exit.NoConfig:
        throw new ToolstackError(
          'XL_NOT_INSTALLED',
          [name],
          call,
          `${call}: ${name} is not installed (no ${configPath(this.paths, name)}); run xtv install first`,
        );
      case Dom0Exit.NoSaveImage:
        throw new ToolstackError('XL_NO_SAVE_IMAGE', [name], call, `${call}: ${name} has no save image (${savePath(this.paths, name)}) to restore`);
      case Dom0Exit.Suspended:
        throw new ToolstackError(
          'XL_SUSPENDED',
          [name],
          call,
          `${call}: ${name} is suspended to ${savePath(this.paths, name)}; resume it, or hard-shutdown to discard the image`,
        );
      case Dom0Exit.LockHeld:
        throw new ToolstackError(
          'XL_LOCKED',
          [name],
          call,
          `${call}: another xtv process holds dom0's install lock for over ${LOCK_WAIT_SEC} s (${r.stderr.trim()})`,
        );
      case Dom0Exit.NameInUse:
        throw new ToolstackError('XL_NAME_IN_USE', [name], call, `${call}: a domain named ${name} runs but ${configPath(this.paths, name)} is not xtv's`);
    }
    throw new ToolstackError(`XL_EXIT_${r.code}`, stderr ? [stderr] : [], call, `${call}: exit ${r.code}${stderr ? `: ${stderrSummary(stderr)}` : ''}`);
  }

  /** Where the install lock lives (xtv_lock in lib.sh): beside the image, config-independent directories. */
  private get lockTop(): string {
    return dirname(this.paths.imageDir);
  }

  /** The cached domid to try first, as a script argument ('' for none). */
  private cachedDomid(vm: VmRef): string {
    const d = this.domids.get(vm.name);
    return d === undefined ? '' : String(d);
  }

  /** Notes the domid a script framed (xtv_domid, read-many.sh). */
  private noteDomid(vm: VmRef, r: { stdout: string; marker: string }): void {
    const d = lastFrame(r.stdout, r.marker, 'domid');
    if (d !== undefined && /^\d+$/.test(d)) this.domids.set(vm.name, Number(d));
  }

  private withVm<T>(vm: VmRef, f: () => Promise<T>): Promise<T> {
    checkVmName(vm.name);
    return f();
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.installChain.then(f, f);
    this.installChain = next.catch(() => undefined);
    return next;
  }

  // ---------------------------------------------------------------------------
  // install / uninstall

  async install(opts: InstallOptions): Promise<VmRef> {
    checkVmName(opts.name);
    const [kernelSha, initrdSha] = await Promise.all([sha256File(opts.kernelPath), sha256File(opts.initrdPath)]);
    const kernel = imagePath(this.paths, kernelSha, basename(opts.kernelPath));
    const ramdisk = imagePath(this.paths, initrdSha, basename(opts.initrdPath));
    const text = renderXlConfig({
      name: opts.name,
      type: opts.domainType,
      kernel,
      ramdisk,
      extra: opts.kernelArgs,
      memoryMiB: opts.memoryMiB,
      kernelSha256: kernelSha,
      initrdSha256: initrdSha,
      owner: formatOwner(currentOwner()),
      ...(opts.actions?.afterShutdown ? { onPoweroff: opts.actions.afterShutdown } : {}),
      ...(opts.actions?.afterReboot ? { onReboot: opts.actions.afterReboot } : {}),
      ...(opts.actions?.afterCrash ? { onCrash: opts.actions.afterCrash } : {}),
    });
    const vm: VmRef = { name: opts.name, id: opts.name };
    const call = `install ${opts.name}`;
    const cfg = configPath(this.paths, opts.name);
    return this.serial(async () => {
      this.check(call, await this.run(call, 'xl-install-check', [opts.name, cfg, XL_MARKER], this.timeoutMs), vm);
      const writeArgs = [this.lockTop, String(LOCK_WAIT_SEC), kernel, ramdisk, this.paths.configDir, cfg];
      for (let attempt = 1; ; attempt++) {
        await this.putImages(
          [
            { local: opts.kernelPath, remote: kernel, sha: kernelSha },
            { local: opts.initrdPath, remote: ramdisk, sha: initrdSha },
          ],
          call,
        );
        const r = await this.run(call, 'xl-write-config', writeArgs, this.timeoutMs, { input: text });
        if (r.code === Dom0Exit.ImageGone && attempt < 3) continue;
        if (r.code === Dom0Exit.ImageGone)
          throw new ToolstackError(
            'XL_COPY_FAILED',
            [],
            call,
            `${call}: the image files in dom0 were removed by another process ${attempt} times while installing`,
          );
        this.check(call, r, vm);
        return vm;
      }
    });
  }

  /**
   * Copies the image files dom0 does not have yet. They are named by content
   * (images/<sha256>/<file>) and only ever put there by a rename once the
   * copy's sha256 checked out, so one that exists is right: hashing it again
   * on every install cost the emulated dom0 a fraction of a second per file.
   */
  private async putImages(files: ReadonlyArray<{ local: string; remote: string; sha: string }>, call: string): Promise<void> {
    const r = this.check(
      call,
      await this.run(
        call,
        'missing-files',
        files.map((f) => f.remote),
        this.timeoutMs,
      ),
    ) as TargetExecResult & { marker: string };
    const missing = new Set(
      frames(r.stdout, r.marker)
        .filter((f) => f.word === 'missing')
        .map((f) => Number(f.text)),
    );
    for (const [i, f] of files.entries()) if (missing.has(i)) await this.putImage(f.local, f.remote, f.sha, call);
  }

  /** Copies one image file to its content-named place, checking the copy's sha256 before the rename. */
  private async putImage(local: string, remote: string, sha: string, call: string): Promise<void> {
    const tmp = `${remote}.tmp.${process.pid}.${Date.now()}`;
    try {
      await this.target.copyTo(local, tmp, { timeoutMs: this.copyTimeoutMs });
    } catch (err) {
      if (err instanceof TargetUnreachableError) throw ConnectionError.fromUnreachable(call, err, `copying ${local}: `);
      if (err instanceof TargetCommandError)
        throw new ToolstackError('XL_COPY_FAILED', [err.result.stderr.trim()], call, `${call}: copying ${local} to ${remote}: ${err.message}`);
      throw err;
    }
    const r = await this.run(call, 'put-file', [tmp, remote, sha], this.timeoutMs);
    if (r.code !== 0)
      throw new ToolstackError('XL_COPY_FAILED', [r.stderr.trim()], call, `${call}: the copy of ${local} in dom0 is corrupt (${r.stderr.trim()})`);
  }

  /**
   * Removes what install made: destroys the VM's domain if one runs, then its
   * config, its save image, its console logs, and every image file no other
   * xtv config names. A config that is not ours is left alone (XL_NOT_OURS).
   */
  async uninstall(vm: VmRef): Promise<void> {
    const logDir = (await this.hostFacts()).consoleLogDir;
    return this.withVm(vm, () =>
      this.serial(async () => {
        const call = `uninstall ${vm.name}`;
        const p = this.paths;
        const args = [
          this.lockTop,
          String(LOCK_WAIT_SEC),
          vm.name,
          configPath(p, vm.name),
          savePath(p, vm.name),
          p.imageDir,
          p.configDir,
          p.saveDir,
          XL_MARKER,
          ...(logDir ? consoleLogFiles(logDir, vm.name) : []),
        ];
        // The lock wait, xl list, and a destroy or few (the domain, an incarnation rename-restart kept, what a failed migration left).
        this.check(call, await this.run(call, 'xl-uninstall', args, this.timeoutMs, { steps: 6 }), vm);
      }),
    );
  }

  // ---------------------------------------------------------------------------
  // Power

  async start(vm: VmRef, opts: { paused?: boolean; timeoutMs?: number } = {}): Promise<void> {
    return this.withVm(vm, async () => {
      const cfg = configPath(this.paths, vm.name);
      const call = `xl create${opts.paused ? ' -p' : ''} ${cfg}`;
      const args = [vm.name, cfg, savePath(this.paths, vm.name), XL_MARKER, opts.paused ? '1' : '0'];
      // Two steps: xtv_create may try xl create twice.
      this.check(call, await this.run(call, 'xl-start', args, opts.timeoutMs ?? this.timeoutMs, { steps: 2 }), vm);
    });
  }

  async request(vm: VmRef, request: HostRequest, opts: RequestOptions): Promise<void> {
    return this.withVm(vm, async () => {
      const { call, args, steps } = this.requestCall(vm.name, request);
      // Waiting out a restart (xl-request.sh) may run the request twice, with a wait between.
      const bounded = request === 'resume' ? steps : steps * 2 + 1;
      this.check(call, await this.run(call, 'xl-request', args, opts.timeoutMs, { steps: bounded }), vm);
    });
  }

  /**
   * What xl-request.sh is given for one request, how the call is named in
   * errors, and how many bounded xl calls it makes in a row.
   */
  requestCall(name: string, request: HostRequest): { call: string; args: string[]; steps: number } {
    const cfg = configPath(this.paths, name);
    const save = savePath(this.paths, name);
    const args = [request, name, cfg, save, this.paths.saveDir, XL_MARKER, String(RESTART_WAIT_SEC)];
    const calls: Record<HostRequest, [string, number]> = {
      clean_shutdown: [`xl shutdown ${name}`, 1],
      clean_reboot: [`xl reboot ${name}`, 1],
      pause: [`xl pause ${name}`, 1],
      unpause: [`xl unpause ${name}`, 1],
      hard_shutdown: [`xl destroy ${name}`, 1],
      hard_reboot: [`xl destroy ${name} + xl create ${cfg}`, 3],
      suspend: [`xl save ${name} ${save}`, 1],
      resume: [`xl restore ${save}`, 1],
      migrate: [`xl migrate ${name} localhost`, 1],
    };
    const [call, steps] = calls[request];
    return { call, args, steps };
  }

  // ---------------------------------------------------------------------------
  // Observing

  /**
   * Every domain `xl list` shows, and which VMs have a save image. Callers
   * that come while a look is in flight share the next one: each still gets
   * a look that began after it asked (one that made a change sees it), but
   * the e2e files' and the runner's waits on many VMs at once cost one xl
   * list at a time instead of one each (0.2 CPU-s apiece in an emulated dom0).
   */
  listDomains(): Promise<DomainList> {
    if (!this.listing) return this.startListing();
    this.nextListing ??= this.listing.then(noop, noop).then(() => {
      this.nextListing = null;
      return this.startListing();
    });
    return this.nextListing;
  }

  private startListing(): Promise<DomainList> {
    const look = this.listOnce().finally(() => {
      if (this.listing === look) this.listing = null;
    });
    this.listing = look;
    return look;
  }

  private async listOnce(): Promise<DomainList> {
    const call = 'xl list';
    const list = () => this.run(call, 'xl-list', [this.paths.saveDir], this.timeoutMs);
    // xl list fails now and then while a domain is being destroyed under it: a read, so try again.
    let r = await list();
    for (let attempt = 2; r.code !== 0 && attempt <= 3; attempt++) {
      await new Promise((res) => setTimeout(res, 300));
      r = await list();
    }
    this.check(call, r);
    const parts = frames(r.stdout, r.marker);
    const saved = parts.find((f) => f.word === 'saved')?.lines ?? [];
    return {
      domains: parseXlList(parts[0]!.lines.join('\n')),
      saved: new Set(saved.filter((f) => f.endsWith('.chk')).map((f) => f.slice(0, -'.chk'.length))),
    };
  }

  async state(vm: VmRef): Promise<DomainInfo> {
    return this.withVm(vm, async () => {
      const { domains, saved } = await this.listDomains();
      const entry = domains.find((d) => d.name === vm.name);
      if (entry) this.domids.set(vm.name, entry.domid);
      return domainInfoOf(entry, saved.has(vm.name));
    });
  }

  /**
   * Reads several nodes relative to the VM's domain home in one round trip
   * and, usually, one xenstore-read process (read-many.sh: processes are
   * slow to start in an emulated dom0). Absent: null; no domain: every value
   * null. The domain's name is read in the same process, first: it checks
   * the cached domid without a process of its own; a cached domain that is
   * gone (no name) is looked up again with xl domid in the same script.
   */
  async readGuestMany(vm: VmRef, relPaths: readonly string[]): Promise<Record<string, string | null>> {
    return this.withVm(vm, async () => {
      if (relPaths.length === 0) return {};
      relPaths.forEach(checkRelPath);
      const call = `xenstore-read ${vm.name}`;
      const cached = this.cachedDomid(vm);
      const keys = ['name', ...relPaths];
      const r = await this.run(call, 'read-many', [vm.name, cached, ...keys], this.timeoutMs);
      if (r.code === Dom0Exit.NoDomain) {
        this.domids.delete(vm.name);
        return Object.fromEntries(relPaths.map((k) => [k, null]));
      }
      this.check(call, r, vm);
      const values = parseReadMany(r.stdout, r.marker, keys);
      if (values['name'] !== vm.name) {
        // Another VM's domain under the cached domid (domids come round again only after tens of
        // thousands of domains), or the domain went away while we read: look it up afresh.
        this.domids.delete(vm.name);
        if (cached !== '') return this.readGuestMany(vm, relPaths);
        return Object.fromEntries(relPaths.map((k) => [k, null]));
      }
      this.noteDomid(vm, r);
      return Object.fromEntries(relPaths.map((k) => [k, values[k] ?? null]));
    });
  }

  async readGuest(vm: VmRef, relPath: string): Promise<string | null> {
    return (await this.readGuestMany(vm, [relPath]))[relPath] ?? null;
  }

  /** Writes a node under the VM's domain home (write-guest.sh says how; guestWritable: the guest may acknowledge it). */
  async writeGuest(vm: VmRef, relPath: string, value: string, opts: { guestWritable?: boolean } = {}): Promise<void> {
    checkRelPath(relPath);
    await this.runOnDomain(vm, `xenstore-write ${vm.name} ${relPath}`, 'write-guest', [relPath, value, opts.guestWritable ? '1' : '0']);
  }

  async writeClock(vm: VmRef): Promise<number> {
    const call = `xenstore-write ${vm.name} control/testing (dom0's clock)`;
    const r = await this.runOnDomain(vm, call, 'write-clock', []);
    return clockFrame(call, r.stdout, r.marker);
  }

  /**
   * A script that finds the VM's domain as xtv_domid does (NAME, else the cached domid), given `args`
   * after those two: a domain found gone is forgotten, a failure is the ToolstackError that names
   * it, and the domid the script framed is cached.
   */
  private async runOnDomain(vm: VmRef, call: string, name: Dom0ScriptName, args: readonly string[]): Promise<TargetExecResult & { marker: string }> {
    return this.withVm(vm, async () => {
      const r = await this.run(call, name, [vm.name, this.cachedDomid(vm), ...args], this.timeoutMs);
      if (r.code === Dom0Exit.NoDomain) this.domids.delete(vm.name);
      this.check(call, r, vm);
      this.noteDomid(vm, r);
      return r;
    });
  }

  /** xenstore watches in dom0: the VM's domain coming and going, its agent's report. */
  watchChanges(vm: VmRef, domid: number | null, onChange: () => void): ChangeWatch {
    checkVmName(vm.name);
    return watchXenstore(this.target, domainWatchPaths(domid, REPORT_DIR), onChange);
  }

  async xenstoredDomains(): Promise<XenstoredDomain[]> {
    const call = 'xenstore-list /local/domain';
    const r = await this.run(call, 'xenstored-domains', [], this.timeoutMs);
    this.check(call, r);
    return parseXenstoredDomains(r.stdout, r.marker);
  }

  async listOwned(): Promise<VmRef[]> {
    const call = 'list xtv configs';
    const r = this.check(call, await this.run(call, 'xl-list-owned', [this.paths.configDir, XL_MARKER], this.timeoutMs));
    // One line per config: its name, a tab, its marker line (with the owner install recorded there).
    return r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const tab = l.indexOf('\t');
        const name = tab < 0 ? l : l.slice(0, tab);
        const owner = tab < 0 ? undefined : ownerOfMarkerLine(l.slice(tab + 1));
        return owner === undefined ? { name, id: name } : { name, id: name, owner };
      });
  }

  /** `xl info`, read once: the run's text and exit status, and its fields (the doctor reads more of them). */
  xlInfo(): Promise<{ code: number; text: string; fields: Record<string, string> }> {
    this.info ??= this.run('xl info', 'xl-info', [], this.timeoutMs).then((r) => ({
      code: r.code,
      text: r.stdout,
      fields: r.code === 0 ? parseXlInfo(r.stdout) : {},
    }));
    return this.info;
  }

  /** What this host offers: xl's version, whether (where) xenconsoled keeps guest logs, and which domain types Xen can live-migrate. */
  hostFacts(): Promise<HostFacts> {
    this.facts ??= (async () => {
      const info = await this.xlInfo().catch(() => null);
      const version = `xl (Xen ${info?.fields['xen_version'] || 'version unknown'})`;
      const c = this.paths.consoleLogDir
        ? { dir: this.paths.consoleLogDir, note: `console log: ${this.paths.consoleLogDir} (configured)` }
        : await consoleLogFact(this.target, this.consoleLogWanted !== false, this.timeoutMs);
      const m = migrationFact(info?.code === 0 ? (info.fields['virt_caps'] ?? '') : undefined);
      return {
        version,
        dom0: this.target.description,
        consoleLogDir: c.dir,
        ...(m.cannotMigrate ? { cannotMigrate: m.cannotMigrate } : {}),
        notes: [c.note, m.note],
      };
    })();
    return this.facts;
  }

  /**
   * The guest's console as xenconsoled logged it, the last `maxBytes`; null
   * when dom0 keeps no console logs, or none for this VM yet. Evidence for
   * reports: the agent writes one line per event on hvc0.
   */
  async consoleLog(vm: VmRef, opts: { maxBytes?: number } = {}): Promise<ConsoleText | null> {
    const dir = (await this.hostFacts()).consoleLogDir;
    if (!dir) return null;
    // xl names the domain after the VM: xenconsoled's file is guest-NAME.log (or, after a migration, guest-NAME--incoming.log).
    return this.withVm(vm, async () => {
      const r = await this.run(
        `read console log of ${vm.name}`,
        'console-tail',
        consoleTailArgs(consoleLogFiles(dir, vm.name), opts.maxBytes ?? 65536),
        this.timeoutMs,
      );
      return r.code === 0 ? parseConsoleTail(r.stdout) : null;
    });
  }

  /**
   * The last lines of xl's own log for the VM (its per-domain daemon writes
   * /var/log/xen/xl-NAME.log: restarts, shutdown reasons); '' when there is
   * none. xl's lines carry no time, so `sinceMs` cannot narrow them.
   */
  async toolstackLog(vm: VmRef, _sinceMs = 0): Promise<string> {
    return this.withVm(vm, async () => {
      const call = `read xl log of ${vm.name}`;
      const r = await this.run(call, 'xl-log', [vm.name], this.timeoutMs);
      return r.stdout;
    });
  }

  async close(): Promise<void> {
    await this.target.close();
  }
}

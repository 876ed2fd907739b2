// The xl toolstack driver: every operation is a short POSIX shell script run
// in dom0 through a HostTarget (SSH to a Debian/Ubuntu Xen host, the embedded
// one included), so the same code drives any of them.
//
// What each request does (the xl model in harness/matrix/model-xl.ts assumes
// exactly this):
//   clean_shutdown  xl shutdown NAME          (no -w: returns after the guest's ack)
//   clean_reboot    xl reboot NAME
//   hard_shutdown   xl destroy NAME           (of a saved VM: discards the save image)
//   hard_reboot     xl destroy NAME; xl create CFG
//   suspend         xl save NAME SAVE         (Suspended = save image, no domain)
//   resume          xl restore SAVE; rm SAVE
//   pause/unpause   xl pause/unpause NAME
// Domains are created with a plain `xl create` (not -e), so the xl daemon (tools/xl/xl_vmcontrol.c
// main_create: -e turns the daemon off, -F only keeps it in the foreground) handles the guest's own
// poweroff/reboot/crash the way a real setup does.
//
// Every xl call is bounded twice: by `timeout` in dom0 (so nothing lingers
// there: `xl shutdown -w` of a guest that acks and ignores never returns) and
// by the exec's own bound. Non-zero exit: ToolstackError with xl's stderr;
// no answer: ConnectionError.
import { randomBytes } from 'node:crypto';
import { basename, dirname } from 'node:path';
import {
  ConnectionError, ToolstackError,
  type ChangeWatch, type ConsoleText, type DomainInfo, type HostFacts, type HostRequest, type InstallOptions, type RequestOptions, type ToolstackDriver, type VmRef,
} from '../driver.ts';
import { consoleLogFact, consoleLogFile, tailScript } from '../console-log.ts';
import { sha256File } from '../sha256-file.ts';
import {
  DEFAULT_XL_PATHS, XL_MARKER, checkVmName, configPath, imagePath, isOwnedConfig, renderXlConfig, savePath,
  type XlPaths,
} from './xl-config.ts';
import { domainInfoOf } from './xl-power-state.ts';
import { parseXlInfo, parseXlList, stderrSummary, type XlListEntry } from '../../../protocol/xl-output.ts';
import { domainWatchPaths, watchXenstore } from '../xenstore-watch.ts';
import { REPORT_DIR } from '../../../protocol/control.ts';
import { TargetCommandError, TargetUnreachableError, shq, type HostTarget, type TargetExecResult } from '../../remote/target.ts';
import { checkRelPath, parseReadMany, readManyLoop } from '../xenstore-reads.ts';

export interface XlDriverOptions {
  paths?: Partial<XlPaths>;
  /** Bound on calls other than requests (install, start, state, xenstore). Default 120 s. */
  timeoutMs?: number;
  /** Bound on copying one image file into dom0. Default 300 s. */
  copyTimeoutMs?: number;
  /** false: do not use guest console logs even where dom0 keeps them (as on hosts that keep none). */
  consoleLog?: boolean;
}

/** Exit codes the driver's own scripts use for conditions it names itself. */
const EXIT = { noDomain: 90, notOurs: 91, noConfig: 92, noSaveImage: 93, suspended: 94, nameInUse: 95, lockHeld: 96, imageGone: 97 } as const;

/** How long a request waits for xl to re-create a restarting VM's domain (see waitingOutRestart). */
const RESTART_WAIT_SEC = 30;

/** How long a dom0 script waits for the install lock (see lockedScript). */
const LOCK_WAIT_SEC = 60;

/** `timeout` exit statuses: coreutils 124; busybox reports the signal (TERM 143, KILL 137). */
const TIMEOUT_STATUSES = new Set([124, 137, 143]);

/** Grace between TERM and KILL for a timed-out xl. */
const KILL_AFTER_SEC = 5;

/** Shell line that sets $d to the VM's domid from xl, or exits EXIT.noDomain. */
function domidLookup(vm: VmRef): string {
  return `d=$(xl domid ${shq(vm.name)} 2>/dev/null) || exit ${EXIT.noDomain}`;
}

/** What listDomains reports: xl list's domains, and the VMs with a save image. */
export interface DomainList { domains: XlListEntry[]; saved: Set<string> }

const noop = (): void => undefined;

export class XlDriver implements ToolstackDriver {
  readonly kind = 'xl' as const;
  readonly paths: XlPaths;
  private readonly timeoutMs: number;
  private readonly copyTimeoutMs: number;
  /** install/uninstall share image files: one at a time within this process. */
  private installChain: Promise<unknown> = Promise.resolve();
  /** Last domid seen per VM name (a hint, always checked; see domidLine). */
  private readonly domids = new Map<string, number>();
  /** The xl list in flight, and the one queued behind it for whoever asked meanwhile (see listDomains). */
  private listing: Promise<DomainList> | null = null;
  private nextListing: Promise<DomainList> | null = null;

  private facts: Promise<HostFacts> | null = null;
  private info: Promise<{ code: number; text: string; fields: Record<string, string> }> | null = null;
  private readonly consoleLogWanted: boolean | undefined;

  constructor(readonly target: HostTarget, opts: XlDriverOptions = {}) {
    this.paths = { ...DEFAULT_XL_PATHS, ...opts.paths };
    this.consoleLogWanted = opts.consoleLog;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.copyTimeoutMs = opts.copyTimeoutMs ?? 300_000;
  }

  // ---------------------------------------------------------------------------
  // Running things in dom0

  /** `timeout` prefix for one xl call bounded by `ms`. */
  private bound(ms: number): string {
    return `timeout -k ${KILL_AFTER_SEC} ${Math.max(1, Math.ceil(ms / 1000))}`;
  }

  /**
   * `xl create ARGS`, tried once more when libxl gave up waiting for
   * xenconsoled to set up the console: libxl_create.c console_xswait_callback,
   * LIBXL_INIT_TIMEOUT 10 s, which an overloaded dom0 (an emulated one under a
   * burst of boots) can miss; libxl has destroyed the half-made domain by then.
   * Any other failure is returned as it is. Two bounded xl calls: count it as
   * two steps.
   */
  private createCommand(t: string, args: string): string {
    return `xtv_out=$(${t} xl create ${args} 2>&1) || { xtv_rc=$?; case $xtv_out in *'console tty: timed out'*) ${t} xl create ${args};; *) printf '%s\n' "$xtv_out" >&2; exit $xtv_rc;; esac; }`;
  }

  /**
   * Runs a script in dom0. `steps` is how many bounded xl calls it makes in a
   * row, so that the exec's own bound stays above theirs.
   */
  private async sh(call: string, script: string, timeoutMs: number, opts: { input?: string; steps?: number } = {}): Promise<TargetExecResult & { elapsedMs: number }> {
    const t0 = Date.now();
    const execBound = timeoutMs * (opts.steps ?? 1) + (KILL_AFTER_SEC + 15) * 1000;
    try {
      const r = await this.target.exec(script, { timeoutMs: execBound, ...(opts.input !== undefined ? { input: opts.input } : {}) });
      const elapsedMs = Date.now() - t0;
      if (TIMEOUT_STATUSES.has(r.code) && elapsedMs >= timeoutMs - 1000) {
        throw new ConnectionError(`${call}: no answer within ${Math.round(timeoutMs / 1000)} s on ${this.target.description} (stopped with timeout in dom0)`, { timedOut: true });
      }
      return { ...r, elapsedMs };
    } catch (err) {
      if (err instanceof TargetUnreachableError) throw new ConnectionError(`${call}: ${err.message}`, { cause: err, timedOut: err.timedOut });
      throw err;
    }
  }

  /** Turns a non-zero exit into the ToolstackError that names it. */
  private check(call: string, r: TargetExecResult, vm?: VmRef): TargetExecResult {
    if (r.code === 0) return r;
    const stderr = r.stderr.trim();
    const name = vm?.name ?? '';
    switch (r.code) {
      case EXIT.noDomain: throw new ToolstackError('XL_NO_DOMAIN', [name], call, `${call}: no domain named ${name} exists`);
      case EXIT.notOurs: throw new ToolstackError('XL_NOT_OURS', [name], call, `${call}: ${configPath(this.paths, name)} exists but was not made by xtv; leaving it alone`);
      case EXIT.noConfig: throw new ToolstackError('XL_NOT_INSTALLED', [name], call, `${call}: ${name} is not installed (no ${configPath(this.paths, name)}); run xtv install first`);
      case EXIT.noSaveImage: throw new ToolstackError('XL_NO_SAVE_IMAGE', [name], call, `${call}: ${name} has no save image (${savePath(this.paths, name)}) to restore`);
      case EXIT.suspended: throw new ToolstackError('XL_SUSPENDED', [name], call, `${call}: ${name} is suspended to ${savePath(this.paths, name)}; resume it, or hard-shutdown to discard the image`);
      case EXIT.lockHeld: throw new ToolstackError('XL_LOCKED', [name], call, `${call}: another xtv process holds dom0's install lock for over ${LOCK_WAIT_SEC} s (${r.stderr.trim()})`);
      case EXIT.nameInUse: throw new ToolstackError('XL_NAME_IN_USE', [name], call, `${call}: a domain named ${name} runs but ${configPath(this.paths, name)} is not xtv's`);
    }
    throw new ToolstackError(`XL_EXIT_${r.code}`, stderr ? [stderr] : [], call, `${call}: exit ${r.code}${stderr ? `: ${stderrSummary(stderr)}` : ''}`);
  }

  /** Shell lines that stop with EXIT.noConfig/notOurs unless NAME's config is ours. */
  private requireOwnedConfig(name: string): string {
    const cfg = shq(configPath(this.paths, name));
    return `[ -e ${cfg} ] || exit ${EXIT.noConfig}\nhead -n 1 ${cfg} | grep -qF ${shq(XL_MARKER)} || exit ${EXIT.notOurs}\n`;
  }

  /**
   * Wraps a dom0 script in the install lock: installs and uninstalls share
   * image files and directories, and other xtv processes (parallel runs, other
   * users) may work on the same host at once. The lock is a directory holding
   * its owner's pid; one whose owner is gone (killed with its SSH session) is
   * taken over, so it can never stay held.
   */
  private lockedScript(script: string): string {
    return [
      `xtv_top=${shq(dirname(this.paths.imageDir))}; xtv_lock="$xtv_top/.lock"; n=0`,
      // The holder may remove the top directory on its way out (the last uninstall): make it again.
      'until mkdir -p "$xtv_top" && mkdir "$xtv_lock" 2>/dev/null; do',
      '  o=$(cat "$xtv_lock/pid" 2>/dev/null)',
      '  if [ -n "$o" ] && ! kill -0 "$o" 2>/dev/null; then rm -rf "$xtv_lock"; continue; fi',
      `  n=$((n+1)); [ $n -gt ${LOCK_WAIT_SEC * 5} ] && { echo "xtv: $xtv_lock is held by pid $o" >&2; exit ${EXIT.lockHeld}; }`,
      '  sleep 0.2',
      'done',
      'echo $$ > "$xtv_lock/pid"',
      'trap \'rm -rf "$xtv_lock"; rmdir "$xtv_top" 2>/dev/null\' EXIT',
      "trap 'exit 1' INT TERM HUP",
      script,
    ].join('\n');
  }

  /**
   * Shell line that sets $d to the VM's domid, echoed as "XTV-DOMID n" for
   * the cache. `xl domid` is the slowest thing here (half a second in an
   * emulated dom0), so the last domid seen is tried first and kept only if
   * xenstore still gives that domain the VM's name (domids are not reused
   * soon; a reboot or restore makes a new one and fails the check).
   */
  private domidLine(vm: VmRef): string {
    const cached = this.domids.get(vm.name);
    const lookup = domidLookup(vm);
    const line = cached === undefined
      ? lookup
      : `d=${cached}; [ "$(xenstore-read /local/domain/${cached}/name 2>/dev/null)" = ${shq(vm.name)} ] || { ${lookup}; }`;
    return `${line}\necho "XTV-DOMID $d"`;
  }

  /** Notes the domid a script reported (see domidLine). */
  private noteDomid(vm: VmRef, stdout: string): void {
    const m = /^XTV-DOMID (\d+)$/m.exec(stdout);
    if (m) this.domids.set(vm.name, Number(m[1]));
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
      name: opts.name, type: opts.domainType, kernel, ramdisk, extra: opts.kernelArgs, memoryMiB: opts.memoryMiB,
      kernelSha256: kernelSha, initrdSha256: initrdSha,
      ...(opts.actions?.afterShutdown ? { onPoweroff: opts.actions.afterShutdown } : {}),
      ...(opts.actions?.afterReboot ? { onReboot: opts.actions.afterReboot } : {}),
      ...(opts.actions?.afterCrash ? { onCrash: opts.actions.afterCrash } : {}),
    });
    const vm: VmRef = { name: opts.name, id: opts.name };
    const call = `install ${opts.name}`;
    return this.serial(async () => {
      const cfg = shq(configPath(this.paths, opts.name));
      // An existing config must be ours; without one, no domain may already use the name.
      this.check(call, await this.sh(call, [
        `if [ -e ${cfg} ]; then head -n 1 ${cfg} | grep -qF ${shq(XL_MARKER)} || exit ${EXIT.notOurs}; exit 0; fi`,
        `if xl domid ${shq(opts.name)} >/dev/null 2>&1; then exit ${EXIT.nameInUse}; fi`,
      ].join('\n'), this.timeoutMs), vm);
      // Same bytes: nothing to do. Otherwise write aside and rename, so a half-written config never counts.
      // Under the lock, and only while both images are there: another process's uninstall removes
      // images no config names, and ours names them only once this config exists.
      const tmp = `${configPath(this.paths, opts.name)}.tmp.$$`;
      const writeConfig = this.lockedScript([
        `[ -s ${shq(kernel)} ] && [ -s ${shq(ramdisk)} ] || exit ${EXIT.imageGone}`,
        `mkdir -p ${shq(this.paths.configDir)} || exit 1`,
        `cat > ${shq(tmp)} || exit 1`,
        `if cmp -s ${shq(tmp)} ${cfg}; then rm -f ${shq(tmp)}; else mv ${shq(tmp)} ${cfg}; fi`,
      ].join('\n'));
      for (let attempt = 1; ; attempt++) {
        await this.putImages([{ local: opts.kernelPath, remote: kernel, sha: kernelSha }, { local: opts.initrdPath, remote: ramdisk, sha: initrdSha }], call);
        const r = await this.sh(call, writeConfig, this.timeoutMs, { input: text });
        if (r.code === EXIT.imageGone && attempt < 3) continue;
        if (r.code === EXIT.imageGone) throw new ToolstackError('XL_COPY_FAILED', [], call, `${call}: the image files in dom0 were removed by another process ${attempt} times while installing`);
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
    const r = this.check(call, await this.sh(call, `${files.map((f, i) => `[ -s ${shq(f.remote)} ] || echo missing ${i}`).join('\n')}\nexit 0`, this.timeoutMs));
    for (const [i, f] of files.entries()) if (r.stdout.split('\n').includes(`missing ${i}`)) await this.putImage(f.local, f.remote, f.sha, call);
  }

  /** Copies one image file to its content-named place, checking the copy's sha256 before the rename. */
  private async putImage(local: string, remote: string, sha: string, call: string): Promise<void> {
    const tmp = `${remote}.tmp.${process.pid}.${Date.now()}`;
    try {
      await this.target.copyTo(local, tmp, { timeoutMs: this.copyTimeoutMs });
    } catch (err) {
      if (err instanceof TargetUnreachableError) throw new ConnectionError(`${call}: copying ${local}: ${err.message}`, { cause: err, timedOut: err.timedOut });
      if (err instanceof TargetCommandError) throw new ToolstackError('XL_COPY_FAILED', [err.result.stderr.trim()], call, `${call}: copying ${local} to ${remote}: ${err.message}`);
      throw err;
    }
    const r = await this.sh(call, `sum=$(sha256sum ${shq(tmp)} | cut -d' ' -f1); if [ "$sum" = ${shq(sha)} ]; then mv ${shq(tmp)} ${shq(remote)}; else rm -f ${shq(tmp)}; echo "sha256 $sum, expected ${sha}" >&2; exit 1; fi`, this.timeoutMs);
    if (r.code !== 0) throw new ToolstackError('XL_COPY_FAILED', [r.stderr.trim()], call, `${call}: the copy of ${local} in dom0 is corrupt (${r.stderr.trim()})`);
  }

  /**
   * Removes what install made: destroys the VM's domain if one runs, then its
   * config, its save image, and every image file no other xtv config names.
   * A config that is not ours is left alone (XL_NOT_OURS).
   */
  async uninstall(vm: VmRef): Promise<void> {
    return this.withVm(vm, () => this.serial(async () => {
      const call = `uninstall ${vm.name}`;
      const p = this.paths;
      const cfg = shq(configPath(p, vm.name));
      const script = [
        `if [ -e ${cfg} ]; then head -n 1 ${cfg} | grep -qF ${shq(XL_MARKER)} || exit ${EXIT.notOurs}; fi`,
        `if [ -e ${cfg} ] && xl domid ${shq(vm.name)} >/dev/null 2>&1; then ${this.bound(this.timeoutMs)} xl destroy ${shq(vm.name)} || exit $?; fi`,
        `rm -f ${cfg} ${shq(savePath(p, vm.name))}`,
        // Image directories end in "/": a config names <dir>/<file>, so the prefix match is exact.
        `for d in ${shq(p.imageDir)}/*/; do [ -d "$d" ] || continue; grep -qsF "$d" ${shq(p.configDir)}/*.cfg || rm -rf "$d"; done`,
        // The directories go only with the last config: while any VM is installed, its xl save
        // may be about to write into the save directory.
        `rmdir ${shq(p.configDir)} 2>/dev/null && rmdir ${shq(p.saveDir)} ${shq(p.imageDir)} 2>/dev/null`,
        'exit 0',
      ].join('\n');
      // dirname(imageDir) holds the lock: the lock's exit trap removes it once empty.
      this.check(call, await this.sh(call, this.lockedScript(script), this.timeoutMs, { steps: 2 }), vm);
    }));
  }

  // ---------------------------------------------------------------------------
  // Power

  async start(vm: VmRef, opts: { paused?: boolean } = {}): Promise<void> {
    return this.withVm(vm, async () => {
      const call = `xl create${opts.paused ? ' -p' : ''} ${configPath(this.paths, vm.name)}`;
      const script = this.requireOwnedConfig(vm.name)
        + `[ -e ${shq(savePath(this.paths, vm.name))} ] && ! xl domid ${shq(vm.name)} >/dev/null 2>&1 && exit ${EXIT.suspended}\n`
        + this.createCommand(this.bound(this.timeoutMs), `${opts.paused ? '-p ' : ''}${shq(configPath(this.paths, vm.name))}`);
      this.check(call, await this.sh(call, script, this.timeoutMs, { steps: 2 }), vm);
    });
  }

  async request(vm: VmRef, request: HostRequest, opts: RequestOptions): Promise<void> {
    return this.withVm(vm, async () => {
      const { call, script, steps } = this.requestScript(vm.name, request, opts.timeoutMs);
      // resume works on a save image, not a domain: nothing to wait for.
      const wrapped = request === 'resume' ? { script, steps } : { script: this.waitingOutRestart(vm.name, script), steps: steps * 2 + 1 };
      this.check(call, await this.sh(call, wrapped.script, opts.timeoutMs, { steps: wrapped.steps }), vm);
    });
  }

  /**
   * Runs a request's script and, when xl found no domain while xl is
   * re-creating the VM (the guest rebooted itself, or on_poweroff / on_crash
   * say restart: xl's daemon destroys the domain and creates the new one about
   * 2 s later, longer under load), waits for the new domain and runs it once
   * more, so that `xtv reboot` right after a guest's own reboot asks the new
   * domain instead of failing. The new domain may already be there when the
   * failure is looked at: what counts is xl's "invalid domain identifier", not
   * whether a domain exists afterwards. A VM that is simply off has no xl
   * process for its config, and fails at once as before.
   */
  private waitingOutRestart(name: string, script: string): string {
    const n = shq(name);
    return [
      `xtv_cfg=${shq(configPath(this.paths, name))}`,
      // xl's per-domain daemon keeps the argv it was started with (xl create [-p] CFG); so does an xl create in
      // progress, or the timeout running it. Only those count: a shell's argv (ours too) may hold the same words.
      'xtv_restarting() {',
      '  for f in /proc/[0-9]*/cmdline; do',
      '    c=$(tr \'\\0\' \' \' 2>/dev/null < "$f") || continue',
      '    case "${c%% *}" in xl|*/xl|timeout) ;; *) continue ;; esac',
      '    case "$c" in *" create "*"$xtv_cfg"*) return 0 ;; esac',
      '  done',
      '  return 1',
      '}',
      `xtv_request() {
${script}
}`,
      'xtv_err=/tmp/xtv-request-err.$$',
      '(xtv_request) 2>"$xtv_err"; rc=$?',
      'if [ $rc -ne 0 ]; then',
      '  cat "$xtv_err" >&2',
      '  if grep -q "invalid domain identifier" "$xtv_err" && xtv_restarting; then',
      `    echo "xtv: ${name.replace(/[^A-Za-z0-9_.-]/g, '')} had no domain while xl re-creates it; waiting for the new one" >&2`,
      `    i=0; until xl domid ${n} >/dev/null 2>&1; do i=$((i+1)); [ $i -gt ${RESTART_WAIT_SEC * 2} ] && break; xtv_restarting || break; sleep 0.5; done`,
      '    (xtv_request); rc=$?',
      '  fi',
      'fi',
      'rm -f "$xtv_err"',
      'exit $rc',
    ].join('\n');
  }

  /** The dom0 script of one request (exported for the unit tests through requestScriptFor). */
  requestScript(name: string, request: HostRequest, timeoutMs: number): { call: string; script: string; steps: number } {
    const n = shq(name);
    const t = this.bound(timeoutMs);
    const cfg = shq(configPath(this.paths, name));
    const save = shq(savePath(this.paths, name));
    switch (request) {
      case 'clean_shutdown': return { call: `xl shutdown ${name}`, script: `${t} xl shutdown ${n}`, steps: 1 };
      case 'clean_reboot': return { call: `xl reboot ${name}`, script: `${t} xl reboot ${n}`, steps: 1 };
      case 'pause': return { call: `xl pause ${name}`, script: `${t} xl pause ${n}`, steps: 1 };
      case 'unpause': return { call: `xl unpause ${name}`, script: `${t} xl unpause ${n}`, steps: 1 };
      case 'hard_shutdown':
        // A saved VM has no domain: its "hard shutdown" discards the save image.
        return {
          call: `xl destroy ${name}`,
          script: `if ! xl domid ${n} >/dev/null 2>&1 && [ -e ${save} ]; then rm -f ${save}; exit 0; fi\n${t} xl destroy ${n}`,
          steps: 1,
        };
      case 'hard_reboot':
        return {
          call: `xl destroy ${name} + xl create ${configPath(this.paths, name)}`,
          script: this.requireOwnedConfig(name) + `${t} xl destroy ${n} || exit $?\n${this.createCommand(t, cfg)}`,
          steps: 3,
        };
      case 'suspend': {
        const part = shq(`${savePath(this.paths, name)}.part`);
        return {
          call: `xl save ${name} ${savePath(this.paths, name)}`,
          // Saved aside and renamed: the image exists only once complete.
          script: `mkdir -p ${shq(this.paths.saveDir)} || exit 1\n${t} xl save ${n} ${part} || { rc=$?; rm -f ${part}; exit $rc; }\nmv ${part} ${save}`,
          steps: 1,
        };
      }
      case 'resume':
        return {
          call: `xl restore ${savePath(this.paths, name)}`,
          script: `[ -e ${save} ] || exit ${EXIT.noSaveImage}\n${t} xl restore ${save} || exit $?\nrm -f ${save}`,
          steps: 1,
        };
    }
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
    const script = `${this.bound(this.timeoutMs)} xl list || exit $?\necho '--xtv-saved--'\nls ${shq(this.paths.saveDir)} 2>/dev/null; exit 0`;
    // xl list fails now and then while a domain is being destroyed under it: a read, so try again.
    let r = await this.sh(call, script, this.timeoutMs);
    for (let attempt = 2; r.code !== 0 && attempt <= 3; attempt++) {
      await new Promise((res) => setTimeout(res, 300));
      r = await this.sh(call, script, this.timeoutMs);
    }
    this.check(call, r);
    const [list, saved = ''] = r.stdout.split('--xtv-saved--\n');
    return {
      domains: parseXlList(list ?? ''),
      saved: new Set(saved.split('\n').filter((f) => f.endsWith('.chk')).map((f) => f.slice(0, -'.chk'.length))),
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
   * and, usually, one xenstore-read process (processes are slow to start in an
   * emulated dom0). Absent: null; no domain: every value null. The domain's
   * name is read in the same process, first: it checks the cached domid
   * (domidLine's check, without a process of its own); a cached domain that
   * is gone (no name) is looked up again with xl domid in the same script.
   */
  async readGuestMany(vm: VmRef, relPaths: readonly string[]): Promise<Record<string, string | null>> {
    return this.withVm(vm, async () => {
      if (relPaths.length === 0) return {};
      const call = `xenstore-read ${vm.name}`;
      const marker = `XTV-${randomBytes(6).toString('hex')}`;
      const cached = this.domids.get(vm.name);
      const lookup = domidLookup(vm);
      const script = [
        cached === undefined ? lookup : `d=${cached}`,
        // No name: the cached domain is gone (a reboot or a restore made a new one): look it up, read again.
        ...readManyLoop(marker, ['name', ...relPaths], cached === undefined ? undefined : { key: 'name', once: lookup }),
        'echo "XTV-DOMID $d"',
      ].join('\n');
      const r = await this.sh(call, script, this.timeoutMs);
      if (r.code === EXIT.noDomain) {
        this.domids.delete(vm.name);
        return Object.fromEntries(relPaths.map((k) => [k, null]));
      }
      this.check(call, r, vm);
      const values = parseReadMany(r.stdout, marker, ['name', ...relPaths]);
      if (values['name'] !== vm.name) {
        // Another VM's domain under the cached domid (domids come round again only after tens of
        // thousands of domains), or the domain went away while we read: look it up afresh.
        this.domids.delete(vm.name);
        if (cached !== undefined) return this.readGuestMany(vm, relPaths);
        return Object.fromEntries(relPaths.map((k) => [k, null]));
      }
      this.noteDomid(vm, r.stdout);
      return Object.fromEntries(relPaths.map((k) => [k, values[k] ?? null]));
    });
  }

  async readGuest(vm: VmRef, relPath: string): Promise<string | null> {
    return (await this.readGuestMany(vm, [relPath]))[relPath] ?? null;
  }

  /**
   * Writes a node under the VM's domain home. guestWritable: the node is
   * first created empty and handed to the guest (`xenstore-chmod p n<domid>`:
   * owner the guest, nobody else) and only then given its value; a new node
   * under control/ would otherwise inherit a perm that lets the guest read
   * but not acknowledge. Values are written raw (-R: no escape processing).
   */
  async writeGuest(vm: VmRef, relPath: string, value: string, opts: { guestWritable?: boolean } = {}): Promise<void> {
    return this.withVm(vm, async () => {
      checkRelPath(relPath);
      const call = `xenstore-write ${vm.name} ${relPath}`;
      const lines = [
        this.domidLine(vm),
        `p=/local/domain/$d/${relPath}`,
      ];
      if (opts.guestWritable) lines.push(`xenstore-write -R -- "$p" '' || exit $?`, `xenstore-chmod "$p" "n$d" || exit $?`);
      lines.push(`xenstore-write -R -- "$p" ${shq(value)}`);
      const r = await this.sh(call, lines.join('\n'), this.timeoutMs);
      if (r.code === EXIT.noDomain) this.domids.delete(vm.name);
      this.check(call, r, vm);
      this.noteDomid(vm, r.stdout);
    });
  }

  /** Removes a node under the VM's domain home (absent already: fine). */
  async removeGuest(vm: VmRef, relPath: string): Promise<void> {
    return this.withVm(vm, async () => {
      checkRelPath(relPath);
      const call = `xenstore-rm ${vm.name} ${relPath}`;
      const script = `${this.domidLine(vm)}\nxenstore-rm "/local/domain/$d/${relPath}" 2>/dev/null; exit 0`;
      this.check(call, await this.sh(call, script, this.timeoutMs), vm);
    });
  }

  /** xenstore watches in dom0: the VM's domain coming and going, its agent's report. */
  watchChanges(vm: VmRef, domid: number | null, onChange: () => void): ChangeWatch {
    checkVmName(vm.name);
    return watchXenstore(this.target, domainWatchPaths(domid, REPORT_DIR), onChange);
  }

  async listOwned(): Promise<VmRef[]> {
    const call = 'list xtv configs';
    // One awk for every config (a head, a grep and a basename per file cost dom0 a fork each): the
    // files whose first line has the marker. No config at all: the glob stays as is and awk says nothing.
    const awk = `FNR == 1 && index($0, m) { f = FILENAME; sub(/^.*\\//, "", f); sub(/\\.cfg$/, "", f); print f }`;
    const script = `awk -v m=${shq(XL_MARKER)} ${shq(awk)} ${shq(this.paths.configDir)}/*.cfg 2>/dev/null; exit 0`;
    const r = this.check(call, await this.sh(call, script, this.timeoutMs));
    return r.stdout.split('\n').filter((n) => n !== '').map((name) => ({ name, id: name }));
  }

  /** The config file's text as dom0 has it, or null. */
  async readConfig(vm: VmRef): Promise<string | null> {
    return this.withVm(vm, async () => {
      const call = `read ${configPath(this.paths, vm.name)}`;
      const r = await this.sh(call, `cat ${shq(configPath(this.paths, vm.name))} 2>/dev/null || exit ${EXIT.noConfig}`, this.timeoutMs);
      if (r.code === EXIT.noConfig) return null;
      this.check(call, r, vm);
      return isOwnedConfig(r.stdout) ? r.stdout : null;
    });
  }

  /** `xl info`, read once: the run's text and exit status, and its fields (the doctor reads more of them). */
  xlInfo(): Promise<{ code: number; text: string; fields: Record<string, string> }> {
    this.info ??= this.sh('xl info', 'xl info 2>&1', this.timeoutMs)
      .then((r) => ({ code: r.code, text: r.stdout, fields: r.code === 0 ? parseXlInfo(r.stdout) : {} }));
    return this.info;
  }

  /** What this host offers: xl's version, and whether (where) xenconsoled keeps guest logs. */
  hostFacts(): Promise<HostFacts> {
    this.facts ??= (async () => {
      const info = await this.xlInfo().catch(() => null);
      const version = `xl (Xen ${info?.fields['xen_version'] || 'version unknown'})`;
      const c = this.paths.consoleLogDir
        ? { dir: this.paths.consoleLogDir, note: `console log: ${this.paths.consoleLogDir} (configured)` }
        : await consoleLogFact(this.target, this.consoleLogWanted !== false, this.timeoutMs);
      return { version, dom0: this.target.description, consoleLogDir: c.dir, notes: [c.note] };
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
    // xl names the domain after the VM: xenconsoled's file is guest-NAME.log.
    const path = consoleLogFile(dir, vm.name);
    return this.withVm(vm, async () => {
      const r = await this.sh(`read console log of ${vm.name}`, tailScript(path, opts.maxBytes ?? 65536), this.timeoutMs);
      return r.code === 0 ? { text: r.stdout, path } : null;
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
      const r = await this.sh(call, `tail -n 60 ${shq(`/var/log/xen/xl-${vm.name}.log`)} 2>/dev/null; exit 0`, this.timeoutMs);
      return r.stdout;
    });
  }

  async close(): Promise<void> {
    await this.target.close();
  }
}

// Guest console logs in dom0: a capability some hosts have and others do not.
// xenconsoled writes one file per domain only when started with --log=guest
// or --log=all, as <log-dir>/guest-<the domain's xenstore name>.log, the
// directory being --log-dir or XEN_LOG_DIR/console (xen
// tools/console/daemon/main.c main(), io.c create_domain_log(), RELEASE-4.17.7).
// Debian turns it on with XENCONSOLED_TRACE=guest; XenServer and XCP-ng leave
// it off. So the drivers look at how xenconsoled runs instead of assuming,
// and when it keeps no log the harness does without (the guest's report in
// xenstore and the toolstack's answer are the evidence then).
import type { HostTarget } from '../remote/target.ts';
import type { ConsoleText } from './driver.ts';
import { newMarker, scriptCommand } from './dom0-script.ts';

/** xenconsoled's default log directory (XEN_LOG_DIR "/console"; Debian's and XenServer's builds). */
export const XENCONSOLED_DEFAULT_DIR = '/var/log/xen/console';

/** Where xenconsoled keeps guest logs, from its arguments; null when it keeps none (or does not run). */
export function consoleLogDirOf(args: readonly string[]): string | null {
  if (args.length === 0) return null;
  let guest = false;
  let dir = XENCONSOLED_DEFAULT_DIR;
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    const value = (name: string): string | undefined => (a === `--${name}` ? args[++i] : a.startsWith(`--${name}=`) ? a.slice(name.length + 3) : undefined);
    const log = value('log');
    if (log !== undefined) guest = log === 'guest' || log === 'all';
    const d = value('log-dir');
    if (d !== undefined) dir = d;
  }
  return guest ? dir : null;
}

/** Finds out once whether, and where, dom0 keeps guest console logs. */
export async function discoverConsoleLogDir(target: HostTarget, timeoutMs: number): Promise<string | null> {
  const r = await target.exec(scriptCommand('xenconsoled-args', newMarker(), 1, []), { timeoutMs });
  return consoleLogDirOf(r.stdout.split('\n').filter((l) => l !== ''));
}

/**
 * The console-log fact of a host and the note that says how it was found:
 * declared absent (`wanted` false), or looked up in dom0. A look that fails
 * counts as no log (the harness works without one), and the note says why.
 */
export async function consoleLogFact(target: HostTarget, wanted: boolean, timeoutMs: number): Promise<{ dir: string | null; note: string }> {
  if (!wanted) return { dir: null, note: 'console log: not used (declared absent)' };
  try {
    const dir = await discoverConsoleLogDir(target, timeoutMs);
    return dir
      ? { dir, note: `console log: xenconsoled keeps guest logs in ${dir}` }
      : { dir: null, note: 'console log: none (xenconsoled runs without --log=guest); what a guest did after its domain is gone is not seen' };
  } catch (err) {
    return { dir: null, note: `console log: not used (could not look at xenconsoled: ${err instanceof Error ? err.message : String(err)})` };
  }
}

/** The log file of the domain named `domainName` (xenstore /local/domain/N/name). */
export function consoleLogFile(dir: string, domainName: string): string {
  return `${dir}/guest-${domainName}.log`;
}

/**
 * The log files of the domain named `domainName` as xl may have made it: its own, and, for a domain
 * that arrived by `xl migrate` (made as NAME--incoming: tools/xl/xl_vmcontrol.c create_domain, renamed
 * back by xl_migrate.c migrate_receive), the one xenconsoled opened under that name
 * (tools/console/daemon/io.c create_console_log reads the name once, when it first sees the domain).
 */
export function consoleLogFiles(dir: string, domainName: string): string[] {
  return [consoleLogFile(dir, domainName), consoleLogFile(dir, `${domainName}--incoming`)];
}

/** console-tail.sh's arguments: the last `maxBytes` of `files` that exist, oldest first. */
export function consoleTailArgs(files: readonly string[], maxBytes: number): string[] {
  return [String(maxBytes), ...files];
}

/** The command that prints the newest of `files`' name, then the last `maxBytes` of them all, oldest first (dom0-scripts/console-tail.sh; exit Dom0Exit.NoFile when none is there). */
export function consoleTailCommand(files: readonly string[], maxBytes: number): string {
  return scriptCommand('console-tail', newMarker(), 1, consoleTailArgs(files, maxBytes));
}

/** console-tail.sh's output: the file the log is written to now (its first line), and the text. */
export function parseConsoleTail(stdout: string): ConsoleText {
  const nl = stdout.indexOf('\n');
  return nl < 0 ? { path: stdout, text: '' } : { path: stdout.slice(0, nl), text: stdout.slice(nl + 1) };
}

// Guest console logs in dom0: a capability some hosts have and others do not.
// xenconsoled writes one file per domain only when started with --log=guest
// or --log=all, as <log-dir>/guest-<the domain's xenstore name>.log, the
// directory being --log-dir or XEN_LOG_DIR/console (xen
// tools/console/daemon/main.c main(), io.c create_domain_log(), RELEASE-4.17.7).
// Debian turns it on with XENCONSOLED_TRACE=guest; XenServer and XCP-ng leave
// it off. So the drivers look at how xenconsoled runs instead of assuming,
// and when it keeps no log the harness does without (the guest's report in
// xenstore and the toolstack's answer are the evidence then).
import { shq, type HostTarget } from '../remote/target.ts';

/** xenconsoled's default log directory (XEN_LOG_DIR "/console"; Debian's and XenServer's builds). */
export const XENCONSOLED_DEFAULT_DIR = '/var/log/xen/console';

/**
 * Prints xenconsoled's arguments, one a line (nothing when it does not run).
 * `read` is a shell builtin: no process per /proc entry (each costs an
 * emulated dom0 more than the whole look).
 */
export const XENCONSOLED_ARGS_SCRIPT = [
  'for f in /proc/[0-9]*/comm; do',
  '  read -r c < "$f" 2>/dev/null || continue',
  '  [ "$c" = xenconsoled ] || continue',
  '  tr "\\000" "\\n" < "${f%/comm}/cmdline"; exit 0',
  'done; exit 0',
].join('\n');

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
  const r = await target.exec(XENCONSOLED_ARGS_SCRIPT, { timeoutMs });
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

/** The script that prints the end of a log file, or nothing when it is not there. */
export function tailScript(file: string, maxBytes: number): string {
  return `[ -f ${shq(file)} ] || exit 3; tail -c ${maxBytes} ${shq(file)}`;
}

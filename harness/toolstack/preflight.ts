// `xtv doctor`: what a host must offer before a run can mean anything, one
// check a line, each failure with the step that fixes it. The checks are the
// drivers' (xapi-preflight.ts, xl-preflight.ts); this is their shape and the
// parts they share.
import type { ToolstackDriver } from './driver.ts';

/** ok: holds; fail: a run would fail or mean nothing; warn: worth knowing, not in the way; skip: could not be checked because an earlier check failed. */
export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface Check {
  /** A short stable name: api, login, version, dom0, boot-dir, suspend-sr, pvh, memory, console-log, timeouts, leftovers. */
  id: string;
  status: CheckStatus;
  /** What was found, one line. */
  detail: string;
  /** The step that fixes a failure (or a warning), one line. */
  fix?: string;
}

export interface PreflightOptions {
  /** How many test VMs should fit at once (a run's --parallel). */
  vms: number;
  /** Memory per test VM, MiB (the image's minimum). */
  memoryMiB: number;
  /** PV or PVH: whether the host must run PVH guests. */
  domainType: 'pv' | 'pvh';
}

export function check(id: string, status: CheckStatus, detail: string, fix?: string): Check {
  return fix === undefined ? { id, status, detail } : { id, status, detail, fix };
}

/** What the toolstack adds to a small PV guest beyond its memory (page tables, shadow): a margin, not a formula. */
export const DOMAIN_OVERHEAD_MIB = 8;

/** Whether `freeMiB` holds the test VMs a run asks for (`fix`: what the host's user can do about it). */
export function memoryCheck(freeMiB: number, o: Pick<PreflightOptions, 'vms' | 'memoryMiB'>, fix: string): Check {
  const needMiB = o.vms * (o.memoryMiB + DOMAIN_OVERHEAD_MIB);
  return freeMiB >= needMiB
    ? check('memory', 'ok', `${freeMiB} MiB free, ${o.vms} test VM(s) need about ${needMiB} MiB`)
    : check('memory', 'fail', `${freeMiB} MiB free, ${o.vms} test VM(s) of ${o.memoryMiB} MiB need about ${needMiB} MiB`, fix);
}

/** Runs one check; an exception is that check's failure, with its message. */
export async function guarded(id: string, f: () => Promise<Check | Check[]>): Promise<Check[]> {
  try {
    const r = await f();
    return Array.isArray(r) ? r : [r];
  } catch (e) {
    return [check(id, 'fail', e instanceof Error ? e.message : String(e))];
  }
}

/** The xtv VMs a host already holds: a warning (a crashed run's, or another user's), with the command that removes them. */
export async function leftoversCheck(driver: ToolstackDriver, gcHint: string): Promise<Check> {
  const owned = await driver.listOwned();
  if (owned.length === 0) return check('leftovers', 'ok', 'no VM made by xtv on the host');
  const names = owned.map((v) => v.name);
  const shown = names.slice(0, 5).join(', ') + (names.length > 5 ? `, and ${names.length - 5} more` : '');
  return check(
    'leftovers',
    'warn',
    `${names.length} VM(s) made by xtv are on the host: ${shown} (a run in progress, or one that died)`,
    `if no run of yours is in progress: ${gcHint} --dry-run, then without --dry-run`,
  );
}

/** Fails when any check failed (warnings and skips aside: a skip follows a failure). */
export function preflightFailed(checks: readonly Check[]): boolean {
  return checks.some((c) => c.status === 'fail');
}

/** One line per check: `ok   api         ...` and, below a failure or warning, `     fix: ...`. */
export function formatChecks(checks: readonly Check[]): string {
  const w = Math.max(...checks.map((c) => c.id.length));
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.status.toUpperCase().padEnd(4)} ${c.id.padEnd(w)}  ${c.detail}`);
    if (c.fix && c.status !== 'ok') lines.push(`${' '.repeat(5 + w)}  fix: ${c.fix}`);
  }
  return lines.join('\n');
}

// `xl list` as data, and how a domain's Xen state maps onto the harness's
// power states. Pure.
//
// The State column is six characters (tools/xl/xl_info.c, list_domains):
//   r running, b blocked, p paused, s shut down, then the shutdown reason
//   letter from "-rscwS" (poweroff, reboot, suspend, crash, watchdog,
//   soft_reset; only meaningful with s), then d dying.
import type { DomainInfo } from './driver.ts';

/** `xl info` as key → value (its "key : value" lines). */
export function parseXlInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+)\s*:\s?(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!.trim();
  }
  return out;
}

export interface XlListEntry {
  name: string;
  domid: number;
  memMiB: number;
  vcpus: number;
  /** The raw six-character state column. */
  state: string;
  running: boolean;
  blocked: boolean;
  paused: boolean;
  shutdown: boolean;
  dying: boolean;
  /** Set when `shutdown`: poweroff, reboot, suspend, crash, watchdog, soft_reset. */
  shutdownReason?: string;
  cpuTimeSec: number;
}

const REASONS: Record<string, string> = { '-': 'poweroff', r: 'reboot', s: 'suspend', c: 'crash', w: 'watchdog', S: 'soft_reset' };

const LINE = /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([-rbpscwSd?]{6})\s+([\d.]+)/;

/** Parses `xl list` (with or without -v); the header and unknown lines are skipped. */
export function parseXlList(text: string): XlListEntry[] {
  const out: XlListEntry[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const st = m[5]!;
    const shutdown = st[3] === 's';
    const e: XlListEntry = {
      name: m[1]!,
      domid: Number(m[2]),
      memMiB: Number(m[3]),
      vcpus: Number(m[4]),
      state: st,
      running: st[0] === 'r',
      blocked: st[1] === 'b',
      paused: st[2] === 'p',
      shutdown,
      dying: st[5] === 'd',
      cpuTimeSec: Number(m[6]),
    };
    if (shutdown) e.shutdownReason = REASONS[st[4]!] ?? 'unknown';
    out.push(e);
  }
  return out;
}

/**
 * The harness's view of one VM from its `xl list` entry (or its absence) and
 * whether an `xl save` image of it exists:
 * - no domain: Suspended if a save image exists, else Halted;
 * - shut down for suspend and not destroyed (a guest that suspended itself;
 *   the xl daemon leaves it so): Suspended, with its domid;
 * - shut down for another reason, or dying: Halted, with its domid and reason
 *   (the daemon is about to destroy or restart it, or on_* is preserve);
 * - paused: Paused; otherwise Running.
 */
export function domainInfoOf(entry: XlListEntry | undefined, saveImageExists: boolean): DomainInfo {
  if (!entry) return { powerState: saveImageExists ? 'Suspended' : 'Halted', domid: null };
  if (entry.shutdown) {
    const info: DomainInfo = { powerState: entry.shutdownReason === 'suspend' ? 'Suspended' : 'Halted', domid: entry.domid };
    if (entry.shutdownReason) info.shutdownReason = entry.shutdownReason;
    return info;
  }
  if (entry.dying) return { powerState: 'Halted', domid: entry.domid };
  if (entry.paused) return { powerState: 'Paused', domid: entry.domid };
  return { powerState: 'Running', domid: entry.domid };
}

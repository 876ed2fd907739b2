// What xl prints, as data: `xl info`, `xl list`, and an xl failure shown in
// one line. Pure and import-free: the harness's xl driver and the XenAPI test
// double in dom0 (dom0/xapi-double/) read xl's output with the same code.
//
// The State column of `xl list` is six characters (tools/xl/xl_info.c,
// list_domains): r running, b blocked, p paused, s shut down, then the
// shutdown reason letter from "-rscwS" (poweroff, reboot, suspend, crash,
// watchdog, soft_reset; only meaningful with s), then d dying.

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
 * The lines of xl's stderr an error message shows: the last three, and
 * before them the first libxl error when it is not among them (a failed
 * create ends with the errors of its clean-up, which hide the cause).
 */
export function stderrSummary(stderr: string): string {
  const lines = stderr.split('\n');
  const last = lines.slice(-3);
  const first = lines.find((l) => /error/i.test(l));
  return (first !== undefined && !last.includes(first) ? [first, '...', ...last] : last).join(' | ');
}

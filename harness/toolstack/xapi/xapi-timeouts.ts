// XAPI's timeouts for the requests a guest must acknowledge, and where a host
// sets them (docs/xapi-behaviour.md §1, xapi-project/xen-api e2ee48d688):
//   /etc/xenopsd.conf (then /etc/xenopsd-xc.conf.d/*)
//       domain_shutdown_ack_timeout  60 s   ocaml/xenopsd/lib/xenops_server.ml, every line
//       vm-suspend-ack-timeout       30 s   ocaml/xenopsd/lib/xenopsd.ml, from v26.3.0 only;
//       vm-suspend-timeout         1200 s   before, literals in xc/xenops_server_xen.ml VM.save
//   /etc/xapi.conf (then /etc/xapi.conf.d/*)
//       domain_shutdown_total_timeout 1200 s  ocaml/xapi/xapi_globs.ml, every line
// The files are xcp-idl's format (protocol/xcp-conf.ts); unknown keys are
// ignored; a .conf.d directory's files are read after the main file in
// sorted order, later values winning.
import { floatOfString, parseXcpConf } from '../../../protocol/xcp-conf.ts';
import type { ToolstackTimeouts } from '../driver.ts';
import type { HostTarget } from '../../remote/target.ts';
import { frames, newMarker, scriptCommand } from '../dom0-script.ts';

export const XAPI_DEFAULT_TIMEOUTS: ToolstackTimeouts = {
  shutdownAckMs: 60_000,
  suspendAckMs: 30_000,
  shutdownTotalMs: 1_200_000,
  suspendTotalMs: 1_200_000,
};

/**
 * The two daemons whose files say the timeouts. dom0-scripts/toolstack-conf.sh
 * reads them, main file first: /etc/xenopsd.conf then /etc/xenopsd-xc.conf.d/*,
 * /etc/xapi.conf then /etc/xapi.conf.d/* (a glob sorts: the .conf.d order).
 */
type Daemon = 'xenopsd' | 'xapi';

const KEYS: ReadonlyArray<{ daemon: Daemon; key: string; field: keyof ToolstackTimeouts; suspend?: true }> = [
  { daemon: 'xenopsd', key: 'domain_shutdown_ack_timeout', field: 'shutdownAckMs' },
  { daemon: 'xenopsd', key: 'vm-suspend-ack-timeout', field: 'suspendAckMs', suspend: true },
  { daemon: 'xenopsd', key: 'vm-suspend-timeout', field: 'suspendTotalMs', suspend: true },
  { daemon: 'xapi', key: 'domain_shutdown_total_timeout', field: 'shutdownTotalMs' },
];

/** The timeout keys each daemon's file may set (what `xtv host up --xenopsd-conf / --xapi-conf` accept). */
export function timeoutKeysOf(daemon: Daemon): string[] {
  return KEYS.filter((k) => k.daemon === daemon).map((k) => k.key);
}

export interface ConfFiles {
  /** Each daemon's files in the order it reads them (later values win). */
  xenopsd: Array<{ path: string; text: string }>;
  xapi: Array<{ path: string; text: string }>;
}

/**
 * The timeouts the files set, over the defaults; `notes` says what came from
 * where. `suspendTunable`: whether this xenopsd reads the suspend keys at all
 * (v26.3.0 on); an older one ignores them, and so does this.
 */
export function timeoutsFrom(files: ConfFiles, suspendTunable: boolean): { timeouts: ToolstackTimeouts; notes: string[] } {
  const timeouts = { ...XAPI_DEFAULT_TIMEOUTS };
  const notes: string[] = [];
  for (const k of KEYS) {
    let found: { path: string; value: string } | undefined;
    for (const f of files[k.daemon]) {
      const v = parseXcpConf(f.text).get(k.key);
      if (v !== undefined) found = { path: f.path, value: v };
    }
    if (!found) continue;
    if (k.suspend && !suspendTunable) {
      notes.push(`${found.path}: ${k.key} = ${found.value} is ignored by this xenopsd (a setting only from xapi 26.3); ${timeouts[k.field] / 1000} s`);
      continue;
    }
    const sec = floatOfString(found.value);
    if (sec === null || sec < 0) {
      notes.push(`${found.path}: ${k.key} = ${JSON.stringify(found.value)} is not a number of seconds; kept ${timeouts[k.field] / 1000} s`);
      continue;
    }
    timeouts[k.field] = Math.round(sec * 1000);
    notes.push(`${found.path}: ${k.key} = ${sec} s`);
  }
  return { timeouts, notes };
}

/** Reads both daemons' files in dom0 (absent ones: the defaults). */
export async function readXapiTimeouts(
  target: HostTarget,
  timeoutMs: number,
  suspendTunable: boolean,
): Promise<{ timeouts: ToolstackTimeouts; notes: string[] }> {
  const m = newMarker();
  // Per file, dom0-scripts/toolstack-conf.sh frames "file DAEMON PATH", then its text.
  const r = await target.exec(scriptCommand('toolstack-conf', m, 1, []), { timeoutMs });
  const files: ConfFiles = { xenopsd: [], xapi: [] };
  for (const f of frames(r.stdout, m)) {
    if (f.word !== 'file') continue;
    const sp = f.text.indexOf(' ');
    const daemon = f.text.slice(0, sp);
    if (daemon === 'xenopsd' || daemon === 'xapi') files[daemon].push({ path: f.text.slice(sp + 1), text: `${f.lines.join('\n')}\n` });
  }
  const { timeouts, notes } = timeoutsFrom(files, suspendTunable);
  const t = (ms: number): string => `${ms / 1000} s`;
  notes.unshift(
    `timeouts: shutdown ack ${t(timeouts.shutdownAckMs)}, suspend ack ${t(timeouts.suspendAckMs)}, shutdown ${t(timeouts.shutdownTotalMs)}, suspend ${t(timeouts.suspendTotalMs)} (xapi's defaults unless a line below says otherwise)`,
  );
  return { timeouts, notes };
}

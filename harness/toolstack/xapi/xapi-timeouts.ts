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
import { randomBytes } from 'node:crypto';
import { floatOfString, parseXcpConf } from '../../../protocol/xcp-conf.ts';
import type { ToolstackTimeouts } from '../driver.ts';
import type { HostTarget } from '../../remote/target.ts';

export const XAPI_DEFAULT_TIMEOUTS: ToolstackTimeouts = {
  shutdownAckMs: 60_000,
  suspendAckMs: 30_000,
  shutdownTotalMs: 1_200_000,
  suspendTotalMs: 1_200_000,
};

/** The files each daemon reads, main file first (what `ls` sorts is the .conf.d order). */
const SOURCES = {
  xenopsd: '/etc/xenopsd.conf /etc/xenopsd-xc.conf.d/*',
  xapi: '/etc/xapi.conf /etc/xapi.conf.d/*',
} as const;

const KEYS: ReadonlyArray<{ daemon: keyof typeof SOURCES; key: string; field: keyof ToolstackTimeouts; suspend?: true }> = [
  { daemon: 'xenopsd', key: 'domain_shutdown_ack_timeout', field: 'shutdownAckMs' },
  { daemon: 'xenopsd', key: 'vm-suspend-ack-timeout', field: 'suspendAckMs', suspend: true },
  { daemon: 'xenopsd', key: 'vm-suspend-timeout', field: 'suspendTotalMs', suspend: true },
  { daemon: 'xapi', key: 'domain_shutdown_total_timeout', field: 'shutdownTotalMs' },
];

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
export async function readXapiTimeouts(target: HostTarget, timeoutMs: number, suspendTunable: boolean): Promise<{ timeouts: ToolstackTimeouts; notes: string[] }> {
  const m = `XTV-${randomBytes(8).toString('hex')}`;
  // Per file: the marker, the daemon, the path, then its text.
  const script = Object.entries(SOURCES).map(([daemon, glob]) =>
    `for f in ${glob}; do [ -f "$f" ] || continue; printf '%s %s %s\\n' ${m} ${daemon} "$f"; cat "$f"; echo; done`).join('\n');
  const r = await target.exec(script, { timeoutMs });
  const files: ConfFiles = { xenopsd: [], xapi: [] };
  for (const part of r.stdout.split(`${m} `).slice(1)) {
    const nl = part.indexOf('\n');
    const [daemon, ...path] = part.slice(0, nl).split(' ');
    if (daemon === 'xenopsd' || daemon === 'xapi') files[daemon].push({ path: path.join(' '), text: part.slice(nl + 1) });
  }
  const { timeouts, notes } = timeoutsFrom(files, suspendTunable);
  const t = (ms: number): string => `${ms / 1000} s`;
  notes.unshift(`timeouts: shutdown ack ${t(timeouts.shutdownAckMs)}, suspend ack ${t(timeouts.suspendAckMs)}, shutdown ${t(timeouts.shutdownTotalMs)}, suspend ${t(timeouts.suspendTotalMs)} (xapi's defaults unless a line below says otherwise)`);
  return { timeouts, notes };
}

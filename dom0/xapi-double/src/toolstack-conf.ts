// The timeouts a real host takes from its toolstack's own config files,
// /etc/xenopsd.conf and /etc/xapi.conf, read the way xenopsd and xapi read
// them (the format: protocol/xcp-conf.ts): a key the daemon does not know is
// ignored, a later line wins, and a value that is not a float stops the
// daemon at start. Pure functions: main.ts reads the files.
import type { LifecycleConfig } from './lifecycle.ts';
import type { Profile } from './profiles.ts';
import { floatOfString, parseXcpConf } from '../../../protocol/xcp-conf.ts';

/** A malformed configuration: the endpoint does not start. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type TimeoutField = 'shutdownAckTimeoutMs' | 'suspendAckTimeoutMs' | 'shutdownTotalTimeoutMs' | 'suspendTotalTimeoutMs';

interface Setting {
  file: 'xenopsd' | 'xapi';
  key: string;
  field: TimeoutField;
  /** False when the profile's daemon has no such key (it then ignores the line, as any unknown key). */
  known(profile: Profile): boolean;
}

const SETTINGS: Setting[] = [
  // xenopsd's option list: ocaml/xenopsd/lib/xenopsd.ml (HEAD), lib/xenopsd.ml (xenopsd 0.150); the
  // variable is Xenops_server.domain_shutdown_ack_timeout.
  { file: 'xenopsd', key: 'domain_shutdown_ack_timeout', field: 'shutdownAckTimeoutMs', known: () => true },
  // ocaml/xenopsd/lib/xenopsd.ml vm_suspend_ack_timeout / vm_suspend_timeout, options since v26.3.0.
  { file: 'xenopsd', key: 'vm-suspend-ack-timeout', field: 'suspendAckTimeoutMs', known: (p) => p.suspendTimeoutsConfigurable },
  { file: 'xenopsd', key: 'vm-suspend-timeout', field: 'suspendTotalTimeoutMs', known: (p) => p.suspendTimeoutsConfigurable },
  // ocaml/xapi/xapi_globs.ml domain_shutdown_total_timeout (also at v1.249.42).
  { file: 'xapi', key: 'domain_shutdown_total_timeout', field: 'shutdownTotalTimeoutMs', known: () => true },
];

export interface ConfFile {
  path: string;
  /** null: the file is absent (the daemon then keeps its defaults). */
  text: string | null;
}

/**
 * The timeouts the two files set for this profile's daemons, and one line per decision for the
 * log (what was used, and keys that look meant for a timeout but that the daemon ignores).
 */
export function timeoutsFromConf(
  profile: Profile,
  files: { xenopsd: ConfFile; xapi: ConfFile },
): { timeouts: Partial<Pick<LifecycleConfig, TimeoutField>>; notes: string[] } {
  const timeouts: Partial<Pick<LifecycleConfig, TimeoutField>> = {};
  const notes: string[] = [];
  const parsed = { xenopsd: parseXcpConf(files.xenopsd.text ?? ''), xapi: parseXcpConf(files.xapi.text ?? '') };
  for (const s of SETTINGS) {
    const path = files[s.file].path;
    const v = parsed[s.file].get(s.key);
    // The same name with - and _ swapped is not the key: the daemon ignores it silently; we say so.
    const lookalike = s.key.includes('-') ? s.key.replace(/-/g, '_') : s.key.replace(/_/g, '-');
    for (const k of [s.key, lookalike]) {
      if (!parsed[s.file].has(k)) continue;
      if (!s.known(profile)) notes.push(`${path}: ${k} ignored: ${profile.name}'s ${s.file} has no such setting`);
      else if (k === lookalike) notes.push(`${path}: ${k} is not a key of ${s.file} (${s.key} is); ignored, as ${s.file} ignores it`);
    }
    if (v === undefined || !s.known(profile)) continue;
    const sec = floatOfString(v);
    if (sec === null || sec < 0)
      throw new ConfigError(`${path}: ${s.key} = ${JSON.stringify(v)} is not a number of seconds (${s.file} would not start either)`);
    timeouts[s.field] = Math.round(sec * 1000);
    notes.push(`${path}: ${s.key} = ${v}`);
  }
  return { timeouts, notes };
}

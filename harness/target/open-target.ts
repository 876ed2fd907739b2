// --host: which Xen host a command drives.
//   embedded                 the embedded host of the state directory (xtv host up)
//   ssh://[USER@]HOST[:PORT] a real Xen host over plain SSH (USER defaults to root)
// The SSH key comes from --identity, else $XTV_SSH_IDENTITY, else ssh's own defaults.
import { EmbeddedHost, HostNotRunningError } from '../host/embedded-host.ts';
import { resolveStateDir } from '../host/paths.ts';
import { EmbeddedTarget } from './embedded-target.ts';
import { SshTarget } from './ssh-target.ts';
import { TargetUnreachableError, type HostTarget } from './target.ts';

export type HostSpec =
  | { kind: 'embedded' }
  | { kind: 'ssh'; user: string; host: string; port: number };

/** Parses a --host value; throws Error with a sentence naming what is wrong. */
export function parseHostSpec(value: string): HostSpec {
  if (value === 'embedded') return { kind: 'embedded' };
  const m = /^ssh:\/\/(?:([A-Za-z0-9._-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(value);
  if (!m) {
    throw new Error(`--host must be 'embedded' or ssh://[USER@]HOST[:PORT], got ${JSON.stringify(value)}`);
  }
  const port = m[3] === undefined ? 22 : Number(m[3]);
  if (port < 1 || port > 65535) throw new Error(`--host: port ${m[3]} is out of range (1-65535)`);
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { kind: 'ssh', user: m[1] ?? 'root', host, port };
}

export function formatHostSpec(s: HostSpec): string {
  if (s.kind === 'embedded') return 'embedded';
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  return `ssh://${s.user}@${host}${s.port === 22 ? '' : `:${s.port}`}`;
}

export interface OpenTargetOptions {
  /** Embedded host's state directory (--state-dir; default $XTV_STATE_DIR, else ./.xtv/host). */
  stateDir?: string;
  /** SSH private key for ssh:// hosts (--identity; default $XTV_SSH_IDENTITY). */
  identity?: string;
  /** Boot the embedded host when none runs (left running, as `xtv host up` does). Off unless a command says so. */
  autoBoot?: boolean;
  onProgress?: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** Reaches the host named by `spec`. Throws TargetUnreachableError when it is not there. */
export async function openTarget(spec: HostSpec | string, opts: OpenTargetOptions = {}): Promise<HostTarget> {
  const s = typeof spec === 'string' ? parseHostSpec(spec) : spec;
  const env = opts.env ?? process.env;
  if (s.kind === 'ssh') {
    const identity = opts.identity ?? (env.XTV_SSH_IDENTITY || undefined);
    const knownHosts = env.XTV_SSH_KNOWN_HOSTS || undefined;
    return new SshTarget({ user: s.user, host: s.host, port: s.port, ...(identity ? { identity } : {}), ...(knownHosts ? { knownHosts } : {}) });
  }
  const stateDir = resolveStateDir(opts.stateDir, env);
  try {
    return new EmbeddedTarget(EmbeddedHost.attach(stateDir));
  } catch (err) {
    if (!(err instanceof HostNotRunningError)) throw err;
    if (!opts.autoBoot) throw new TargetUnreachableError(err.message);
    const host = await EmbeddedHost.up({ stateDir, detached: true, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
    return new EmbeddedTarget(host);
  }
}

// ssh://[USER@]HOST[:PORT]: how a command names a host's dom0 (xl's --host,
// XAPI's --dom0), and the target that reaches it. The key comes from
// --identity, else $XTV_SSH_IDENTITY, else ssh's own defaults; the known_hosts
// file from the caller, else $XTV_SSH_KNOWN_HOSTS, else the user's.
import { SshTarget, type SshEndpoint } from './ssh-target.ts';

export interface SshUrl {
  user: string;
  host: string;
  port: number;
}

/** Parses ssh://[USER@]HOST[:PORT] (USER defaults to root, PORT to 22); throws Error naming `flag` and what is wrong. */
export function parseSshUrl(value: string, flag = '--host'): SshUrl {
  // A user or host may not start with '-': ssh would take `-E@h` for its own -E option (a log file).
  const m = /^ssh:\/\/(?:([A-Za-z0-9_][A-Za-z0-9._-]*)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*)(?::(\d{1,5}))?\/?$/.exec(value);
  if (!m) throw new Error(`${flag} wants ssh://[USER@]HOST[:PORT], got ${JSON.stringify(value)}`);
  const port = m[3] === undefined ? 22 : Number(m[3]);
  if (port < 1 || port > 65535) throw new Error(`${flag}: port ${m[3]} is out of range (1-65535)`);
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { user: m[1] ?? 'root', host, port };
}

export interface OpenTargetOptions {
  /** SSH private key (--identity; default $XTV_SSH_IDENTITY). */
  identity?: string;
  /** known_hosts file (default $XTV_SSH_KNOWN_HOSTS, else the user's). */
  knownHosts?: string;
  env?: NodeJS.ProcessEnv;
}

/** The endpoint for `url` with the key and known_hosts file the options and environment name. */
export function sshEndpointOf(url: SshUrl, opts: OpenTargetOptions = {}): SshEndpoint {
  const env = opts.env ?? process.env;
  const identity = opts.identity ?? (env.XTV_SSH_IDENTITY || undefined);
  const knownHosts = opts.knownHosts ?? (env.XTV_SSH_KNOWN_HOSTS || undefined);
  return { ...url, ...(identity ? { identity } : {}), ...(knownHosts ? { knownHosts } : {}) };
}

/** A target for dom0 at `url`. Nothing is contacted until the first command. */
export function openTarget(url: SshUrl | string, opts: OpenTargetOptions = {}): SshTarget {
  return new SshTarget(sshEndpointOf(typeof url === 'string' ? parseSshUrl(url) : url, opts));
}

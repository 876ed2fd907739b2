// `--host embedded` is only a short way to write the embedded host's
// addresses: what `xtv host up` recorded in its state directory is turned
// into the same options a user gives for a real host (an https:// XenAPI URL,
// dom0 as ssh://root@127.0.0.1:PORT, the key, the known_hosts file, the CA
// file, the password file). Everything after this takes the one path real
// hosts take.
import { EmbeddedHost } from './embedded-host.ts';
import { EmbeddedHostError } from './host-error.ts';
import { stateFiles } from './paths.ts';
import { embeddedXapiInfo, type EmbeddedXapiInfo } from './xapi-double.ts';
import { openTarget } from '../remote/open-target.ts';
import type { SshTarget } from '../remote/ssh-target.ts';

/** How to reach one embedded host, in the terms of a real host. */
export interface HostAddress {
  /** dom0 over SSH: ssh://root@127.0.0.1:PORT (xl's --host, XAPI's --dom0). */
  dom0: string;
  /** The SSH key `xtv host up` authorised in dom0. */
  identity: string;
  /** dom0's host key is remembered here (a new boot starts it afresh). */
  knownHosts: string;
  /** The XenAPI endpoint(s), when the host was booted with the test double; the first is the default. */
  xapi: EmbeddedXapiInfo | null;
}

export function embeddedAddress(host: EmbeddedHost): HostAddress {
  return {
    dom0: `ssh://root@127.0.0.1:${host.sshPort}`,
    identity: host.privateKeyPath,
    knownHosts: stateFiles(host.stateDir).knownHosts,
    xapi: embeddedXapiInfo(host),
  };
}

/** dom0 of the embedded host as the drivers reach any host's dom0 (tests, benchmarks). */
export function embeddedDom0(host: EmbeddedHost): SshTarget {
  const a = embeddedAddress(host);
  return openTarget(a.dom0, { identity: a.identity, knownHosts: a.knownHosts, env: {} });
}

/** The connection options a command sees for `--host embedded` (only what the user did not give). */
export interface EmbeddedConnect {
  host: string;
  dom0?: string;
  identity: string;
  knownHosts: string;
  caFile?: string;
  passwordFile?: string;
  user?: string;
}

/**
 * The embedded host of `stateDir`, as connection options for `toolstack`.
 * Throws HostNotRunningError (which names the command to run) when none runs,
 * Error when it has no XenAPI endpoint and `toolstack` is xapi.
 */
export function embeddedConnect(stateDir: string, toolstack: 'xl' | 'xapi'): EmbeddedConnect {
  const host = EmbeddedHost.attach(stateDir);
  const a = embeddedAddress(host);
  if (toolstack === 'xl') return { host: a.dom0, identity: a.identity, knownHosts: a.knownHosts };
  if (!a.xapi)
    throw new EmbeddedHostError(
      `the embedded host in ${host.stateDir} was booted without the XenAPI test double; restart it with 'xtv host down && xtv host up'`,
    );
  return {
    host: a.xapi.endpoints[0]!.url,
    dom0: a.dom0,
    identity: a.identity,
    knownHosts: a.knownHosts,
    caFile: a.xapi.caFile,
    passwordFile: a.xapi.passwordFile,
    user: a.xapi.user,
  };
}

// The xapi branch of connectToolstack. One path for every host:
//   --host https://HOST[:PORT]   the XenAPI URL (http:// only to a loopback address)
//   --dom0 ssh://[USER@]HOST[:PORT]  dom0's shell (default ssh://root@HOST:22,
//                                HOST from the URL); 'none': XenAPI only
//   --identity FILE / $XTV_SSH_IDENTITY, known_hosts from $XTV_SSH_KNOWN_HOSTS
//   --ca FILE                    verify TLS against this CA; --allow-unauthorized: not at all
// User: --user, else $XTV_XAPI_USER, else root. Password: the file named by
// --password-file, else $XTV_PASSWORD, else the file named by $XTV_PASSWORD_FILE.
// Never argv, never logged.
import { readFileSync } from 'node:fs';
import type { ConnectOptions } from '../connect.ts';
import { ConnectionError } from '../driver.ts';
import { XapiDriver, safeUrl } from './xapi-driver.ts';
import { readCaFile } from './xapi-tls.ts';
import { openTarget, parseSshUrl, type SshUrl } from '../../remote/open-target.ts';
import type { HostTarget } from '../../remote/target.ts';

export interface XapiConnectOptions extends ConnectOptions {
  /** How writeGuest reaches the guest (send --via xapi sets 'xapi'). */
  xenstoreVia?: 'ssh' | 'xapi';
}

function readPasswordFile(path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConnectionError(`cannot read the XAPI password file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** --user, else $XTV_XAPI_USER, else root. */
export function xapiUserOf(opts: Pick<ConnectOptions, 'user'>, env: NodeJS.ProcessEnv): string {
  return opts.user ?? (env.XTV_XAPI_USER || 'root');
}

/** --password-file (or the embedded host's file), else $XTV_PASSWORD, else the file in $XTV_PASSWORD_FILE. */
function passwordFrom(opts: XapiConnectOptions, env: NodeJS.ProcessEnv): string | undefined {
  if (opts.passwordFile !== undefined) return readPasswordFile(opts.passwordFile);
  if (env.XTV_PASSWORD !== undefined && env.XTV_PASSWORD !== '') return env.XTV_PASSWORD;
  return env.XTV_PASSWORD_FILE ? readPasswordFile(env.XTV_PASSWORD_FILE) : undefined;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

/** The XenAPI URL, checked: http(s), no credentials inside, plain http only to this machine. */
export function parseXapiUrl(value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConnectionError(`--host ${JSON.stringify(value)} is not a URL: use https://HOST[:PORT] with --toolstack xapi`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new ConnectionError(`--host ${safeUrl(value)}: XAPI is reached over https:// (got ${u.protocol})`);
  if (u.username || u.password)
    throw new ConnectionError('--host: put no user or password in the URL: the user goes in --user, the password in $XTV_PASSWORD or --password-file');
  if (u.protocol === 'http:' && !LOOPBACK.test(u.hostname))
    throw new ConnectionError(`--host ${safeUrl(value)}: plain http would send the password in clear over the network; use https://`);
  return u;
}

/** dom0's address: --dom0, else $XTV_DOM0, else root@ the URL's host, port 22; null for 'none'. */
export function dom0Of(opts: Pick<ConnectOptions, 'dom0'>, url: URL, env: NodeJS.ProcessEnv): SshUrl | null {
  const given = opts.dom0 ?? (env.XTV_DOM0 || undefined);
  if (given === 'none') return null;
  if (given === undefined) return { user: 'root', host: url.hostname.replace(/^\[|\]$/g, ''), port: 22 };
  try {
    return parseSshUrl(given, '--dom0');
  } catch (err) {
    throw new ConnectionError(`${(err as Error).message} (or none)`);
  }
}

export async function connectXapi(opts: XapiConnectOptions): Promise<XapiDriver> {
  const env = opts.env ?? process.env;
  if (!/^https?:\/\//.test(opts.host)) {
    throw new ConnectionError(
      `with --toolstack xapi, --host is the XenAPI URL, https://HOST[:PORT] (got ${JSON.stringify(opts.host)}); dom0 is --dom0 ssh://root@HOST[:PORT]`,
    );
  }
  const url = parseXapiUrl(opts.host);
  const user = xapiUserOf(opts, env);
  const password = passwordFrom(opts, env);
  if (password === undefined) {
    throw new ConnectionError(
      `no XAPI password for ${safeUrl(opts.host)}: set $XTV_PASSWORD, or put it in a file and pass --password-file FILE (or $XTV_PASSWORD_FILE)`,
    );
  }
  const caFile = opts.caFile ?? (env.XTV_CA_FILE || undefined);
  const ca = caFile !== undefined && !opts.allowUnauthorized ? readCaFile(caFile) : undefined;
  const dom0 = dom0Of(opts, url, env);
  const target: HostTarget | null = dom0
    ? openTarget(dom0, {
        ...(opts.identity ? { identity: opts.identity } : {}),
        ...(opts.knownHosts ? { knownHosts: opts.knownHosts } : {}),
        env,
      })
    : null;
  const tls = opts.allowUnauthorized ? ' (TLS certificate not checked: --allow-unauthorized)' : ca ? ` (TLS checked against ${caFile})` : '';
  opts.onProgress?.(`connecting to XAPI at ${safeUrl(opts.host)} as ${user}${tls}; dom0 ${target ? target.description : 'not used (--dom0 none)'}`);
  try {
    return await XapiDriver.connect({
      url: url.toString().replace(/\/$/, ''),
      user,
      password,
      target,
      allowUnauthorized: opts.allowUnauthorized === true,
      ...(ca !== undefined ? { ca } : {}),
      ...(opts.noConsoleLog ? { consoleLog: false } : {}),
      ...(opts.xenstoreVia ? { xenstoreVia: opts.xenstoreVia } : {}),
    });
  } catch (err) {
    await target?.close();
    throw err;
  }
}

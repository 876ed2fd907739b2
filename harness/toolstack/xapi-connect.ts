// The xapi branch of connectToolstack: where the URL, user, password and the
// dom0 shell come from.
//   --host embedded        the endpoint recorded by `xtv host up` (URL, user and
//                          password in the host's state), dom0 over the host's SSH
//   --host https://HOST    a XenServer/XCP-ng (or the embedded endpoint's HTTPS
//                          port); dom0 over SSH as root@HOST with --identity or
//                          $XTV_SSH_IDENTITY
//   --host ssh://…         XAPI at $XTV_XAPI_URL (default https://HOST), dom0 over that SSH
// User: --user, else $XTV_XAPI_USER, else root (or the embedded host's).
// Password: $XTV_PASSWORD, else the file named by --password-file or
// $XTV_PASSWORD_FILE, else (embedded only) the host's own. Never argv, never logged.
import { readFileSync } from 'node:fs';
import { EmbeddedHost, HostNotRunningError } from '../host/embedded-host.ts';
import { resolveStateDir } from '../host/paths.ts';
import { EmbeddedTarget } from '../target/embedded-target.ts';
import { openTarget, parseHostSpec } from '../target/open-target.ts';
import type { HostTarget } from '../target/target.ts';
import type { ConnectOptions } from './connect.ts';
import { ConnectionError } from './driver.ts';
import { XapiDriver, safeUrl } from './xapi.ts';
import { embeddedXapiInfo } from './xapi-embedded.ts';

export interface XapiConnectOptions extends ConnectOptions {
  passwordFile?: string;
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

function passwordFrom(opts: XapiConnectOptions, env: NodeJS.ProcessEnv): string | undefined {
  if (env.XTV_PASSWORD !== undefined && env.XTV_PASSWORD !== '') return env.XTV_PASSWORD;
  const file = opts.passwordFile ?? (env.XTV_PASSWORD_FILE || undefined);
  return file ? readPasswordFile(file) : undefined;
}

/** The embedded host of the state dir, if it runs. */
function attachEmbedded(opts: XapiConnectOptions, env: NodeJS.ProcessEnv): EmbeddedHost | null {
  try {
    return EmbeddedHost.attach(resolveStateDir(opts.stateDir, env));
  } catch (err) {
    if (err instanceof HostNotRunningError) return null;
    throw err;
  }
}

export async function connectXapi(opts: XapiConnectOptions): Promise<XapiDriver> {
  const env = opts.env ?? process.env;
  let url: string;
  let user = opts.user ?? (env.XTV_XAPI_USER || undefined);
  let password = passwordFrom(opts, env);
  let target: HostTarget | null = null;
  let consoleLogDir: string | null = null;

  if (opts.host === 'embedded') {
    const host = attachEmbedded(opts, env);
    if (!host) throw new ConnectionError(`no embedded host is running for state dir ${resolveStateDir(opts.stateDir, env)}; start one with 'xtv host up'`);
    const info = embeddedXapiInfo(host);
    if (!info && !env.XTV_XAPI_URL) throw new ConnectionError(`the embedded host in ${host.stateDir} was booted without the XenAPI endpoint; restart it with 'xtv host down && xtv host up'`);
    url = env.XTV_XAPI_URL || info!.url;
    user ??= info?.user ?? 'root';
    password ??= info?.password;
    target = new EmbeddedTarget(host);
    consoleLogDir = '/var/log/xen/console';
  } else if (/^https?:\/\//.test(opts.host)) {
    url = opts.host;
    user ??= 'root';
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConnectionError(`--host ${JSON.stringify(opts.host)} is not a URL`);
    }
    // The embedded endpoint reached by its forwarded port: dom0 is the embedded host's.
    const host = ['127.0.0.1', 'localhost'].includes(parsed.hostname) ? attachEmbedded(opts, env) : null;
    const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
    if (host && (host.ports.xapi === port || host.ports.xapis === port)) {
      target = new EmbeddedTarget(host);
      consoleLogDir = '/var/log/xen/console';
      password ??= embeddedXapiInfo(host)?.password;
    } else {
      const hostname = parsed.hostname.startsWith('[') ? parsed.hostname : parsed.hostname.includes(':') ? `[${parsed.hostname}]` : parsed.hostname;
      target = await openTarget(parseHostSpec(`ssh://root@${hostname}`), { ...(opts.identity ? { identity: opts.identity } : {}), env });
    }
  } else {
    const spec = parseHostSpec(opts.host);
    if (spec.kind !== 'ssh') throw new ConnectionError(`--host ${opts.host}: use embedded, https://HOST or ssh://HOST with --toolstack xapi`);
    url = env.XTV_XAPI_URL || `https://${spec.host.includes(':') ? `[${spec.host}]` : spec.host}`;
    user ??= 'root';
    target = await openTarget(spec, { ...(opts.identity ? { identity: opts.identity } : {}), env });
  }
  if (password === undefined) {
    await target?.close();
    throw new ConnectionError(`no XAPI password for ${safeUrl(url)}: set $XTV_PASSWORD, or put it in a file and pass --password-file FILE (or $XTV_PASSWORD_FILE)`);
  }
  opts.onProgress?.(`connecting to XAPI at ${safeUrl(url)} as ${user}${opts.allowUnauthorized ? ' (TLS certificate not checked: --allow-unauthorized)' : ''}`);
  return XapiDriver.connect({
    url, user, password, target, consoleLogDir,
    allowUnauthorized: opts.allowUnauthorized === true,
    ...(opts.xenstoreVia ? { xenstoreVia: opts.xenstoreVia } : {}),
  });
}

// The XenAPI test double on the embedded host: what `xtv host up` (and the
// e2e tests) add to a boot so that dom0 serves XenAPI the way a XenServer /
// XCP-ng host does, reached the way one is (https, a password, dom0 over SSH).
//
//   const x = await prepareEmbeddedXapi(stateDir);          // build (cached), password, per-host archive
//   const host = await EmbeddedHost.up({ stateDir, ...x.upOptions });
//   await x.finish(host);                                    // waits for the endpoints; records them in host.json
//
// One endpoint per version profile asked for (the first is the one
// `--host embedded` uses), each its own node process in dom0 on its own
// HTTPS port. The password is made per boot and kept in
// <stateDir>/xapi-password (0600); the harness reads it from that file, as
// it would read a real host's password file. The endpoints' self-signed
// certificate is copied to <stateDir>/xapi-ca.pem, so TLS is verified
// against it instead of being turned off. dom0 gets the password, the
// endpoints' configuration and xenopsd's / xapi's config files
// (/etc/xenopsd.conf, /etc/xapi.conf: the toolstack's timeouts, as an
// administrator would tune them on a real host) in a small archive of its own
// (<stateDir>/xapi-host.cpio.gz), never on a command line.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { EmbeddedHost, UpOptions } from './embedded-host.ts';
import { REPO_ROOT } from './paths.ts';
import { EmbeddedHostError } from './host-error.ts';
import { ensurePrivateDir } from './private-dir.ts';
import { buildNodeRuntime } from './node-runtime.ts';

export const XAPI_USER = 'root';
/** The profiles the double knows: the XAPI versions users run. */
import {
  DEFAULT_PROFILE as DEFAULT_XAPI_PROFILE,
  PROFILE_NAMES as XAPI_PROFILES,
  type ProfileName as XapiProfile,
} from '../../dom0/xapi-double/src/profiles.ts';

export { XAPI_PROFILES, type XapiProfile };

/** dom0's HTTPS port of the n-th endpoint (the first is XAPI's own 443). */
function dom0Port(n: number): number {
  return n === 0 ? 443 : 8443 + n;
}
/** The forward's name (in the host's `ports`) and the config file's suffix of the n-th endpoint. */
function endpointName(n: number): string {
  return n === 0 ? 'xapis' : `xapis-${n}`;
}

export interface EmbeddedXapiEndpoint {
  profile: XapiProfile;
  /** https://127.0.0.1:PORT */
  url: string;
}

export interface EmbeddedXapiInfo {
  /** Every endpoint; the first is the one `--host embedded` uses. */
  endpoints: EmbeddedXapiEndpoint[];
  user: string;
  /** <stateDir>/xapi-password, mode 0600. */
  passwordFile: string;
  /** <stateDir>/xapi-ca.pem: the certificate to verify the endpoints' TLS against. */
  caFile: string;
}

export interface EmbeddedXapiOptions {
  /** One endpoint per profile, the first being the default. Default: [xenserver-8]. */
  profiles?: readonly XapiProfile[];
  /**
   * Lines for dom0's /etc/xenopsd.conf (e.g. { domain_shutdown_ack_timeout: 15 }, seconds): the
   * endpoints read their timeouts from it as xenopsd does, and the harness finds them there as on a
   * tuned real host. Tests shorten XAPI's 60/30/1200 s this way.
   */
  xenopsdConf?: Record<string, number>;
  /** Lines for dom0's /etc/xapi.conf (e.g. domain_shutdown_total_timeout). */
  xapiConf?: Record<string, number>;
  onProgress?: (line: string) => void;
}

/**
 * Builds (or reuses) the archives dom0 needs for the endpoint: Node (the one
 * node-runtime archive, as for the bench's probe) and the endpoint itself
 * (`node dom0/xapi-double/build.mjs`). Returns their paths, Node's first.
 */
export async function buildXapiEndpoint(onProgress?: (line: string) => void): Promise<string[]> {
  const node = await buildNodeRuntime(onProgress ? { onProgress } : {});
  const [endpoint] = await runBuild([], onProgress);
  return [node, endpoint!];
}

function runBuild(args: string[], onProgress?: (line: string) => void): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dom0', 'xapi-double', 'build.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      for (const line of b.toString().split('\n')) if (line.trim()) onProgress?.(line.trim());
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 && out.trim()) resolve(out.trim().split('\n'));
      else
        reject(
          new EmbeddedHostError(
            `building the XenAPI test double failed (node dom0/xapi-double/build.mjs exited with ${code}): ${err.trim().split('\n').slice(-5).join(' | ')}`,
          ),
        );
    });
  });
}

/** A gzip'd newc archive of `files` (path in dom0 → content, mode). */
export function makeCpio(dir: string, files: Record<string, { content: string; mode: number }>, out: string): void {
  const root = mkdtempSync(join(dir, '.xapi-cpio-'));
  try {
    for (const [p, f] of Object.entries(files)) {
      const dest = join(root, p);
      mkdirSync(join(dest, '..'), { recursive: true });
      writeFileSync(dest, f.content);
      chmodSync(dest, f.mode);
    }
    // The archive holds the password: no moment where others may read it.
    // Paths as arguments, never in the script text: a state directory's name may hold a quote.
    execFileSync('sh', ['-c', 'umask 077 && cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -n > "$2"', 'sh', root, out]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** `key = value` lines, the format of xenopsd's and xapi's config files. */
function confFile(what: string, values: Record<string, number>): string {
  const lines = Object.entries(values).map(([k, v]) => {
    if (!/^[a-z0-9_-]+$/.test(k) || !Number.isFinite(v) || v < 0) throw new Error(`${what}: bad setting ${k} = ${v}`);
    return `${k} = ${v}`;
  });
  return `# written by xtv for the embedded host's XenAPI test double\n${lines.join('\n')}\n`;
}

export interface PreparedXapi {
  upOptions: Required<Pick<UpOptions, 'forwards' | 'extraInitrds'>>;
  /** After EmbeddedHost.up: waits until every endpoint answers, then records them in the host's state. */
  finish(host: EmbeddedHost, opts?: { timeoutMs?: number }): Promise<EmbeddedXapiInfo>;
}

export async function prepareEmbeddedXapi(stateDir: string, opts: EmbeddedXapiOptions = {}): Promise<PreparedXapi> {
  const profiles = opts.profiles ?? [DEFAULT_XAPI_PROFILE];
  if (profiles.length === 0) throw new Error('prepareEmbeddedXapi: no profile');
  for (const p of profiles)
    if (!(XAPI_PROFILES as readonly string[]).includes(p)) throw new Error(`unknown XenAPI profile ${JSON.stringify(p)} (known: ${XAPI_PROFILES.join(', ')})`);
  const archives = await buildXapiEndpoint(opts.onProgress);
  ensurePrivateDir(stateDir);
  const password = randomBytes(18).toString('base64url');
  const passwordFile = join(stateDir, 'xapi-password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  chmodSync(passwordFile, 0o600);
  const caFile = join(stateDir, 'xapi-ca.pem');
  copyFileSync(join(REPO_ROOT, 'dist', 'xapi-endpoint', 'tls.crt'), caFile);

  const files: Record<string, { content: string; mode: number }> = {
    'etc/xtv/xapi/password': { content: `${password}\n`, mode: 0o600 },
  };
  const forwards: Record<string, number> = {};
  profiles.forEach((profile, n) => {
    const config = {
      user: XAPI_USER,
      passwordFile: '/etc/xtv/xapi/password',
      profile,
      httpsPort: dom0Port(n),
      tlsKey: '/etc/xtv/xapi/tls.key',
      tlsCert: '/etc/xtv/xapi/tls.crt',
    };
    files[n === 0 ? 'etc/xtv/xapi/config.json' : `etc/xtv/xapi/config-${n}.json`] = { content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o644 };
    forwards[endpointName(n)] = dom0Port(n);
  });
  if (opts.xenopsdConf) files['etc/xenopsd.conf'] = { content: confFile('xenopsd.conf', opts.xenopsdConf), mode: 0o644 };
  if (opts.xapiConf) files['etc/xapi.conf'] = { content: confFile('xapi.conf', opts.xapiConf), mode: 0o644 };
  const perHost = join(stateDir, 'xapi-host.cpio.gz');
  makeCpio(stateDir, files, perHost);
  chmodSync(perHost, 0o600);
  return {
    upOptions: { forwards, extraInitrds: [...archives, perHost] },
    async finish(host, o = {}) {
      const endpoints = profiles.map((profile, n) => {
        const port = host.ports[endpointName(n)];
        if (port === undefined) throw new Error('the host was booted without the XenAPI forwards (use prepareEmbeddedXapi().upOptions)');
        return { profile, url: `https://127.0.0.1:${port}`, port };
      });
      const ca = readFileSync(caFile);
      await Promise.all(endpoints.map((e) => waitForHttps(e.port, ca, o.timeoutMs ?? 120_000, host)));
      const info: EmbeddedXapiInfo = { endpoints: endpoints.map(({ profile, url }) => ({ profile, url })), user: XAPI_USER, passwordFile, caFile };
      host.setExtra('xapi', info);
      return info;
    },
  };
}

/** Polls GET / on a forwarded HTTPS port until the endpoint answers (bounded; TLS checked against the double's certificate). */
async function waitForHttps(port: number, ca: Buffer, timeoutMs: number, host: EmbeddedHost): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', timeout: 3000, ca }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', (e) => {
        last = e.message;
        resolve(false);
      });
      req.on('timeout', () => {
        req.destroy();
        last = 'timeout';
        resolve(false);
      });
      req.end();
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  const log = await host
    .exec('tail -n 20 /var/log/xtv-xapi*.log', { timeoutMs: 10_000 })
    .then((r) => r.stdout)
    .catch(() => '(could not read it)');
  throw new EmbeddedHostError(
    `the XenAPI test double did not answer on 127.0.0.1:${port} within ${Math.round(timeoutMs / 1000)} s (${last}); dom0's /var/log/xtv-xapi*.log:\n${log}`,
  );
}

/** What the host's record says about its endpoints (null: booted without them). */
export function embeddedXapiInfo(host: EmbeddedHost): EmbeddedXapiInfo | null {
  const x = host.extra.xapi as Partial<EmbeddedXapiInfo> | undefined;
  if (!x || !Array.isArray(x.endpoints) || x.endpoints.length === 0 || typeof x.passwordFile !== 'string' || typeof x.caFile !== 'string') return null;
  return { endpoints: x.endpoints, user: String(x.user ?? XAPI_USER), passwordFile: x.passwordFile, caFile: x.caFile };
}

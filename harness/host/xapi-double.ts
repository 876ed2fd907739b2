// The XenAPI test double on the embedded host: what `xtv host up` (and the
// e2e tests) add to a boot so that dom0 serves XenAPI.
//
//   const x = await prepareEmbeddedXapi(stateDir);          // build (cached), password, per-host archive
//   const host = await EmbeddedHost.up({ stateDir, ...x.upOptions });
//   await x.finish(host);                                    // waits for the endpoint; records it in host.json
//
// The password is made per boot, kept in <stateDir>/xapi-password (0600) and in
// the host's record, which `xtv host status --json` shows as
// xapi: {url, httpsUrl, user, password}. dom0 gets it in a small archive of its
// own (<stateDir>/xapi-host.cpio.gz), never on a command line.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { EmbeddedHost, UpOptions } from '../host/embedded-host.ts';
import { REPO_ROOT } from '../host/paths.ts';

/** Ports the endpoint listens on in dom0, and the names of their forwards. */
export const XAPI_FORWARDS = { xapi: 80, xapis: 443 } as const;
export const XAPI_USER = 'root';

export interface EmbeddedXapiInfo {
  /** Plain HTTP on 127.0.0.1 (loopback only): what the harness uses by default for the embedded host. */
  url: string;
  /** HTTPS with the endpoint's self-signed certificate: refused unless --allow-unauthorized. */
  httpsUrl: string;
  user: string;
  password: string;
}

/** Lifecycle overrides for the endpoint (tests shorten XAPI's 60/30/1200 s timeouts). */
export interface EmbeddedXapiOptions {
  lifecycle?: Record<string, number>;
  onProgress?: (line: string) => void;
}

/**
 * Builds (or reuses) the archives dom0 needs for the endpoint: Node (the
 * host's node-runtime module when there is one, else build.mjs --with-node)
 * and the endpoint itself (`node xapi-endpoint/build.mjs`). Returns their paths, Node's first.
 */
export async function buildXapiEndpoint(onProgress?: (line: string) => void): Promise<string[]> {
  let nodeRuntime: string | null = null;
  try {
    const mod = (await import('../host/node-runtime.ts')) as { buildNodeRuntime?: (o: { onProgress?: (m: string) => void }) => Promise<string> };
    if (mod.buildNodeRuntime) nodeRuntime = await mod.buildNodeRuntime(onProgress ? { onProgress } : {});
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
  const built = await runBuild(nodeRuntime ? [] : ['--with-node'], onProgress);
  const [endpoint, ownNode] = built;
  return [nodeRuntime ?? ownNode!, endpoint!];
}

function runBuild(args: string[], onProgress?: (line: string) => void): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'xapi-endpoint', 'build.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      for (const line of b.toString().split('\n')) if (line.trim()) onProgress?.(line.trim());
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 && out.trim()) resolve(out.trim().split('\n'));
      else reject(new Error(`building the XenAPI test double failed (node xapi-endpoint/build.mjs exited with ${code}): ${err.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

/** A gzip'd newc archive of `files` (path in dom0 → content, mode). */
function makeCpio(dir: string, files: Record<string, { content: string; mode: number }>, out: string): void {
  const root = mkdtempSync(join(dir, '.xapi-cpio-'));
  try {
    for (const [p, f] of Object.entries(files)) {
      const dest = join(root, p);
      mkdirSync(join(dest, '..'), { recursive: true });
      writeFileSync(dest, f.content);
      chmodSync(dest, f.mode);
    }
    execFileSync('sh', ['-c', `cd '${root}' && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -n > '${out}'`]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export interface PreparedXapi {
  upOptions: Required<Pick<UpOptions, 'forwards' | 'extraInitrds'>>;
  password: string;
  /** After EmbeddedHost.up: waits until the endpoint answers, then records it in the host's state. */
  finish(host: EmbeddedHost, opts?: { timeoutMs?: number }): Promise<EmbeddedXapiInfo>;
}

export async function prepareEmbeddedXapi(stateDir: string, opts: EmbeddedXapiOptions = {}): Promise<PreparedXapi> {
  const archives = await buildXapiEndpoint(opts.onProgress);
  mkdirSync(stateDir, { recursive: true });
  const password = randomBytes(18).toString('base64url');
  const pwFile = join(stateDir, 'xapi-password');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  chmodSync(pwFile, 0o600);
  const config = {
    user: XAPI_USER,
    passwordFile: '/etc/xtv/xapi/password',
    httpPort: XAPI_FORWARDS.xapi,
    httpsPort: XAPI_FORWARDS.xapis,
    tlsKey: '/etc/xtv/xapi/tls.key',
    tlsCert: '/etc/xtv/xapi/tls.crt',
    ...(opts.lifecycle ? { lifecycle: opts.lifecycle } : {}),
  };
  const perHost = join(stateDir, 'xapi-host.cpio.gz');
  makeCpio(stateDir, {
    'etc/xtv/xapi/config.json': { content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o644 },
    'etc/xtv/xapi/password': { content: `${password}\n`, mode: 0o600 },
  }, perHost);
  chmodSync(perHost, 0o600);
  return {
    upOptions: { forwards: { ...XAPI_FORWARDS }, extraInitrds: [...archives, perHost] },
    password,
    async finish(host, o = {}) {
      const port = host.ports.xapi;
      const sport = host.ports.xapis;
      if (port === undefined || sport === undefined) throw new Error('the host was booted without the XenAPI forwards (use prepareEmbeddedXapi().upOptions)');
      await waitForHttp(port, o.timeoutMs ?? 120_000, host);
      const info: EmbeddedXapiInfo = { url: `http://127.0.0.1:${port}`, httpsUrl: `https://127.0.0.1:${sport}`, user: XAPI_USER, password };
      host.setExtra('xapi', info);
      return info;
    },
  };
}

/** Polls GET / on the forwarded port until the endpoint answers (bounded). */
async function waitForHttp(port: number, timeoutMs: number, host: EmbeddedHost): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', timeout: 3000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', (e) => { last = e.message; resolve(false); });
      req.on('timeout', () => { req.destroy(); last = 'timeout'; resolve(false); });
      req.end();
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  const log = await host.exec('tail -n 20 /var/log/xtv-xapi.log', { timeoutMs: 10_000 }).then((r) => r.stdout).catch(() => '(could not read it)');
  throw new Error(`the XenAPI test double did not answer on 127.0.0.1:${port} within ${Math.round(timeoutMs / 1000)} s (${last}); dom0's /var/log/xtv-xapi.log:\n${log}`);
}

/** What the host's record says about its endpoint (null: booted without it). */
export function embeddedXapiInfo(host: EmbeddedHost): EmbeddedXapiInfo | null {
  const x = host.extra.xapi as Partial<EmbeddedXapiInfo> | undefined;
  if (!x || typeof x.url !== 'string' || typeof x.password !== 'string') return null;
  return { url: x.url, httpsUrl: String(x.httpsUrl ?? ''), user: String(x.user ?? XAPI_USER), password: x.password };
}

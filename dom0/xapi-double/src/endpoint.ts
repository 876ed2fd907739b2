// One endpoint: the API, its lifecycle over a Hypervisor, and its servers.
// Used by main.ts in dom0 (xl backend) and by the unit tests (fake backend).
import type { Server } from 'node:http';
import { DEFAULT_SESSION_LIMITS, XenApi, type SessionLimits } from './api.ts';
import { createHttp, createHttps, DEFAULT_HTTP_LIMITS, listen, type HttpLimits } from './http.ts';
import type { Hypervisor } from './hypervisor.ts';
import { DEFAULT_LIFECYCLE, Lifecycle, type LifecycleConfig } from './lifecycle.ts';
import { DEFAULT_PROFILE, PROFILES, type Profile } from './profiles.ts';

export interface EndpointOptions {
  user: string;
  password: string;
  hypervisor: Hypervisor;
  /** The XAPI version to pass for; default xenserver-8. */
  profile?: Profile;
  lifecycle?: Partial<LifecycleConfig>;
  http?: { port: number; host?: string };
  https?: { port: number; host?: string; key: string | Buffer; cert: string | Buffer };
  maxEventWaitSec?: number;
  /** Bounds on what clients may hold (http.ts HttpLimits, api.ts SessionLimits); each defaults as DEFAULT_LIMITS says. */
  limits?: Partial<Limits>;
  log?: (line: string) => void;
}

export type Limits = HttpLimits & SessionLimits;
export const DEFAULT_LIMITS: Limits = { ...DEFAULT_HTTP_LIMITS, ...DEFAULT_SESSION_LIMITS };

/** One line for the log: the limits in force. */
export function describeLimits(l: Limits): string {
  return `limits: bodies up to ${l.maxBodyBytes} bytes, ${l.maxConnections} connections per server, requests in within ${l.requestTimeoutMs / 1000} s, sessions idle for ${l.sessionIdleMs / 1000} s expire, at most ${l.maxSessions} sessions`;
}

export interface RunningEndpoint {
  api: XenApi;
  lifecycle: Lifecycle;
  httpPort: number | null;
  httpsPort: number | null;
  close(): Promise<void>;
}

export async function startEndpoint(opts: EndpointOptions): Promise<RunningEndpoint> {
  const log = opts.log ?? (() => {});
  const profile = opts.profile ?? PROFILES[DEFAULT_PROFILE];
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const httpLimits: HttpLimits = { maxBodyBytes: limits.maxBodyBytes, maxConnections: limits.maxConnections, requestTimeoutMs: limits.requestTimeoutMs };
  const api = new XenApi({
    user: opts.user,
    password: opts.password,
    profile,
    ...(opts.maxEventWaitSec !== undefined ? { maxEventWaitSec: opts.maxEventWaitSec } : {}),
    sessions: { sessionIdleMs: limits.sessionIdleMs, maxSessions: limits.maxSessions },
  });
  const lifecycle = new Lifecycle(api.db, opts.hypervisor, profile, { ...DEFAULT_LIFECYCLE, ...opts.lifecycle }, () => api.hostRef, log);
  api.attach(lifecycle);
  const servers: Server[] = [];
  const close = async () => {
    api.shutdown();
    lifecycle.close();
    // Let the answered event.from calls reach their clients before the sockets go.
    await new Promise((r) => setTimeout(r, 20));
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((res) => {
            s.close(() => res());
            s.closeAllConnections?.();
          }),
      ),
    );
  };
  try {
    let httpPort: number | null = null;
    let httpsPort: number | null = null;
    if (opts.http) {
      const s = createHttp(api, { onCall: log, limits: httpLimits });
      servers.push(s);
      httpPort = await listen(s, opts.http.port, opts.http.host);
    }
    if (opts.https) {
      const s = createHttps(api, { key: opts.https.key, cert: opts.https.cert }, { onCall: log, limits: httpLimits });
      servers.push(s);
      httpsPort = await listen(s, opts.https.port, opts.https.host);
    }
    await lifecycle.refresh();
    // host.capabilities as xapi fills it (xen_caps): what the harness reads to know PVH can run.
    try {
      api.db.update('host', api.hostRef, { capabilities: (await opts.hypervisor.hostInfo()).xenCaps });
    } catch (err) {
      log(`host capabilities unknown: ${err instanceof Error ? err.message : String(err)}`);
    }
    return { api, lifecycle, httpPort, httpsPort, close };
  } catch (err) {
    await close();
    throw err;
  }
}

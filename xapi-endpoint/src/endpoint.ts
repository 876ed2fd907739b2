// One endpoint: the API, its lifecycle over a Hypervisor, and its servers.
// Used by main.ts in dom0 (xl backend) and by the unit tests (fake backend).
import type { Server } from 'node:http';
import { XenApi } from './api.ts';
import { createHttp, createHttps, listen } from './http.ts';
import type { Hypervisor } from './hypervisor.ts';
import { DEFAULT_LIFECYCLE, Lifecycle, type LifecycleConfig } from './lifecycle.ts';

export interface EndpointOptions {
  user: string;
  password: string;
  hypervisor: Hypervisor;
  lifecycle?: Partial<LifecycleConfig>;
  http?: { port: number; host?: string };
  https?: { port: number; host?: string; key: string | Buffer; cert: string | Buffer };
  maxEventWaitSec?: number;
  log?: (line: string) => void;
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
  const api = new XenApi({ user: opts.user, password: opts.password, ...(opts.maxEventWaitSec !== undefined ? { maxEventWaitSec: opts.maxEventWaitSec } : {}) });
  const lifecycle = new Lifecycle(api.db, opts.hypervisor, { ...DEFAULT_LIFECYCLE, ...opts.lifecycle }, () => api.hostRef, log);
  api.attach(lifecycle);
  const servers: Server[] = [];
  const close = async () => {
    api.shutdown();
    lifecycle.close();
    // Let the answered event.from calls reach their clients before the sockets go.
    await new Promise((r) => setTimeout(r, 20));
    await Promise.all(servers.map((s) => new Promise<void>((res) => {
      s.close(() => res());
      s.closeAllConnections?.();
    })));
  };
  try {
    let httpPort: number | null = null;
    let httpsPort: number | null = null;
    if (opts.http) {
      const s = createHttp(api, { onCall: log });
      servers.push(s);
      httpPort = await listen(s, opts.http.port, opts.http.host);
    }
    if (opts.https) {
      const s = createHttps(api, { key: opts.https.key, cert: opts.https.cert }, { onCall: log });
      servers.push(s);
      httpsPort = await listen(s, opts.https.port, opts.https.host);
    }
    await lifecycle.refresh();
    return { api, lifecycle, httpPort, httpsPort, close };
  } catch (err) {
    await close();
    throw err;
  }
}

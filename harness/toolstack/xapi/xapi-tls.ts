// The XenAPI client's connections: TLS verified against a CA the user names
// (--ca FILE: XCP-ng and XenServer hosts ship self-signed certificates, and
// verifying against the one the user trusts is better than turning
// verification off), and a connect bound that suits slow hosts (undici's
// default, 10 s for TCP and the TLS handshake, was missed by an emulated dom0
// under load). The `xen-api` client has no option for either: it makes its
// own undici Agent (rejectUnauthorized only) and binds its transport to it in
// _setUrl (node_modules/xen-api/index.mjs, v4.7). So the Agent is replaced,
// and the transport made again. The hostname is still checked against the
// certificate unless verification is off.
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import type { Xapi } from 'xen-api';
import { ConnectionError } from '../driver.ts';

interface ClientInternals {
  _undiciDispatcher?: { destroy(): Promise<void> };
  _url?: unknown;
  _setUrl?: (url: unknown) => void;
}

export function readCaFile(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConnectionError(`cannot read the CA file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConnectionError(`the CA file ${path} holds no PEM certificate`);
  return pem;
}

export interface AgentOptions {
  /** Verify against this CA (PEM) instead of the system's store. */
  ca?: string;
  /** false only when the user asked by name (--allow-unauthorized). */
  rejectUnauthorized: boolean;
  inactivityTimeoutMs: number;
  /** Bound on TCP connect plus the TLS handshake. */
  connectTimeoutMs: number;
}

/** Gives `client` an Agent with these TLS settings and bounds. Call before connect(). */
export function useAgent(client: Xapi, o: AgentOptions): void {
  const c = client as unknown as ClientInternals;
  if (typeof c._setUrl !== 'function' || c._url === undefined) {
    throw new ConnectionError('this version of the xen-api client cannot be given its connection settings (its internals changed)');
  }
  void c._undiciDispatcher?.destroy().catch(() => undefined);
  c._undiciDispatcher = new Agent({
    bodyTimeout: o.inactivityTimeoutMs,
    headersTimeout: o.inactivityTimeoutMs,
    maxRedirections: 3,
    connect: { rejectUnauthorized: o.rejectUnauthorized, timeout: o.connectTimeoutMs, minVersion: 'TLSv1.2', ...(o.ca !== undefined ? { ca: o.ca } : {}) },
  });
  c._setUrl(c._url);
}

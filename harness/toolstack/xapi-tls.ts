// TLS for the XenAPI client when the host's certificate is signed by a CA the
// user names (--ca FILE): XCP-ng and XenServer hosts ship self-signed
// certificates, and verifying against the one the user trusts is better than
// turning verification off. The `xen-api` client has no option for it: it
// makes its own undici Agent (rejectUnauthorized only) and binds its
// transport to it in _setUrl (node_modules/xen-api/index.mjs, v4.7). So the
// Agent is replaced by one that verifies against the CA, and the transport
// made again. The hostname is still checked against the certificate.
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import type { Xapi } from 'xen-api';
import { ConnectionError } from './driver.ts';

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

/** Makes `client` verify the server's certificate against `ca` (PEM). Call before connect(). */
export function trustCa(client: Xapi, ca: string, inactivityTimeoutMs: number): void {
  const c = client as unknown as ClientInternals;
  if (typeof c._setUrl !== 'function' || c._url === undefined) {
    throw new ConnectionError('this version of the xen-api client cannot take a CA file (its internals changed); use --allow-unauthorized, or put the CA in the system store');
  }
  void c._undiciDispatcher?.destroy().catch(() => undefined);
  c._undiciDispatcher = new Agent({
    bodyTimeout: inactivityTimeoutMs,
    headersTimeout: inactivityTimeoutMs,
    maxRedirections: 3,
    connect: { ca, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
  });
  c._setUrl(c._url);
}

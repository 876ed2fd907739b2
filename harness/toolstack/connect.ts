// The one place a host address becomes a driver. Every host is reached the
// same way, whatever it is: xl over SSH to dom0; XAPI by its https:// URL,
// with dom0 over SSH beside it for what XenAPI cannot do. (`--host embedded`
// is turned into these addresses before they get here.)
import type { ToolstackDriver, ToolstackKind } from './driver.ts';

export interface ConnectOptions {
  /** xl: dom0 as ssh://[USER@]HOST[:PORT]; xapi: the XenAPI URL, https://HOST[:PORT]. */
  host: string;
  toolstack: ToolstackKind;
  /** xapi: dom0 as ssh://[USER@]HOST[:PORT] (default ssh://root@HOST, HOST from the URL), or 'none' for XenAPI only. */
  dom0?: string;
  /** SSH private key for dom0 (default $XTV_SSH_IDENTITY, else ssh's own). */
  identity?: string;
  /** known_hosts file for dom0 (default $XTV_SSH_KNOWN_HOSTS, else the user's). */
  knownHosts?: string;
  /** XAPI: accept a certificate that does not verify. */
  allowUnauthorized?: boolean;
  /** XAPI: verify the certificate against this CA file (PEM) instead of the system's. */
  caFile?: string;
  /** XAPI user (the password comes from XTV_PASSWORD or a file, never from argv). */
  user?: string;
  /** XAPI: a file holding the password (--password-file; else $XTV_PASSWORD_FILE). */
  passwordFile?: string;
  /** Declare that the host's guest console logs are not to be used, even where dom0 keeps them. */
  noConsoleLog?: boolean;
  /** Progress lines (stderr in the CLI). */
  onProgress?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** Reaches the host and returns a driver for its toolstack; ConnectionError when it cannot. */
export async function connectToolstack(opts: ConnectOptions): Promise<ToolstackDriver> {
  if (opts.toolstack === 'xapi') {
    const { connectXapi } = await import('./xapi/xapi-connect.ts');
    return connectXapi(opts);
  }
  const { connectXl } = await import('./xl/xl-connect.ts');
  return connectXl(opts);
}

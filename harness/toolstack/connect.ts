// The one place the CLI turns --host/--toolstack into a driver. The driver
// modules fill in their branch; until then each says so clearly.
import type { ToolstackDriver, ToolstackKind } from './driver.ts';

export interface ConnectOptions {
  /** embedded | ssh://[USER@]HOST[:PORT] | https://XAPI-HOST (http:// too). */
  host: string;
  toolstack: ToolstackKind;
  /** XAPI: accept a certificate that does not verify. */
  allowUnauthorized?: boolean;
  /** XAPI user (the password comes from XTV_PASSWORD or a file, never from argv). */
  user?: string;
  /** XAPI: a file holding the password (--password-file; else $XTV_PASSWORD_FILE). */
  passwordFile?: string;
  /** Progress lines (stderr in the CLI). */
  onProgress?: (line: string) => void;
  /** --host embedded: the host's state directory (default $XTV_STATE_DIR, else ./.xtv/host). */
  stateDir?: string;
  /** ssh:// hosts: the private key (default $XTV_SSH_IDENTITY, else ssh's own). */
  identity?: string;
  /** --host embedded: boot the host when none runs (left running, as `xtv host up` does). */
  autoBoot?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Reaches the host and returns a driver for its toolstack; ConnectionError when it cannot. */
export async function connectToolstack(opts: ConnectOptions): Promise<ToolstackDriver> {
  if (opts.toolstack === 'xapi') {
    const { connectXapi } = await import('./xapi-connect.ts');
    return connectXapi(opts);
  }
  const { connectXl } = await import('./xl-connect.ts');
  return connectXl({
    host: opts.host,
    ...(opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {}),
    ...(opts.identity !== undefined ? { identity: opts.identity } : {}),
    ...(opts.autoBoot !== undefined ? { autoBoot: opts.autoBoot } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  });
}

// Directories only their owner can enter: the embedded host's state
// directory (its SSH key path, known_hosts, the XenAPI double's password
// file, dom0's initramfs with that password inside) and the directory of an
// SSH control socket (ssh_config(5), ControlPath: "should not be writable by
// other users"). mkdir's mode applies only to a directory it makes, so one
// that exists is checked, and tightened when it is ours.
import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedHostError } from './host-error.ts';

/** Makes `dir` (and its parents) if needed; leaves it mode 0700 and ours, or throws EmbeddedHostError. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new EmbeddedHostError(`${dir} is not a directory (a symbolic link is not taken)`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new EmbeddedHostError(`${dir} belongs to uid ${st.uid}, not to this user (${uid}): choose another --state-dir`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/**
 * This user's directory for SSH control sockets when the state directory's
 * own path is too long for a socket: $XDG_RUNTIME_DIR (0700 by definition),
 * else <tmp>/xtv-<uid>, made private. Pure: ensurePrivateDir makes it.
 */
export function userSocketDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'xtv');
  return join(tmpdir(), `xtv-${process.getuid?.() ?? 'user'}`);
}

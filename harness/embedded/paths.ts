// Where the embedded host's files live: the build outputs (dist/host) and the
// state directory of one running host. Pure functions; no I/O.
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { userSocketDir } from './private-dir.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What dom0/image/build.sh leaves in dist/host. */
export interface HostArtifacts {
  dir: string;
  xen: string;
  kernel: string;
  initrd: string;
  privateKey: string;
  manifest: string;
}

export function hostArtifacts(distDir: string = join(REPO_ROOT, 'dist', 'host')): HostArtifacts {
  return {
    dir: distDir,
    xen: join(distDir, 'xen'),
    kernel: join(distDir, 'vmlinuz'),
    initrd: join(distDir, 'dom0.cpio'),
    privateKey: join(distDir, 'id_ed25519'),
    manifest: join(distDir, 'manifest.json'),
  };
}

/**
 * The state directory: the --state-dir flag, else $XTV_STATE_DIR, else
 * <cwd>/.xtv/host. Always absolute, so a recorded path stays valid when the
 * next command runs from elsewhere.
 */
export function resolveStateDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  if (flag !== undefined && flag !== '') return resolve(cwd, flag);
  const fromEnv = env.XTV_STATE_DIR;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(cwd, fromEnv);
  return join(cwd, '.xtv', 'host');
}

/** The files of one host in its state directory. */
export interface StateFiles {
  dir: string;
  /** host.json: pid, ports, key, paths (see HostState). */
  state: string;
  /** Written by QEMU itself (-pidfile). */
  pid: string;
  /** Held while a `up` is starting, so two cannot race. */
  lock: string;
  /** QEMU's serial console: Xen's and dom0's messages. */
  bootLog: string;
  /** QEMU's own stderr. */
  qemuLog: string;
  /** OpenSSH's multiplexing socket. */
  controlPath: string;
  /** dom0's host key as ssh recorded it on first contact (a new boot starts it afresh). */
  knownHosts: string;
  /** dom0's initramfs with extra archives appended, when any were asked for. */
  combinedInitrd: string;
}

// Unix socket paths are limited to 108 bytes (104 on some systems), and ssh
// appends a random suffix while it creates the socket.
const MAX_CONTROL_PATH = 90;

export function stateFiles(stateDir: string): StateFiles {
  const dir = resolve(stateDir);
  let controlPath = join(dir, 'ssh.sock');
  if (controlPath.length > MAX_CONTROL_PATH) {
    const digest = createHash('sha256').update(dir).digest('hex').slice(0, 16);
    controlPath = join(userSocketDir(), `ssh-${digest}.sock`);
  }
  return {
    dir,
    state: join(dir, 'host.json'),
    pid: join(dir, 'qemu.pid'),
    lock: join(dir, 'up.lock'),
    bootLog: join(dir, 'boot.log'),
    qemuLog: join(dir, 'qemu.log'),
    controlPath,
    knownHosts: join(dir, 'known_hosts'),
    combinedInitrd: join(dir, 'dom0-combined.cpio'),
  };
}

// The record of a running host in its state directory (host.json), and the
// rule "one host per state directory": a live QEMU recorded there refuses a
// second `up`; the record of a dead one is cleaned.
import { readFileSync, renameSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { isProcessAlive } from './process-utils.ts';
import { stateFiles } from './paths.ts';
import { EmbeddedHostError } from './host-error.ts';
import { ensurePrivateDir } from './private-dir.ts';

export const QEMU_NAME = 'qemu-system-x86_64';

export interface HostState {
  version: 1;
  /** QEMU's pid. */
  pid: number;
  /** Port on 127.0.0.1 forwarded to dom0's SSH (22). */
  sshPort: number;
  /** Every forward by name (ssh, and any asked for with `forwards`): host port on 127.0.0.1. */
  ports: Record<string, number>;
  privateKey: string;
  controlPath: string;
  bootLog: string;
  qemuLog: string;
  distDir: string;
  /** ISO time QEMU was started, and when dom0 answered. */
  startedAt: string;
  readyAt?: string;
  memoryMiB: number;
  dom0MemoryMiB: number;
  cpus: number;
  /** 'cli': left running by `xtv host up`; 'library': owned by one Node process, dies with it. */
  owner: 'cli' | 'library';
  /** The process that started it (for the owner 'library', QEMU dies with it). */
  ownerPid: number;
  /** Values other components record with EmbeddedHost.setExtra (e.g. the XenAPI endpoint). */
  extra?: Record<string, unknown>;
}

export class HostAlreadyRunningError extends Error {
  override name = 'HostAlreadyRunningError';
  constructor(
    readonly stateDir: string,
    readonly pid: number,
  ) {
    super(
      `an embedded host is already running for state dir ${stateDir} (QEMU pid ${pid}); stop it with 'xtv host down --state-dir ${stateDir}' or use another --state-dir`,
    );
  }
}

export class HostNotRunningError extends Error {
  override name = 'HostNotRunningError';
  constructor(
    readonly stateDir: string,
    detail = '',
  ) {
    super(`no embedded host is running for state dir ${stateDir}${detail ? ` (${detail})` : ''}; start one with 'xtv host up --state-dir ${stateDir}'`);
  }
}

export function readState(stateDir: string): HostState | null {
  let text: string;
  try {
    text = readFileSync(stateFiles(stateDir).state, 'utf8');
  } catch {
    return null;
  }
  try {
    const s = JSON.parse(text) as HostState;
    if (s.version !== 1 || typeof s.pid !== 'number' || typeof s.sshPort !== 'number') return null;
    return s;
  } catch {
    return null;
  }
}

export function writeState(stateDir: string, state: HostState): void {
  const f = stateFiles(stateDir);
  ensurePrivateDir(f.dir);
  const tmp = `${f.state}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, f.state);
}

/** The pid QEMU wrote with -pidfile, or null. */
export function readPidFile(stateDir: string): number | null {
  try {
    const n = Number.parseInt(readFileSync(stateFiles(stateDir).pid, 'utf8').trim(), 10);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** The recorded host when its QEMU is alive; null (after cleaning the stale record) otherwise. */
export function liveState(stateDir: string): HostState | null {
  const s = readState(stateDir);
  const pid = s?.pid ?? readPidFile(stateDir);
  if (pid !== null && isProcessAlive(pid, QEMU_NAME)) return s;
  if (s !== null || pid !== null) clearState(stateDir);
  return null;
}

/** Removes the record of a host (not its boot log, which explains what happened). */
export function clearState(stateDir: string): void {
  const f = stateFiles(stateDir);
  for (const p of [f.state, f.pid, f.controlPath, f.knownHosts, f.combinedInitrd]) rmSync(p, { force: true });
}

/**
 * Takes the state directory for a new host, or throws HostAlreadyRunningError.
 * An exclusive lock file keeps two concurrent `up`s apart; a lock left by a
 * dead process is taken over. Returns the function that releases it.
 */
export function claimStateDir(stateDir: string): () => void {
  const f = stateFiles(stateDir);
  ensurePrivateDir(f.dir);
  ensurePrivateDir(dirname(f.controlPath));
  const live = liveState(stateDir);
  if (live) throw new HostAlreadyRunningError(f.dir, live.pid);
  const pidInPidFile = readPidFile(stateDir);
  if (pidInPidFile !== null && isProcessAlive(pidInPidFile, QEMU_NAME)) throw new HostAlreadyRunningError(f.dir, pidInPidFile);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(f.lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(f.lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(readFileSync(f.lock, 'utf8'), 10);
      if (isProcessAlive(holder)) {
        throw new EmbeddedHostError(`another 'xtv host up' (pid ${holder}) is starting a host in ${f.dir}; wait for it or stop it`);
      }
      rmSync(f.lock, { force: true });
    }
  }
  throw new Error(`could not take the lock ${f.lock}`);
}

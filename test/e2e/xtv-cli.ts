// Running the `xtv` command as a user does, for the e2e files that test it
// end to end. No side effects on import.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../../harness/embedded/paths.ts';

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  sentAt?: number;
}

/** The `xtv` processes running, for a signal to pass on (npm test's runner sends SIGINT/SIGTERM to the file). */
export const running = new Set<ChildProcess>();

export interface XtvOptions {
  /** Added to the environment. */
  env?: NodeJS.ProcessEnv;
  /** Start from an environment without any XTV_* variable (as a user who set none). */
  cleanEnv?: boolean;
  timeoutMs: number;
  /** Sends SIGINT the first time stderr matches. */
  interruptWhen?: RegExp;
}

/** Runs `xtv ARGS` and collects its output; killed at the bound. */
export function xtv(args: string[], o: XtvOptions): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const base = o.cleanEnv ? Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('XTV_'))) : process.env;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'xtv.js'), ...args], { env: { ...base, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const run: Run = { code: null, stdout: '', stderr: '', ms: 0 };
    child.stdout.on('data', (b: Buffer) => {
      run.stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      run.stderr += b.toString();
      if (o.interruptWhen && run.sentAt === undefined && o.interruptWhen.test(run.stderr)) {
        run.sentAt = Date.now() - t0;
        child.kill('SIGINT');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.on('close', (code) => {
      running.delete(child);
      clearTimeout(timer);
      resolve({ ...run, code, ms: Date.now() - t0 });
    });
  });
}

/**
 * Runs `fn` with a temporary directory for reports. npm test's runner passes
 * SIGINT/SIGTERM on, and `finally` does not run when a signal ends the file:
 * the xtv processes get it too (they stop and clean up), and the directory goes.
 */
export async function withReportDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const onSignal = (): void => {
    for (const child of running) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    return await fn(dir);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where an e2e file's `xtv run` reports go: under $XTV_TEST_REPORT_DIR/NAME when set (npm test sets it: CI
 * keeps them), emptied first (an earlier run's reports and journal would stand in for this run's); else the
 * temporary directory `tmp`, removed afterwards as before. $XTV_TEST_REPORT_DIR itself is never removed.
 */
export function reportRoot(tmp: string, name: string): string {
  const keep = process.env.XTV_TEST_REPORT_DIR;
  if (!keep) return tmp;
  const dir = join(resolve(keep), name);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

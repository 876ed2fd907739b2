// What bench/run.ts (host side) and dom0/bench-probe/probe.ts (in dom0) exchange:
// the probe's configuration (one JSON argument) and its output (one JSON
// document on stdout; progress goes to stderr). Pure.
import type { BootSample } from './boot.ts';
import type { Sample } from './reaction.ts';
import type { MigrateSample, SaveRestoreSample } from './save-restore.ts';

export interface ProbeConfig {
  /** xenstored's unix socket in dom0. */
  socket: string;
  /** The xl config to create the guest from, and the domain name it gives. */
  configPath: string;
  name: string;
  /** Boots measured (the last one stays up for the reaction trials). */
  boots: number;
  /** xl save + xl restore rounds after the reaction trials (save-restore.ts). */
  saves: number;
  /**
   * xl migrate NAME localhost rounds last (save-restore.ts), of the guest above when `name` is its
   * name, else of a guest of their own booted from `configPath` first; null: none.
   */
  migrate: { name: string; configPath: string; rounds: number } | null;
  /** Timed rounds (each: floor, testing, floor, shutdown). */
  trials: number;
  /** Untimed rounds first (warm caches and JITs on both sides). */
  warmup: number;
  bootTimeoutMs: number;
  ackTimeoutMs: number;
  /** Destroy the guest when done (default true). */
  destroy: boolean;
}

export interface ProbeOutput {
  node: string;
  socket: string;
  boots: BootSample[];
  domid: number;
  agent: { version: string | null; bootId: string | null; state: string | null; errors: string | null; lastError: string | null };
  warmupRounds: number;
  samples: Sample[];
  /** Rounds thrown away because the agent's report did not show the event (ReportGlitchError), and why. */
  discarded: Array<{ afterGoodRounds: number; reason: string }>;
  /** Boots that never showed state=ready within the bound (then tried again). */
  failedBoots: string[];
  saveRestore: SaveRestoreSample[];
  /** The migration rounds, of the guest named. */
  migrate: { name: string; samples: MigrateSample[] } | null;
  /** dom0's /proc/loadavg before and after the trials (noise indicator). */
  loadavg: { before: string; after: string };
  elapsedMs: number;
}

/** Encoded so that it survives a shell command line untouched: base64url of the JSON. */
export function encodeProbeConfig(c: ProbeConfig): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

export function decodeProbeConfig(arg: string | undefined): ProbeConfig {
  if (!arg) throw new Error('usage: probe.js <base64url JSON config>');
  const c = JSON.parse(Buffer.from(arg, 'base64url').toString('utf8')) as ProbeConfig;
  for (const k of ['socket', 'configPath', 'name'] as const) if (typeof c[k] !== 'string' || !c[k]) throw new Error(`probe config: ${k} missing`);
  for (const k of ['boots', 'saves', 'trials', 'warmup', 'bootTimeoutMs', 'ackTimeoutMs'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0) throw new Error(`probe config: ${k} must be a whole number, got ${JSON.stringify(c[k])}`);
  }
  if (c.boots < 1) throw new Error('probe config: boots must be at least 1');
  const m = c.migrate;
  if (m !== null && (typeof m !== 'object' || !m.name || !m.configPath || !Number.isInteger(m.rounds) || m.rounds < 1))
    throw new Error(`probe config: migrate must be null or {name, configPath, rounds >= 1}, got ${JSON.stringify(m)}`);
  return c;
}

/** Checks the probe's stdout is a ProbeOutput (the parts the summary relies on). */
export function parseProbeOutput(text: string): ProbeOutput {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`the probe's output is not JSON: ${JSON.stringify(text.slice(0, 200))}`);
  }
  const o = v as ProbeOutput;
  if (
    !o ||
    !Array.isArray(o.boots) ||
    !Array.isArray(o.samples) ||
    typeof o.domid !== 'number' ||
    !Array.isArray(o.discarded) ||
    !Array.isArray(o.failedBoots) ||
    !Array.isArray(o.saveRestore)
  ) {
    throw new Error(`the probe's output lacks boots/samples/domid/discarded/failedBoots/saveRestore: ${JSON.stringify(text.slice(0, 200))}`);
  }
  for (const s of o.saveRestore) {
    if (![s.saveMs, s.restoreMs, s.resumedMs].every(Number.isFinite) || !Number.isInteger(s.domid)) {
      throw new Error(`bad save/restore sample in the probe's output: ${JSON.stringify(s)}`);
    }
  }
  for (const s of o.migrate?.samples ?? []) {
    if (![s.migrateMs, s.resumedMs].every(Number.isFinite) || !Number.isInteger(s.domid)) {
      throw new Error(`bad migration sample in the probe's output: ${JSON.stringify(s)}`);
    }
  }
  for (const s of o.samples) {
    if (!['floor', 'testing', 'shutdown'].includes(s.kind) || !Number.isFinite(s.ms) || !Number.isInteger(s.round)) {
      throw new Error(`bad sample in the probe's output: ${JSON.stringify(s)}`);
    }
  }
  return o;
}

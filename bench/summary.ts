// The benchmark's result document: from the probe's raw samples (in dom0),
// the host's boot times and the image manifest to the JSON that `npm run
// bench` prints and keeps in bench/results/. Pure.
//
// Ratios are the numbers to compare between runs: these machines are noisy,
// and noise moves the agent's times and the floor's together, since their
// trials are interleaved. Two kinds are given:
//   p50, p95     agent summary / floor summary (all floor trials of the run)
//   pairedP50    the median over rounds of (agent trial / the floor trial
//                measured just before it): robust to drift within the run
import type { ProbeOutput } from '../dom0/bench-probe/probe-protocol.ts';
import type { SampleKind } from '../dom0/bench-probe/reaction.ts';
import { percentile, ratio, round, roundSummary, summarize, type Summary } from './stats.ts';

export const RESULT_SCHEMA = 'xtv-bench/1';
/** The image target of the test-image issue: kernel + initrd ≤ 4 MiB (guest/image/build.sh checks the same). */
export const IMAGE_LIMIT_BYTES = 4 * 1024 * 1024;

export interface ImageManifest {
  files: Record<string, { bytes: number; sha256: string }>;
  totalBytes?: number;
  kernelVersion?: string;
  qjsVersion?: string;
  agentVersion?: string;
  minMemoryMiB?: number;
  kernelArgs?: string;
}

export interface HostBoot {
  /** QEMU started → dom0's ready marker on the console. */
  qemuToDom0ReadyMs: number | null;
  /** QEMU started → dom0 answers SSH (what `EmbeddedHost.up` waits for). */
  qemuToSshMs: number;
}

export interface RunInfo {
  startedAt: string;
  command: string;
  config: {
    trials: number;
    warmup: number;
    boots: number;
    saves: number;
    migrations: number;
    /** The migration rounds' guest type (another than domainType where the host cannot live-migrate that one); null: none ran. */
    migrateDomainType: string | null;
    domainType: string;
    memoryMiB: number;
    hostCpus: number;
    hostMemoryMiB: number;
  };
  environment: Record<string, unknown>;
}

export interface RatioSet {
  p50: number | null;
  p95: number | null;
  pairedP50: number | null;
}

export interface BenchResult {
  schema: typeof RESULT_SCHEMA;
  startedAt: string;
  command: string;
  config: RunInfo['config'];
  environment: Record<string, unknown>;
  unit: 'ms';
  reaction: {
    floor: Summary;
    testing: Summary;
    shutdown: Summary;
    /** What each measurement is, in one line each. */
    definitions: Record<SampleKind, string>;
  };
  ratios: { testing: RatioSet; shutdown: RatioSet };
  guestBoot: { readyMs: Summary; createMs: Summary; domids: number[] };
  /** xl save, xl restore, and xl restore started → the agent's state=resumed; null with --saves 0. */
  saveRestore: { saveMs: Summary; restoreMs: Summary; resumedMs: Summary; domids: number[] } | null;
  /** xl migrate NAME localhost, and xl migrate started → the agent's state=resumed; null with --migrations 0 or none possible. */
  migrate: { domainType: string; migrateMs: Summary; resumedMs: Summary; domids: number[] } | null;
  hostBoot: HostBoot;
  image: {
    kernelBytes: number;
    initrdBytes: number;
    totalBytes: number;
    limitBytes: number;
    withinLimit: boolean;
    kernelVersion: string | null;
    qjsVersion: string | null;
    agentVersion: string | null;
    minMemoryMiB: number | null;
  };
  agent: ProbeOutput['agent'];
  /** Things that went wrong and were worked around: rounds discarded (and re-run) because the agent's report did not show the event, boots retried. */
  glitches: { discardedRounds: number; reasons: string[]; failedBoots: string[] };
  /** Every timed trial in ms, per measurement, in the order they ran (round i is index i-1). */
  samples: Record<SampleKind, number[]>;
}

export const DEFINITIONS: Record<SampleKind, string> = {
  floor: "dom0 writes data/xtv/ping → dom0 sees data/xtv/pong = the same value (the guest's watch fires, it reads and writes back; no decoding, no report)",
  testing: 'dom0 writes {"when":"onshutdown","ack":"ok","action":"ignore"} to control/testing → dom0 sees the agent\'s "" ack',
  shutdown: 'dom0 writes "poweroff" to control/shutdown (ignore pending) → dom0 sees the agent\'s "" ack',
};

/** The samples of one kind, in order, and for agent kinds the floor trial just before each (same round). */
export function splitSamples(samples: ProbeOutput['samples']): {
  byKind: Record<SampleKind, number[]>;
  paired: Record<'testing' | 'shutdown', Array<[number, number]>>;
} {
  const byKind: Record<SampleKind, number[]> = { floor: [], testing: [], shutdown: [] };
  const paired: Record<'testing' | 'shutdown', Array<[number, number]>> = { testing: [], shutdown: [] };
  let lastFloor: { round: number; ms: number } | null = null;
  for (const s of samples) {
    byKind[s.kind].push(s.ms);
    if (s.kind === 'floor') {
      lastFloor = { round: s.round, ms: s.ms };
    } else {
      if (lastFloor && lastFloor.round === s.round) paired[s.kind].push([s.ms, lastFloor.ms]);
      lastFloor = null;
    }
  }
  return { byKind, paired };
}

function ratios(agent: Summary, floor: Summary, pairs: Array<[number, number]>): RatioSet {
  const each = pairs.map(([a, f]) => ratio(a, f)).filter((x): x is number => x !== null);
  const r = (x: number | null) => (x === null ? null : round(x, 3));
  return {
    p50: r(ratio(agent.p50, floor.p50)),
    p95: r(ratio(agent.p95, floor.p95)),
    pairedP50: each.length ? r(percentile(each, 50)) : null,
  };
}

export function imageSummary(m: ImageManifest): BenchResult['image'] {
  const kernel = m.files['xtv-kernel'];
  const initrd = m.files['xtv-initrd'];
  if (!kernel || !initrd) throw new Error('the image manifest lists no xtv-kernel / xtv-initrd');
  const total = kernel.bytes + initrd.bytes;
  return {
    kernelBytes: kernel.bytes,
    initrdBytes: initrd.bytes,
    totalBytes: total,
    limitBytes: IMAGE_LIMIT_BYTES,
    withinLimit: total <= IMAGE_LIMIT_BYTES,
    kernelVersion: m.kernelVersion ?? null,
    qjsVersion: m.qjsVersion ?? null,
    agentVersion: m.agentVersion ?? null,
    minMemoryMiB: m.minMemoryMiB ?? null,
  };
}

export function buildResult(run: RunInfo, probe: ProbeOutput, hostBoot: HostBoot, manifest: ImageManifest): BenchResult {
  const { byKind, paired } = splitSamples(probe.samples);
  for (const k of ['floor', 'testing', 'shutdown'] as const) {
    if (byKind[k].length === 0) throw new Error(`the probe returned no ${k} samples`);
  }
  const floor = summarize(byKind.floor);
  const testing = summarize(byKind.testing);
  const shutdown = summarize(byKind.shutdown);
  const r3 = (xs: number[]) => xs.map((x) => round(x, 3));
  return {
    schema: RESULT_SCHEMA,
    startedAt: run.startedAt,
    command: run.command,
    config: run.config,
    environment: {
      ...run.environment,
      dom0Node: probe.node,
      xenstoredSocket: probe.socket,
      dom0LoadavgBefore: probe.loadavg.before,
      dom0LoadavgAfter: probe.loadavg.after,
      warmupRounds: probe.warmupRounds,
    },
    unit: 'ms',
    reaction: {
      floor: roundSummary(floor),
      testing: roundSummary(testing),
      shutdown: roundSummary(shutdown),
      definitions: DEFINITIONS,
    },
    ratios: { testing: ratios(testing, floor, paired.testing), shutdown: ratios(shutdown, floor, paired.shutdown) },
    guestBoot: {
      readyMs: roundSummary(summarize(probe.boots.map((b) => b.readyMs)), 1),
      createMs: roundSummary(summarize(probe.boots.map((b) => b.createMs)), 1),
      domids: probe.boots.map((b) => b.domid),
    },
    saveRestore: probe.saveRestore.length
      ? {
          saveMs: roundSummary(summarize(probe.saveRestore.map((s) => s.saveMs)), 1),
          restoreMs: roundSummary(summarize(probe.saveRestore.map((s) => s.restoreMs)), 1),
          resumedMs: roundSummary(summarize(probe.saveRestore.map((s) => s.resumedMs)), 1),
          domids: probe.saveRestore.map((s) => s.domid),
        }
      : null,
    migrate:
      probe.migrate && probe.migrate.samples.length
        ? {
            domainType: run.config.migrateDomainType ?? run.config.domainType,
            migrateMs: roundSummary(summarize(probe.migrate.samples.map((s) => s.migrateMs)), 1),
            resumedMs: roundSummary(summarize(probe.migrate.samples.map((s) => s.resumedMs)), 1),
            domids: probe.migrate.samples.map((s) => s.domid),
          }
        : null,
    hostBoot,
    image: imageSummary(manifest),
    agent: probe.agent,
    glitches: {
      discardedRounds: probe.discarded.length,
      reasons: probe.discarded.map((d) => `after ${d.afterGoodRounds} good round(s): ${d.reason}`),
      failedBoots: probe.failedBoots,
    },
    samples: { floor: r3(byKind.floor), testing: r3(byKind.testing), shutdown: r3(byKind.shutdown) },
  };
}

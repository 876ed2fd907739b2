// The benchmark's JSON (bench/summary.ts), its command line (bench/args.ts)
// and the probe's config/output exchange (bench/probe-protocol.ts): pure parts.
import test from 'tape';
import { buildResult, imageSummary, splitSamples, IMAGE_LIMIT_BYTES, RESULT_SCHEMA, type ImageManifest, type RunInfo } from '../../bench/summary.ts';
import { parseBenchArgs, resultFileName, DEFAULT_ARGS, UsageError } from '../../bench/args.ts';
import { decodeProbeConfig, encodeProbeConfig, parseProbeOutput, type ProbeConfig, type ProbeOutput } from '../../dom0/bench-probe/probe-protocol.ts';
import type { Sample } from '../../dom0/bench-probe/reaction.ts';

function rounds(n: number, f: (i: number) => [number, number, number, number]): Sample[] {
  const out: Sample[] = [];
  for (let i = 1; i <= n; i++) {
    const [fa, te, fb, sd] = f(i);
    out.push(
      { round: i, kind: 'floor', ms: fa },
      { round: i, kind: 'testing', ms: te },
      { round: i, kind: 'floor', ms: fb },
      { round: i, kind: 'shutdown', ms: sd },
    );
  }
  return out;
}

const manifest: ImageManifest = {
  files: { 'xtv-kernel': { bytes: 1_500_000, sha256: 'a' }, 'xtv-initrd': { bytes: 1_000_000, sha256: 'b' } },
  kernelVersion: '6.1.0',
  qjsVersion: '2025-04-26',
  agentVersion: '0.1.0',
  minMemoryMiB: 32,
};

const run: RunInfo = {
  startedAt: '2026-11-23T10:00:00.000Z',
  command: 'npm run bench -- --trials 3',
  config: {
    trials: 3,
    warmup: 1,
    boots: 2,
    saves: 2,
    migrations: 2,
    migrateDomainType: 'pvh',
    domainType: 'pv',
    memoryMiB: 32,
    hostCpus: 1,
    hostMemoryMiB: 2048,
  },
  environment: { hostCores: 2 },
};

function probeOutput(samples: Sample[]): ProbeOutput {
  return {
    node: 'v20.0.0',
    socket: '/run/xenstored/socket',
    boots: [
      { createMs: 5000, readyMs: 7000, domid: 1 },
      { createMs: 4000, readyMs: 6000, domid: 2 },
    ],
    domid: 2,
    agent: { version: '0.1.0', bootId: 'x', state: 'ready', errors: '0', lastError: '' },
    warmupRounds: 1,
    samples,
    discarded: [{ afterGoodRounds: 1, reason: 'x' }],
    failedBoots: [],
    saveRestore: [
      { saveMs: 1000, restoreMs: 2000, resumedMs: 2500, domid: 3 },
      { saveMs: 3000, restoreMs: 4000, resumedMs: 4500, domid: 4 },
    ],
    migrate: {
      name: 'xtv-bench-migrate',
      samples: [
        { migrateMs: 10000, resumedMs: 10500, domid: 6 },
        { migrateMs: 12000, resumedMs: 12500, domid: 7 },
      ],
    },
    loadavg: { before: '0.5', after: '0.6' },
    elapsedMs: 1234,
  };
}

test('summary: samples split per kind; each agent trial paired with the floor trial just before it', (t) => {
  const { byKind, paired } = splitSamples(rounds(2, (i) => [i, 10 * i, 2 * i, 20 * i]));
  t.deepEqual(byKind, { floor: [1, 2, 2, 4], testing: [10, 20], shutdown: [20, 40] });
  t.deepEqual(paired, {
    testing: [
      [10, 1],
      [20, 2],
    ],
    shutdown: [
      [20, 2],
      [40, 4],
    ],
  });
  t.end();
});

test('summary: the result document has every part, ratios from summaries and from pairs', (t) => {
  // floor 2 ms always; testing 6 ms; shutdown 4 ms: ratios 3 and 2 however computed.
  const r = buildResult(run, probeOutput(rounds(3, () => [2, 6, 2, 4])), { qemuToDom0ReadyMs: 9000, qemuToSshMs: 11000 }, manifest);
  t.equal(r.schema, RESULT_SCHEMA);
  t.equal(r.unit, 'ms');
  t.deepEqual(
    Object.keys(r).sort(),
    [
      'agent',
      'command',
      'config',
      'environment',
      'glitches',
      'guestBoot',
      'hostBoot',
      'image',
      'migrate',
      'ratios',
      'reaction',
      'samples',
      'saveRestore',
      'schema',
      'startedAt',
      'unit',
    ].sort(),
  );
  t.deepEqual(r.reaction.floor, { n: 6, min: 2, max: 2, mean: 2, p50: 2, p95: 2 });
  t.deepEqual(r.reaction.testing, { n: 3, min: 6, max: 6, mean: 6, p50: 6, p95: 6 });
  t.deepEqual(r.ratios, { testing: { p50: 3, p95: 3, pairedP50: 3 }, shutdown: { p50: 2, p95: 2, pairedP50: 2 } });
  t.deepEqual(Object.keys(r.reaction.definitions).sort(), ['floor', 'shutdown', 'testing']);
  t.deepEqual(r.guestBoot.readyMs, { n: 2, min: 6000, max: 7000, mean: 6500, p50: 6500, p95: 6950 });
  t.deepEqual(r.guestBoot.domids, [1, 2]);
  t.deepEqual(r.hostBoot, { qemuToDom0ReadyMs: 9000, qemuToSshMs: 11000 });
  t.deepEqual(r.saveRestore?.saveMs, { n: 2, min: 1000, max: 3000, mean: 2000, p50: 2000, p95: 2900 }, 'xl save summed up');
  t.deepEqual(r.saveRestore?.resumedMs.p50, 3500, 'restore to state=resumed summed up');
  t.deepEqual(r.saveRestore?.domids, [3, 4]);
  t.equal(
    buildResult(run, { ...probeOutput(rounds(1, () => [2, 6, 2, 4])), saveRestore: [] }, { qemuToDom0ReadyMs: 1, qemuToSshMs: 1 }, manifest).saveRestore,
    null,
    '--saves 0: null',
  );
  t.deepEqual(
    r.migrate,
    {
      domainType: 'pvh',
      migrateMs: { n: 2, min: 10000, max: 12000, mean: 11000, p50: 11000, p95: 11900 },
      resumedMs: { n: 2, min: 10500, max: 12500, mean: 11500, p50: 11500, p95: 12400 },
      domids: [6, 7],
    },
    'xl migrate summed up, with the guest type it ran on',
  );
  t.equal(
    buildResult(run, { ...probeOutput(rounds(1, () => [2, 6, 2, 4])), migrate: null }, { qemuToDom0ReadyMs: 1, qemuToSshMs: 1 }, manifest).migrate,
    null,
    '--migrations 0 (or none possible): null',
  );
  t.equal(r.image.totalBytes, 2_500_000);
  t.equal(r.image.withinLimit, true);
  t.deepEqual(r.samples, { floor: [2, 2, 2, 2, 2, 2], testing: [6, 6, 6], shutdown: [4, 4, 4] });
  t.equal(r.environment.dom0Node, 'v20.0.0', "the probe's facts join the environment");
  t.deepEqual(r.glitches, { discardedRounds: 1, reasons: ['after 1 good round(s): x'], failedBoots: [] }, 'glitches counted with their reasons');
  t.doesNotThrow(() => JSON.parse(JSON.stringify(r)), 'serializes');
  t.end();
});

test('summary: paired ratios follow drift that summary ratios miss', (t) => {
  // The machine slows down 10x halfway; the agent always costs 2x the floor next to it.
  const r = buildResult(run, probeOutput(rounds(10, (i) => (i <= 5 ? [1, 2, 1, 2] : [10, 20, 10, 20]))), { qemuToDom0ReadyMs: null, qemuToSshMs: 1 }, manifest);
  t.equal(r.ratios.testing.pairedP50, 2, 'paired: 2');
  t.equal(r.ratios.testing.p50, r.reaction.testing.p50 / r.reaction.floor.p50, 'summary ratio is p50/p50');
  t.end();
});

test('summary: missing kinds and image files are errors', (t) => {
  t.throws(() => buildResult(run, probeOutput([]), { qemuToDom0ReadyMs: 1, qemuToSshMs: 1 }, manifest), /no floor samples/);
  t.throws(() => imageSummary({ files: {} }), /no xtv-kernel/);
  t.equal(
    imageSummary({ files: { 'xtv-kernel': { bytes: IMAGE_LIMIT_BYTES, sha256: '' }, 'xtv-initrd': { bytes: 1, sha256: '' } } }).withinLimit,
    false,
    'over 4 MiB',
  );
  t.end();
});

test('args: defaults, both flag forms, and clear refusals', (t) => {
  t.deepEqual(parseBenchArgs([]), DEFAULT_ARGS);
  t.equal(DEFAULT_ARGS.trials, 50, 'at least 50 trials by default');
  const a = parseBenchArgs([
    '--trials',
    '80',
    '--warmup=2',
    '--type',
    'pvh',
    '--memory',
    '48',
    '--boots=1',
    '--out',
    '/tmp/x',
    '--host-cpus',
    '2',
    '--saves',
    '0',
    '--migrations=5',
  ]);
  t.deepEqual([a.trials, a.warmup, a.domainType, a.memoryMiB, a.boots, a.outDir, a.hostCpus, a.saves, a.migrations], [80, 2, 'pvh', 48, 1, '/tmp/x', 2, 0, 5]);
  t.equal(DEFAULT_ARGS.migrations, 3, 'three migrations by default');
  t.equal(parseBenchArgs(['-h']).help, true);
  t.throws(() => parseBenchArgs(['--trials']), UsageError);
  t.throws(() => parseBenchArgs(['--trials', '0']), /at least 1/);
  t.throws(() => parseBenchArgs(['--trials', '5x']), /whole number/);
  t.throws(() => parseBenchArgs(['--type', 'hvm']), /pv or pvh/);
  t.throws(() => parseBenchArgs(['--frobnicate']), /unknown option/);
  t.equal(resultFileName(new Date('2026-11-23T10:00:00.123Z')), '2026-11-23T10-00-00.123Z.json');
  t.end();
});

test('probe protocol: config round-trips through one shell-safe word; output is checked', (t) => {
  const c: ProbeConfig = {
    socket: '/run/xenstored/socket',
    configPath: '/etc/xen/xtv/a b.cfg',
    name: 'xtv-bench',
    boots: 3,
    saves: 2,
    migrate: { name: 'xtv-bench-migrate', configPath: '/etc/xen/xtv/xtv-bench-migrate.cfg', rounds: 3 },
    trials: 50,
    warmup: 5,
    bootTimeoutMs: 1,
    ackTimeoutMs: 2,
    destroy: true,
  };
  const word = encodeProbeConfig(c);
  t.ok(/^[A-Za-z0-9_-]+$/.test(word), 'base64url: no shell quoting needed');
  t.deepEqual(decodeProbeConfig(word), c);
  t.throws(() => decodeProbeConfig(undefined), /usage/);
  t.throws(() => decodeProbeConfig(encodeProbeConfig({ ...c, boots: 0 })), /boots must be at least 1/);
  const out = probeOutput(rounds(1, () => [1, 2, 1, 2]));
  t.deepEqual(parseProbeOutput(JSON.stringify(out)), out);
  t.throws(() => parseProbeOutput('probe: hello'), /not JSON/);
  t.throws(() => parseProbeOutput('{}'), /lacks/);
  t.throws(() => parseProbeOutput(JSON.stringify({ ...out, samples: [{ round: 1, kind: 'x', ms: 1 }] })), /bad sample/);
  t.throws(() => parseProbeOutput(JSON.stringify({ ...out, saveRestore: undefined })), /lacks/);
  t.throws(
    () => parseProbeOutput(JSON.stringify({ ...out, saveRestore: [{ saveMs: 'x', restoreMs: 1, resumedMs: 1, domid: 1 }] })),
    /bad save\/restore sample/,
  );
  t.throws(() => decodeProbeConfig(encodeProbeConfig({ ...c, migrate: { ...c.migrate!, rounds: 0 } })), /migrate must be null/);
  t.throws(
    () => parseProbeOutput(JSON.stringify({ ...out, migrate: { name: 'x', samples: [{ migrateMs: 1, resumedMs: null, domid: 1 }] } })),
    /bad migration sample/,
  );
  t.end();
});

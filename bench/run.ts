// `npm run bench`: builds what it needs (bench/build.ts: the same cached steps as
// `npm start` and `npm test`), boots the embedded Xen host with Node added to dom0, boots
// the test image on it, and runs the probe (dom0/bench-probe/probe.ts) IN dom0, so
// every reaction time is taken next to xenstored, not across SSH. Prints the
// result JSON on stdout and writes it to bench/results/<timestamp>.json;
// progress goes to stderr. QEMU and the guest are gone at the end, on error
// and on Ctrl-C (withEmbeddedHost; the probe and the xl driver destroy the
// guest first).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { DEFAULTS, parseXlInfo, withEmbeddedHost, type EmbeddedHost } from '../harness/embedded/embedded-host.ts';
import { embeddedDom0 } from '../harness/embedded/embedded-address.ts';
import { XlDriver } from '../harness/toolstack/xl/xl-driver.ts';
import { configPath } from '../harness/toolstack/xl/xl-config.ts';
import type { DomainType, VmRef } from '../harness/toolstack/driver.ts';
import { buildNodeRuntime } from '../harness/embedded/node-runtime.ts';
import { parseBenchArgs, resultFileName, UsageError, USAGE, type BenchArgs } from './args.ts';
import { bundleProbe, REPO_ROOT } from './bundle.ts';
import { BuildError, buildPlan, runBuild } from './build.ts';
import { encodeProbeConfig, parseProbeOutput, type ProbeConfig, type ProbeOutput } from '../dom0/bench-probe/probe-protocol.ts';
import { buildResult, type HostBoot, type ImageManifest } from './summary.ts';

const VM_NAME = 'xtv-bench';
/** The guest of the migration rounds when the host cannot live-migrate the bench guest's type. */
const MIGRATE_VM_NAME = 'xtv-bench-migrate';
const PROBE_IN_DOM0 = '/root/xtv-bench/probe.mjs';
const SOCKETS = ['/run/xenstored/socket', '/var/run/xenstored/socket'];

const t0 = performance.now();
function say(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${message}\n`);
}

function gitDescribe(): string | null {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit}-dirty` : commit;
  } catch {
    return null;
  }
}

interface Image {
  manifest: ImageManifest;
  kernelPath: string;
  initrdPath: string;
  kernelArgs: string;
}

function loadImage(): Image {
  const dir = join(REPO_ROOT, 'dist/image');
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new Error(`${manifestPath} is missing: build the test image first (npm run build:image, or drop --no-build)`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ImageManifest;
  const kernelPath = join(dir, 'xtv-kernel');
  const initrdPath = join(dir, 'xtv-initrd');
  for (const p of [kernelPath, initrdPath]) if (!existsSync(p)) throw new Error(`${p} is missing: npm run build:image (or drop --no-build)`);
  if (!manifest.kernelArgs) throw new Error(`${manifestPath} has no kernelArgs`);
  return { manifest, kernelPath, initrdPath, kernelArgs: manifest.kernelArgs };
}

/** Runs the probe in dom0, relaying its progress; resolves with its parsed output. */
function runProbe(host: EmbeddedHost, cfg: ProbeConfig, timeoutMs: number): Promise<ProbeOutput> {
  return new Promise((resolvePromise, reject) => {
    const child = host.spawn(`exec node ${PROBE_IN_DOM0} ${encodeProbeConfig(cfg)}`);
    child.stdin?.end();
    let stdout = '';
    let stderrTail = '';
    let pending = '';
    child.stdout?.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr?.on('data', (b: Buffer) => {
      pending += b.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) {
        say(`dom0 ${l}`);
        stderrTail = `${stderrTail}\n${l}`.slice(-2000);
      }
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the probe in dom0 did not finish within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`starting the probe over SSH: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`the probe in dom0 exited with ${code}${stderrTail ? `:${stderrTail}` : ''}`));
        return;
      }
      try {
        resolvePromise(parseProbeOutput(stdout.trim()));
      } catch (e) {
        reject(e);
      }
    });
  });
}

async function measure(
  args: BenchArgs,
  image: Image,
  probeFile: string,
  nodeInitrd: string,
): Promise<{ probe: ProbeOutput; hostBoot: HostBoot; xenVersion: string | null; hostCpus: number; migration: MigrationPlan }> {
  const hostCpus = args.hostCpus ?? DEFAULTS.cpus;
  let qemuAt: number | null = null;
  let dom0ReadyAt: number | null = null;
  return withEmbeddedHost(
    async (host) => {
      const sshAt = performance.now();
      const hostBoot: HostBoot = {
        qemuToDom0ReadyMs: qemuAt !== null && dom0ReadyAt !== null ? Math.round(dom0ReadyAt - qemuAt) : null,
        qemuToSshMs: Math.round(sshAt - (qemuAt ?? sshAt)),
      };
      const nodeVersion = await host.exec('node --version', { timeoutMs: 60_000 });
      if (nodeVersion.code !== 0) throw new Error(`dom0 cannot run node (${nodeVersion.stderr.trim()}); the runtime archive ${nodeInitrd} did not work`);
      const info = await host.exec('xl info', { timeoutMs: 60_000 });
      const xi = parseXlInfo(info.stdout);
      const xenVersion = xi.xen_major ? `${xi.xen_major}.${xi.xen_minor}${xi.xen_extra ?? ''}` : null;
      const sock = await host.exec(SOCKETS.map((s) => `[ -S ${s} ] && { echo ${s}; exit 0; }`).join('; ') + '; exit 1');
      if (sock.code !== 0) throw new Error(`no xenstored socket in dom0 (looked for ${SOCKETS.join(', ')})`);
      const socket = sock.stdout.trim();

      const driver = new XlDriver(embeddedDom0(host));
      const migration = planMigration(args, (await driver.hostFacts()).cannotMigrate ?? {});
      if (migration.note) say(migration.note);
      let vm: VmRef | null = null;
      let migrateVm: VmRef | null = null;
      try {
        say(`installing the image as ${VM_NAME} (${args.domainType}, ${args.memoryMiB ?? image.manifest.minMemoryMiB ?? 32} MiB)`);
        const installOf = (name: string, domainType: DomainType) =>
          driver.install({
            name,
            domainType,
            memoryMiB: args.memoryMiB ?? image.manifest.minMemoryMiB ?? 32,
            kernelPath: image.kernelPath,
            initrdPath: image.initrdPath,
            kernelArgs: image.kernelArgs,
          });
        vm = await installOf(VM_NAME, args.domainType);
        if (migration.domainType && migration.domainType !== args.domainType) {
          migrateVm = await installOf(MIGRATE_VM_NAME, migration.domainType);
        }
        const migrateName = migrateVm ? MIGRATE_VM_NAME : VM_NAME;
        await host.copyTo(probeFile, PROBE_IN_DOM0);
        const cfg: ProbeConfig = {
          socket,
          configPath: configPath(driver.paths, VM_NAME),
          name: VM_NAME,
          boots: args.boots,
          saves: args.saves,
          migrate: migration.domainType ? { name: migrateName, configPath: configPath(driver.paths, migrateName), rounds: args.migrations } : null,
          trials: args.trials,
          warmup: args.warmup,
          bootTimeoutMs: args.bootTimeoutMs,
          ackTimeoutMs: args.ackTimeoutMs,
          destroy: true,
        };
        say(
          `probe in dom0 (node ${nodeVersion.stdout.trim()}, ${socket}): ${args.boots} boot(s), ${args.warmup} warm-up and ${args.trials} timed round(s), ${args.saves} save/restore(s)`,
        );
        // A bound, not an estimate: every wait inside the probe has its own.
        const migrations = cfg.migrate ? args.migrations + (migrateVm ? 1 : 0) : 0;
        const bound =
          (args.boots + 2 * args.saves + 2 * migrations) * (args.bootTimeoutMs + 40_000) + (args.trials + args.warmup) * 4 * args.ackTimeoutMs + 120_000;
        let probe: ProbeOutput;
        try {
          probe = await runProbe(host, cfg, bound);
        } catch (e) {
          // The guest's console (xenconsoled's log) is the evidence of why it did not answer.
          const log = (await driver.consoleLog(vm, { maxBytes: 3000 }).catch(() => null))?.text ?? '';
          if (log.trim()) say(`the guest's console (last lines):\n${log.trimEnd()}`);
          throw e;
        }
        return { probe, hostBoot, xenVersion, hostCpus, migration };
      } finally {
        if (migrateVm) await driver.uninstall(migrateVm).catch((e) => say(`uninstalling ${MIGRATE_VM_NAME}: ${(e as Error).message}`));
        if (vm) {
          // Destroys the domain if the probe could not, and removes the config and image files.
          await driver.uninstall(vm).catch((e) => say(`uninstalling ${VM_NAME}: ${(e as Error).message} (the host goes down next anyway)`));
        }
      }
    },
    {
      cpus: hostCpus,
      extraInitrds: [nodeInitrd],
      onProgress: (m) => {
        if (m.startsWith('starting QEMU')) qemuAt = performance.now();
        else if (m.startsWith('dom0 ready after')) dom0ReadyAt = performance.now();
        say(`host: ${m}`);
      },
    },
  );
}

/** Which guest type the migration rounds use: the bench guest's if the host can live-migrate it, else PVH's, else none. */
interface MigrationPlan {
  domainType: DomainType | null;
  /** Why the rounds use another type, or none at all. */
  note: string | null;
}

/** `cannot`: HostFacts.cannotMigrate of the bench's host. */
function planMigration(args: BenchArgs, cannot: Partial<Record<DomainType, string>>): MigrationPlan {
  if (args.migrations === 0) return { domainType: null, note: null };
  const own = cannot[args.domainType];
  if (!own) return { domainType: args.domainType, note: null };
  if (!cannot.pvh) return { domainType: 'pvh', note: `${own}: the migration rounds use a PVH guest of their own` };
  return { domainType: null, note: `${own}, nor PVH ones: no migration rounds` };
}

async function main(): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // Before startedAt: a first build takes minutes and is no part of the run.
  await runBuild(buildPlan(args), { cwd: REPO_ROOT, say });
  const startedAt = new Date();
  const image = loadImage();
  say('bundling the dom0 probe');
  const probeFile = await bundleProbe();
  say('Node runtime archive for dom0');
  const nodeInitrd = await buildNodeRuntime({ onProgress: (m: string) => say(m) });
  const hostLoadBefore = loadavg();
  const { probe, hostBoot, xenVersion, hostCpus, migration } = await measure(args, image, probeFile, nodeInitrd);
  const argv = process.argv.slice(2);
  const result = buildResult(
    {
      startedAt: startedAt.toISOString(),
      command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
      config: {
        trials: args.trials,
        warmup: args.warmup,
        boots: args.boots,
        saves: args.saves,
        migrations: args.migrations,
        migrateDomainType: migration.domainType,
        domainType: args.domainType,
        memoryMiB: args.memoryMiB ?? image.manifest.minMemoryMiB ?? 32,
        hostCpus,
        hostMemoryMiB: DEFAULTS.memoryMiB,
      },
      environment: {
        git: gitDescribe(),
        machineCpu: cpus()[0]?.model ?? null,
        machineCores: cpus().length,
        machineMemoryMiB: Math.round(totalmem() / 2 ** 20),
        machineLoadavgBefore: hostLoadBefore.map((x) => Math.round(x * 100) / 100),
        machineLoadavgAfter: loadavg().map((x) => Math.round(x * 100) / 100),
        emulation: 'QEMU TCG, -cpu qemu64,+svm,+npt',
        xen: xenVersion,
      },
    },
    probe,
    hostBoot,
    image.manifest,
  );
  const outDir = isAbsolute(args.outDir) ? args.outDir : args.outDir === 'bench/results' ? join(REPO_ROOT, args.outDir) : resolve(args.outDir);
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, resultFileName(startedAt));
  const text = JSON.stringify(result, null, 2) + '\n';
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
  process.stdout.write(text);
  const r = result.ratios;
  say(
    `floor p50 ${result.reaction.floor.p50} ms; testing p50 ${result.reaction.testing.p50} ms (x${r.testing.p50}, paired x${r.testing.pairedP50}); shutdown p50 ${result.reaction.shutdown.p50} ms (x${r.shutdown.p50}, paired x${r.shutdown.pairedP50}); guest boot p50 ${result.guestBoot.readyMs.p50} ms; ${result.saveRestore ? `xl save p50 ${result.saveRestore.saveMs.p50} ms, xl restore to resumed p50 ${result.saveRestore.resumedMs.p50} ms; ` : ''}${result.migrate ? `xl migrate (${result.migrate.domainType}) to resumed p50 ${result.migrate.resumedMs.p50} ms; ` : ''}host boot ${hostBoot.qemuToSshMs} ms`,
  );
  say(`written to ${relative(process.cwd(), file) || file}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`failed: ${e instanceof Error ? e.message : String(e)}`);
    // A build that failed is the environment's (as for npm start): 2; anything else 1.
    process.exit(e instanceof BuildError ? 2 : 1);
  },
);

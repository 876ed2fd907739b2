// `xtv soak`: one VM of its own through N loops of operations the guest must
// live through (suspend = xl save/restore or XAPI VM.suspend/resume; pause),
// each timed, each followed by the guest's own account of its continuity.
// Prints a line per iteration and min/median/max per step; --json, and TAP /
// JUnit XML / JSON in --report-dir like `xtv run`. The VM is made at the
// start and removed at the end, also after Ctrl-C, and journaled in the
// report directory as `xtv run`'s are (run-journal.ts), so that the next run
// or soak removes what one killed outright left; any iteration that broke
// continuity fails the soak (exit 1).
import { join, resolve } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { EXIT_FAILED, EXIT_OK, UsageError, type Command } from './command.ts';
import { CONNECT_HELP, connectCli, connectOptions, oneOf, ownVmHost, parseCli } from './common.ts';
import { reportError, wantsJson } from './errors.ts';
import { FileJournal, hostDescription, journalDir, sweepJournal } from './run-journal.ts';
import { resolveStateDir } from '../embedded/paths.ts';
import { checkReportDir, DEFAULT_IMAGE_DIR, loadImage, toolstackOf } from './run-command.ts';
import { FAKE_TIMING, FakeToolstackDriver, type FakeOptions } from '../../testing/fake-driver.ts';
import { CleanupRegistry, destroyVm, installSignalCleanup } from '../matrix/cleanup.ts';
import { DEFAULT_TIMING, type Timing } from '../matrix/timing.ts';
import { bounded } from '../matrix/wait.ts';
import { waitAgentReady } from '../matrix/guest-report.ts';
import { SOAK_OPS, soak, type SoakOp, type SoakTiming } from '../soak/soak.ts';
import { iterationLine, soakJUnit, soakJson, soakPassed, soakTap, soakText, type SoakSummary } from '../soak/soak-report.ts';
import type { ToolstackDriver, VmRef } from '../toolstack/driver.ts';
import { jsonForTerminal, textForTerminal } from '../report/escape.ts';

export const SOAK_USAGE = `usage: xtv soak [--host H] [--toolstack xl|xapi] [--loops N] [--ops OPS]
                [--name NAME] [--domain-type pv|pvh] [--memory MIB] [--image-dir DIR]
                [--report-dir DIR] [--json]

Installs a VM of its own, starts it, and takes it N times through each
operation, timing every step; after each, the guest says whether it is the
same guest (same boot id, one more resume per suspend, run time only forward,
its clock within 2 s of dom0's). Any iteration that breaks that fails the
soak. The VM is removed at the end, also after Ctrl-C.

  --loops N          how many rounds (default 10)
  --ops OPS          comma-separated, run in this order each round (default suspend):
                       suspend  xl save + xl restore; XAPI VM.suspend + VM.resume
                       pause    pause + unpause
                       migrate  xl migrate NAME localhost; XAPI VM.pool_migrate to its own
                                host (a live migration: not of PV on a Xen without shadow paging)
  --name NAME        the VM's name (default xtv-soak); it must not exist yet
  --domain-type T    pv (default) or pvh
  --memory MIB       guest memory (default: the image's minMemoryMiB)
  --image-dir DIR    the test image (default dist/image: npm run build:image)
  --report-dir DIR   where NAME.tap, NAME.junit.xml and NAME.json go (default xtv-report),
                     and the journal of the VM (as xtv run's)
  --json             print the whole outcome as one JSON line instead of text

exit codes: 0 every iteration kept the same guest, 1 one did not (or an
operation failed), 2 usage error or the host could not be reached

${CONNECT_HELP}`;

export interface SoakArgs {
  host: string;
  connect?: ReturnType<typeof connectOptions>;
  toolstack?: 'xl' | 'xapi';
  loops: number;
  ops: SoakOp[];
  name: string;
  domainType: 'pv' | 'pvh';
  memoryMiB?: number;
  imageDir: string;
  reportDir: string;
  json: boolean;
}

export function parseSoakArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): SoakArgs {
  const { values } = parseCli(
    argv,
    {
      loops: { type: 'string' },
      ops: { type: 'string' },
      name: { type: 'string' },
      'domain-type': { type: 'string' },
      memory: { type: 'string' },
      'image-dir': { type: 'string' },
      'report-dir': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    { min: 0, max: 0, names: '' },
  );
  const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
  const host = ownVmHost(values.host, env);
  const whole = (name: string, v: string | undefined, max: number): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new UsageError(`--${name} wants a whole number from 1 to ${max}, got '${v}'`);
    return Number(v);
  };
  const ops = (str(values.ops) ?? 'suspend').split(',').map((o) => o.trim());
  for (const o of ops) if (!(o in SOAK_OPS)) throw new UsageError(`--ops: '${o}' is not an operation (${Object.keys(SOAK_OPS).join(', ')})`);
  if (new Set(ops).size !== ops.length) throw new UsageError(`--ops names an operation twice: '${values.ops}'`);
  const name = str(values.name) ?? 'xtv-soak';
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,47}$/.test(name)) throw new UsageError(`--name wants a letter then up to 47 letters, digits, _ or -, got '${name}'`);
  const connect = host === 'fake' ? undefined : connectOptions({ ...values, host }, env);
  const memoryMiB = whole('memory', str(values.memory), 65536);
  return {
    host,
    ...(connect ? { connect } : {}),
    ...(values.toolstack !== undefined ? { toolstack: oneOf('toolstack', values.toolstack, ['xl', 'xapi'] as const)! } : {}),
    loops: whole('loops', str(values.loops), 10_000) ?? 10,
    ops: ops as SoakOp[],
    name,
    domainType: oneOf('domain-type', values['domain-type'], ['pv', 'pvh'] as const) ?? 'pv',
    ...(memoryMiB !== undefined ? { memoryMiB } : {}),
    imageDir: resolve(str(values['image-dir']) ?? DEFAULT_IMAGE_DIR),
    reportDir: resolve(str(values['report-dir']) ?? 'xtv-report'),
    json: values.json === true,
  };
}

export interface SoakIo {
  out: (text: string) => void;
  err: (line: string) => void;
  exit: (code: number) => void;
  debug?: boolean;
  /** --host fake: how the in-memory toolstack behaves (tests break continuity with it). */
  fake?: Omit<FakeOptions, 'kind'>;
}

const defaultIo: SoakIo = {
  out: (t) => process.stdout.write(t),
  err: (l) => process.stderr.write(l + '\n'),
  exit: (c) => process.exit(c),
};

export async function runSoak(argv: string[], io: SoakIo = defaultIo): Promise<number> {
  try {
    return await soakOnHost(parseSoakArgs(argv), io);
  } catch (err) {
    return reportError(err, { command: 'soak', json: wantsJson(argv), debug: io.debug ?? false, out: io.out, err: io.err });
  }
}

async function soakOnHost(a: SoakArgs, io: SoakIo): Promise<number> {
  const kind = a.toolstack ?? toolstackOf({ host: a.host, toolstack: undefined });
  const fake = a.host === 'fake';
  const image = fake
    ? { kernelPath: '/fake/xtv-kernel', initrdPath: '/fake/xtv-initrd', kernelArgs: '', domainType: a.domainType, memoryMiB: a.memoryMiB ?? 32 }
    : loadImage({ imageDir: a.imageDir, domainType: a.domainType, memoryMiB: a.memoryMiB });
  checkReportDir(a.reportDir);
  const timing: Timing = { ...DEFAULT_TIMING, ...(fake ? FAKE_TIMING : {}) };
  const progress = (line: string): void => io.err(line);
  const driver: ToolstackDriver = fake
    ? new FakeToolstackDriver({ ...io.fake, kind })
    : await connectCli({ ...a.connect!, toolstack: kind, onProgress: progress });
  // The VM is journaled before it exists, as xtv run's are: a soak killed outright is swept by the next run or soak.
  const host = hostDescription(a.host, a.host === 'embedded' ? resolveStateDir(a.connect?.stateDir, a.connect?.env) : undefined);
  const journal = new FileJournal({ dir: journalDir(a.reportDir), host, toolstack: kind, warn: progress });
  const registry = new CleanupRegistry(journal);
  const controller = new AbortController();
  const removeHandlers = installSignalCleanup({ registry, controller, graceMs: 120_000, drainMs: timing.cleanup, log: progress, exit: io.exit });
  const signal = controller.signal;
  const summary: SoakSummary = {
    vm: a.name,
    toolstack: kind,
    host: a.host,
    domainType: a.domainType,
    loops: a.loops,
    ops: a.ops,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    aborted: false,
    iterations: [],
  };
  let vm: VmRef | undefined;
  try {
    const facts = await driver.hostFacts();
    summary.host = `${a.host} (${facts.version})`;
    const noMigration = a.ops.includes('migrate') ? facts.cannotMigrate?.[a.domainType] : undefined;
    if (noMigration) throw new UsageError(`--ops migrate: ${noMigration}${a.domainType === 'pv' ? ' (--domain-type pvh migrates)' : ''}`);
    await sweepJournal(driver, { dir: journalDir(a.reportDir), host, toolstack: kind, timeoutMs: timing.cleanup, log: progress, signal });
    // A VM of that name not made by xtv is refused by install itself (the driver checks its owner).
    if ((await driver.listOwned()).some((v) => v.name === a.name))
      throw new UsageError(
        `a VM named ${a.name} is already on the host: soak makes its own (choose another --name, or remove it with xtv uninstall ${a.name})`,
      );
    progress(`xtv soak: installing and starting ${a.name} on ${summary.host} (${kind}, ${a.domainType}, ${image.memoryMiB} MiB)`);
    registry.installing(a.name);
    vm = await bounded(
      driver.install({
        name: a.name,
        domainType: a.domainType,
        memoryMiB: image.memoryMiB,
        kernelPath: image.kernelPath,
        initrdPath: image.initrdPath,
        kernelArgs: image.kernelArgs,
      }),
      timing.install,
      'install',
      signal,
    );
    registry.add(driver, vm);
    await bounded(driver.start(vm, { timeoutMs: timing.boot }), timing.boot + 5_000, 'start', signal);
    const notReady = await waitAgentReady(driver, vm, { timeoutMs: timing.boot, minMs: timing.pollMin, maxMs: timing.pollMax, signal });
    if (notReady) throw new Error(notReady);
    progress(`xtv soak: ${a.name} is up; ${a.loops} loop(s) of ${a.ops.join(', ')}`);
    const soakTiming: SoakTiming = {
      requestMs: timing.request.fast,
      agentMs: timing.boot,
      io: { evidenceMs: timing.evidence, primeMs: timing.prime, pollMinMs: timing.pollMin, pollMaxMs: timing.pollMax, signal },
    };
    await soak(driver, vm, {
      loops: a.loops,
      ops: a.ops,
      timing: soakTiming,
      signal,
      onIteration: (it) => {
        summary.iterations.push(it);
        // The continuity line quotes the guest's report: made safe for a terminal.
        if (!a.json) io.out(`${textForTerminal(iterationLine(it, a.loops))}\n`);
      },
    });
  } catch (e) {
    if (signal.aborted) summary.aborted = true;
    else if (e instanceof UsageError) throw e;
    else summary.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (vm) {
      progress(`xtv soak: removing ${vm.name}`);
      await bounded(destroyVm(driver, vm, timing.cleanup), timing.cleanup, `removing ${vm.name}`)
        .then(() => registry.remove(vm!))
        .catch((e: unknown) =>
          progress(`xtv soak: could not remove ${vm!.name}: ${e instanceof Error ? e.message : String(e)} (run \`xtv gc --prefix ${vm!.name}\`)`),
        );
    }
    removeHandlers();
    journal.close();
    await driver.close().catch(() => undefined);
  }
  summary.finishedAt = new Date().toISOString();
  // Named after the VM: soaks sharing a report directory need VMs of their own names anyway.
  const files = ['tap', 'junit.xml', 'json'].map((ext) => join(a.reportDir, `${a.name}.${ext}`));
  mkdirSync(a.reportDir, { recursive: true });
  writeFileSync(files[0]!, soakTap(summary));
  writeFileSync(files[1]!, soakJUnit(summary));
  writeFileSync(files[2]!, `${JSON.stringify(soakJson(summary), null, 2)}\n`);
  // One line, as every command's --json (common.ts output), and safe on a terminal: the continuity lines hold the guest's words.
  if (a.json) io.out(`${jsonForTerminal(soakJson(summary))}\n`);
  else io.out(`${textForTerminal(soakText(summary))}\n`);
  progress(`reports: ${files.join('\n         ')}`);
  return soakPassed(summary) ? EXIT_OK : EXIT_FAILED;
}

export const soakCommand: Command = {
  name: 'soak',
  summary: 'take one VM through N loops of suspend/resume (and pause), timed, checking it stays the same guest',
  usage: SOAK_USAGE,
  run: (argv, context) => runSoak(argv, { ...defaultIo, debug: context.debug }),
};

// `xtv run`: the scenario matrix against one toolstack, reported as TAP on
// stdout, a JUnit XML file, an HTML report and a table on stderr.
// `xtv run --list` prints the cases and what each model expects, touching no host.
import { existsSync, mkdirSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EXIT_FAILED, EXIT_OK, SetupError, UsageError, type Command } from './command.ts';
import type { DomainType, ToolstackDriver, ToolstackKind } from '../toolstack/driver.ts';
import { CONNECT_HELP, CONNECT_OPTIONS, connectCli, connectOptions, ownVmHost, type CliConnect } from './common.ts';
import { reportError, wantsJson } from './errors.ts';
import { CleanupRegistry, installSignalCleanup } from '../matrix/cleanup.ts';
import { caseFor, describeExpectation } from '../matrix/model.ts';
import { MODELS, modelFor } from '../matrix/models.ts';
import type { CaseResult, RunSummary } from '../matrix/result.ts';
import { DEFAULT_TIMING, runMatrix, vmNameOf, type RunnerImage, type Timing } from '../matrix/runner.ts';
import { makeFilter, matrixCases, MATRICES, type Case, type MatrixName } from '../matrix/scenarios.ts';
import { FAKE_TIMING, FakeToolstackDriver, type FakeOptions } from '../../testing/fake-driver.ts';
import { tapFooter, tapLine, tapPlan } from '../report/tap.ts';
import { toTable } from '../report/table.ts';
import { writeReports } from '../report/write.ts';
import { resolveStateDir } from '../embedded/paths.ts';
import { FileJournal, codeOf, hostDescription, journalDir, sweepJournal } from './run-journal.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where npm run build:image puts the test image. */
export const DEFAULT_IMAGE_DIR = join(REPO_ROOT, 'dist', 'image');

export const RUN_USAGE = `usage: xtv run [--host embedded|ssh://root@HOST|https://XAPI-HOST] [--toolstack xl|xapi]
               [--matrix smoke|full] [--parallel N] [--filter PATTERN]
               [--report-dir DIR] [--json] [--list [--show-skipped]]

Runs the scenario matrix: initial state x host request x guest ack x guest
action, each case on its own VM named xtv-<case> (--vm-prefix), asserted against the model of
the toolstack (harness/matrix/model-xl.ts, model-xapi.ts).

  --host fake       runs against the in-memory FAKE toolstack (tests the harness only;
                    see the connection options below for real hosts)
  --matrix M        smoke (default: a few fast cases, no 20-minute ones) or full
  --parallel N      run N cases at once, each on its own VM (default 1)
  --filter P        only cases whose name contains P, or matches P with * and ?;
                    several patterns separated by commas
  --report-dir DIR  where the JUnit XML, HTML and JSON reports go (default ./xtv-report)
  --json            the run's results as JSON on stdout instead of TAP
  --list            print the cases and each model's expectation; touches no host
  --show-skipped    with --list: the skipped cases too, with their reasons
  --image-dir DIR   the test image (default dist/image: npm run build:image)
  --domain-type T   pv (default) or pvh
  --memory MIB      guest memory (default: the image's minMemoryMiB, else 32)
  --vm-prefix P     name the VMs P-<case> (default xtv): runs sharing a host need their own

Case names: STATE.REQUEST.ack-ACK.ACTION, e.g. running.clean_shutdown.ack-none.poweroff
(REQUEST no_request: the guest acts on its own). Verdicts, best to worst:
pass < skip < unmodelled < error < fail; the worst wins.

Output: TAP on stdout (one line per case), progress and the result table on
stderr, reports in --report-dir. Progress lines start with the time
([HH:MM:SS]); each finished case adds an estimate of the end (ETA), and a
"still waiting" line comes after each minute without news. --report-dir is
made and tried (a file written and removed) before anything is run; /proc,
/sys and /dev are refused. Ctrl-C (or SIGTERM, or SIGHUP: the terminal or SSH
session is gone) stops the run and destroys its VMs (twice: at once). Each VM
is journaled in --report-dir/.xtv-journal before it is made; a run that
starts removes the VMs a dead run (kill -9) left on the same host.

${CONNECT_HELP.replace(/\n\nexit codes:[\s\S]*$/, '').replace(/\n {2}--json[^\n]*/, '')}

exit codes: 0 every case passed (or was skipped or unmodelled), 1 a case failed
(the toolstack or guest broke the model) or the run was interrupted (Ctrl-C),
2 usage or connection error (or no test image, or a --report-dir that cannot be
written), 3 no case failed but some could not be decided (verdict error: the
harness or the environment failed), 70 a bug in xtv (run again with --debug
for the stack), 130 a second Ctrl-C (or cleanup outlasting its grace period)`;

/** Exit code of a run that ended with cases in error and none failed: the harness could not decide. */
export const EXIT_UNDECIDED = 3;

export interface RunArgs {
  host: string;
  toolstack: ToolstackKind | undefined;
  matrix: MatrixName;
  parallel: number;
  filter: string | undefined;
  reportDir: string;
  json: boolean;
  list: boolean;
  showSkipped: boolean;
  imageDir: string;
  domainType: DomainType;
  memoryMiB: number | undefined;
  /** VM names are PREFIX-CASE: two runs on one host need different prefixes. */
  vmPrefix: string;
  allowUnauthorized: boolean;
  /** How to reach the host (absent for --host fake). */
  connect?: CliConnect;
}

function oneOf<T extends string>(name: string, v: string | undefined, list: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(list as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${list.join(', ')}, got '${v}'`);
  return v as T;
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} wants a positive whole number, got '${v}'`);
  return Number(v);
}

export function parseRunArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): RunArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        ...CONNECT_OPTIONS,
        matrix: { type: 'string' },
        parallel: { type: 'string' },
        filter: { type: 'string' },
        'report-dir': { type: 'string' },
        json: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        'show-skipped': { type: 'boolean', default: false },
        'image-dir': { type: 'string' },
        'domain-type': { type: 'string' },
        memory: { type: 'string' },
        'vm-prefix': { type: 'string' },
      },
    }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const host = ownVmHost(values.host, env);
  const connect = host === 'fake' ? undefined : connectOptions({ ...values, host }, env);
  return {
    ...(connect ? { connect } : {}),
    host,
    toolstack: oneOf('toolstack', values.toolstack, ['xl', 'xapi'] as const),
    matrix: oneOf('matrix', values.matrix, MATRICES) ?? 'smoke',
    parallel: positiveInt('parallel', values.parallel) ?? 1,
    filter: values.filter,
    reportDir: resolve(values['report-dir'] ?? 'xtv-report'),
    json: values.json ?? false,
    list: values.list ?? false,
    showSkipped: values['show-skipped'] ?? false,
    imageDir: resolve(values['image-dir'] ?? DEFAULT_IMAGE_DIR),
    domainType: oneOf('domain-type', values['domain-type'], ['pv', 'pvh'] as const) ?? 'pv',
    memoryMiB: positiveInt('memory', values.memory),
    vmPrefix: vmPrefixOf(values['vm-prefix']),
    allowUnauthorized: values['allow-unauthorized'] ?? false,
  };
}

/**
 * --vm-prefix: a name start both toolstacks accept (xl domain names, XAPI
 * name-labels, file names in dom0), short enough that PREFIX-CASE stays
 * within xl's 64 characters for most case names (the longer ones are cut and
 * hashed: case-run.ts vmNameOf).
 */
function vmPrefixOf(v: string | undefined): string {
  if (v === undefined) return 'xtv';
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,18}$/.test(v)) throw new UsageError(`--vm-prefix wants a letter then up to 18 letters, digits, _ or -, got '${v}'`);
  return v;
}

/** xapi for http(s):// hosts, xl otherwise; --toolstack overrides. */
export function toolstackOf(a: Pick<RunArgs, 'host' | 'toolstack'>): ToolstackKind {
  return a.toolstack ?? (/^https?:\/\//.test(a.host) ? 'xapi' : 'xl');
}

/** The matrix's cases after --filter; a filter that keeps nothing is a usage error. */
export function selectCases(a: Pick<RunArgs, 'matrix' | 'filter'>): Case[] {
  const keep = makeFilter(a.filter);
  const cases = matrixCases(a.matrix).filter((c) => keep(c.scenario.name));
  if (cases.length === 0)
    throw new UsageError(`--filter '${a.filter}' matches no case of the ${a.matrix} matrix (see xtv run --list --matrix full --show-skipped)`);
  return cases;
}

/** --list as text: one line per case with each listed model's expectation. */
export function listText(cases: readonly Case[], kinds: readonly ToolstackKind[], showSkipped: boolean): string {
  const shown = cases.filter((c) => c.run || showSkipped);
  const w = Math.max(4, ...shown.map((c) => c.scenario.name.length));
  const lines: string[] = [];
  for (const c of shown) {
    if (!c.run) {
      lines.push(`${c.scenario.name.padEnd(w)}  skip: ${c.skipReason}`);
      continue;
    }
    const exp = kinds.map((k) => {
      const own = caseFor(MODELS[k], c);
      return `${k}: ${own.run ? describeExpectation(MODELS[k].expect(c.scenario)) : `skip: ${own.skipReason}`}`;
    });
    lines.push(`${c.scenario.name.padEnd(w)}  ${exp.join(kinds.length > 1 ? '\n' + ' '.repeat(w + 2) : '')}`);
  }
  const run = cases.filter((c) => c.run).length;
  lines.push('', `${run} to run, ${cases.length - run} skipped${showSkipped ? '' : ' (--show-skipped lists them)'}`);
  return lines.join('\n') + '\n';
}

export function listJson(cases: readonly Case[], kinds: readonly ToolstackKind[]): unknown {
  return cases.map((c) => ({
    name: c.scenario.name,
    initial: c.scenario.initial,
    request: c.scenario.request,
    ack: c.scenario.ack,
    action: c.scenario.action,
    timing: c.scenario.timing,
    features: c.scenario.features,
    lifecycle: c.scenario.lifecycle,
    run: c.run,
    ...(c.run ? {} : { skipReason: c.skipReason, ...(c.equivalentTo ? { equivalentTo: c.equivalentTo } : {}) }),
    expect: Object.fromEntries(
      kinds.map((k) => {
        const own = caseFor(MODELS[k], c);
        return [k, own.run || !c.run ? MODELS[k].expect(c.scenario) : { kind: 'skip', reason: own.skipReason }];
      }),
    ),
  }));
}

/** The image's manifest.json (kernel command line, minimum memory); {} when there is none. */
export function imageManifest(imageDir: string = DEFAULT_IMAGE_DIR): { kernelArgs?: unknown; minMemoryMiB?: unknown } {
  const mp = join(imageDir, 'manifest.json');
  return existsSync(mp) ? (JSON.parse(readFileSync(mp, 'utf8')) as { kernelArgs?: unknown; minMemoryMiB?: unknown }) : {};
}

/** The test image as built by npm run build:image (manifest.json gives the kernel command line and minimum memory). */
export function loadImage(a: Pick<RunArgs, 'imageDir' | 'domainType' | 'memoryMiB'>): RunnerImage {
  const kernelPath = join(a.imageDir, 'xtv-kernel');
  const initrdPath = join(a.imageDir, 'xtv-initrd');
  for (const p of [kernelPath, initrdPath]) {
    if (!existsSync(p)) throw new SetupError(`the test image is missing: ${p} (build it with: npm run build:image)`);
  }
  const manifest = imageManifest(a.imageDir);
  return {
    kernelPath,
    initrdPath,
    kernelArgs: typeof manifest.kernelArgs === 'string' ? manifest.kernelArgs : 'console=hvc0 xen_shutdown_node=data/xtv/kernel-shutdown quiet',
    domainType: a.domainType,
    memoryMiB: a.memoryMiB ?? (typeof manifest.minMemoryMiB === 'number' ? manifest.minMemoryMiB : 32),
  };
}

/** Kernel file systems: never a place for reports (writing there fails, or worse, spins). */
const PSEUDO_FS = /^\/(proc|sys|dev)(\/|$)/;

/** The path with its deepest existing ancestor's symbolic links resolved (the rest does not exist yet). */
function realPathOf(path: string): string {
  const rest: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      return join(realpathSync(p), ...rest.reverse());
    } catch {
      if (dirname(p) === p) return path;
      rest.push(basename(p));
    }
  }
}

/**
 * --report-dir, before any case runs: refused under /proc, /sys or /dev (also
 * through a symbolic link), else made and tried by writing and removing a
 * file. A UsageError (exit 2) says why; hours of cases are not lost to it.
 */
export function checkReportDir(dir: string): void {
  const abs = resolve(dir);
  const real = realPathOf(abs);
  if (PSEUDO_FS.test(abs) || PSEUDO_FS.test(real))
    throw new UsageError(`--report-dir ${abs}${real !== abs ? ` (${real})` : ''} is in a kernel file system (/proc, /sys, /dev): choose a directory on disk`);
  try {
    mkdirSync(abs, { recursive: true });
  } catch (e) {
    throw new UsageError(`--report-dir ${abs} cannot be created (${codeOf(e)}): choose another directory`);
  }
  const probe = join(abs, `.xtv-write-probe-${process.pid}`);
  try {
    writeFileSync(probe, 'xtv\n');
    unlinkSync(probe);
  } catch (e) {
    throw new UsageError(`--report-dir ${abs} is not writable (${codeOf(e)}): the reports could not be saved there`);
  }
}

/**
 * 0: nothing failed and everything was decided; 1: a case failed (or the run
 * was interrupted, as before); 3: no case failed but some ended in error, or
 * none ran: the harness could not decide.
 */
export function runExitCode(s: Pick<RunSummary, 'counts' | 'aborted' | 'cases'>): number {
  if (s.counts.fail > 0 || s.aborted) return EXIT_FAILED;
  if (s.counts.error > 0 || s.cases.length === 0) return EXIT_UNDECIDED;
  return EXIT_OK;
}

const two = (n: number): string => String(n).padStart(2, '0');

/** [HH:MM:SS], local time. */
export function clockOf(t: number): string {
  const d = new Date(t);
  return `[${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}]`;
}

/** 95 s as "1m35s", 3700 s as "1h01m". */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
}

/** The runner's last line for a case ends "(done/total done)": the ETA goes after it. */
const DONE = /\((\d+)\/(\d+) done\)$/;

export interface ProgressLog {
  /** Writes one progress line, timestamped; a case's last line gets the ETA. */
  line: (text: string) => void;
  /** A case started (the runner's onCaseStart): in flight from now; the pace is measured from the first. */
  caseStarted: (caseName: string) => void;
  /** A case ended (the runner's onResult): no longer in flight. Names that never started are ignored. */
  caseEnded: (caseName: string) => void;
  /** Stops the heartbeat. */
  stop: () => void;
}

/**
 * Progress on stderr: each line after the time; when a case ends, the
 * estimated end of the run from the pace so far; after `heartbeatMs` without
 * a line, "still waiting: N case(s) in flight, oldest for M s". Which cases
 * are in flight comes from the runner's events (caseStarted, caseEnded), not
 * from its text.
 */
export function progressLog(write: (line: string) => void, o: { heartbeatMs?: number; now?: () => number } = {}): ProgressLog {
  const now = o.now ?? Date.now;
  const heartbeatMs = o.heartbeatMs ?? 60_000;
  let last = now();
  /** When the first case began: the pace (and so the ETA) is measured from there, not from connecting. */
  let started: number | undefined;
  /** Cases started and not ended, with when they started. */
  const inFlight = new Map<string, number>();
  let done = '';
  const emit = (text: string): void => {
    last = now();
    write(`${clockOf(last)} ${text}`);
  };
  const line = (text: string): void => {
    const end = DONE.exec(text);
    if (end) {
      const [n, total] = [Number(end[1]), Number(end[2])];
      done = ` (${n}/${total} done)`;
      const t = now();
      const left = n > 0 && n < total ? ((t - (started ?? t)) / n) * (total - n) : 0;
      emit(n < total ? `${text} ETA ${clockOf(t + left).slice(1, -1)} (~${durationText(left)} left)` : text);
      return;
    }
    emit(text);
  };
  const caseStarted = (caseName: string): void => {
    const t = now();
    started ??= t;
    inFlight.set(caseName, t);
  };
  const caseEnded = (caseName: string): void => {
    inFlight.delete(caseName);
  };
  const timer = setInterval(
    () => {
      const t = now();
      if (inFlight.size === 0 || t - last < heartbeatMs) return;
      const oldest = Math.min(...inFlight.values());
      emit(`still waiting: ${inFlight.size} case(s) in flight, oldest for ${Math.round((t - oldest) / 1000)} s${done}`);
    },
    Math.max(10, Math.floor(heartbeatMs / 4)),
  );
  timer.unref();
  return { line, caseStarted, caseEnded, stop: () => clearInterval(timer) };
}

export interface RunIo {
  out: (text: string) => void;
  err: (line: string) => void;
  exit: (code: number) => void;
  /** --debug: errors with their stack and causes. */
  debug?: boolean;
  /** --host fake: how the in-memory toolstack behaves (tests make cases fail or error with it). */
  fake?: Omit<FakeOptions, 'kind'>;
  /** The "still waiting" line after this long without progress (default 60 s). */
  heartbeatMs?: number;
  /** --host fake: this driver instead of a new in-memory host (tests give one holding VMs of an earlier run). */
  driver?: ToolstackDriver;
}

const defaultIo: RunIo = {
  out: (t) => process.stdout.write(t),
  err: (l) => process.stderr.write(l + '\n'),
  exit: (c) => process.exit(c),
};

/**
 * `xtv run` with everything it prints on `io`, its errors too: tests and
 * tools call it with their own io, so it says them there rather than leaving
 * them to main. How is errors.ts's, as for every command.
 */
export async function runRun(argv: string[], io: RunIo = defaultIo): Promise<number> {
  try {
    return await listOrRun(argv, io);
  } catch (err) {
    return reportError(err, { command: 'run', json: wantsJson(argv), debug: io.debug ?? false, out: io.out, err: io.err });
  }
}

async function listOrRun(argv: string[], io: RunIo): Promise<number> {
  const a = parseRunArgs(argv);
  const cases = selectCases(a);
  if (a.list) {
    const kinds: ToolstackKind[] = a.toolstack ? [a.toolstack] : argv.includes('--host') ? [toolstackOf(a)] : ['xl', 'xapi'];
    io.out(a.json ? JSON.stringify(listJson(cases, kinds), null, 2) + '\n' : listText(cases, kinds, a.showSkipped));
    return EXIT_OK;
  }

  // What the run needs here is checked before the host is reached: the image, then where the reports go.
  const image: RunnerImage =
    a.host === 'fake'
      ? { kernelPath: '/fake/xtv-kernel', initrdPath: '/fake/xtv-initrd', kernelArgs: '', domainType: a.domainType, memoryMiB: a.memoryMiB ?? 32 }
      : loadImage(a);
  checkReportDir(a.reportDir);
  const log = progressLog(io.err, io.heartbeatMs !== undefined ? { heartbeatMs: io.heartbeatMs } : {});
  try {
    return await runCases(a, cases, image, io, log);
  } finally {
    log.stop();
  }
}

async function runCases(a: RunArgs, cases: Case[], image: RunnerImage, io: RunIo, log: ProgressLog): Promise<number> {
  const progress = log.line;
  const kind = toolstackOf(a);
  const fake = a.host === 'fake';
  progress(`xtv run: connecting to ${a.host} (${kind})`);
  const driver =
    fake && io.driver
      ? io.driver
      : fake || !a.connect
        ? new FakeToolstackDriver({ ...io.fake, kind })
        : await connectCli({ ...a.connect, toolstack: kind, onProgress: progress });

  // Every VM is journaled before it is made (run-journal.ts), so a run killed outright leaves a trace.
  // The state directory as the connection resolved it (the same environment), so the journal names the host driven.
  const host = hostDescription(a.host, a.host === 'embedded' ? resolveStateDir(a.connect?.stateDir, a.connect?.env) : undefined);
  const journalPath = journalDir(a.reportDir);
  const journal = new FileJournal({ dir: journalPath, host, toolstack: kind, warn: progress });
  const registry = new CleanupRegistry(journal);
  const controller = new AbortController();
  const removeHandlers = installSignalCleanup({ registry, controller, graceMs: 120_000, drainMs: 90_000, log: progress, exit: io.exit });
  const timing: Partial<Timing> | undefined = fake ? FAKE_TIMING : undefined;
  const runnable = cases.filter((c) => c.run).length;
  progress(
    `xtv run: ${a.matrix} matrix, ${runnable} case(s) to run, ${cases.length - runnable} skipped, ${a.parallel} at a time; VMs are named ${vmNameOf(a.vmPrefix, '<case>')}`,
  );
  if (!a.json) io.out(tapPlan(cases.length) + '\n');
  let n = 0;
  try {
    // What dead runs left on this host (kill -9, a crash) goes first.
    await sweepJournal(driver, {
      dir: journalPath,
      host,
      toolstack: kind,
      timeoutMs: timing?.cleanup ?? DEFAULT_TIMING.cleanup,
      log: progress,
      signal: controller.signal,
    });
    const summary = await runMatrix({
      driver,
      model: modelFor(kind),
      cases,
      image,
      matrix: a.matrix,
      host: a.host,
      parallel: a.parallel,
      vmPrefix: a.vmPrefix,
      ...(timing ? { timing } : {}),
      signal: controller.signal,
      registry,
      progress,
      onCaseStart: log.caseStarted,
      onResult: (r: CaseResult) => {
        log.caseEnded(r.name);
        if (!a.json) io.out(tapLine(++n, r) + '\n');
      },
    });
    const files = await writeReports(summary, a.reportDir);
    if (a.json) io.out(JSON.stringify({ ...summary, reports: files }, null, 2) + '\n');
    else io.out(tapFooter(summary) + '\n');
    io.err('');
    io.err(toTable(summary).trimEnd());
    io.err(`reports: ${files.html}\n         ${files.junit}\n         ${files.json}`);
    return runExitCode(summary);
  } finally {
    removeHandlers();
    journal.close();
    await driver.close().catch(() => undefined);
  }
}

let terminalGuarded = false;

/**
 * After SIGHUP the terminal is gone and writes to it fail (EIO, EPIPE): an
 * unhandled 'error' on stdout/stderr would end the process before its VMs
 * are cleaned up. Those errors are dropped; the reports still go to disk.
 */
function survivesLostTerminal(): void {
  if (terminalGuarded) return;
  terminalGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EIO' || e.code === 'EPIPE') return;
      throw e;
    });
  }
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run the scenario matrix against a toolstack and report (TAP, JUnit, HTML)',
  usage: RUN_USAGE,
  run: (argv, context) => {
    survivesLostTerminal();
    return runRun(argv, { ...defaultIo, debug: context.debug });
  },
};

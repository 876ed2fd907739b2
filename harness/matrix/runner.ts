// Runs the cases of a matrix against one toolstack driver (injected), N at a
// time, in the matrix's order: finds out what the host offers, holds the image
// on the host between cases, runs each case (case-run.ts: install, initial
// state, request and observation, evidence, cleanup; verdict.ts judges it),
// and sums up. Every wait is bounded; every VM is registered for cleanup the
// moment it exists, and anything a case could not remove is tried once more.
import type { DomainType, HostFacts, ToolstackDriver, VmRef } from '../toolstack/driver.ts';
import { CaseRun, errText } from './case-run.ts';
import { CleanupRegistry, destroyVm } from './cleanup.ts';
import { caseFor, describeExpectation, type ToolstackModel } from './model.ts';
import type { CaseResult, RunSummary } from './result.ts';
import { summarise } from './result.ts';
import type { Case, MatrixName, Scenario } from './scenarios.ts';
import type { Verdict } from './verdict.ts';
import { DEFAULT_TIMING, type RunnerImage, type Timing } from './timing.ts';
import { Aborted, bounded } from './wait.ts';

// What a case names and writes: the CLI and the tests use them from here.
export { ackFieldOf, lastLine, primingMessage, textAfter, vmNameOf } from './case-run.ts';

export { DEFAULT_TIMING, type RunnerImage, type Timing };

export interface RunOptions {
  driver: ToolstackDriver;
  model: ToolstackModel;
  cases: readonly Case[];
  image: RunnerImage;
  matrix?: MatrixName | 'custom';
  host?: string;
  parallel?: number;
  timing?: Partial<Timing>;
  /** VM names are `${prefix}-${case name}`. */
  vmPrefix?: string;
  /**
   * Install one never-started VM (`${prefix}-image-hold`) for the whole run, so
   * the image stays on the host between cases instead of being copied again
   * after each case's uninstall. Cases still get a fresh VM each; default true
   * when more than one case runs.
   */
  holdImage?: boolean;
  signal?: AbortSignal;
  registry?: CleanupRegistry;
  /** Progress lines (the CLI sends them to stderr). */
  progress?: (line: string) => void;
  /**
   * Called as a case to run starts, before any of its progress lines and before its result:
   * `index` is its place among the cases to run (0-based; its progress lines say `[index+1/total]`),
   * `total` how many cases run. Skipped cases never start (they only get a result).
   */
  onCaseStart?: (caseName: string, index: number, total: number) => void;
  /** Called as each case ends (the CLI streams TAP from it); skipped and never-started cases too. */
  onResult?: (r: CaseResult) => void;
}

/** Result of a case that was not run. */
function notRun(c: Case, model: ToolstackModel, verdict: Verdict, summary: string): CaseResult {
  const answer = model.expect(c.scenario);
  return {
    name: c.scenario.name,
    toolstack: model.kind,
    scenario: c.scenario,
    verdict,
    summary,
    ...(c.run ? {} : { skipReason: c.skipReason }),
    model: answer,
    expected: describeExpectation(answer),
    diffs: [],
    invariantProblems: [],
    errors: verdict === 'error' ? [summary] : [],
    evidence: { steps: [] },
  };
}

/**
 * What this host offers (console logs, its toolstack's timeouts): every case reads its evidence
 * and classes its durations by these. Without them (null), the toolstack's defaults and no console.
 */
async function findHostFacts(o: RunOptions, timing: Timing, progress: (line: string) => void): Promise<HostFacts | null> {
  try {
    const facts = await bounded(o.driver.hostFacts(), timing.evidence, 'finding out what the host offers', o.signal);
    for (const n of facts.notes) progress(`host: ${n}`);
    return facts;
  } catch (e) {
    if (e instanceof Aborted) throw e;
    progress(`could not find out what the host offers (no console log, the toolstack's default timeouts are assumed): ${errText(e)}`);
    return null;
  }
}

/** Reused between cases: the image on the host, held by a VM that never starts (it cannot change any result). */
async function installImageHolder(
  o: RunOptions,
  timing: Timing,
  registry: CleanupRegistry,
  prefix: string,
  progress: (line: string) => void,
): Promise<VmRef | undefined> {
  const name = `${prefix}-image-hold`;
  // Journaled before it may exist (journal.ts).
  registry.installing(name);
  const installing = o.driver.install({
    name,
    domainType: o.image.domainType,
    memoryMiB: o.image.memoryMiB,
    kernelPath: o.image.kernelPath,
    initrdPath: o.image.initrdPath,
    kernelArgs: o.image.kernelArgs,
  });
  try {
    const holder = await bounded(installing, timing.install, 'installing the image holder', o.signal);
    registry.add(o.driver, holder);
    return holder;
  } catch (e) {
    // Stopping the wait does not stop the install: if it makes the VM, the registry removes it with the rest.
    registry.addLate(o.driver, installing);
    progress(`could not install the image holder (each case will copy the image): ${errText(e)}`);
    return undefined;
  }
}

/** How long a case is expected to wait on purpose, as a rank: total timeout > ack timeout > a late guest or a restart delay > none. */
function expectedWait(model: ToolstackModel, c: Case): number {
  const a = model.expect(c.scenario);
  const rank = a.kind === 'expect' ? { 'total-timeout': 3, 'ack-timeout': 2, delayed: 1, fast: 0 }[a.expect.duration] : 0;
  // A late guest may make even a 'fast' call's case long (xl returns at the ack; the guest acts later),
  // and so may a crash held back past the toolstack's short-run window (case-run.ts waitOutShortRun).
  const heldCrash = model.crashShortRunMs !== undefined && c.scenario.lifecycle !== 'defaults' && c.scenario.action === 'crash';
  return Math.max(rank, c.scenario.timing === 'prompt' && !heldCrash ? 0 : 1);
}

async function removeImageHolder(
  driver: ToolstackDriver,
  holder: VmRef,
  timing: Timing,
  registry: CleanupRegistry,
  progress: (line: string) => void,
): Promise<void> {
  try {
    await bounded(destroyVm(driver, holder, timing.cleanup), timing.cleanup, `removing ${holder.name}`);
    registry.remove(holder);
  } catch (e) {
    progress(`could not remove ${holder.name}: ${errText(e)}`);
  }
}

/**
 * Why this host cannot run the case at all (null: it can): a live migration of a domain of a type it
 * cannot migrate, from a state the toolstack migrates from (from the others its refusal is the case).
 */
export function hostSkipReason(s: Scenario, model: Pick<ToolstackModel, 'migratesFrom'>, domainType: DomainType, facts: HostFacts | null): string | null {
  if (s.request !== 'migrate' || !model.migratesFrom.includes(s.initial as 'running' | 'paused')) return null;
  return facts?.cannotMigrate?.[domainType] ?? null;
}

/** Runs the cases; resolves when all have ended and every VM is gone (or reported as left). */
export async function runMatrix(options: RunOptions): Promise<RunSummary> {
  // A case this toolstack cannot be set up for is skipped here, with the model's reason.
  const o: RunOptions = { ...options, cases: options.cases.map((c) => caseFor(options.model, c, options.image.domainType)) };
  const timing: Timing = { ...DEFAULT_TIMING, ...o.timing, request: { ...DEFAULT_TIMING.request, ...o.timing?.request } };
  const registry = o.registry ?? new CleanupRegistry();
  const progress = o.progress ?? (() => undefined);
  const prefix = o.vmPrefix ?? 'xtv';
  const startedAt = new Date().toISOString();
  const results: Array<CaseResult | undefined> = new Array(o.cases.length);
  // Longest first: the cases the model expects to wait out a window (an ack or total timeout, a late
  // guest) start before the quick ones, so that a parallel run is not held up at its end by a long case
  // that happened to come last in the matrix. Results keep the matrix's order.
  let runnable = o.cases
    .map((c, i) => ({ c, i, wait: expectedWait(o.model, c) }))
    .filter((x) => x.c.run)
    .sort((a, b) => b.wait - a.wait || a.i - b.i);
  let done = 0;

  const finish = (i: number, r: CaseResult): void => {
    results[i] = r;
    o.onResult?.(r);
  };
  o.cases.forEach((c, i) => {
    if (!c.run) finish(i, notRun(c, o.model, 'skip', c.skipReason));
  });

  const facts = runnable.length > 0 && !o.signal?.aborted ? await findHostFacts(o, timing, progress) : null;
  // A case this host cannot offer (HostFacts: a capability it lacks) is skipped with the host's reason.
  runnable = runnable.filter(({ c, i }) => {
    const why = hostSkipReason(c.scenario, o.model, o.image.domainType, facts);
    if (why) finish(i, notRun({ scenario: c.scenario, run: false, skipReason: why }, o.model, 'skip', why));
    return !why;
  });
  const total = runnable.length;
  const holder = (o.holdImage ?? true) && total > 1 && !o.signal?.aborted ? await installImageHolder(o, timing, registry, prefix, progress) : undefined;

  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (o.signal?.aborted) return;
      const k = next++;
      const item = runnable[k];
      if (!item) return;
      const tag = `[${k + 1}/${total}] ${item.c.scenario.name}`;
      o.onCaseStart?.(item.c.scenario.name, k, total);
      const r = await new CaseRun(item.c.scenario, {
        driver: o.driver,
        model: o.model,
        image: o.image,
        timing,
        registry,
        prefix,
        facts,
        signal: o.signal,
        progress: (l) => progress(`${tag}: ${l}`),
      }).run();
      done++;
      progress(`${tag}: ${r.verdict}${r.verdict === 'pass' ? '' : ' - ' + r.summary} (${done}/${total} done)`);
      finish(item.i, r);
    }
  };
  const n = Math.max(1, Math.min(o.parallel ?? 1, total || 1));
  await Promise.all(Array.from({ length: n }, worker));

  // Cases never started because the run was interrupted: each reports nothing, which is an error.
  const why = o.signal?.reason instanceof Error ? o.signal.reason.message : 'the run was interrupted';
  o.cases.forEach((c, i) => {
    if (!results[i]) finish(i, notRun(c, o.model, 'error', `not run: ${why}`));
  });
  if (holder) await removeImageHolder(o.driver, holder, timing, registry, progress);
  // Anything a case could not remove is tried once more.
  if (registry.size > 0) {
    progress(`cleaning up ${registry.size} VM(s) left by interrupted cases`);
    const left = await registry.drain(timing.cleanup);
    for (const l of left) progress(`could not remove ${l.name}: ${l.error}`);
  }
  return summarise(results as CaseResult[], {
    toolstack: o.model.kind,
    matrix: o.matrix ?? 'custom',
    ...(o.host !== undefined ? { host: o.host } : {}),
    ...(facts ? { hostFacts: facts } : {}),
    startedAt,
    finishedAt: new Date().toISOString(),
    aborted: o.signal?.aborted ?? false,
  });
}

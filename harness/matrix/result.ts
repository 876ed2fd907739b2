// What a run produces, case by case: the input of every report writer.
import type { HostFacts, ToolstackKind } from '../toolstack/driver.ts';
import type { ModelAnswer } from './model.ts';
import type { ReportSnapshot } from './guest-report.ts';
import type { Scenario, MatrixName } from './scenarios.ts';
import type { FieldDiff, Observation, Verdict } from './verdict.ts';
import { VERDICTS, worst } from './verdict.ts';

export interface Evidence {
  /** The testing message written into control/testing. */
  primedWith?: string;
  /** A feature case's capabilities message, written before primedWith. */
  advertisedWith?: string;
  /** The guest's report right after it acknowledged that message. */
  reportAfterPrime?: ReportSnapshot;
  /** The guest's report after the request (when its domain was still there). */
  reportAfter?: ReportSnapshot;
  /** The end of the guest's console, and where the host keeps it (absent: the host keeps none). */
  console?: string;
  consolePath?: string;
  /** The toolstack's log for the case's time span (when the driver offers it). */
  toolstackLog?: string;
  /** What the runner did, with times relative to the case's start. */
  steps: string[];
}

export interface CaseResult {
  name: string;
  toolstack: ToolstackKind;
  scenario: Scenario;
  verdict: Verdict;
  /** One line: why this verdict. */
  summary: string;
  skipReason?: string;
  model: ModelAnswer;
  /** The rule's one-line expectation, for tables. */
  expected: string;
  observation?: Observation;
  diffs: FieldDiff[];
  /** Broken invariants (fail) and harness/environment problems (error). */
  invariantProblems: string[];
  errors: string[];
  evidence: Evidence;
  startedAt?: string;
  elapsedMs?: number;
}

export interface RunSummary {
  toolstack: ToolstackKind;
  matrix: MatrixName | 'custom';
  host?: string;
  /** What the host offered (version, console log, timeouts), as the driver found it out. */
  hostFacts?: HostFacts;
  startedAt: string;
  finishedAt: string;
  aborted: boolean;
  counts: Record<Verdict, number>;
  /** The worst verdict of all cases (error for an empty run). */
  verdict: Verdict;
  cases: CaseResult[];
}

export function countVerdicts(cases: readonly CaseResult[]): Record<Verdict, number> {
  const c = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const r of cases) c[r.verdict]++;
  return c;
}

export function summarise(cases: CaseResult[], meta: Omit<RunSummary, 'counts' | 'verdict' | 'cases'>): RunSummary {
  return { ...meta, counts: countVerdicts(cases), verdict: worst(cases.map((c) => c.verdict)), cases };
}

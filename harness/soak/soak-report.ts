// A soak's outcome as text: the line per iteration and the summary table that
// `xtv soak` prints, and TAP, JUnit XML and JSON like `xtv run`'s (one test
// case per iteration, named "loop N OP"). Pure.
import { escapeXml, oneLine } from '../report/escape.ts';
import { soakStats, type SoakIteration, type SoakOp, type SoakStats } from './soak.ts';

export interface SoakSummary {
  vm: string;
  toolstack: string;
  host: string;
  domainType: string;
  loops: number;
  ops: readonly SoakOp[];
  startedAt: string;
  finishedAt: string;
  /** Interrupted (Ctrl-C) before every loop ran. */
  aborted: boolean;
  /** Why the soak could not start or go on, outside any iteration (the install, the boot). */
  error?: string;
  iterations: SoakIteration[];
}

const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const caseName = (it: SoakIteration): string => `loop ${it.loop} ${it.op}`;

export function soakFailed(s: SoakSummary): number {
  return s.iterations.filter((it) => it.problems.length > 0).length;
}

/** Passed: every planned iteration ran and none broke, and nothing stopped the soak. */
export function soakPassed(s: SoakSummary): boolean {
  return !s.error && !s.aborted && soakFailed(s) === 0 && s.iterations.length === s.loops * s.ops.length;
}

export function iterationLine(it: SoakIteration, loops: number): string {
  const steps = Object.entries(it.durations)
    .map(([step, ms]) => `${step} ${sec(ms)}`)
    .join(', ');
  const head = `loop ${it.loop}/${loops} ${it.op}: ${steps || 'no step completed'}`;
  const tail = it.problems.length ? `FAILED: ${it.problems.join('; ')}` : it.continuity;
  return `${head}; ${tail}`;
}

export function statsTable(stats: readonly SoakStats[]): string {
  const w = Math.max(4, ...stats.map((s) => s.step.length));
  const row = (a: string, b: string, c: string, d: string, e: string): string =>
    `  ${a.padEnd(w)}  ${b.padStart(3)}  ${c.padStart(8)}  ${d.padStart(8)}  ${e.padStart(8)}`;
  return [row('step', 'n', 'min', 'median', 'max'), ...stats.map((s) => row(s.step, String(s.n), sec(s.minMs), sec(s.medianMs), sec(s.maxMs)))].join('\n');
}

export function soakText(s: SoakSummary): string {
  const failed = soakFailed(s);
  const verdict = soakPassed(s)
    ? `passed: ${s.iterations.length} iterations, the same guest after each`
    : `FAILED: ${failed} of ${s.iterations.length} iterations broke` +
      (s.aborted ? '; interrupted' : '') +
      (s.error ? `; ${s.error}` : '') +
      (!s.aborted && !s.error && s.iterations.length < s.loops * s.ops.length ? `; stopped after ${s.iterations.length} of ${s.loops * s.ops.length}` : '');
  const stats = soakStats(s.iterations);
  return [...(stats.length ? ['durations:', statsTable(stats)] : []), `soak ${verdict}`].join('\n');
}

/** Why the soak stopped short outside any iteration: its error, or an interruption. */
const stoppedBy = (s: SoakSummary): string | undefined => s.error ?? (s.aborted ? 'interrupted' : undefined);

export function soakTap(s: SoakSummary): string {
  const stopped = stoppedBy(s);
  const lines = [`TAP version 13`, `1..${s.iterations.length + (stopped ? 1 : 0)}`];
  s.iterations.forEach((it, i) => {
    lines.push(`${it.problems.length ? 'not ok' : 'ok'} ${i + 1} - ${caseName(it)}`);
    lines.push(`  # ${oneLine(it.problems.length ? it.problems.join('; ') : it.continuity, 400)}`);
  });
  if (stopped) lines.push(`not ok ${s.iterations.length + 1} - soak # ${oneLine(stopped, 400)}`);
  return `${lines.join('\n')}\n`;
}

export function soakJUnit(s: SoakSummary): string {
  const stopped = stoppedBy(s);
  const failures = soakFailed(s) + (stopped ? 1 : 0);
  const total = s.iterations.length + (stopped ? 1 : 0);
  const time = (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000;
  const cases = s.iterations.map((it) => {
    const t = Object.values(it.durations).reduce((a, b) => a + b, 0) / 1000;
    const body = it.problems.length
      ? `<failure message="${escapeXml(oneLine(it.problems.join('; '), 400))}">${escapeXml(it.problems.join('\n'))}</failure>`
      : `<system-out>${escapeXml(it.continuity)}</system-out>`;
    return `    <testcase classname="xtv.soak.${escapeXml(s.toolstack)}" name="${escapeXml(caseName(it))}" time="${t.toFixed(3)}">${body}</testcase>`;
  });
  if (stopped)
    cases.push(`    <testcase classname="xtv.soak.${escapeXml(s.toolstack)}" name="soak"><error message="${escapeXml(oneLine(stopped, 400))}"/></testcase>`);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${total}" failures="${failures}" time="${time.toFixed(3)}">`,
    `  <testsuite name="xtv soak ${escapeXml(s.vm)}" tests="${total}" failures="${failures}" time="${time.toFixed(3)}" timestamp="${escapeXml(s.startedAt)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export function soakJson(s: SoakSummary): Record<string, unknown> {
  return { ok: soakPassed(s), ...s, failed: soakFailed(s), stats: soakStats(s.iterations) };
}

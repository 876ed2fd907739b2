// TAP (version 13) on stdout: one line per case, `ok` unless the verdict is
// fail or error, the verdict word before the name, skips as `# SKIP reason`.
// Failed and errored cases add `#` comment lines with the diff or the error.
import type { CaseResult, RunSummary } from '../matrix/result.ts';
import { renderDiff } from '../matrix/verdict.ts';
import { oneLine } from './escape.ts';

export function tapPlan(n: number): string {
  return `TAP version 13\n1..${n}`;
}

/** A TAP description may not contain '#' (it starts a directive). */
function desc(s: string): string {
  return oneLine(s).replace(/#/g, '\\#');
}

export function tapLine(n: number, r: CaseResult): string {
  const bad = r.verdict === 'fail' || r.verdict === 'error';
  if (r.verdict === 'skip') return `ok ${n} - ${desc(r.name)} # SKIP ${oneLine(r.skipReason ?? r.summary)}`;
  const head = `${bad ? 'not ok' : 'ok'} ${n} - ${r.verdict} ${desc(r.name)}`;
  if (!bad) return head;
  const detail: string[] = [];
  for (const e of r.errors) detail.push(`error: ${e}`);
  if (r.diffs.length > 0) detail.push(...renderDiff(r.diffs).split('\n'));
  for (const p of r.invariantProblems) detail.push(`invariant: ${p}`);
  return [head, ...detail.map((l) => `# ${oneLine(l, 400)}`)].join('\n');
}

export function tapFooter(s: RunSummary): string {
  const c = s.counts;
  return `# ${s.toolstack} ${s.matrix}: ${c.pass} pass, ${c.fail} fail, ${c.error} error, ${c.unmodelled} unmodelled, ${c.skip} skip${s.aborted ? ' (interrupted)' : ''}`;
}

export function toTap(s: RunSummary): string {
  return [tapPlan(s.cases.length), ...s.cases.map((r, i) => tapLine(i + 1, r)), tapFooter(s)].join('\n') + '\n';
}

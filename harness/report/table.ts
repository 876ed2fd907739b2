// The plain-text result table for the terminal: one row per case that ran
// (skips are counted, not listed), then the totals.
import type { RunSummary } from '../matrix/result.ts';
import { oneLine } from './escape.ts';

function observed(r: RunSummary['cases'][number]): string {
  const o = r.observation;
  if (!o) return r.errors[0] ? `(${r.errors[0]})` : '-';
  const res = o.result.kind === 'ok' ? 'ok' : o.result.kind === 'error' ? `error ${o.result.code}` : 'timeout';
  return `${res}; ${o.final.powerState}; domid ${o.domid}; ${o.durationClass} (${(o.durationMs / 1000).toFixed(1)} s)`;
}

export function toTable(s: RunSummary, opts: { width?: number; includeSkips?: boolean } = {}): string {
  const rows = s.cases
    .filter((r) => opts.includeSkips || r.verdict !== 'skip')
    .map((r) => [r.verdict, r.name, oneLine(r.expected, 70), oneLine(observed(r), 70)]);
  const head = ['VERDICT', 'CASE', 'EXPECTED', 'OBSERVED'];
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const c = s.counts;
  return (
    [
      line(head),
      ...rows.map(line),
      '',
      `${s.toolstack} ${s.matrix}: ${c.pass} pass, ${c.fail} fail, ${c.error} error, ${c.unmodelled} unmodelled, ${c.skip} skip -> ${s.verdict}${s.aborted ? ' (interrupted)' : ''}`,
    ].join('\n') + '\n'
  );
}

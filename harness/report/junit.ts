// JUnit XML for CI systems: one <testsuite> per run, one <testcase> per case.
// fail -> <failure>, error -> <error>, skip -> <skipped>; unmodelled passes
// with its observation in <system-out>.
import type { CaseResult, RunSummary } from '../matrix/result.ts';
import { renderDiff } from '../matrix/verdict.ts';
import { escapeXml as x } from './escape.ts';

function seconds(ms: number | undefined): string {
  return ((ms ?? 0) / 1000).toFixed(3);
}

function detail(r: CaseResult): string {
  return [
    ...r.errors.map((e) => `error: ${e}`),
    ...(r.diffs.length ? [renderDiff(r.diffs)] : []),
    ...r.invariantProblems.map((p) => `invariant: ${p}`),
    `expected: ${r.expected}`,
  ].join('\n');
}

function testcase(r: CaseResult): string {
  const open = `    <testcase classname="xtv.${x(r.toolstack)}.${x(r.scenario.initial)}.${x(r.scenario.request)}" name="${x(r.name)}" time="${seconds(r.elapsedMs)}">`;
  const body: string[] = [];
  if (r.verdict === 'skip') body.push(`      <skipped message="${x(r.skipReason ?? r.summary)}"/>`);
  if (r.verdict === 'fail') body.push(`      <failure message="${x(r.summary)}" type="fail">${x(detail(r))}</failure>`);
  if (r.verdict === 'error') body.push(`      <error message="${x(r.summary)}" type="error">${x(detail(r))}</error>`);
  if (r.verdict !== 'skip') {
    const out = [`verdict: ${r.verdict}`, `summary: ${r.summary}`, `expected: ${r.expected}`, ...r.evidence.steps];
    body.push(`      <system-out>${x(out.join('\n'))}</system-out>`);
  }
  return [open, ...body, '    </testcase>'].join('\n');
}

export function toJUnit(s: RunSummary): string {
  const c = s.counts;
  const time = Date.parse(s.finishedAt) - Date.parse(s.startedAt) || 0;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="xtv" tests="${s.cases.length}" failures="${c.fail}" errors="${c.error}" skipped="${c.skip}" time="${seconds(time)}">`,
    `  <testsuite name="xtv.${x(s.toolstack)}.${x(s.matrix)}" tests="${s.cases.length}" failures="${c.fail}" errors="${c.error}" skipped="${c.skip}" time="${seconds(time)}" timestamp="${x(s.startedAt)}"${s.host ? ` hostname="${x(s.host)}"` : ''}>`,
    ...(s.hostFacts
      ? [
          '    <properties>',
          `      <property name="host.version" value="${x(s.hostFacts.version)}"/>`,
          `      <property name="host.console-log" value="${x(s.hostFacts.consoleLogDir ?? 'none')}"/>`,
          ...s.hostFacts.notes.map((n, i) => `      <property name="host.note.${i + 1}" value="${x(n)}"/>`),
          '    </properties>',
        ]
      : []),
    ...s.cases.map(testcase),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

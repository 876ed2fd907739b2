#!/usr/bin/env node
// A CI job's summary from what a run left: `xtv run`'s JSON reports
// (xtv-<toolstack>-<matrix>.json, found under the directories given) become
// Markdown result tables, and npm test's output (--tap FILE: its TAP, as
// scripts/test.mjs prints it) its totals and failed assertions. The Markdown
// is appended to $GITHUB_STEP_SUMMARY (stdout when unset); each failed or
// errored case, and each failed assertion, is also a GitHub annotation
// (::error::) on stdout. Case data may carry hostile strings (guest and
// toolstack text): every value is escaped for Markdown and for the workflow
// command. Exits 0 whatever the run's result (the run's own step fails the
// job), 2 on a usage error or a report that cannot be read.
//
//   node scripts/report-summary.mjs [--tap FILE] [DIR_OR_JSON...]
import { appendFileSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One Markdown table cell: one line, no HTML, no column break, at most `max` characters. */
export function mdCell(value, max = 120) {
  // eslint-disable-next-line no-control-regex
  let s = String(value ?? '').replace(/[\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069]+/g, ' ');
  if (s.length > max) s = `${s.slice(0, max - 1)}…`;
  return s.replace(/[\\`*_[\]<>&|]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c] ?? `\\${c}`);
}

/** A GitHub workflow command (::error title=T::MESSAGE), its title and message escaped as the runner expects. */
export function annotation(level, title, message) {
  const data = (s) => String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (s) => data(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
  return `::${level} title=${prop(title)}::${data(message)}`;
}

/** What was observed, as the terminal's result table says it (harness/report/table.ts). */
function observed(c) {
  const o = c.observation;
  if (!o) return c.errors?.[0] ? `(${c.errors[0]})` : '-';
  const res = o.result?.kind === 'ok' ? 'ok' : o.result?.kind === 'error' ? `error ${o.result.code}` : 'timeout';
  return `${res}; ${o.final?.powerState}; domid ${o.domid}; ${o.durationClass} (${(Number(o.durationMs) / 1000).toFixed(1)} s)`;
}

/** Why a case failed or errored, in one line. */
function why(c) {
  const parts = [c.summary];
  for (const d of c.diffs ?? []) parts.push(`${d.field}: expected ${d.expected}, observed ${d.observed}`);
  parts.push(...(c.invariantProblems ?? []), ...(c.errors ?? []));
  return parts.filter(Boolean).join('; ');
}

/** An `xtv run` JSON report (harness/matrix/result.ts RunSummary) as Markdown and annotations. */
export function runSummary(report) {
  const c = report.counts ?? {};
  const head = `${report.toolstack} ${report.matrix}${report.host ? ` on ${report.host}` : ''}`;
  const totals = `${c.pass ?? 0} pass, ${c.fail ?? 0} fail, ${c.error ?? 0} error, ${c.unmodelled ?? 0} unmodelled, ${c.skip ?? 0} skip`;
  const icon = report.verdict === 'pass' ? '✅' : report.verdict === 'fail' || report.verdict === 'error' ? '❌' : '⚠️';
  const lines = [`### ${icon} xtv ${mdCell(head)}: ${mdCell(report.verdict)}${report.aborted ? ' (interrupted)' : ''}`, '', totals];
  if (report.hostFacts?.version) lines.push('', `Host: ${mdCell(report.hostFacts.version)}`);
  const cases = (report.cases ?? []).filter((k) => k.verdict !== 'skip');
  if (cases.length > 0) {
    lines.push('', '| verdict | case | expected | observed |', '| --- | --- | --- | --- |');
    for (const k of cases) lines.push(`| ${mdCell(k.verdict)} | ${mdCell(k.name)} | ${mdCell(k.expected)} | ${mdCell(observed(k))} |`);
  }
  const annotations = (report.cases ?? [])
    .filter((k) => k.verdict === 'fail' || k.verdict === 'error')
    .map((k) => annotation('error', `xtv ${report.toolstack} ${k.verdict}: ${k.name}`, why(k)));
  if (report.aborted) annotations.push(annotation('error', `xtv ${report.toolstack} ${report.matrix}`, 'the run was interrupted'));
  return { markdown: `${lines.join('\n')}\n`, annotations };
}

/** npm test's output (scripts/test.mjs: TAP per file under "# file: F", then "N passed, N failed") as Markdown and annotations. */
export function tapSummary(text) {
  let file = '';
  const failures = [];
  let totals = null;
  for (const line of text.split('\n')) {
    const f = /^# file: (\S+)/.exec(line);
    if (f) file = f[1];
    const n = /^not ok\b(?: \d+)?(?: -)? ?(.*)$/.exec(line);
    if (n) failures.push({ file: /^not ok \d+/.test(line) ? file : '', what: n[1] || '(no description)' });
    const t = /^(\d+) passed, (\d+) failed$/.exec(line);
    if (t) totals = { passed: Number(t[1]), failed: Number(t[2]) };
  }
  const ok = totals !== null && totals.failed === 0 && failures.length === 0 && totals.passed > 0;
  const lines = [
    `### ${ok ? '✅' : '❌'} npm test: ${totals ? `${totals.passed} passed, ${totals.failed} failed` : 'no totals line (the run did not finish)'}`,
  ];
  if (failures.length > 0) {
    lines.push('', '| file | failed assertion |', '| --- | --- |');
    for (const x of failures.slice(0, 100)) lines.push(`| ${mdCell(x.file || 'npm test', 80)} | ${mdCell(x.what, 200)} |`);
    if (failures.length > 100) lines.push('', `…and ${failures.length - 100} more`);
  }
  const annotations = failures.slice(0, 50).map((x) => annotation('error', `npm test: ${x.file || 'npm test'}`, x.what));
  if (totals === null) annotations.push(annotation('error', 'npm test', 'no "N passed, N failed" line: the run did not finish'));
  return { markdown: `${lines.join('\n')}\n`, annotations };
}

/** The xtv-*.json reports under `path` (a directory, searched recursively, or a file), sorted. */
export function findReports(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true })
    .map(String)
    .filter((f) => /(^|\/)xtv-[^/]+\.json$/.test(f))
    .sort()
    .map((f) => join(path, f));
}

function main(argv) {
  let tap = null;
  const paths = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--tap') tap = argv[++i];
    else if (argv[i].startsWith('-')) {
      console.error(`usage: node scripts/report-summary.mjs [--tap FILE] [DIR_OR_JSON...] (unknown option ${argv[i]})`);
      return 2;
    } else paths.push(argv[i]);
  }
  if (tap === undefined) {
    console.error('usage: --tap needs a FILE');
    return 2;
  }
  const parts = [];
  const annotations = [];
  if (tap !== null) {
    const s = tapSummary(existsSync(tap) ? readFileSync(tap, 'utf8') : '');
    parts.push(s.markdown);
    annotations.push(...s.annotations);
  }
  const reports = paths.flatMap(findReports);
  for (const file of reports) {
    let report;
    try {
      report = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      console.error(`report-summary: cannot read ${file}: ${e.message}`);
      return 2;
    }
    const s = runSummary(report);
    parts.push(s.markdown);
    annotations.push(...s.annotations);
  }
  if (paths.length > 0 && reports.length === 0) parts.push(`### ❌ xtv: no report was written (${paths.map((p) => mdCell(p)).join(', ')})\n`);
  const markdown = parts.join('\n');
  if (process.env.GITHUB_STEP_SUMMARY) appendFileSync(process.env.GITHUB_STEP_SUMMARY, `${markdown}\n`);
  else process.stdout.write(markdown);
  for (const a of annotations) console.log(a);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = main(process.argv.slice(2));

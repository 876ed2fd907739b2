// scripts/report-summary.mjs: CI's job summary and annotations from xtv run's
// JSON report and from npm test's TAP, with hostile case data kept inert.
import test from 'tape';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: a plain .mjs script, no types
import { annotation, findReports, mdCell, runSummary, tapSummary } from '../../scripts/report-summary.mjs';

const SCRIPT = new URL('../../scripts/report-summary.mjs', import.meta.url).pathname;

function kase(name: string, verdict: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    verdict,
    summary: verdict === 'pass' ? 'as the model says' : 'the toolstack answered otherwise',
    expected: 'ok; Halted; domid none; fast',
    observation: { result: { kind: 'ok' }, durationMs: 1234, durationClass: 'fast', final: { powerState: 'Halted', domid: null }, domid: 'none' },
    diffs: [],
    invariantProblems: [],
    errors: [],
    ...extra,
  };
}

const REPORT = {
  toolstack: 'xapi',
  matrix: 'smoke',
  host: 'https://xs.example',
  hostFacts: { version: 'XenServer 8.4.0 (xapi 26.17.0)' },
  aborted: false,
  counts: { pass: 1, skip: 1, unmodelled: 0, error: 1, fail: 1 },
  verdict: 'fail',
  cases: [
    kase('running.clean_shutdown.ack-ok.poweroff', 'pass'),
    kase('running.skipped', 'skip'),
    kase('running.clean_reboot.ack-ok.reboot', 'fail', { diffs: [{ field: 'finalState', expected: 'Running', observed: 'Halted' }] }),
    kase('running.suspend.ack-ok.suspend', 'error', { observation: undefined, errors: ['dom0 unreachable'] }),
  ],
};

test('report summary: a run report becomes a Markdown table of the cases that ran, and an annotation per failed or errored case', (t) => {
  const { markdown, annotations } = runSummary(REPORT) as { markdown: string; annotations: string[] };
  t.match(markdown, /^### ❌ xtv xapi smoke on https:\/\/xs\.example: fail\n/, 'heading: toolstack, matrix, host, verdict');
  t.ok(markdown.includes('1 pass, 1 fail, 1 error, 0 unmodelled, 1 skip'), 'the totals');
  t.ok(markdown.includes('| verdict | case | expected | observed |'), 'the table header');
  t.ok(markdown.includes('| pass | running.clean\\_shutdown.ack-ok.poweroff | ok; Halted; domid none; fast | ok; Halted; domid none; fast (1.2 s) |'), 'a row');
  t.ok(markdown.includes('| error | running.suspend.ack-ok.suspend | ok; Halted; domid none; fast | (dom0 unreachable) |'), 'no observation: the error');
  t.notOk(markdown.includes('running.skipped'), 'skips are counted, not listed');
  t.deepEqual(annotations, [
    '::error title=xtv xapi fail%3A running.clean_reboot.ack-ok.reboot::the toolstack answered otherwise; finalState: expected Running, observed Halted',
    '::error title=xtv xapi error%3A running.suspend.ack-ok.suspend::the toolstack answered otherwise; dom0 unreachable',
  ]);
  const passing = runSummary({ ...REPORT, verdict: 'pass', cases: [REPORT.cases[0]], counts: { pass: 1, skip: 0, unmodelled: 0, error: 0, fail: 0 } });
  t.match(passing.markdown, /^### ✅ /, 'a passing run');
  t.deepEqual(passing.annotations, [], 'no annotation');
  t.ok(
    runSummary({ ...REPORT, aborted: true }).annotations.some((a: string) => a.includes('interrupted')),
    'an interrupted run is annotated',
  );
  t.end();
});

test('report summary: hostile case data stays one inert table cell and one annotation line', (t) => {
  const evil = 'x | y\n::error::injected <img src=x onerror=alert(1)> `code` [link](http://e) %0A\u202e';
  const cell = mdCell(evil) as string;
  t.notOk(cell.includes('\n'), 'one line');
  t.notOk(/(?<!\\)\|/.test(cell), 'no bare pipe');
  t.notOk(/[<>\u202e]/.test(cell), 'no HTML, no bidi override');
  t.equal(mdCell('a'.repeat(300), 10), `${'a'.repeat(9)}…`, 'long values are cut');
  const a = annotation('error', 'T: a, b', evil) as string;
  t.equal(a.split('\n').length, 1, 'annotation on one line');
  t.ok(a.startsWith('::error title=T%3A a%2C b::x | y%0A::error::'), 'title properties and data escaped');
  t.ok(a.includes('%250A'), '% escaped first');
  const { annotations } = runSummary({ ...REPORT, cases: [kase(evil, 'fail', { summary: evil })] });
  t.equal(annotations.length, 1);
  t.equal((annotations[0] as string).split('\n').length, 1, 'one line per annotation');
  t.end();
});

test("report summary: npm test's TAP gives its totals and each failed assertion, by file", (t) => {
  const tap = [
    '# preparing test image',
    'ok - the shared embedded host is up',
    '# file: test/unit/a.test.ts (1.0 s)',
    'TAP version 13',
    'ok 1 fine',
    'not ok 2 broken | thing',
    '# file: test/e2e/b.test.ts (9.0 s)',
    'not ok 1 - test/e2e/b.test.ts exited with 1 without reporting a failure',
    'not ok - the shared host went down: exit 1',
    '3 passed, 3 failed',
    '',
  ].join('\n');
  const { markdown, annotations } = tapSummary(tap) as { markdown: string; annotations: string[] };
  t.match(markdown, /^### ❌ npm test: 3 passed, 3 failed\n/);
  t.ok(markdown.includes('| test/unit/a.test.ts | broken \\| thing |'), 'a failed assertion under its file');
  t.ok(markdown.includes('| npm test | the shared host went down: exit 1 |'), "the runner's own assertion");
  t.deepEqual(annotations, [
    '::error title=npm test%3A test/unit/a.test.ts::broken | thing',
    '::error title=npm test%3A test/e2e/b.test.ts::test/e2e/b.test.ts exited with 1 without reporting a failure',
    '::error title=npm test%3A npm test::the shared host went down: exit 1',
  ]);
  t.match(tapSummary('ok 1 a\n1 passed, 0 failed\n').markdown, /^### ✅ npm test: 1 passed, 0 failed\n$/, 'a clean run');
  const cut = tapSummary('ok 1 a\n');
  t.match(cut.markdown, /did not finish/, 'no totals line: said');
  t.equal(cut.annotations.length, 1, 'and annotated');
  t.end();
});

test('report summary: the command appends to $GITHUB_STEP_SUMMARY and prints the annotations', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-summary-'));
  try {
    mkdirSync(join(dir, 'report', 'xapi'), { recursive: true });
    writeFileSync(join(dir, 'report', 'xapi', 'xtv-xapi-smoke.json'), JSON.stringify(REPORT));
    writeFileSync(join(dir, 'report', 'xapi', 'other.json'), '{}');
    t.deepEqual(findReports(join(dir, 'report')), [join(dir, 'report', 'xapi', 'xtv-xapi-smoke.json')], 'only xtv-*.json reports');
    const summary = join(dir, 'summary.md');
    writeFileSync(summary, 'before\n');
    const env = { ...process.env, GITHUB_STEP_SUMMARY: summary };
    const r = spawnSync(process.execPath, [SCRIPT, join(dir, 'report')], { encoding: 'utf8', env });
    t.equal(r.status, 0, 'exit 0 though cases failed');
    t.equal(r.stdout.trim().split('\n').length, 2, 'two annotations on stdout');
    const md = readFileSync(summary, 'utf8');
    t.ok(md.startsWith('before\n### ❌ xtv xapi smoke'), 'appended');
    const none = spawnSync(process.execPath, [SCRIPT, join(dir, 'nowhere')], { encoding: 'utf8', env });
    t.equal(none.status, 0, 'no report: still exit 0');
    t.ok(readFileSync(summary, 'utf8').includes('no report was written'), 'and said in the summary');
    writeFileSync(join(dir, 'report', 'xapi', 'xtv-xapi-full.json'), '{ not json');
    t.equal(spawnSync(process.execPath, [SCRIPT, join(dir, 'report')], { encoding: 'utf8', env }).status, 2, 'an unreadable report: exit 2');
    t.equal(spawnSync(process.execPath, [SCRIPT, '--bogus'], { encoding: 'utf8', env }).status, 2, 'an unknown option: exit 2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

import test from 'tape';
import { parseStringPromise } from 'xml2js';
import { modelFor } from '../../harness/matrix/models.ts';
import { describeExpectation } from '../../harness/matrix/model.ts';
import { summarise, type CaseResult, type RunSummary } from '../../harness/matrix/result.ts';
import { findCase } from '../../harness/matrix/scenarios.ts';
import { toHtml } from '../../harness/report/html.ts';
import { toJUnit } from '../../harness/report/junit.ts';
import { toTable } from '../../harness/report/table.ts';
import { tapLine, toTap } from '../../harness/report/tap.ts';
import { escapeHtml, escapeXml, oneLine } from '../../harness/report/escape.ts';

const HOSTILE = '</pre><script>alert("x")</script><img src=x onerror=alert(1)> & "quotes" \'apos\' # hash\nnewline \u0001ctl';

function result(name: string, over: Partial<CaseResult>): CaseResult {
  const c = findCase(name)!;
  const model = modelFor('xl').expect(c.scenario);
  return {
    name,
    toolstack: 'xl',
    scenario: c.scenario,
    verdict: 'pass',
    summary: 'as the model says',
    model,
    expected: describeExpectation(model),
    diffs: [],
    invariantProblems: [],
    errors: [],
    evidence: { steps: ['+0.0s installing'] },
    elapsedMs: 1234,
    ...(c.run ? {} : { skipReason: c.skipReason }),
    ...over,
  };
}

function sample(): RunSummary {
  const cases: CaseResult[] = [
    result('running.clean_shutdown.ack-ok.poweroff', {
      observation: {
        result: { kind: 'ok' },
        durationMs: 800,
        durationClass: 'fast',
        initialDomid: 2,
        final: { powerState: 'Halted', domid: null },
        domid: 'none',
      },
    }),
    result('running.clean_shutdown.ack-ok.reboot', {
      verdict: 'fail',
      summary: `power state - expected Running / + observed Halted ${HOSTILE}`,
      diffs: [{ field: 'power state', expected: 'Running', observed: 'Halted' }],
      invariantProblems: [`guest: guest received ${JSON.stringify(HOSTILE)}`],
      evidence: {
        steps: ['+0.0s installing'],
        console: `xtv-agent 2026 event value=${HOSTILE}`,
        toolstackLog: HOSTILE,
        primedWith: HOSTILE,
        reportAfterPrime: { pending: HOSTILE },
      },
      observation: {
        result: { kind: 'error', code: HOSTILE, message: HOSTILE },
        durationMs: 800,
        durationClass: 'fast',
        initialDomid: 2,
        final: { powerState: 'Halted', domid: null },
        domid: 'none',
      },
    }),
    result('running.pause.ack-ok.ignore', {
      verdict: 'error',
      summary: 'the guest did not report state=ready within 2 min',
      errors: ['the guest did not report state=ready within 2 min'],
    }),
    result('running.suspend.ack-none.suspend', { verdict: 'unmodelled', summary: 'observed ok; Suspended' }),
    result('running.pause.ack-none.crash', { verdict: 'skip' }),
  ];
  return summarise(cases, {
    toolstack: 'xl',
    matrix: 'smoke',
    host: 'embedded',
    startedAt: '2026-11-23T09:00:00.000Z',
    finishedAt: '2026-11-23T09:01:00.000Z',
    aborted: false,
  });
}

test('escaping helpers', (t) => {
  t.equal(escapeHtml('<a href="x">&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
  t.equal(escapeXml('a\u0001b\uFFFFc<'), 'a\uFFFDb\uFFFDc&lt;', 'XML-illegal characters replaced');
  t.equal(oneLine('a\nb\tc'), 'a b c');
  t.end();
});

test('TAP: one line per case with the verdict word; skips as # SKIP; failures carry # comments', (t) => {
  const s = sample();
  const tap = toTap(s);
  const lines = tap.split('\n');
  t.equal(lines[0], 'TAP version 13');
  t.equal(lines[1], '1..5');
  t.ok(lines.includes('ok 1 - pass running.clean_shutdown.ack-ok.poweroff'));
  t.ok(lines.includes('not ok 2 - fail running.clean_shutdown.ack-ok.reboot'));
  t.ok(lines.includes('not ok 3 - error running.pause.ack-ok.ignore'));
  t.ok(lines.includes('ok 4 - unmodelled running.suspend.ack-none.suspend'));
  t.match(tap, /^ok 5 - running\.pause\.ack-none\.crash # SKIP equivalent to running\.pause\.ack-ok\.ignore/m);
  const results = lines.filter((l) => /^(not )?ok \d+/.test(l));
  t.equal(results.length, 5, 'exactly one result line per case');
  for (const l of lines) if (!/^(TAP version|1\.\.|ok |not ok |# )/.test(l) && l !== '') t.fail(`stray line: ${l}`);
  t.match(tapLine(9, { ...s.cases[1]!, name: 'a#b' }), /^not ok 9 - fail a\\#b/, '# in a name is escaped');
  t.end();
});

test('JUnit XML is well-formed, counts right, and carries hostile text safely', async (t) => {
  const xml = toJUnit(sample());
  const doc = await parseStringPromise(xml);
  const suite = doc.testsuites.testsuite[0];
  t.equal(suite.$.tests, '5');
  t.equal(suite.$.failures, '1');
  t.equal(suite.$.errors, '1');
  t.equal(suite.$.skipped, '1');
  const tcs = suite.testcase as Array<{ $: { name: string }; failure?: unknown[]; error?: unknown[]; skipped?: unknown[] }>;
  t.deepEqual(
    tcs.map((c) => c.$.name),
    sample().cases.map((c) => c.name),
  );
  t.ok(tcs[1]!.failure, 'failure element');
  t.ok(tcs[2]!.error, 'error element');
  t.ok(tcs[4]!.skipped, 'skipped element');
  t.notOk(xml.includes('<script>'), 'no raw markup from case data');
  t.end();
});

test('HTML: the grid is there, cells link to evidence, hostile strings are escaped, no external assets', (t) => {
  const html = toHtml(sample());
  t.match(html, /^<!DOCTYPE html>/);
  t.match(html, /<table class="grid" data-initial="running" data-ack="ok">/, 'grid for running × ack ok');
  t.match(html, /<table class="grid" data-initial="running" data-ack="none">/, 'grid for running × ack none');
  t.notOk(/data-initial="halted"/.test(html), 'no grid where no case of the run lives');
  t.match(html, /<td class="v-pass" data-case="running\.clean_shutdown\.ack-ok\.poweroff" data-verdict="pass"><a href="#case-0"/);
  t.match(html, /<td class="v-fail" data-case="running\.clean_shutdown\.ack-ok\.reboot"/);
  t.match(html, /<section class="evidence" id="case-1">/);
  t.match(html, /\.evidence:target\{display:block;position:fixed/, 'clicking a cell shows its evidence (CSS :target)');
  t.notOk(html.includes('<script>alert'), 'no injected script');
  t.notOk(html.includes('<img src=x'), 'no injected element');
  t.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'), 'hostile text shown escaped');
  t.notOk(/<script|<link|src="http|href="http|@import|url\(/i.test(html), 'self-contained: no script, stylesheet link or remote URL');
  // Each row is a request, each column an action.
  const grid = /<table class="grid" data-initial="running" data-ack="ok">[\s\S]*?<\/table>/.exec(html)![0];
  t.equal((grid.match(/<tr><th scope="row">/g) ?? []).length, 10, '10 request rows');
  t.equal((grid.match(/<th scope="col">/g) ?? []).length, 6, '6 action columns');
  t.match(html, /see running\.pause\.ack-ok\.ignore/, 'a skipped cell links its equivalent case');
  t.end();
});

test('the terminal table lists cases that ran and the totals', (t) => {
  const text = toTable(sample());
  const lines = text.trimEnd().split('\n');
  t.match(lines[0]!, /^VERDICT\s+CASE\s+EXPECTED\s+OBSERVED$/);
  t.equal(lines.filter((l) => /^(pass|fail|error|unmodelled) /.test(l)).length, 4, 'skips not listed');
  t.match(lines.at(-1)!, /xl smoke: 1 pass, 1 fail, 1 error, 1 unmodelled, 1 skip -> fail/);
  t.notOk(text.includes(String.fromCharCode(1)), 'control characters flattened');
  t.end();
});

test('HTML: timing cases (#16) get a grid of their own, not a cell in the request × action grids', (t) => {
  const s = summarise(
    [
      result('running.clean_shutdown.ack-ok.poweroff', {}),
      result('running.clean_shutdown.ack-ok-late.poweroff', { verdict: 'fail', summary: 'state differs' }),
    ],
    { toolstack: 'xl', matrix: 'full', host: 'fake', startedAt: '2026-12-03T00:00:00Z', finishedAt: '2026-12-03T00:01:00Z', aborted: false },
  );
  const html = toHtml(s);
  t.match(html, /<h2>Timing: the guest acknowledges or acts/, 'a section of its own');
  t.match(html, /data-dimension="timing"/);
  t.match(html, /data-case="running\.clean_shutdown\.ack-ok-late\.poweroff" data-verdict="fail"/, 'the late-ack cell');
  t.equal((html.match(/data-case="running\.clean_shutdown\.ack-ok-late\.poweroff"/g) ?? []).length, 1, 'drawn once, in the timing grid');
  const withFeatures = toHtml({ ...s, cases: [...s.cases, result('running.suspend.cant-suspend.ack-ok.suspend', {})] });
  t.match(withFeatures, /data-dimension="features"[\s\S]*data-case="running\.suspend\.cant-suspend\.ack-ok\.suspend"/, 'features: a grid of their own too');
  const plain = toHtml({ ...s, cases: s.cases.filter((c) => c.scenario.timing === 'prompt') });
  t.doesNotMatch(plain, /data-dimension="timing"/, 'no timing case in the run: no timing grid');
  const withLifecycle = toHtml({
    ...s,
    cases: [
      ...s.cases,
      result('running.no_request.on-crash-preserve.ack-ok.crash', {}),
      result('running.clean_shutdown.on-poweroff-restart.ack-ok.poweroff', { verdict: 'fail', summary: 'state differs' }),
    ],
  });
  t.match(withLifecycle, /<h2>Lifecycle: what the toolstack is set to do/, 'lifecycle: a section of its own');
  t.match(
    withLifecycle,
    /data-dimension="lifecycle"[\s\S]*<th scope="row">on-poweroff-restart<\/th><td class="none"[^>]*><\/td><td class="v-fail" data-case="running\.clean_shutdown\.on-poweroff-restart\.ack-ok\.poweroff"/,
    'a row per setting: the guest alone (not in this run), then asked for',
  );
  t.match(
    withLifecycle,
    /<th scope="row">on-crash-preserve<\/th><td class="v-pass"[^>]*><a [^>]*>pass<\/a><\/td><td class="none" title="a crash is never asked for">/,
    'a crash has no asked-for column',
  );
  t.equal((withLifecycle.match(/data-case="running\.no_request\.on-crash-preserve\.ack-ok\.crash"/g) ?? []).length, 1, 'drawn once');
  t.end();
});

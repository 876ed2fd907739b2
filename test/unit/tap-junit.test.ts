// scripts/tap-junit.mjs: npm test's TAP as JUnit XML, one suite per file,
// one test case per assertion, hostile names kept inert.
import test from 'tape';
import { parseStringPromise } from 'xml2js';
// @ts-expect-error: a plain .mjs script, no types
import { parseTap, tapJunit, xmlText } from '../../scripts/tap-junit.mjs';

interface Case {
  $: { classname: string; name: string };
  failure?: Array<{ _?: string; $: { message: string; type: string } } | string>;
  skipped?: unknown[];
}
interface Suite {
  $: Record<string, string>;
  testcase?: Case[];
}
interface Doc {
  testsuites: { $: Record<string, string>; testsuite: Suite[] };
}

const TAP = [
  'TAP version 13',
  '# first test',
  'ok 1 should be equal',
  'not ok 2 - the values differ',
  '  ---',
  '    operator: equal',
  '    expected: 1',
  '    actual:   2',
  '    at: Test.<anonymous> (file:///x/test/unit/a.test.ts:5:5)',
  '  ...',
  '# stderr: not ok 9 - a line on stderr is no assertion',
  '  ok 10 - nor is an indented one',
  'ok 3 needs the image # SKIP no image built',
  'not ok 4 crashed, no diagnostic',
  '',
  '1..4',
  '# tests 4',
  '# pass  2',
  '# fail  2',
  '',
].join('\n');

test('tap-junit: parseTap reads the lines test.mjs counts, with their diagnostics', (t) => {
  const points = parseTap(TAP) as Array<{ number: number; ok: boolean; name: string; skip?: string; diagnostic?: string }>;
  t.deepEqual(
    points.map((p) => [p.number, p.ok, p.name]),
    [
      [1, true, 'should be equal'],
      [2, false, 'the values differ'],
      [3, true, 'needs the image'],
      [4, false, 'crashed, no diagnostic'],
    ],
    'four assertions: `ok N name` and `not ok N - name`; stderr comments and indented lines are none',
  );
  t.equal(
    points[1]!.diagnostic,
    'operator: equal\nexpected: 1\nactual:   2\nat: Test.<anonymous> (file:///x/test/unit/a.test.ts:5:5)',
    'the YAML block, dedented',
  );
  t.equal(points[2]!.skip, 'no image built', '# SKIP and its reason');
  t.equal(points[3]!.diagnostic, undefined, 'no block, no diagnostic');
  t.deepEqual(parseTap('ok - no number\nnot ok - none either\n'), [], 'no number, no assertion (as test.mjs counts)');
  t.end();
});

test('tap-junit: one suite per file, one case per assertion, a failure with its diagnostic', async (t) => {
  const xml = tapJunit(
    [
      { name: 'scripts/test.mjs', cases: [{ name: 'the shared embedded host is up', ok: true }] },
      { name: 'test/unit/a.test.ts', tap: TAP, time: 1.5 },
      {
        name: 'test/e2e/died.test.ts',
        tap: 'TAP version 13\n# died\nok 1 started\n',
        cases: [{ name: 'test/e2e/died.test.ts exited with 1 without reporting a failure', ok: false, diagnostic: 'the end of its output:\nBoom' }],
      },
    ],
    { time: 12 },
  ) as string;
  t.ok(
    xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="npm test" tests="7" failures="3" errors="0" skipped="1" time="12.000">'),
    'the totals',
  );
  const doc = (await parseStringPromise(xml)) as Doc;
  const suites = doc.testsuites.testsuite;
  t.deepEqual(
    suites.map((s) => [s.$['name'], s.$['tests'], s.$['failures'], s.$['skipped'], s.$['time']]),
    [
      ['scripts/test.mjs', '1', '0', '0', '0.000'],
      ['test/unit/a.test.ts', '4', '2', '1', '1.500'],
      ['test/e2e/died.test.ts', '2', '1', '0', '0.000'],
    ],
    'one suite per file, named by its path, with its counts',
  );
  const a = suites[1]!.testcase!;
  t.deepEqual(
    a.map((c) => [c.$.classname, c.$.name, c.failure ? 'failure' : c.skipped ? 'skipped' : 'ok']),
    [
      ['test/unit/a.test.ts', 'should be equal', 'ok'],
      ['test/unit/a.test.ts', 'the values differ', 'failure'],
      ['test/unit/a.test.ts', 'needs the image', 'skipped'],
      ['test/unit/a.test.ts', 'crashed, no diagnostic', 'failure'],
    ],
    'one case per assertion',
  );
  const f = a[1]!.failure![0] as { _: string; $: { message: string } };
  t.equal(f.$.message, 'the values differ', 'the failure message is the assertion');
  t.equal(f._, 'operator: equal\nexpected: 1\nactual:   2\nat: Test.<anonymous> (file:///x/test/unit/a.test.ts:5:5)', 'its text the diagnostic');
  const died = suites[2]!.testcase![1]!;
  t.equal(died.$.name, 'test/e2e/died.test.ts exited with 1 without reporting a failure', "test.mjs's own assertion in the file's suite");
  t.equal((died.failure![0] as { _: string })._, 'the end of its output:\nBoom', '  with its diagnostic');
  t.end();
});

test('tap-junit: names with <&" and control characters stay well-formed and inert', async (t) => {
  const name = 'evil <b>&amp; "quoted" \'x\' \u0007bell \u001b[31mred\u001b[0m \uD800lone ]]> end';
  const tap = `ok 1 - ${name}\nnot ok 2 - ${name}\n  ---\n    actual: '<script>\u0000</script>'\n  ...\n`;
  const xml = tapJunit([{ name: 'test/unit/<&">.test.ts', tap }]) as string;
  // eslint-disable-next-line no-control-regex
  t.notOk(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]|[\uD800-\uDFFF]/.test(xml), 'no character XML 1.0 forbids');
  t.notOk(xml.includes('<b>') || xml.includes('<script>'), 'no markup of the input');
  const doc = (await parseStringPromise(xml)) as Doc;
  const suite = doc.testsuites.testsuite[0]!;
  const clean = 'evil <b>&amp; "quoted" \'x\' bell [31mred[0m lone ]]> end';
  t.equal(suite.$['name'], 'test/unit/<&">.test.ts', 'the suite name round-trips');
  t.equal(suite.testcase![0]!.$.name, clean, 'the name round-trips, less the forbidden characters');
  t.equal((suite.testcase![1]!.failure![0] as { _: string })._, "actual: '<script></script>'", 'the diagnostic too');
  t.equal(xmlText('a\u0001b\tc\n<&>"\''), 'ab\tc\n&lt;&amp;&gt;&quot;&apos;', 'xmlText: escapes, keeps tab and newline, drops the rest');
  t.end();
});

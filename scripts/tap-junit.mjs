// npm test's JUnit XML (scripts/test.mjs writes it): the TAP of each test
// file becomes a <testsuite> named after the file, each assertion a
// <testcase>; a `not ok` is a <failure> whose text is the YAML diagnostic
// block that follows it, an `ok ... # SKIP` is <skipped/>. The lines that
// count are exactly those test.mjs counts: `ok N ...` and `not ok N ...` at
// the start of a line (so a `not ok ... # TODO` is a failure here as there).
// Test output carries hostile text (guest and toolstack strings, terminal
// escapes): everything is escaped, and what XML 1.0 cannot carry even
// escaped (most control characters, lone surrogates, U+FFFE, U+FFFF) is
// dropped. Pure: text in, text out.

/** A TAP test point: `ok N - name`, `not ok N name`, the number required. */
const POINT = /^(not )?ok (\d+)(.*)$/;
/** A directive at the end of a test point's description. */
const DIRECTIVE = /\s+#\s*(SKIP|TODO)\b\s*(.*)$/i;

/**
 * The assertions of a TAP text, in order: { name, ok, skip (the reason, when
 * `# SKIP`), diagnostic (the YAML block after it, dedented, when there is one) }.
 */
export function parseTap(text) {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const points = [];
  for (let i = 0; i < lines.length; i++) {
    const m = POINT.exec(lines[i]);
    if (!m) continue;
    let name = m[3].replace(/^\s*(?:-\s+|-$)?/, '').trim();
    const point = { number: Number(m[2]), ok: !m[1], name };
    const d = DIRECTIVE.exec(name);
    if (d) {
      name = name.slice(0, d.index).trim();
      point.name = name;
      if (d[1].toUpperCase() === 'SKIP' && point.ok) point.skip = d[2].trim();
    }
    // The YAML block: `  ---` on the next line, up to `  ...` (or the first line not indented).
    if (/^\s+---\s*$/.test(lines[i + 1] ?? '')) {
      const block = [];
      let j = i + 2;
      for (; j < lines.length; j++) {
        if (/^\s+\.\.\.\s*$/.test(lines[j])) break;
        if (!/^\s/.test(lines[j]) && lines[j] !== '') {
          j--;
          break;
        }
        block.push(lines[j]);
      }
      const indent = Math.min(...block.filter((l) => l.trim() !== '').map((l) => /^\s*/.exec(l)[0].length));
      point.diagnostic = block
        .map((l) => l.slice(Number.isFinite(indent) ? indent : 0))
        .join('\n')
        .trimEnd();
      i = Math.min(j, lines.length - 1);
    }
    points.push(point);
  }
  return points;
}

/** What XML 1.0 cannot carry: C0 controls but tab, LF and CR; lone surrogates; U+FFFE, U+FFFF. */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Text for XML element content or an attribute value: escaped, forbidden characters dropped. */
export function xmlText(s) {
  return String(s)
    .replace(NOT_XML, '')
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]);
}

/** An attribute value: as xmlText, and tab, LF and CR as references (a parser would turn them into spaces). */
function attr(s) {
  return xmlText(s).replace(/[\t\n\r]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function seconds(s) {
  return Number.isFinite(s) ? s.toFixed(3) : '0.000';
}

/** First line of a failure, for its message attribute: one line, at most 200 characters. */
function firstLine(s) {
  const line = String(s).split('\n')[0].trim();
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

function testcase(suite, c) {
  const name = c.name || `assertion ${c.number ?? ''}`.trim();
  const open = `    <testcase classname="${attr(suite)}" name="${attr(name)}"`;
  if (c.ok && c.skip === undefined) return `${open}/>`;
  const body = c.ok
    ? `      <skipped${c.skip ? ` message="${attr(firstLine(c.skip))}"` : ''}/>`
    : `      <failure message="${attr(firstLine(name))}" type="assertion">${xmlText(c.diagnostic ?? '')}</failure>`;
  return [`${open}>`, body, '    </testcase>'].join('\n');
}

/**
 * The JUnit XML of a whole run. `suites`: [{ name, tap?, cases?, time? }]:
 * a suite's test cases are the assertions of its TAP text, then its `cases`
 * ({ name, ok, skip?, diagnostic? }: assertions made outside the TAP, such
 * as a file that died without reporting); `time` in seconds. `name`: the
 * <testsuites> element's.
 */
export function tapJunit(suites, { name = 'npm test', time } = {}) {
  const all = suites.map((s) => {
    const cases = [...parseTap(s.tap ?? ''), ...(s.cases ?? [])];
    const failures = cases.filter((c) => !c.ok).length;
    const skipped = cases.filter((c) => c.ok && c.skip !== undefined).length;
    return { name: s.name, time: s.time, cases, failures, skipped };
  });
  const sum = (k) => all.reduce((n, s) => n + (k === 'tests' ? s.cases.length : s[k]), 0);
  const total = time ?? all.reduce((n, s) => n + (Number.isFinite(s.time) ? s.time : 0), 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${attr(name)}" tests="${sum('tests')}" failures="${sum('failures')}" errors="0" skipped="${sum('skipped')}" time="${seconds(total)}">`,
    ...all.flatMap((s) => [
      `  <testsuite name="${attr(s.name)}" tests="${s.cases.length}" failures="${s.failures}" errors="0" skipped="${s.skipped}" time="${seconds(s.time)}"${s.cases.length ? '>' : '/>'}`,
      ...(s.cases.length ? [...s.cases.map((c) => testcase(s.name, c)), '  </testsuite>'] : []),
    ]),
    '</testsuites>',
    '',
  ].join('\n');
}

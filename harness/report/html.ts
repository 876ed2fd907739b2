// The self-contained HTML report: no external assets, no script needed. The
// matrix is drawn as coloured grids (rows: host request, columns: guest
// action; one grid per initial state × ack); each cell links to its evidence,
// which CSS shows when it is the URL's target. Every piece of case data goes
// through escapeHtml: guest messages and console lines are hostile test data.
import type { CaseResult, RunSummary } from '../matrix/result.ts';
import {
  CASE_FEATURES,
  ACK_KINDS,
  CASE_TIMINGS,
  GUEST_ACTIONS,
  INITIAL_STATES,
  LIFECYCLE_SETTINGS,
  MATRIX_REQUESTS,
  NATURAL_ACTION,
  TIMED_REQUESTS,
  caseName,
  lifecycleSetting,
} from '../matrix/scenarios.ts';
import { renderDiff, VERDICT_MEANING, VERDICTS, type Verdict } from '../matrix/verdict.ts';
import type { ReportSnapshot } from '../matrix/guest-report.ts';
import { escapeHtml as h } from './escape.ts';

const COLOURS: Record<Verdict, { bg: string; fg: string }> = {
  pass: { bg: '#2e7d32', fg: '#ffffff' },
  skip: { bg: '#d9d9d9', fg: '#444444' },
  unmodelled: { bg: '#90caf9', fg: '#0d2b4a' },
  error: { bg: '#ef6c00', fg: '#ffffff' },
  fail: { bg: '#c62828', fg: '#ffffff' },
};

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.4em 0 .4em}h3{font-size:1em;margin:.8em 0 .3em}
.meta{color:#555}.counts span{display:inline-block;margin-right:.6em;padding:.1em .5em;border-radius:3px}
.grids{display:flex;flex-wrap:wrap;gap:1.2em}
table.grid{border-collapse:collapse;background:#fff}
table.grid caption{font-weight:600;text-align:left;padding:.2em 0}
table.grid th{font-weight:500;font-size:.85em;padding:.2em .4em;text-align:left;white-space:nowrap}
table.grid td{padding:0;border:1px solid #fff;width:5.2em;height:1.9em;text-align:center}
table.grid td a{display:block;height:100%;line-height:1.9em;text-decoration:none;font-size:.8em;color:inherit}
table.grid td.none{background:#f0f0f0}
table.grid td a:hover,table.grid td a:focus{outline:2px solid #000}
${VERDICTS.map((v) => `.v-${v}{background:${COLOURS[v].bg};color:${COLOURS[v].fg}}`).join('\n')}
.legend td{padding:.15em .5em}
.evidence{display:none;background:#fff;border:2px solid #333;padding:1em;box-shadow:0 4px 24px rgba(0,0,0,.35)}
.evidence:target{display:block;position:fixed;top:1em;right:1em;bottom:1em;width:min(46em,55vw);overflow:auto;z-index:10}
.evidence .close{float:right;font-size:1.4em;text-decoration:none;color:#333}
.folded{color:#666;font-size:.9em}
pre{background:#f4f4f4;padding:.6em;overflow:auto;max-height:28em;white-space:pre-wrap;word-break:break-all}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:600}dd{margin:0}
table.list{border-collapse:collapse;background:#fff}table.list td,table.list th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
`;

function badge(v: Verdict): string {
  return `<span class="verdict v-${v}">${h(v)}</span>`;
}

function pre(text: string | undefined): string {
  return text === undefined || text === '' ? '<p><em>none</em></p>' : `<pre>${h(text)}</pre>`;
}

function reportText(r: ReportSnapshot | undefined): string | undefined {
  if (!r) return undefined;
  return Object.entries(r)
    .filter(([, v]) => v !== null && v !== '')
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

function observedText(r: CaseResult): string | undefined {
  const o = r.observation;
  if (!o) return undefined;
  const res = o.result.kind === 'ok' ? 'ok' : o.result.kind === 'error' ? `error ${o.result.code}: ${o.result.message}` : `timeout: ${o.result.message}`;
  const lines = [
    `result:           ${res}`,
    `duration:         ${o.durationClass} (${(o.durationMs / 1000).toFixed(1)} s)`,
    `power state:      ${o.final.powerState}`,
    `domid:            ${o.domid} (${o.initialDomid ?? '-'} -> ${o.final.domid ?? '-'})`,
  ];
  if (o.final.shutdownReason) lines.push(`shutdown reason:  ${o.final.shutdownReason}`);
  if (o.final.paused !== undefined) lines.push(`Xen paused flag:  ${o.final.paused}`);
  if (o.controlShutdown !== undefined) lines.push(`control/shutdown: ${o.controlShutdown === null ? '(absent)' : JSON.stringify(o.controlShutdown)}`);
  if (o.guestEvent === null) lines.push('guest:            reports no control/shutdown event');
  else if (o.guestEvent)
    lines.push(
      `guest (${o.guestEvent.source}): received ${JSON.stringify(o.guestEvent.received)}, ack ${o.guestEvent.ack}${o.guestEvent.ack === 'write' ? ` ${JSON.stringify(o.guestEvent.ackValue)}` : ''}, action ${o.guestEvent.action}`,
    );
  else if (o.guestEventUnseen) lines.push(`guest:            not observable: ${o.guestEventUnseen}`);
  else lines.push('guest:            not observable (domain gone and no console from the driver)');
  return lines.join('\n');
}

function evidenceSection(r: CaseResult, id: string, idOf: Map<string, string>): string {
  const e = r.evidence;
  const m = r.model;
  const parts: string[] = [
    `<section class="evidence" id="${id}">`,
    '<a class="close" href="#" title="close">×</a>',
    `<h3>${badge(r.verdict)} ${h(r.name)}</h3>`,
    `<p>${h(r.summary)}</p>`,
    '<dl>',
    `<dt>toolstack</dt><dd>${h(r.toolstack)}</dd>`,
    `<dt>expected</dt><dd>${h(r.expected)}</dd>`,
    m.kind === 'expect' ? `<dt>rule</dt><dd>${h(m.rule)}</dd>` : `<dt>model</dt><dd>unmodelled: ${h(m.reason)}</dd>`,
  ];
  if (r.skipReason) {
    const eq = /^equivalent to (\S+?):/.exec(r.skipReason)?.[1];
    const link = eq && idOf.has(eq) ? ` (<a href="#${idOf.get(eq)!}">see ${h(eq)}</a>)` : '';
    parts.push(`<dt>skipped</dt><dd>${h(r.skipReason)}${link}</dd>`);
  }
  if (e.consolePath) parts.push(`<dt>console log</dt><dd><code>${h(e.consolePath)}</code></dd>`);
  if (r.elapsedMs !== undefined) parts.push(`<dt>case time</dt><dd>${(r.elapsedMs / 1000).toFixed(1)} s</dd>`);
  parts.push('</dl>');
  if (m.kind === 'expect') parts.push('<h4>Basis of the rule</h4>', `<ul>${m.expect.basis.map((b) => `<li>${h(b)}</li>`).join('')}</ul>`);
  if (r.verdict !== 'skip') {
    parts.push('<h4>Expected vs observed</h4>', pre(r.diffs.length ? renderDiff(r.diffs) : r.observation ? '(no difference)' : undefined));
    parts.push('<h4>Observed</h4>', pre(observedText(r)));
    if (r.invariantProblems.length) parts.push('<h4>Broken invariants</h4>', `<ul>${r.invariantProblems.map((p) => `<li>${h(p)}</li>`).join('')}</ul>`);
    if (r.errors.length) parts.push('<h4>Harness errors</h4>', `<ul>${r.errors.map((p) => `<li>${h(p)}</li>`).join('')}</ul>`);
    if (e.advertisedWith) parts.push('<h4>Capabilities message (before the testing message)</h4>', pre(e.advertisedWith));
    parts.push('<h4>Testing message</h4>', pre(e.primedWith));
    parts.push('<h4>Guest report after priming</h4>', pre(reportText(e.reportAfterPrime)));
    parts.push('<h4>Guest report after the request</h4>', pre(reportText(e.reportAfter)));
    parts.push('<h4>Console excerpt</h4>', pre(e.console));
    parts.push('<h4>Toolstack log excerpt</h4>', pre(e.toolstackLog));
    parts.push('<h4>Steps</h4>', pre(e.steps.join('\n')));
  }
  parts.push('<p><a href="#">close</a></p>', '</section>');
  return parts.join('\n');
}

/** A grid, or null when no case of the run lives in it, or 'folded' when every one of them was skipped. */
function grid(initial: string, ack: string, byName: Map<string, { r: CaseResult; id: string }>): string | null | 'folded' {
  let any = false;
  let ran = false;
  const rows = MATRIX_REQUESTS.map((req) => {
    const cells = GUEST_ACTIONS.map((act) => {
      const name = `${initial}.${req}.ack-${ack}.${act}`;
      const c = byName.get(name);
      if (!c) return NOT_IN_RUN;
      any = true;
      if (c.r.verdict !== 'skip') ran = true;
      return verdictCell(c);
    }).join('');
    return `<tr><th scope="row">${h(req)}</th>${cells}</tr>`;
  });
  if (!any) return null;
  if (!ran) return 'folded';
  return [
    `<table class="grid" data-initial="${h(initial)}" data-ack="${h(ack)}">`,
    `<caption>${h(initial)} · ack ${h(ack)}</caption>`,
    `<thead><tr><th>request \\ action</th>${GUEST_ACTIONS.map((a) => `<th scope="col">${h(a)}</th>`).join('')}</tr></thead>`,
    `<tbody>${rows.join('\n')}</tbody>`,
    '</table>',
  ].join('\n');
}

/** A grid cell: the case's verdict, linking to its evidence, the summary as its title. */
function verdictCell(c: { r: CaseResult; id: string }): string {
  const { name, verdict, summary } = c.r;
  return `<td class="v-${verdict}" data-case="${h(name)}" data-verdict="${verdict}"><a href="#${c.id}" title="${h(`${name}: ${verdict} - ${summary}`)}">${h(verdict)}</a></td>`;
}
const NOT_IN_RUN = '<td class="none" title="not in this run"></td>';

/** The timing dimension (#16) in its own grid: rows the requests that reach the guest, columns the timings. */
function timingGrid(byName: Map<string, { r: CaseResult; id: string }>): string | null {
  const timings = CASE_TIMINGS.filter((t) => t !== 'prompt');
  let any = false;
  const rows = TIMED_REQUESTS.map((req) => {
    const action = NATURAL_ACTION[req];
    const cells = timings
      .map((timing) => {
        const name = caseName('running', req, 'ok', action, timing);
        const c = byName.get(name);
        if (!c) return NOT_IN_RUN;
        any = true;
        return verdictCell(c);
      })
      .join('');
    return `<tr><th scope="row">${h(req)} (${h(action)})</th>${cells}</tr>`;
  });
  if (!any) return null;
  return [
    '<h2>Timing: the guest acknowledges or acts just inside or just outside the toolstack&#39;s windows</h2>',
    '<p>Running guest, ack ok, the request&#39;s own action; the windows are the host&#39;s (each case&#39;s evidence gives the delays used).</p>',
    '<div class="grids"><table class="grid" data-dimension="timing">',
    `<thead><tr><th>request \\ timing</th>${timings.map((t) => `<th scope="col">${h(t)}</th>`).join('')}</tr></thead>`,
    `<tbody>${rows.join('\n')}</tbody>`,
    '</table></div>',
  ].join('\n');
}

/** The features dimension (#16): one row per case, the flag the guest withheld. */
function featuresGrid(byName: Map<string, { r: CaseResult; id: string }>): string | null {
  const rows: string[] = [];
  for (const features of CASE_FEATURES.filter((f) => f !== 'all'))
    for (const req of TIMED_REQUESTS) {
      const name = caseName('running', req, 'ok', NATURAL_ACTION[req], 'prompt', features);
      const c = byName.get(name);
      if (!c) continue;
      rows.push(`<tr><th scope="row">${h(features)}</th><th scope="row">${h(req)}</th>${verdictCell(c)}</tr>`);
    }
  if (!rows.length) return null;
  return [
    '<h2>Features: the guest advertises less (control/feature-*, data/cant_suspend_reason)</h2>',
    '<div class="grids"><table class="grid" data-dimension="features">',
    '<thead><tr><th>guest</th><th>request</th><th>verdict</th></tr></thead>',
    `<tbody>${rows.join('\n')}</tbody>`,
    '</table></div>',
  ].join('\n');
}

/** The lifecycle dimension (#16): rows the settings, columns the shutdown by the guest alone or asked for. */
function lifecycleGrid(cases: readonly CaseResult[], byName: Map<string, { r: CaseResult; id: string }>): string | null {
  const rows: string[] = [];
  for (const lifecycle of LIFECYCLE_SETTINGS) {
    const of = cases.filter((r) => r.scenario.lifecycle === lifecycle);
    if (!of.length) continue;
    const cell = (r: CaseResult | undefined): string => (r ? verdictCell(byName.get(r.name)!) : NOT_IN_RUN);
    const alone = of.find((r) => r.scenario.request === 'no_request');
    const asked = of.find((r) => r.scenario.request !== 'no_request');
    rows.push(
      `<tr><th scope="row">${h(lifecycle)}</th>${cell(alone)}${lifecycleSetting(lifecycle).event === 'crash' ? '<td class="none" title="a crash is never asked for"></td>' : cell(asked)}</tr>`,
    );
  }
  if (!rows.length) return null;
  return [
    '<h2>Lifecycle: what the toolstack is set to do after a poweroff, reboot or crash</h2>',
    '<p>Running guest; the setting changes one of on_poweroff / on_reboot / on_crash (XAPI: actions_after_*). A case also holds the toolstack&#39;s account against xenstored&#39;s list of domains.</p>',
    '<div class="grids"><table class="grid" data-dimension="lifecycle">',
    '<thead><tr><th>setting</th><th scope="col">the guest alone</th><th scope="col">asked for (clean_shutdown / clean_reboot)</th></tr></thead>',
    `<tbody>${rows.join('\n')}</tbody>`,
    '</table></div>',
  ].join('\n');
}

export function toHtml(s: RunSummary): string {
  const idOf = new Map<string, string>();
  const byName = new Map<string, { r: CaseResult; id: string }>();
  s.cases.forEach((r, i) => {
    const id = `case-${i}`;
    idOf.set(r.name, id);
    byName.set(r.name, { r, id });
  });
  const sections: string[] = [];
  for (const initial of INITIAL_STATES) {
    const drawn = ACK_KINDS.map((ack) => ({ ack, g: grid(initial, ack, byName) }));
    const grids = drawn.filter((d) => d.g !== null && d.g !== 'folded').map((d) => d.g as string);
    const folded = drawn.filter((d) => d.g === 'folded').map((d) => `ack ${d.ack}`);
    const note = folded.length
      ? `\n<p class="folded">Not drawn, every case skipped: ${h(initial)} · ${folded.map(h).join(', ')} (see the skip reasons in the JSON report or <code>xtv run --list --show-skipped</code>).</p>`
      : '';
    if (grids.length || folded.length) sections.push(`<h2>Initial state: ${h(initial)}</h2>\n<div class="grids">\n${grids.join('\n')}\n</div>${note}`);
  }
  for (const g of [timingGrid(byName), featuresGrid(byName), lifecycleGrid(s.cases, byName)]) if (g) sections.push(g);
  const c = s.counts;
  const ran = s.cases.filter((r) => r.verdict !== 'skip');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xtv ${h(s.toolstack)} ${h(s.matrix)}: ${h(s.verdict)}</title>
<style>${CSS}</style>
</head>
<body>
<a id="top"></a>
<h1>xtv scenario matrix: ${h(s.toolstack)}, ${h(s.matrix)} ${badge(s.verdict)}</h1>
<p class="meta">${s.host ? `host ${h(s.host)} · ` : ''}started ${h(s.startedAt)} · finished ${h(s.finishedAt)}${s.aborted ? ' · <strong>interrupted</strong>' : ''}</p>
${s.hostFacts ? `<p class="meta">${h(s.hostFacts.version)}${s.hostFacts.notes.map((n) => `<br>${h(n)}`).join('')}</p>` : ''}
<p class="counts" id="counts">${VERDICTS.map((v) => `<span class="v-${v}">${h(v)}: ${c[v]}</span>`).join('')}</p>
<table class="legend">${VERDICTS.map((v) => `<tr><td class="v-${v}">${h(v)}</td><td>${h(VERDICT_MEANING[v])}</td></tr>`).join('')}</table>
<p>Rows: host request · columns: guest action · one grid per initial state and ack. Click a cell for its evidence.</p>
${sections.join('\n')}
<h2>Cases that ran (${ran.length})</h2>
<table class="list"><thead><tr><th>verdict</th><th>case</th><th>summary</th></tr></thead><tbody>
${ran.map((r) => `<tr><td class="v-${r.verdict}">${h(r.verdict)}</td><td><a href="#${idOf.get(r.name)!}">${h(r.name)}</a></td><td>${h(r.summary)}</td></tr>`).join('\n')}
</tbody></table>
<h2>Evidence</h2>
${s.cases.map((r) => evidenceSection(r, idOf.get(r.name)!, idOf)).join('\n')}
</body>
</html>
`;
}

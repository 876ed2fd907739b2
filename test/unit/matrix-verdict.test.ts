import test from 'tape';
import {
  VERDICTS,
  VERDICT_MEANING,
  compare,
  domidChange,
  durationClassOf,
  guestInvariant,
  judge,
  renderDiff,
  stateInvariant,
  verdictRank,
  worst,
  xenstoredInvariant,
  type Observation,
} from '../../harness/matrix/verdict.ts';
import { parseXenstoredDomains } from '../../harness/toolstack/xenstore-reads.ts';
import type { Expectation } from '../../harness/matrix/model.ts';

test('verdicts are ordered pass < skip < unmodelled < error < fail, each with a meaning', (t) => {
  t.deepEqual([...VERDICTS], ['pass', 'skip', 'unmodelled', 'error', 'fail']);
  for (let i = 1; i < VERDICTS.length; i++) t.ok(verdictRank(VERDICTS[i - 1]!) < verdictRank(VERDICTS[i]!));
  for (const v of VERDICTS) t.ok(VERDICT_MEANING[v].length > 20, `${v} has a meaning`);
  t.end();
});

test('the worst verdict wins; nothing reported is an error', (t) => {
  t.equal(worst(['pass', 'skip']), 'skip');
  t.equal(worst(['pass', 'fail', 'error']), 'fail');
  t.equal(worst(['unmodelled', 'pass']), 'unmodelled');
  t.equal(worst(['error', 'unmodelled', 'skip']), 'error');
  t.equal(worst(['pass']), 'pass');
  t.equal(worst([]), 'error', 'a case that reports nothing');
  t.end();
});

const expectation: Expectation = {
  result: { kind: 'error', code: 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT' },
  finalState: 'Running',
  domid: 'same',
  controlShutdown: 'poweroff',
  guest: { received: 'poweroff', ack: 'none', action: 'ignore' },
  duration: 'ack-timeout',
  basis: ['test'],
};

function obs(over: Partial<Observation>): Observation {
  return {
    result: { kind: 'error', code: 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', message: 'x' },
    durationMs: 60_500,
    durationClass: 'ack-timeout',
    initialDomid: 3,
    final: { powerState: 'Running', domid: 3 },
    domid: 'same',
    controlShutdown: 'poweroff',
    ...over,
  };
}

test('compare: no difference when all agrees', (t) => {
  t.deepEqual(compare(expectation, obs({})), []);
  t.equal(renderDiff([]), '(no difference)');
  t.end();
});

test('compare: a success slower than a short ack timeout is a slow host; an error that came early is not', (t) => {
  const fastOk: Expectation = { ...expectation, result: { kind: 'ok' }, duration: 'fast' };
  const slow = obs({ result: { kind: 'ok' }, durationMs: 35_000, durationClass: 'ack-timeout' });
  t.deepEqual(compare(fastOk, slow), [], 'ok after 35 s with a 15 s ack timeout: no duration difference (a success cannot have waited out the ack timeout)');
  t.deepEqual(
    compare(fastOk, obs({ result: { kind: 'ok' }, durationMs: 1_300_000, durationClass: 'total-timeout' })).map((d) => d.field),
    ['duration'],
    'a success after the total timeout still differs',
  );
  t.deepEqual(
    compare(expectation, obs({ durationMs: 2_000, durationClass: 'fast' })).map((d) => d.field),
    ['duration'],
    'the ack error at once, not after the ack timeout, differs',
  );
  // #16: a success that waited for a guest acting just inside a 25 s total window, then rebooted it (seen: 34 s).
  const delayedOk: Expectation = { ...expectation, result: { kind: 'ok' }, duration: 'delayed' };
  t.deepEqual(
    compare(delayedOk, obs({ result: { kind: 'ok' }, durationMs: 34_200, durationClass: 'total-timeout' })),
    [],
    'a late guest, then the host finishing slowly: no difference',
  );
  t.deepEqual(
    compare(delayedOk, obs({ result: { kind: 'ok' }, durationMs: 800, durationClass: 'fast' })).map((d) => d.field),
    ['duration'],
    'but a call that did not wait for the late guest differs',
  );
  t.end();
});

test('compare: each differing field, rendered as expected/observed pairs', (t) => {
  const d = compare(
    expectation,
    obs({
      result: { kind: 'ok' },
      durationMs: 300,
      durationClass: 'fast',
      final: { powerState: 'Halted', domid: null },
      domid: 'none',
      controlShutdown: null,
    }),
  );
  t.deepEqual(
    d.map((x) => x.field),
    ['result', 'power state', 'domid', 'control/shutdown', 'duration'],
  );
  const text = renderDiff(d);
  t.match(text, /result\s+- expected error VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT\n\s+\+ observed ok/);
  t.match(text, /power state\s+- expected Running\n\s+\+ observed Halted/);
  t.match(text, /control\/shutdown\s+- expected "poweroff"\n\s+\+ observed \(absent\)/);
  t.end();
});

test('compare: an error with no code claims any code; a wrong code is a difference', (t) => {
  const anyErr: Expectation = { ...expectation, result: { kind: 'error' } };
  t.deepEqual(compare(anyErr, obs({ result: { kind: 'error', code: 'XL_EXIT_1', message: '' } })), []);
  t.deepEqual(
    compare(expectation, obs({ result: { kind: 'error', code: 'VM_SHUTDOWN_TIMEOUT', message: '' } })).map((x) => x.field),
    ['result'],
  );
  t.deepEqual(
    compare(expectation, obs({ result: { kind: 'timeout', message: '' } })).map((x) => x.field),
    ['result'],
  );
  t.deepEqual(compare(expectation, obs({ controlShutdown: undefined })), [], 'control/shutdown not read: no claim checked');
  t.end();
});

test('duration classes and domid changes', (t) => {
  const b = { fastMaxMs: 20_000, totalMinMs: 300_000 };
  t.equal(durationClassOf(500, b), 'fast');
  t.equal(durationClassOf(60_100, b), 'ack-timeout');
  t.equal(durationClassOf(1_200_000, b), 'total-timeout');
  const d = { ...b, delayedMinMs: 13_500 };
  t.equal(durationClassOf(19_000, d, 'delayed'), 'delayed', 'a restart delay (15 s and a rebuild) when the model expects one');
  t.equal(durationClassOf(31_000, d, 'delayed'), 'delayed', '  however loaded the host, below the total timeout');
  t.equal(durationClassOf(2_000, d, 'delayed'), 'fast', 'a call that did not wait for it is fast');
  t.equal(durationClassOf(19_000, d), 'fast', 'without the expectation, time alone says fast');
  t.equal(durationClassOf(400_000, d, 'delayed'), 'total-timeout');
  t.equal(domidChange(3, 3), 'same');
  t.equal(domidChange(3, 4), 'new');
  t.equal(domidChange(null, 4), 'new');
  t.equal(domidChange(3, null), 'none');
  t.end();
});

test('state invariant: the toolstack agrees with the hypervisor', (t) => {
  t.deepEqual(stateInvariant({ powerState: 'Running', domid: 4 }), []);
  t.deepEqual(stateInvariant({ powerState: 'Halted', domid: null }), []);
  t.deepEqual(stateInvariant({ powerState: 'Suspended', domid: null }), []);
  t.deepEqual(stateInvariant({ powerState: 'Suspended', domid: 5, shutdownReason: 'suspend' }), [], 'xl: self-suspended domain');
  t.deepEqual(stateInvariant({ powerState: 'Paused', domid: 5, paused: true }), []);
  t.equal(stateInvariant({ powerState: 'Running', domid: null }).length, 1, 'running without a domain');
  t.equal(stateInvariant({ powerState: 'Halted', domid: 7 }).length, 1, 'halted with a domain that runs');
  t.deepEqual(stateInvariant({ powerState: 'Halted', domid: 7, shutdownReason: 'crash' }), [], 'xl: a domain kept shut down (on_crash=preserve)');
  t.equal(stateInvariant({ powerState: 'Running', domid: 7, shutdownReason: 'crash' }).length, 1, 'running but shut down');
  t.equal(stateInvariant({ powerState: 'Running', domid: 7, paused: true }).length, 1, 'paused flag disagrees');
  t.equal(stateInvariant({ powerState: 'Suspended', domid: 7 }).length, 1, 'suspended but running');
  t.end();
});

test('guest invariant: it received what the toolstack writes, acked and acted as told', (t) => {
  const g = { received: 'poweroff' as const, ack: 'bogus' as const, action: 'crash' as const };
  const ev = { source: 'xenstore' as const, received: 'poweroff', ack: 'write', ackValue: 'xtv-bogus-ack', action: 'crash' };
  t.deepEqual(guestInvariant(g, ev), []);
  t.deepEqual(guestInvariant(g, undefined), [], 'not observable: nothing checked');
  t.equal(guestInvariant(g, null).length, 1, 'no event although a request was written');
  t.equal(guestInvariant(g, { ...ev, received: 'reboot' }).length, 1, 'wrong request word');
  t.equal(guestInvariant(g, { ...ev, ack: 'ok' }).length, 1, 'wrong ack');
  t.equal(guestInvariant(g, { ...ev, action: 'poweroff' }).length, 1, 'wrong action');
  t.equal(guestInvariant({ received: null, ack: null, action: null }, ev).length, 1, 'a request the toolstack should not have sent');
  t.deepEqual(guestInvariant({ received: null, ack: null, action: null }, null), []);
  t.end();
});

test('judge: errors first, then differences, then broken invariants; else pass or unmodelled', (t) => {
  const answer = { kind: 'expect' as const, expect: expectation, rule: 'r' };
  t.deepEqual(judge({ answer, observation: obs({}), errors: [], problems: [] }), { verdict: 'pass', summary: 'as the model says', diffs: [] });
  const off = judge({ answer, observation: obs({ final: { powerState: 'Halted', domid: null } }), errors: [], problems: ['guest: x'] });
  t.equal(off.verdict, 'fail');
  t.match(off.summary, /power state/, 'a difference is named before an invariant');
  t.equal(judge({ answer, observation: obs({}), errors: [], problems: ['guest: x'] }).summary, 'guest: x');
  const err = judge({ answer, observation: undefined, errors: ['the guest did not report state=ready within 2 min'], problems: [] });
  t.deepEqual([err.verdict, err.summary], ['error', 'the guest did not report state=ready within 2 min']);
  t.equal(judge({ answer: { kind: 'unmodelled', reason: 'a race' }, observation: obs({}), errors: [], problems: [] }).verdict, 'unmodelled');
  t.end();
});

test("xenstored invariant: the toolstack's domain is the one xenstored holds under the VM's name, and the only one", (t) => {
  const view = [
    { domid: 0, name: 'Domain-0' },
    { domid: 4, name: 'xtv-a' },
    { domid: 6, name: 'xtv-b' },
    { domid: 9, name: null },
  ];
  t.deepEqual(xenstoredInvariant({ powerState: 'Running', domid: 4 }, 'xtv-a', view), [], 'Running, domain 4: held, named so');
  t.deepEqual(xenstoredInvariant({ powerState: 'Halted', domid: null }, 'xtv-c', view), [], 'Halted: no home named xtv-c');
  t.deepEqual(
    xenstoredInvariant({ powerState: 'Halted', domid: null }, 'xtv-a', view),
    ['xenstored holds domain 4 named "xtv-a", which the toolstack does not report (it says Halted)'],
    'a domain the toolstack forgot',
  );
  t.deepEqual(
    xenstoredInvariant({ powerState: 'Running', domid: 5 }, 'xtv-a', view),
    [
      'toolstack says Running with domain 5 but xenstored holds no /local/domain/5',
      'xenstored holds domain 4 named "xtv-a", which the toolstack does not report (it says Running with domain 5)',
    ],
    'a domid the toolstack made up',
  );
  t.deepEqual(
    xenstoredInvariant({ powerState: 'Paused', domid: 6 }, 'xtv-a', view),
    [
      'toolstack says domain 6, which xenstored names "xtv-b", not "xtv-a"',
      'xenstored holds domain 4 named "xtv-a", which the toolstack does not report (it says Paused with domain 6)',
    ],
    "another VM's domain",
  );
  t.deepEqual(xenstoredInvariant({ powerState: 'Running', domid: 9 }, 'xtv-a', [{ domid: 9, name: null }]), [
    'toolstack says domain 9, which xenstored names (no name), not "xtv-a"',
  ]);
  t.end();
});

test("xenstored's list as xenstored-domains.sh prints it", (t) => {
  const m = 'XTV-0123456789ab';
  const out = [`${m} list 0 3 5 7`, `${m} names 0 3 5 7`, 'Domain-0', 'xtv-a', `${m} noname 5`, `${m} names 7`, 'a\\nb', `${m} end`, ''].join('\n');
  t.deepEqual(parseXenstoredDomains(out, m), [
    { domid: 0, name: 'Domain-0' },
    { domid: 3, name: 'xtv-a' },
    { domid: 5, name: null },
    { domid: 7, name: 'a\nb' },
  ]);
  t.deepEqual(parseXenstoredDomains(`${m} list\n`, m), [], 'no domain at all');
  t.throws(() => parseXenstoredDomains('nothing framed\n', m), /printed no list/, 'no list: an error, not an empty host');
  t.throws(() => parseXenstoredDomains(`${m} list 0 tools\n`, m), /no domid/, 'a child of /local/domain that is no domid');
  t.end();
});

// The continuity check (#17): the same guest before and after an operation it lives through.
import test from 'tape';
import { CLOCK_SKEW_BOUND_MS, continuityProblems, type ContinuitySnapshot } from '../../harness/matrix/continuity.ts';
import { decodeTesting, describeMessage, encodeTesting, isClockMessage, isCommand } from '../../protocol/control.ts';

const before: ContinuitySnapshot = {
  'boot-id': 'b1',
  resumes: '0',
  'run-ms': '40000',
  domid: '5',
  domids: '5',
  'suspended-at': '',
  'resumed-at': '',
  'clock-skew-ms': '',
};
const resumed: ContinuitySnapshot = {
  ...before,
  resumes: '1',
  'run-ms': '52000',
  domid: '9',
  domids: '5 9',
  'suspended-at': '2026-12-03T21:00:00.000Z',
  'resumed-at': '2026-12-03T21:00:09.000Z',
  'clock-skew-ms': '150',
};

test('continuity: a guest restored into a new domain is the same guest', (t) => {
  t.deepEqual(continuityProblems(before, resumed, { resumes: 1, clockRoundTripMs: 400 }), []);
  t.deepEqual(continuityProblems(before, { ...before, 'run-ms': '41000' }, { resumes: 0 }), [], 'an unpause: nothing but time moved');
  t.end();
});

test('continuity: each broken promise, in words', (t) => {
  const p = (after: Partial<ContinuitySnapshot>, resumes = 1, clockRoundTripMs?: number) =>
    continuityProblems(before, { ...resumed, ...after }, { resumes, ...(clockRoundTripMs !== undefined ? { clockRoundTripMs } : {}) });
  t.deepEqual(p({ 'boot-id': 'b2', resumes: '0', domids: '9', 'resumed-at': '' }), [
    'boot id "b1" became "b2": the guest booted again',
    'resumes went from 0 to 0, not 1',
    'domid history "5" is not the start of "9"',
    'the guest reports no new resume time',
  ]);
  t.deepEqual(p({ 'run-ms': '39000' }), ['run time went back, from 40000 ms to 39000'], 'run time backwards');
  t.deepEqual(p({ domids: '5 9 11' }), ['domid history ends 11, the guest says it is in 9']);
  t.deepEqual(p({ 'resumed-at': '2026-12-03T20:59:00.000Z' }), [
    'it says it resumed (2026-12-03T20:59:00.000Z) before it suspended (2026-12-03T21:00:00.000Z)',
  ]);
  t.deepEqual(
    p({ 'clock-skew-ms': '-9000' }, 1, 400),
    [`its clock is -9000 ms from dom0's (the message took up to 400 ms): more than ${CLOCK_SKEW_BOUND_MS} ms off`],
    'a guest that lost the 9 s it was saved',
  );
  t.deepEqual(p({ 'clock-skew-ms': '2300' }, 1, 400), [], 'ahead by the transit: within the bound');
  t.deepEqual(p({ 'clock-skew-ms': '' }, 1, 400), ['the guest reports no clock skew after the clock message']);
  t.deepEqual(p({ 'boot-id': null }), ['boot id "b1" became null: the guest booted again'], 'no report at all');
  t.end();
});

test('clock messages: {"clock": MS} alone, a whole number', (t) => {
  const d = decodeTesting('{"clock":1764795600000}');
  t.ok(d.kind === 'message' && isClockMessage(d.value) && d.value.dom0Ms === 1764795600000 && !isCommand(d.value), 'decoded');
  t.equal(d.kind === 'message' && describeMessage(d.value), 'clock dom0=1764795600000');
  t.equal(encodeTesting({ form: 'clock', dom0Ms: 7 }), '{"clock":7}');
  for (const [text, error] of [
    ['{"clock":"1"}', 'field "clock" must be a number, got string'],
    ['{"clock":-1}', 'field "clock" must be a whole number of ms since the epoch, got -1'],
    ['{"clock":1.5}', 'field "clock" must be a whole number of ms since the epoch, got 1.5'],
    ['{"clock":9007199254740992}', 'field "clock" must be a whole number of ms since the epoch, got 9007199254740992'],
    ['{"clock":1,"action":"reboot"}', 'field "action" cannot be in a clock message (send it alone)'],
    ['{"clock":1,"features":{}}', 'field "features" cannot be in a clock message (send it alone)'],
  ] as const) {
    const r = decodeTesting(text);
    t.equal(r.kind === 'rejected' && r.error.message, error, text);
  }
  t.end();
});

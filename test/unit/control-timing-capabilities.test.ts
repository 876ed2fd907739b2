// #16's additions to the control grammar (protocol/control.ts): a command may
// say when to acknowledge (ackAfterMs) and when to act (actAfterMs); a
// capabilities message sets, clears or removes control/feature-* flags and
// data/cant_suspend_reason. Every malformed form is refused with its code.
import test from 'tape';
import {
  MAX_DELAY_MS,
  MAX_REASON_BYTES,
  decodeTesting,
  describeMessage,
  encodeCapabilities,
  encodeCommand,
  encodeTesting,
  isCapabilityMessage,
  isCommand,
  type ControlErrorCode,
} from '../../protocol/control.ts';

const value = (text: string) => {
  const d = decodeTesting(text);
  return d.kind === 'message' ? d.value : d;
};
const code = (text: string): ControlErrorCode | string => {
  const d = decodeTesting(text);
  return d.kind === 'rejected' ? d.error.code : `not rejected: ${d.kind}`;
};

test('delays: whole ms from 0 to MAX_DELAY_MS; ackAfterMs only with onshutdown', (t) => {
  t.deepEqual(value('{"when":"onshutdown","action":"poweroff","ackAfterMs":61000}'), {
    when: 'onshutdown',
    ack: { kind: 'ok' },
    action: 'poweroff',
    form: 'json',
    ackAfterMs: 61000,
  });
  t.deepEqual(value(`{"action":"crash","actAfterMs":${MAX_DELAY_MS}}`), {
    when: 'now',
    ack: { kind: 'ok' },
    action: 'crash',
    form: 'json',
    actAfterMs: MAX_DELAY_MS,
  });
  t.deepEqual(
    value('{"action":"reboot","actAfterMs":0}'),
    { when: 'now', ack: { kind: 'ok' }, action: 'reboot', form: 'json', actAfterMs: 0 },
    'zero is a delay of none',
  );
  for (const bad of ['-1', '1.5', `${MAX_DELAY_MS + 1}`, '1e400'])
    t.equal(code(`{"when":"onshutdown","action":"halt","ackAfterMs":${bad}}`), 'bad-value', `ackAfterMs ${bad}`);
  for (const bad of ['"5"', 'null', 'true', '[]', '{}']) t.equal(code(`{"action":"halt","actAfterMs":${bad}}`), 'wrong-type', `actAfterMs ${bad}`);
  const d = decodeTesting('{"action":"halt","ackAfterMs":5}');
  t.deepEqual(
    d.kind === 'rejected' && d.error,
    { code: 'bad-value', message: 'field "ackAfterMs" needs when "onshutdown" (there is no request to acknowledge now)' },
    'no request to acknowledge with when now',
  );
  const e = decodeTesting('{"action":"halt","actAfterMs":-3}');
  t.equal(e.kind === 'rejected' && e.error.message, `field "actAfterMs" must be a whole number of ms from 0 to ${MAX_DELAY_MS}, got -3`);
  t.end();
});

test('delays: canonical form, description, round trip', (t) => {
  const text = encodeTesting({ form: 'json', when: 'onshutdown', ack: 'none', action: 'crash', ackAfterMs: 59000, actAfterMs: 2000 });
  t.equal(text, '{"when":"onshutdown","ack":"none","action":"crash","ackAfterMs":59000,"actAfterMs":2000}');
  const d = decodeTesting(text);
  t.ok(d.kind === 'message' && isCommand(d.value) && encodeCommand(d.value) === text, 'encodeCommand gives it back');
  t.equal(d.kind === 'message' && describeMessage(d.value), 'onshutdown ack=none action=crash ack-after=59000ms act-after=2000ms');
  t.equal(
    encodeCommand({ when: 'now', ack: { kind: 'ok' }, action: 'reboot', form: 'legacy-now' }),
    '{"when":"now","ack":"ok","action":"reboot"}',
    'no delay, no field',
  );
  t.end();
});

test('capabilities: flags set ("1"), cleared ("0") or removed (null), a reason or its removal', (t) => {
  t.deepEqual(value('{"features":{"suspend":false,"poweroff":null,"balloon":true},"cantSuspendReason":"busy"}'), {
    kind: 'capabilities',
    features: [
      ['poweroff', null],
      ['suspend', false],
      ['balloon', true],
    ],
    cantSuspendReason: 'busy',
    form: 'json',
  });
  t.deepEqual(value('{"cantSuspendReason":null}'), { kind: 'capabilities', features: [], cantSuspendReason: null, form: 'json' });
  const m = decodeTesting('{"features":{"reboot":false}}');
  t.ok(m.kind === 'message' && isCapabilityMessage(m.value));
  t.equal(m.kind === 'message' && describeMessage(m.value), 'features reboot=0');
  const all = decodeTesting('{"cantSuspendReason":"a \\"b\\"","features":{"suspend":true,"vcpu-hotplug":null}}');
  t.equal(all.kind === 'message' && describeMessage(all.value), 'features suspend=1 vcpu-hotplug=removed cant-suspend-reason="a \\"b\\""');
  t.equal(
    all.kind === 'message' && isCapabilityMessage(all.value) && encodeCapabilities(all.value),
    '{"features":{"suspend":true,"vcpu-hotplug":null},"cantSuspendReason":"a \\"b\\""}',
    'canonical: FEATURES order, features first',
  );
  t.equal(encodeTesting({ form: 'capabilities', features: { balloon: false, poweroff: true } }), '{"features":{"poweroff":true,"balloon":false}}');
  t.end();
});

test('capabilities: malformed ones refused, and never mixed with a command', (t) => {
  t.equal(code('{"features":{"fly":true}}'), 'bad-value', 'unknown feature');
  t.equal(code('{"features":{}}'), 'bad-value', 'names no feature');
  t.equal(code('{"features":{"suspend":"no"}}'), 'wrong-type', 'a string value');
  t.equal(code('{"features":{"suspend":1}}'), 'wrong-type', 'a number value');
  t.equal(code('{"features":[]}'), 'wrong-type', 'an array');
  t.equal(code('{"features":null}'), 'wrong-type', 'null features');
  t.equal(code('{"cantSuspendReason":5}'), 'wrong-type', 'a number reason');
  t.equal(code(`{"cantSuspendReason":"${'r'.repeat(MAX_REASON_BYTES + 1)}"}`), 'bad-value', 'a reason too long');
  t.equal(code(`{"cantSuspendReason":"${'r'.repeat(MAX_REASON_BYTES)}"}`), 'not rejected: message', 'the longest reason');
  for (const f of ['action', 'when', 'ack', 'ackAfterMs', 'actAfterMs'])
    t.equal(code(`{"features":{"suspend":false},"${f}":"x"}`), 'bad-value', `features with ${f}`);
  const d = decodeTesting('{"action":"reboot","cantSuspendReason":"x"}');
  t.equal(
    d.kind === 'rejected' && d.error.message,
    'field "action" cannot be in a capabilities message (send features and commands separately)',
    'the sentence names the field',
  );
  t.end();
});

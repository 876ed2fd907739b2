// Every accepted and rejected form of the control protocol, with the exact
// error sentences the harness and the guest report.
import test from 'tape';
import {
  decodeShutdown,
  decodeTesting,
  decodeVmData,
  encodeTesting,
  encodeVmData,
  encodeCommand,
  isCommand,
  validateTesting,
  decodeUtf8Strict,
  encodeUtf8,
  ackFromString,
  ackToString,
  describeCommand,
  SHUTDOWN_REQUESTS,
  LEGACY_ACTIONS,
  ACTIONS,
  MAX_MESSAGE_BYTES,
  type TestingMessage,
  type NodeDecoded,
} from '../../protocol/control.ts';

const bytes = (...b: number[]) => Uint8Array.from(b);
const msg = (d: NodeDecoded<TestingMessage>) => (d.kind === 'message' ? d.value : d);

test('control/shutdown: the five requests are accepted, exactly', (t) => {
  for (const r of SHUTDOWN_REQUESTS) {
    t.deepEqual(decodeShutdown(r), { kind: 'message', value: r }, r);
    t.deepEqual(decodeShutdown(encodeUtf8(r)), { kind: 'message', value: r }, `${r} as bytes`);
  }
  t.deepEqual(decodeShutdown(''), { kind: 'empty' }, '"" is the ack itself');
  t.deepEqual(decodeShutdown(new Uint8Array(0)), { kind: 'empty' });
  t.end();
});

test('control/shutdown: anything else is rejected with one sentence', (t) => {
  const rejected = (v: string | Uint8Array) => {
    const d = decodeShutdown(v);
    return d.kind === 'rejected' ? d.error : null;
  };
  t.deepEqual(rejected('ignore'), {
    code: 'bad-shutdown',
    message: 'unknown shutdown request "ignore" (expected one of: poweroff, reboot, halt, suspend, crash)',
  });
  t.equal(rejected('PowerOff')?.code, 'bad-shutdown', 'case matters');
  t.equal(rejected('poweroff\n')?.code, 'bad-shutdown', 'no trimming, as the kernel');
  t.equal(rejected(' reboot')?.code, 'bad-shutdown');
  t.equal(rejected('sysrq')?.code, 'bad-shutdown', 'sysrq is not ours');
  t.equal(rejected('now:poweroff')?.code, 'bad-shutdown');
  t.deepEqual(rejected(bytes(0x70, 0xff)), { code: 'invalid-utf8', message: 'message is not valid UTF-8 (bad byte 0xff at offset 1)' });
  t.deepEqual(rejected(new Uint8Array(MAX_MESSAGE_BYTES + 1).fill(0x61)), { code: 'too-long', message: 'message too long: 4097 bytes (max 4096)' });
  t.equal(
    rejected('x'.repeat(100))?.message,
    `unknown shutdown request "${'x'.repeat(64)}"... (100 chars) (expected one of: poweroff, reboot, halt, suspend, crash)`,
    'long values are cut in messages',
  );
  t.end();
});

test('control/testing: legacy now:X and next:X, and bare X', (t) => {
  for (const a of LEGACY_ACTIONS) {
    t.deepEqual(msg(decodeTesting(`now:${a}`)), { when: 'now', ack: { kind: 'ok' }, action: a, form: 'legacy-now' }, `now:${a}`);
    t.deepEqual(msg(decodeTesting(`next:${a}`)), { when: 'onshutdown', ack: { kind: 'ok' }, action: a, form: 'legacy-next' }, `next:${a}`);
    t.deepEqual(msg(decodeTesting(a)), { when: 'now', ack: { kind: 'ok' }, action: a, form: 'bare' }, a);
  }
  t.deepEqual(
    msg(decodeTesting(' \tnow:reboot\r\n')),
    { when: 'now', ack: { kind: 'ok' }, action: 'reboot', form: 'legacy-now' },
    'surrounding whitespace ignored',
  );
  t.end();
});

test('control/testing: legacy rejections', (t) => {
  const err = (v: string) => {
    const d = decodeTesting(v);
    return d.kind === 'rejected' ? d.error : null;
  };
  t.deepEqual(
    err('now:ignore'),
    { code: 'bad-value', message: 'unknown action "ignore" in now:X (expected one of: suspend, poweroff, reboot, halt, crash)' },
    'ignore only in JSON',
  );
  t.deepEqual(err('next:'), { code: 'bad-value', message: 'unknown action "" in next:X (expected one of: suspend, poweroff, reboot, halt, crash)' });
  t.deepEqual(err('now: reboot'), {
    code: 'bad-value',
    message: 'unknown action " reboot" in now:X (expected one of: suspend, poweroff, reboot, halt, crash)',
  });
  t.deepEqual(err('NOW:reboot'), { code: 'unrecognised', message: 'unrecognised message "NOW:reboot" (expected now:X, next:X, X or a JSON object)' });
  t.deepEqual(err('later:reboot'), { code: 'unrecognised', message: 'unrecognised message "later:reboot" (expected now:X, next:X, X or a JSON object)' });
  t.deepEqual(err('Reboot'), { code: 'unrecognised', message: 'unrecognised message "Reboot" (expected now:X, next:X, X or a JSON object)' });
  t.deepEqual(err('ignore'), { code: 'unrecognised', message: 'unrecognised message "ignore" (expected now:X, next:X, X or a JSON object)' });
  t.deepEqual(err('now:reboot now:reboot'), {
    code: 'bad-value',
    message: 'unknown action "reboot now:reboot" in now:X (expected one of: suspend, poweroff, reboot, halt, crash)',
  });
  t.deepEqual(err('[1]'), { code: 'unrecognised', message: 'unrecognised message "[1]" (expected now:X, next:X, X or a JSON object)' });
  t.deepEqual(err('"now:reboot"'), { code: 'unrecognised', message: 'unrecognised message "\\"now:reboot\\"" (expected now:X, next:X, X or a JSON object)' });
  t.deepEqual(err('  \n\t'), { code: 'blank', message: 'message is blank (only whitespace)' });
  t.deepEqual(
    err('now:reboot\u0000'),
    { code: 'bad-value', message: 'unknown action "reboot\\u0000" in now:X (expected one of: suspend, poweroff, reboot, halt, crash)' },
    'NUL is not whitespace',
  );
  t.end();
});

test('control/testing: "" is the ack, not a message', (t) => {
  t.deepEqual(decodeTesting(''), { kind: 'empty' });
  t.deepEqual(decodeTesting(new Uint8Array(0)), { kind: 'empty' });
  t.end();
});

test('control/testing: JSON, every field and default', (t) => {
  const ok = (v: string) => msg(decodeTesting(v));
  for (const a of ACTIONS) {
    t.deepEqual(ok(`{"when":"now","ack":"ok","action":"${a}"}`), { when: 'now', ack: { kind: 'ok' }, action: a, form: 'json' }, `now ${a}`);
    t.deepEqual(
      ok(`{"when":"onshutdown","ack":"ok","action":"${a}"}`),
      { when: 'onshutdown', ack: { kind: 'ok' }, action: a, form: 'json' },
      `onshutdown ${a}`,
    );
  }
  t.deepEqual(ok('{"when":"onshutdown","ack":"none","action":"reboot"}'), { when: 'onshutdown', ack: { kind: 'none' }, action: 'reboot', form: 'json' });
  t.deepEqual(ok('{"when":"onshutdown","ack":"delete","action":"reboot"}'), { when: 'onshutdown', ack: { kind: 'delete' }, action: 'reboot', form: 'json' });
  t.deepEqual(ok('{"when":"onshutdown","ack":"bogus","action":"reboot"}'), {
    when: 'onshutdown',
    ack: { kind: 'write', value: 'bogus' },
    action: 'reboot',
    form: 'json',
  });
  t.deepEqual(
    ok('{"when":"onshutdown","ack":"poweroff","action":"ignore"}'),
    { when: 'onshutdown', ack: { kind: 'write', value: 'poweroff' }, action: 'ignore', form: 'json' },
    'an ack can be any string, even a request',
  );
  t.deepEqual(ok('{"when":"onshutdown","ack":"","action":"halt"}'), { when: 'onshutdown', ack: { kind: 'ok' }, action: 'halt', form: 'json' }, 'ack "" is ok');
  t.deepEqual(
    ok('{"when":"onshutdown","ack":"\\u00e9\\ud83d\\ude00","action":"halt"}'),
    { when: 'onshutdown', ack: { kind: 'write', value: 'é😀' }, action: 'halt', form: 'json' },
    'unicode ack',
  );
  t.deepEqual(ok('{"action":"crash"}'), { when: 'now', ack: { kind: 'ok' }, action: 'crash', form: 'json' }, 'when defaults to now, ack to ok');
  t.deepEqual(ok('{"when":"onshutdown","action":"reboot"}'), { when: 'onshutdown', ack: { kind: 'ok' }, action: 'reboot', form: 'json' }, 'ack defaults to ok');
  t.deepEqual(ok(' \n{ "action" : "reboot" ,\n "when":"now"}\n'), { when: 'now', ack: { kind: 'ok' }, action: 'reboot', form: 'json' }, 'whitespace anywhere');
  t.deepEqual(
    ok('{"action":"reboot","action":"crash"}'),
    { when: 'now', ack: { kind: 'ok' }, action: 'crash', form: 'json' },
    'duplicate keys: the last wins (JSON.parse)',
  );
  t.end();
});

test('control/testing: JSON rejections', (t) => {
  const err = (v: string | Uint8Array) => {
    const d = decodeTesting(v);
    return d.kind === 'rejected' ? d.error : null;
  };
  t.equal(err('{"action":"reboot",}')?.code, 'bad-json', 'trailing comma');
  t.equal(err("{'action':'reboot'}")?.code, 'bad-json', 'single quotes');
  t.equal(err('{"action":"reboot"} x')?.code, 'bad-json', 'trailing garbage');
  t.equal(err('{"action":"re\u0001boot"}')?.code, 'bad-json', 'raw control char');
  t.deepEqual(err('{}'), { code: 'missing-field', message: 'missing field "action"' });
  t.deepEqual(err('{"when":"now"}'), { code: 'missing-field', message: 'missing field "action"' });
  t.deepEqual(err('{"action":"reboot","extra":1}'), {
    code: 'unknown-field',
    message: 'unknown field "extra" (allowed: when, ack, action, ackAfterMs, actAfterMs, features, cantSuspendReason, clock)',
  });
  t.deepEqual(
    err('{"acton":"reboot"}'),
    { code: 'unknown-field', message: 'unknown field "acton" (allowed: when, ack, action, ackAfterMs, actAfterMs, features, cantSuspendReason, clock)' },
    'a typo is not silently ignored',
  );
  t.deepEqual(err('{"__proto__":{"action":"reboot"}}'), {
    code: 'unknown-field',
    message: 'unknown field "__proto__" (allowed: when, ack, action, ackAfterMs, actAfterMs, features, cantSuspendReason, clock)',
  });
  t.deepEqual(err('{"constructor":"x","action":"reboot"}'), {
    code: 'unknown-field',
    message: 'unknown field "constructor" (allowed: when, ack, action, ackAfterMs, actAfterMs, features, cantSuspendReason, clock)',
  });
  t.deepEqual(err('{"action":1}'), { code: 'wrong-type', message: 'field "action" must be a string, got number' });
  t.deepEqual(err('{"action":null}'), { code: 'wrong-type', message: 'field "action" must be a string, got null' });
  t.deepEqual(err('{"action":["reboot"]}'), { code: 'wrong-type', message: 'field "action" must be a string, got array' });
  t.deepEqual(err('{"action":"reboot","when":true}'), { code: 'wrong-type', message: 'field "when" must be a string, got boolean' });
  t.deepEqual(err('{"action":"reboot","ack":{}}'), { code: 'wrong-type', message: 'field "ack" must be a string, got object' });
  t.deepEqual(err('{"action":"reboot","ack":1e999}'), { code: 'wrong-type', message: 'field "ack" must be a string, got number' }, 'huge number');
  t.deepEqual(err('{"action":"Reboot"}'), {
    code: 'bad-value',
    message: 'unknown action "Reboot" (expected one of: suspend, poweroff, reboot, halt, crash, ignore)',
  });
  t.deepEqual(err('{"action":"reboot","when":"later"}'), { code: 'bad-value', message: 'unknown when "later" (expected now or onshutdown)' });
  t.deepEqual(err('{"action":"reboot","when":"next"}'), { code: 'bad-value', message: 'unknown when "next" (expected now or onshutdown)' });
  t.deepEqual(err('{"action":"reboot","when":""}'), { code: 'bad-value', message: 'unknown when "" (expected now or onshutdown)' });
  t.deepEqual(err('{"action":""}'), { code: 'bad-value', message: 'unknown action "" (expected one of: suspend, poweroff, reboot, halt, crash, ignore)' });
  t.deepEqual(err('{"a":' + '['.repeat(9) + ']'.repeat(9) + '}'), { code: 'too-deep', message: 'JSON nested too deeply (depth 10, max 8)' });
  t.deepEqual(
    err('{' + '"a":{'.repeat(800)),
    { code: 'too-deep', message: 'JSON nested too deeply (depth 801, max 8)' },
    'deep nesting refused before parsing',
  );
  t.equal(err('{"a":"' + '['.repeat(50) + '"}')?.code, 'unknown-field', 'brackets inside strings do not count as depth');
  t.equal(err('{"a":"\\"' + '['.repeat(50) + '"}')?.code, 'unknown-field', 'escaped quotes do not end strings');
  t.deepEqual(err(bytes(0x7b, 0xc0, 0x80, 0x7d)), { code: 'invalid-utf8', message: 'message is not valid UTF-8 (bad byte 0xc0 at offset 1)' }, 'overlong NUL');
  t.deepEqual(err(bytes(0xed, 0xa0, 0x80)), { code: 'invalid-utf8', message: 'message is not valid UTF-8 (bad byte 0xed at offset 0)' }, 'encoded surrogate');
  t.deepEqual(err(bytes(0x61, 0xe2, 0x82)), { code: 'invalid-utf8', message: 'message is not valid UTF-8 (bad byte 0xe2 at offset 1)' }, 'truncated sequence');
  t.deepEqual(
    err(bytes(0xf4, 0x90, 0x80, 0x80)),
    { code: 'invalid-utf8', message: 'message is not valid UTF-8 (bad byte 0xf4 at offset 0)' },
    'above U+10FFFF',
  );
  t.end();
});

test('sizes: up to 4096 bytes accepted, 4097 refused, counted in UTF-8 bytes', (t) => {
  const pad = (n: number) => `{"action":"reboot","ack":"${'x'.repeat(n)}"}`;
  const base = pad(0).length;
  t.equal(decodeTesting(pad(MAX_MESSAGE_BYTES - base)).kind, 'message', '4096 bytes');
  t.deepEqual(decodeTesting(pad(MAX_MESSAGE_BYTES - base + 1)), {
    kind: 'rejected',
    error: { code: 'too-long', message: 'message too long: 4097 bytes (max 4096)' },
  });
  const euro = '€'.repeat(1366); // 4098 bytes in UTF-8, 1366 UTF-16 units
  t.equal(decodeTesting(euro).kind, 'rejected');
  t.equal((decodeTesting(euro) as { error: { code: string } }).error.code, 'too-long');
  t.end();
});

test('vm-data: "ID MESSAGE"', (t) => {
  t.deepEqual(decodeVmData('7 now:reboot'), {
    kind: 'message',
    value: { id: '7', message: { kind: 'message', value: { when: 'now', ack: { kind: 'ok' }, action: 'reboot', form: 'legacy-now' } } },
  });
  t.deepEqual(decodeVmData('case-12.a:3 {"when":"onshutdown","ack":"none","action":"crash"}'), {
    kind: 'message',
    value: { id: 'case-12.a:3', message: { kind: 'message', value: { when: 'onshutdown', ack: { kind: 'none' }, action: 'crash', form: 'json' } } },
  });
  t.deepEqual(
    decodeVmData('8 bogus'),
    {
      kind: 'message',
      value: {
        id: '8',
        message: { kind: 'rejected', error: { code: 'unrecognised', message: 'unrecognised message "bogus" (expected now:X, next:X, X or a JSON object)' } },
      },
    },
    'a bad message keeps its id',
  );
  t.deepEqual(decodeVmData('9 '), { kind: 'message', value: { id: '9', message: { kind: 'empty' } } }, 'an id with no message');
  t.deepEqual(decodeVmData(''), { kind: 'empty' });
  t.deepEqual(decodeVmData('now:reboot'), {
    kind: 'rejected',
    error: { code: 'bad-envelope', message: 'vm-data message must be "ID MESSAGE", found no space in "now:reboot"' },
  });
  t.deepEqual(decodeVmData(' now:reboot'), {
    kind: 'rejected',
    error: { code: 'bad-envelope', message: 'bad vm-data message id "" (1 to 64 of A-Z a-z 0-9 . _ : -)' },
  });
  t.deepEqual(decodeVmData('a/b now:reboot'), {
    kind: 'rejected',
    error: { code: 'bad-envelope', message: 'bad vm-data message id "a/b" (1 to 64 of A-Z a-z 0-9 . _ : -)' },
  });
  t.equal(decodeVmData(`${'i'.repeat(65)} now:reboot`).kind, 'rejected', 'id too long');
  t.equal(decodeVmData(bytes(0x31, 0x20, 0xff)).kind, 'rejected', 'invalid UTF-8');
  t.end();
});

test('encoders build every form, and decode back', (t) => {
  t.equal(encodeTesting({ form: 'legacy', when: 'now', action: 'reboot' }), 'now:reboot');
  t.equal(encodeTesting({ form: 'legacy', when: 'next', action: 'crash' }), 'next:crash');
  t.equal(encodeTesting({ form: 'bare', action: 'halt' }), 'halt');
  t.equal(encodeTesting({ form: 'json', when: 'onshutdown', ack: 'delete', action: 'reboot' }), '{"when":"onshutdown","ack":"delete","action":"reboot"}');
  t.equal(encodeTesting({ form: 'json', ack: { kind: 'write', value: 'bogus' }, action: 'reboot' }), '{"ack":"bogus","action":"reboot"}');
  t.equal(encodeTesting({ form: 'json-raw', value: { action: 'reboot', extra: [1] } }), '{"action":"reboot","extra":[1]}');
  t.equal(encodeTesting({ form: 'raw', text: '{not json' }), '{not json');
  t.equal(encodeVmData('3', { form: 'legacy', when: 'now', action: 'poweroff' }), '3 now:poweroff');
  t.equal(encodeVmData('x y', 'raw'), 'x y raw', 'bad ids can be built');
  for (const when of ['now', 'onshutdown'] as const) {
    for (const action of ACTIONS) {
      for (const ack of ['ok', 'none', 'delete', 'bogus string']) {
        const text = encodeTesting({ form: 'json', when, ack, action });
        const d = decodeTesting(text);
        t.equal(d.kind === 'message' && isCommand(d.value) && encodeCommand(d.value), text, `round trip ${text}`);
      }
    }
  }
  t.equal(describeCommand({ when: 'onshutdown', ack: { kind: 'write', value: 'x' }, action: 'crash', form: 'json' }), 'onshutdown ack=x action=crash');
  t.equal(describeCommand({ when: 'now', ack: { kind: 'ok' }, action: 'crash', form: 'bare' }), 'now action=crash');
  t.deepEqual(validateTesting('next:reboot'), { ok: true, value: { when: 'onshutdown', ack: { kind: 'ok' }, action: 'reboot', form: 'legacy-next' } });
  t.deepEqual(validateTesting(''), { ok: false, error: { code: 'blank', message: 'message is empty' } });
  t.deepEqual(ackFromString('none'), { kind: 'none' });
  t.equal(ackToString({ kind: 'delete' }), 'delete');
  t.end();
});

test('UTF-8 helpers agree with Node on valid text and refuse what Node replaces', (t) => {
  const samples = ['', 'a', 'é', '€', '😀', 'a\u0000b', '\u07ff\u0800\uffff', '\u{10ffff}'];
  for (const s of samples) {
    const b = encodeUtf8(s);
    t.deepEqual(Array.from(b), Array.from(new TextEncoder().encode(s)), `encode ${JSON.stringify(s)}`);
    t.deepEqual(decodeUtf8Strict(b), { ok: true, text: s }, `decode ${JSON.stringify(s)}`);
  }
  t.deepEqual(Array.from(encodeUtf8('\ud800x')), [0xef, 0xbf, 0xbd, 0x78], 'lone surrogate becomes U+FFFD');
  for (const bad of [[0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xf0, 0x80, 0x80, 0x80], [0xf5, 0x80, 0x80, 0x80], [0xff]]) {
    t.equal(decodeUtf8Strict(Uint8Array.from(bad)).ok, false, `refuse ${bad.map((x) => x.toString(16)).join(' ')}`);
  }
  t.end();
});

test('bad JSON: our own sentence, the same under every engine', (t) => {
  const err = (v: string) => {
    const d = decodeTesting(v);
    return d.kind === 'rejected' ? d.error : null;
  };
  t.deepEqual(err('{'), { code: 'bad-json', message: 'bad JSON: unexpected end of input (expected a string key)' });
  t.deepEqual(err('{"action":"reboot",}'), { code: 'bad-json', message: 'bad JSON at offset 19: unexpected "}" (expected a string key)' });
  t.deepEqual(err("{'action':'reboot'}"), { code: 'bad-json', message: 'bad JSON at offset 1: unexpected "\'" (expected a string key)' });
  t.deepEqual(err('{"action":"reboot"} x'), { code: 'bad-json', message: 'bad JSON at offset 20: unexpected "x" (expected end of input)' });
  t.deepEqual(err('{"action":"re\u0001boot"}'), {
    code: 'bad-json',
    message: 'bad JSON at offset 13: unexpected "\\u0001" (expected no raw control character in a string)',
  });
  t.deepEqual(
    err('{"action":"re\nboot"}'),
    { code: 'bad-json', message: 'bad JSON at offset 13: unexpected "\\n" (expected no raw control character in a string)' },
    'never a newline in a message',
  );
  t.deepEqual(err('{"action":"\\x"}'), { code: 'bad-json', message: 'bad JSON at offset 12: unexpected "x" (expected a valid escape)' });
  t.deepEqual(err('{"action":"\\u12"}'), { code: 'bad-json', message: 'bad JSON at offset 12: unexpected "u" (expected a valid escape)' });
  t.deepEqual(err('{"a":01}'), { code: 'bad-json', message: 'bad JSON at offset 6: unexpected "1" (expected "," or "}")' });
  t.deepEqual(err('{"a":-}'), { code: 'bad-json', message: 'bad JSON at offset 6: unexpected "}" (expected a digit)' });
  t.deepEqual(err('{"a":1.}'), { code: 'bad-json', message: 'bad JSON at offset 7: unexpected "}" (expected a digit)' });
  t.deepEqual(err('{"a":1e}'), { code: 'bad-json', message: 'bad JSON at offset 7: unexpected "}" (expected a digit)' });
  t.deepEqual(err('{"a" 1}'), { code: 'bad-json', message: 'bad JSON at offset 5: unexpected "1" (expected ":")' });
  t.deepEqual(err('{"a":[1 2]}'), { code: 'bad-json', message: 'bad JSON at offset 8: unexpected "2" (expected "," or "]")' });
  t.deepEqual(err('{"a":tru}'), { code: 'bad-json', message: 'bad JSON at offset 5: unexpected "t" (expected a JSON value)' });
  t.deepEqual(
    err('{\u00a0"action":"reboot"}'),
    { code: 'bad-json', message: 'bad JSON at offset 1: unexpected "\u00a0" (expected a string key)' },
    'only JSON whitespace is whitespace',
  );
  t.deepEqual(
    err('{"a":1,"b":[true,false,null,-0.5e+3,"\\u00e9\\n"],"c":{}}'),
    { code: 'unknown-field', message: 'unknown field "a" (allowed: when, ack, action, ackAfterMs, actAfterMs, features, cantSuspendReason, clock)' },
    'all of JSON passes the syntax check',
  );
  t.end();
});

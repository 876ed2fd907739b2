// Fuzzing the control protocol's decoders and the agent's loop with random and
// mutated messages: binary, unicode, JSON edge cases (deep nesting, huge
// numbers, __proto__ keys), sizes up to 4096 bytes. Checks: nothing throws or
// crashes, invalid input changes nothing, and valid input after the storm
// still works. Deterministic: the seed is fixed (XTV_FUZZ_SEED overrides it)
// and printed, so a failure can be replayed.
import test from 'tape';
import {
  decodeShutdown,
  decodeTesting,
  decodeVmData,
  encodeCommand,
  encodeUtf8,
  describeCommand,
  describeCapabilities,
  describeMessage,
  encodeCapabilities,
  isCapabilityMessage,
  isClockMessage,
  isCommand,
  encodeTesting,
  FEATURES,
  ACTIONS,
  LEGACY_ACTIONS,
  SHUTDOWN_REQUESTS,
  SHUTDOWN_NODE,
  TESTING_NODE,
  VMDATA_TESTING_NODE,
  type ControlErrorCode,
  type NodeDecoded,
  type TestingCommand,
  type TestingMessage,
  type CapabilityMessage,
  type ClockMessage,
  type Ack,
} from '../../protocol/control.ts';
import { startFixture } from './agent-fixture.ts';

const SEED = Number(process.env.XTV_FUZZ_SEED ?? 0x5eed1234);
const DECODER_INPUTS = 12_000;
const AGENT_MESSAGES = Number(process.env.XTV_FUZZ_AGENT_MESSAGES ?? 10_000);

/** mulberry32: small, fast, good enough to pick test inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly rnd: () => number) {}
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  /** Lengths skewed small, sometimes near or over the limit. */
  length(): number {
    const r = this.rnd();
    if (r < 0.6) return this.int(40);
    if (r < 0.9) return this.int(600);
    return 3900 + this.int(300);
  }
  bytes(n = this.length()): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  codePoint(): number {
    return this.pick([
      () => 0x20 + this.int(0x5f),
      () => this.int(0x20),
      () => 0x80 + this.int(0x780),
      () => 0x800 + this.int(0xd000),
      () => 0xd800 + this.int(0x800) /* lone surrogate */,
      () => 0x10000 + this.int(0xfffff),
      () => 0xfeff,
      () => 0x202e,
    ])();
  }
  unicode(n = this.int(60)): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      const cp = this.codePoint();
      s += cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
    }
    return s;
  }
  word(): string {
    return this.pick([
      ...ACTIONS,
      ...SHUTDOWN_REQUESTS,
      'now',
      'next',
      'onshutdown',
      'ok',
      'none',
      'delete',
      'sysrq',
      '',
      'Reboot',
      'POWEROFF',
      this.unicode(5),
    ]);
  }
  ack(): string {
    return this.pick(['ok', 'none', 'delete', 'bogus', '', 'poweroff', ' ', this.unicode(8), 'x'.repeat(this.int(300))]);
  }
  ws(): string {
    return this.chance(0.8) ? '' : this.pick([' ', '\t', '\n', '\r\n', '  \n\t ', '\u00a0', '\u2028']);
  }
  validTesting(): string {
    const a = this.pick(LEGACY_ACTIONS);
    switch (this.int(6)) {
      case 4:
        // dom0's clock (#17): any whole ms since the epoch.
        return `${this.ws()}{"clock":${this.pick([0, 1, Date.now(), Number.MAX_SAFE_INTEGER, this.int(1e9)])}}${this.ws()}`;
      case 0:
        return `${this.ws()}now:${a}${this.ws()}`;
      case 1:
        return `next:${a}`;
      case 2:
        return a;
      case 3:
        // Capabilities: any mix of flags set, cleared or removed, and a reason.
        return JSON.stringify({
          features: Object.fromEntries(FEATURES.filter(() => this.chance(0.5)).map((f) => [f, this.pick([true, false, null])])),
          ...(this.chance(0.5) ? { cantSuspendReason: this.chance(0.8) ? this.word() : null } : {}),
        });
      default: {
        const o: Record<string, string | number> = { action: this.pick(ACTIONS) };
        if (this.chance(0.7)) o.when = this.pick(['now', 'onshutdown']);
        if (this.chance(0.7)) o.ack = this.ack();
        // Delays of 0 only: the model below does not wait (a mutation that makes one nonzero is skipped).
        if (this.chance(0.3) && o.when === 'onshutdown') o.ackAfterMs = 0;
        if (this.chance(0.3)) o.actAfterMs = 0;
        const keys = Object.keys(o).sort(() => this.rnd() - 0.5);
        return `${this.ws()}{${keys.map((k) => `${this.ws()}${JSON.stringify(k)}${this.ws()}:${this.ws()}${JSON.stringify(o[k])}`).join(',')}}${this.ws()}`;
      }
    }
  }
  jsonEdge(): string {
    const depth = this.pick([2, 8, 9, 50, 2000]);
    const cases = [
      () => `{"action":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      () => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
      () => '['.repeat(depth),
      () => `{"action":"reboot","ack":${this.pick(['1e999', '-0', '123456789012345678901234567890', '0x10', 'NaN', 'Infinity', '1e-400'])}}`,
      () => `{"__proto__":{"action":"reboot"},"action":"${this.pick(ACTIONS)}"}`,
      () => `{"action":"reboot","__proto__":null}`,
      () => `{"constructor":{"prototype":{"action":"crash"}}}`,
      () => `{"toString":"x","action":"halt"}`,
      () => `{"action":"reboot","action":"${this.word()}"}`,
      () => `{"action":"\\u0000reboot"}`,
      () => `{"action":"reb\\u006fot","when":"\\u006eow"}`,
      () => `{"action":"reboot","ack":"\\ud800"}`,
      () => `{"action":"reboot","ack":"${'\\\\'.repeat(this.int(500))}"}`,
      () => `{"action":"reboot","when":"onshutdown","ackAfterMs":${this.pick(['-1', '1.5', '"5"', '3600001', '1e400', 'null', '[]'])}}`,
      () => `{"action":"reboot","actAfterMs":${this.pick(['-0.5', 'true', '{}', '99999999999', '-1e400'])}}`,
      () => `{"action":"reboot","ackAfterMs":0}`,
      () => `{"features":${this.pick(['{"suspend":"no"}', '{"fly":true}', '[]', '{}', 'null', '{"suspend":{"x":1}}', '"suspend"'])}}`,
      () => `{"cantSuspendReason":${this.pick(['5', 'true', '{}', JSON.stringify('r'.repeat(1025))])}}`,
      () => `{"clock":${this.pick(['-1', '1.5', '"5"', '1e400', 'null', '[]', '9007199254740992', 'true'])}}`,
      () => `{"clock":1,"${this.pick(['action', 'features', 'when', 'cantSuspendReason'])}":"reboot"}`,
      () => `{"features":{"suspend":false},"${this.pick(['action', 'when', 'ack', 'ackAfterMs', 'actAfterMs'])}":"reboot"}`,
      () => `{"action":null}`,
      () => `{"action":true,"when":false}`,
      () => `{"action":["reboot"]}`,
      () => `{"action":{"x":"reboot"}}`,
      () => '{}',
      () => '{"":""}',
      () => 'null',
      () => '"now:reboot"',
      () => '{"action":"reboot"',
      () => '{"action":"reboot"}}',
      () => `{"action":"reboot","ack":"${'x'.repeat(3900 + this.int(300))}"}`,
      () => `{${this.unicode(10)}}`,
      () => `{"${this.unicode(6)}":"${this.unicode(6)}"}`,
    ];
    return this.pick(cases)();
  }
  mutate(s: string): Uint8Array {
    let b = Array.from(encodeUtf8(s));
    const n = 1 + this.int(4);
    for (let k = 0; k < n; k++) {
      const i = b.length ? this.int(b.length) : 0;
      switch (this.int(8)) {
        case 0:
          if (b.length) b[i] = b[i]! ^ (1 << this.int(8));
          break;
        case 1:
          b.splice(i, 0, this.int(256));
          break;
        case 2:
          b.splice(i, 1 + this.int(3));
          break;
        case 3:
          b = b.slice(0, i);
          break;
        case 4:
          b.splice(i, 0, ...b.slice(i, i + 1 + this.int(20)));
          break;
        case 5:
          b.splice(i, 0, ...encodeUtf8(this.unicode(2)));
          break;
        case 6:
          if (b.length) b[i] = this.pick([0x22, 0x7b, 0x7d, 0x3a, 0x2c, 0x5c, 0x00, 0x20]);
          break;
        default:
          b = b.map((x) => (x >= 0x61 && x <= 0x7a && this.chance(0.2) ? x - 0x20 : x));
      }
    }
    return Uint8Array.from(b);
  }
  testing(): string | Uint8Array {
    switch (this.int(6)) {
      case 0:
        return this.validTesting();
      case 1:
        return this.mutate(this.validTesting());
      case 2:
        return this.jsonEdge();
      case 3:
        return this.bytes();
      case 4:
        return this.unicode();
      default:
        return this.mutate(this.jsonEdge());
    }
  }
  shutdown(): string | Uint8Array {
    switch (this.int(4)) {
      case 0:
        return this.pick(SHUTDOWN_REQUESTS);
      case 1:
        return this.mutate(this.pick(SHUTDOWN_REQUESTS));
      case 2:
        return this.word();
      default:
        return this.chance(0.5) ? this.bytes(this.int(64)) : this.testing();
    }
  }
  vmdata(id: number): string | Uint8Array {
    const msg = this.testing();
    const text = typeof msg === 'string' ? msg : null;
    switch (this.int(5)) {
      case 0:
        return this.mutate(`${id} ${text ?? 'now:reboot'}`);
      case 1:
        return text === null ? msg : text;
      case 2:
        return `${this.pick([String(id), '', 'a/b', 'x'.repeat(65), this.unicode(3)])} ${text ?? ''}`;
      default:
        return text === null ? Uint8Array.from([...encodeUtf8(`${id} `), ...(msg as Uint8Array)]) : `${id} ${text}`;
    }
  }
}

const CODES: ReadonlySet<ControlErrorCode> = new Set<ControlErrorCode>([
  'too-long',
  'invalid-utf8',
  'blank',
  'unrecognised',
  'bad-json',
  'too-deep',
  'not-object',
  'unknown-field',
  'missing-field',
  'wrong-type',
  'bad-value',
  'bad-envelope',
  'bad-shutdown',
]);

function checkDecoded(t: test.Test, d: NodeDecoded<unknown>, what: () => string): boolean {
  if (d.kind === 'rejected') {
    if (!CODES.has(d.error.code) || typeof d.error.message !== 'string' || !d.error.message || /[\n\r]/.test(d.error.message)) {
      t.fail(`bad rejection ${JSON.stringify(d.error)} for ${what()}`);
      return false;
    }
  } else if (d.kind !== 'empty' && d.kind !== 'message') {
    t.fail(`bad result for ${what()}`);
    return false;
  }
  return true;
}

const show = (v: string | Uint8Array): string => (typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : `bytes[${v.length}]`);

test(`decoders: ${DECODER_INPUTS} random and mutated inputs per node never throw (seed ${SEED})`, (t) => {
  const g = new Gen(prng(SEED));
  let bad = 0;
  const tally = { message: 0, rejected: 0, empty: 0 };
  for (let i = 0; i < DECODER_INPUTS && bad < 5; i++) {
    for (const [name, input, decode] of [
      ['testing', g.testing(), decodeTesting],
      ['shutdown', g.shutdown(), decodeShutdown],
      ['vm-data', g.vmdata(i), decodeVmData],
    ] as const) {
      let d: NodeDecoded<unknown>;
      try {
        d = (decode as (v: string | Uint8Array) => NodeDecoded<unknown>)(input);
      } catch (e) {
        t.fail(`${name} decoder threw ${String(e)} on ${show(input)}`);
        bad++;
        continue;
      }
      tally[d.kind]++;
      if (!checkDecoded(t, d, () => `${name} ${show(input)}`)) bad++;
      // An accepted testing message means exactly what its canonical form means.
      if (name === 'testing' && d.kind === 'message' && isCapabilityMessage(d.value as TestingMessage)) {
        const c = d.value as CapabilityMessage;
        const again = decodeTesting(encodeCapabilities(c));
        if (again.kind !== 'message' || !isCapabilityMessage(again.value) || describeCapabilities(again.value) !== describeCapabilities(c)) {
          t.fail(`canonical form of ${show(input)} decodes differently`);
          bad++;
        }
      } else if (name === 'testing' && d.kind === 'message' && isClockMessage(d.value as TestingMessage)) {
        const c = d.value as ClockMessage;
        const again = decodeTesting(encodeTesting({ form: 'clock', dom0Ms: c.dom0Ms }));
        if (again.kind !== 'message' || !isClockMessage(again.value) || again.value.dom0Ms !== c.dom0Ms) {
          t.fail(`canonical form of ${show(input)} decodes differently`);
          bad++;
        }
      } else if (name === 'testing' && d.kind === 'message') {
        const c = d.value as TestingCommand;
        const canonical = encodeCommand(c);
        const again = decodeTesting(canonical);
        const fits = encodeUtf8(canonical).length <= 4096;
        if (fits && (again.kind !== 'message' || describeMessage(again.value) !== describeCommand(c))) {
          t.fail(`canonical form of ${show(input)} decodes differently`);
          bad++;
        }
      }
    }
  }
  t.equal(bad, 0, `no decoder failures (${JSON.stringify(tally)})`);
  t.ok(tally.message > 1000 && tally.rejected > 10000, 'the inputs reach both accepted and rejected paths');
  t.end();
});

// A model of what the agent must do, from the decoder's answers alone.
interface Model {
  pending: TestingCommand | null;
  /** What control/shutdown held after the agent last dealt with it; undefined: forgotten (a new test message). */
  shutdownLeft: string | null | undefined;
  vmdataId: string | null;
  vmdataKey: string | null;
  actions: string[];
}

const keyOf = (v: string | Uint8Array): string => Array.from(typeof v === 'string' ? encodeUtf8(v) : v, (b) => String.fromCharCode(b)).join('');

function ackResult(ack: Ack, request: string): string | null {
  switch (ack.kind) {
    case 'ok':
      return '';
    case 'none':
      return request;
    case 'delete':
      return null;
    case 'write':
      return keyOf(ack.value);
  }
}

type Plan = { expect: 'event'; decision: 'accepted' | 'rejected'; apply: () => void } | { expect: 'skip' };

/** What the agent should do with `value` on `node`, or skip when it would make no event or would suspend. */
function plan(m: Model, node: string, value: string | Uint8Array): Plan {
  const applyTesting = (d: NodeDecoded<TestingMessage>, extra: () => void): Plan => {
    if (d.kind === 'empty') return { expect: 'skip' };
    if (d.kind === 'rejected') return { expect: 'event', decision: 'rejected', apply: extra };
    // Capabilities change flags only, a clock only the skew: neither the pending command nor what control/shutdown left.
    if (!isCommand(d.value)) return { expect: 'event', decision: 'accepted', apply: extra };
    const c = d.value;
    if (c.when === 'now' && c.action === 'suspend') return { expect: 'skip' };
    // A delayed step would happen after the model moved on.
    if ((c.ackAfterMs ?? 0) > 0 || (c.actAfterMs ?? 0) > 0) return { expect: 'skip' };
    return {
      expect: 'event',
      decision: 'accepted',
      apply: () => {
        extra();
        m.shutdownLeft = undefined;
        m.pending = c.when === 'onshutdown' ? c : null;
        if (c.when === 'now' && c.action !== 'ignore') m.actions.push(c.action);
      },
    };
  };
  if (node === TESTING_NODE) return applyTesting(decodeTesting(value), () => {});
  if (node === SHUTDOWN_NODE) {
    const key = keyOf(value);
    if (key === m.shutdownLeft) return { expect: 'skip' };
    const d = decodeShutdown(value);
    if (d.kind === 'empty') return { expect: 'skip' };
    if (d.kind === 'rejected')
      return {
        expect: 'event',
        decision: 'rejected',
        apply: () => {
          m.shutdownLeft = key;
        },
      };
    const ack = m.pending?.ack ?? { kind: 'ok' };
    const action = m.pending?.action ?? d.value;
    if (action === 'suspend') return { expect: 'skip' };
    return {
      expect: 'event',
      decision: 'accepted',
      apply: () => {
        m.shutdownLeft = ackResult(ack, key);
        m.pending = null;
        if (action !== 'ignore') m.actions.push(action);
      },
    };
  }
  const d = decodeVmData(value);
  if (d.kind === 'empty') return { expect: 'skip' };
  const key = keyOf(value);
  if (d.kind === 'rejected')
    return key === m.vmdataKey
      ? { expect: 'skip' }
      : {
          expect: 'event',
          decision: 'rejected',
          apply: () => {
            m.vmdataKey = key;
          },
        };
  if (d.value.id === m.vmdataId || d.value.message.kind === 'empty') return { expect: 'skip' };
  const id = d.value.id;
  return applyTesting(d.value.message, () => {
    m.vmdataId = id;
    m.vmdataKey = key;
  });
}

test(`agent loop: ${AGENT_MESSAGES} random and mutated messages on the three nodes, then valid ones still work (seed ${SEED})`, async (t) => {
  const f = await startFixture();
  const g = new Gen(prng(SEED ^ 0xa5a5a5a5));
  const m: Model = { pending: null, shutdownLeft: '', vmdataId: null, vmdataKey: null, actions: [] };
  let sent = 0;
  let mismatches = 0;
  let vmId = 1;
  const started = Date.now();
  while (sent < AGENT_MESSAGES && mismatches < 5) {
    const node = g.pick([TESTING_NODE, TESTING_NODE, SHUTDOWN_NODE, VMDATA_TESTING_NODE]);
    let value = node === TESTING_NODE ? g.testing() : node === SHUTDOWN_NODE ? g.shutdown() : g.vmdata(vmId++);
    // xenstore carries at most 4096 bytes of path, NUL and value together (dom0 writes absolute paths).
    const room = 4096 - 1 - `${f.xs.store.home}/${node}`.length;
    const bytes = typeof value === 'string' ? encodeUtf8(value) : value;
    if (bytes.length > room) value = bytes.slice(0, room);
    const p = plan(m, node, value);
    if (p.expect === 'skip') continue;
    if (node === SHUTDOWN_NODE && !f.xs.store.exists(SHUTDOWN_NODE)) {
      // After a "delete" ack, dom0 recreates the node and gives it back to the guest (as libxl does).
      f.xs.store.write(SHUTDOWN_NODE, '');
      f.xs.store.setPerms(SHUTDOWN_NODE, ['n5']);
    }
    const before = { pending: f.agent.status.pending, actions: f.platform.actions.length };
    const e = await f.send(node, value);
    sent++;
    p.apply();
    const pendingNow = m.pending ? encodeCommand(m.pending) : '';
    const ok = e.decision === p.decision && f.agent.status.pending === pendingNow && f.platform.actions.join() === m.actions.join();
    if (!ok) {
      mismatches++;
      t.fail(
        `message ${sent} on ${node} ${show(value)}: expected ${p.decision}, pending ${pendingNow}, actions ...${m.actions.slice(-3).join()}; ` +
          `got ${e.decision} (${e.error}), pending ${f.agent.status.pending}, actions ...${f.platform.actions.slice(-3).join()}`,
      );
    }
    if (e.decision === 'rejected' && (f.agent.status.pending !== before.pending || f.platform.actions.length !== before.actions)) {
      mismatches++;
      t.fail(`rejected message ${show(value)} changed the agent's state`);
    }
  }
  t.equal(mismatches, 0, `${sent} messages: every decision, pending command and action as the model says (${Date.now() - started} ms)`);
  t.equal(f.agent.status.counters.errors, 0, 'no internal errors');
  t.equal(f.agent.status.counters.received, sent, 'every message counted once');

  // A burst with no waiting: coalesced watch events, nothing may break.
  for (let i = 0; i < 300; i++) {
    const node = g.pick([TESTING_NODE, SHUTDOWN_NODE, VMDATA_TESTING_NODE]);
    const v = node === TESTING_NODE ? g.testing() : node === SHUTDOWN_NODE ? g.shutdown() : g.vmdata(vmId++);
    const b = typeof v === 'string' ? encodeUtf8(v) : v;
    const room = 4096 - 1 - `${f.xs.store.home}/${node}`.length;
    f.xs.store.write(node, b.length > room ? b.slice(0, room) : v);
  }
  await new Promise((r) => setTimeout(r, 200));
  await f.agent.idle();
  t.ok(
    f.platform.lines.every((l) => l.startsWith('xtv-agent ') && !l.includes('\n')),
    'every console line is one line',
  );

  // Valid input after the storm: a fresh pending command and a shutdown request.
  f.xs.store.write(SHUTDOWN_NODE, '');
  f.xs.store.setPerms(SHUTDOWN_NODE, ['n5']);
  await f.send(TESTING_NODE, '{"when":"onshutdown","ack":"bogus-after-storm","action":"crash"}');
  t.equal(f.agent.status.pending, '{"when":"onshutdown","ack":"bogus-after-storm","action":"crash"}', 'a valid command is taken');
  const count = f.platform.actions.length;
  const e = await f.send(SHUTDOWN_NODE, 'reboot');
  t.deepEqual([e.decision, e.ack, e.action], ['accepted', 'write', 'crash'], 'and used on the next request');
  t.equal(f.xs.store.read(SHUTDOWN_NODE), 'bogus-after-storm', 'acked as asked');
  t.deepEqual(f.platform.actions.slice(count), ['crash']);
  const v = await f.send(VMDATA_TESTING_NODE, 'after-storm now:poweroff');
  t.deepEqual([v.id, v.action], ['after-storm', 'poweroff'], 'vm-data still served');
  t.ok(['ready', 'acting'].includes(f.report().state ?? ''), `state ${f.report().state}`);
  await f.close();
  t.end();
});

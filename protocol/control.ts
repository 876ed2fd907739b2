// The xtv control protocol: what dom0 (the toolstack or the harness) writes
// into a guest's xenstore nodes, and how those values are decoded. Pure code:
// no I/O, no Node APIs, no TextDecoder, because the same module runs inside
// the guest agent under QuickJS and inside the harness under Node, so the two
// can never disagree about what a message means.
//
// Three nodes, all relative to the guest's xenstore home:
//   control/shutdown      the toolstack's request (poweroff, reboot, halt, suspend, crash)
//   control/testing       a test's instruction (legacy now:X / next:X / X, or JSON)
//   vm-data/xtv/testing   the same instructions, "ID MESSAGE", for XAPI's VM.set_xenstore_data
// docs/guest-protocol.md is the prose version of this file.

import { encodeUtf8 } from './utf8.ts';

/**
 * Version of this protocol; the agent reports it under data/xtv/protocols.
 * 2: ackAfterMs / actAfterMs and capabilities messages (#16); an agent of 1
 * rejects them as unknown fields, so the harness checks before it sends one.
 * 3: clock messages and the continuity keys of the report (run-ms, domids,
 * suspended-at, resumed-at, clock-skew-ms; #17).
 */
export const CONTROL_PROTOCOL = 'xtv-control/3';
/** The version a message with delays or capabilities needs. */
export const PROTOCOL_WITH_TIME_AND_FEATURES = 2;
/** The version whose agent takes clock messages and reports its continuity. */
export const PROTOCOL_WITH_CONTINUITY = 3;

/** The control protocol version in an agent's `protocols` report ("xtv-control/3"), or null when it names none. */
export function controlProtocolVersion(protocols: string | null | undefined): number | null {
  const m = /(?:^|\s)xtv-control\/(\d+)(?:\s|$)/.exec(protocols ?? '');
  return m ? Number(m[1]) : null;
}

export const SHUTDOWN_NODE = 'control/shutdown';
export const TESTING_NODE = 'control/testing';
export const VMDATA_TESTING_NODE = 'vm-data/xtv/testing';
/** The agent's report subtree (see docs/guest-protocol.md). */
export const REPORT_DIR = 'data/xtv';
/** The node the image's patched kernel watches instead of control/shutdown
 *  (boot parameter xen_shutdown_node=data/xtv/kernel-shutdown). */
export const KERNEL_SHUTDOWN_NODE = 'data/xtv/kernel-shutdown';

/** Largest value xenstore carries (XENSTORE_PAYLOAD_MAX); longer input is rejected. */
export const MAX_MESSAGE_BYTES = 4096;
/** JSON messages are flat objects; anything nested deeper is refused before
 *  JSON.parse so that hostile input cannot exhaust QuickJS's native stack. */
export const MAX_JSON_DEPTH = 8;

export const SHUTDOWN_REQUESTS = ['poweroff', 'reboot', 'halt', 'suspend', 'crash'] as const;
export type ShutdownRequest = (typeof SHUTDOWN_REQUESTS)[number];

/** Actions the guest can perform. `ignore` only reports. */
export const ACTIONS = ['suspend', 'poweroff', 'reboot', 'halt', 'crash', 'ignore'] as const;
export type Action = (typeof ACTIONS)[number];
/** Actions allowed in the legacy forms (now:X, next:X, X). */
export const LEGACY_ACTIONS = ['suspend', 'poweroff', 'reboot', 'halt', 'crash'] as const;

export const WHENS = ['now', 'onshutdown'] as const;
export type When = (typeof WHENS)[number];

/** How the next control/shutdown request is acknowledged. */
export type Ack =
  | { kind: 'ok' } // write ""
  | { kind: 'none' } // leave the request in place
  | { kind: 'delete' } // remove the node
  | { kind: 'write'; value: string }; // write this (bogus) string

/** Which syntax a testing message used; reported, and kept for the harness's tests. */
export type TestingForm = 'legacy-now' | 'legacy-next' | 'bare' | 'json';

export interface TestingCommand {
  when: When;
  ack: Ack;
  action: Action;
  form: TestingForm;
  /** onshutdown only: acknowledge this many ms after reading the request (JSON "ackAfterMs"). */
  ackAfterMs?: number;
  /** Perform the action this many ms after acknowledging (now: after reading the message) (JSON "actAfterMs"). */
  actAfterMs?: number;
}

/**
 * The most a JSON message may delay its acknowledgement or its action: one
 * hour, above every toolstack window a test probes (xapi's
 * domain_shutdown_total_timeout and xenopsd's vm_suspend_timeout are 1200 s,
 * libxl's waits 60 s; docs/toolstack-behaviour.md#timeouts).
 */
export const MAX_DELAY_MS = 3_600_000;

/**
 * Capability flags a test can make the guest set, clear or remove, each the
 * node control/feature-NAME (Linux's drivers/xen/manage.c writes the first
 * three at boot; docs/toolstack-behaviour.md#guest-features says who reads
 * which): poweroff, reboot, suspend (xapi_vm_lifecycle.ml check_op_for_feature,
 * HVM guests), shutdown (same, beside poweroff), vcpu-hotplug (live vCPU
 * changes, HVM), balloon (squeezed sets no memory target without it).
 */
export const FEATURES = ['poweroff', 'reboot', 'suspend', 'shutdown', 'vcpu-hotplug', 'balloon'] as const;
export type Feature = (typeof FEATURES)[number];
/** true: write "1"; false: write "0"; null: remove the node. */
export type FeatureSetting = boolean | null;
/** The node a capability flag lives in. */
export function featureNode(f: Feature): string {
  return `control/feature-${f}`;
}
/** Where xapi reads why a guest cannot suspend (xapi_guest_agent.ml; only beside control/feature-suspend). */
export const CANT_SUSPEND_REASON_NODE = 'data/cant_suspend_reason';
/** Longest reason accepted: it must fit a guest's node (protocol/report-limits.ts) with room to spare. */
export const MAX_REASON_BYTES = 1024;

/**
 * A message that changes what the guest advertises instead of what it does:
 * {"features": {"suspend": false, ...}, "cantSuspendReason": "text" | null}.
 * Features are in FEATURES order; a reason of null removes the node.
 */
export interface CapabilityMessage {
  kind: 'capabilities';
  features: Array<[Feature, FeatureSetting]>;
  /** undefined: leave data/cant_suspend_reason alone; null: remove it. */
  cantSuspendReason?: string | null;
  form: 'json';
}

/**
 * A message that tells the guest dom0's wall clock, so that it reports how
 * far its own is off (#17, continuity): {"clock": MS}, MS dom0's time in ms
 * since the epoch as it wrote the message, a whole number; alone, with no
 * other field. The guest reports its clock minus MS as clock-skew-ms: the
 * true skew plus the message's transit (docs/guest-protocol.md).
 */
export interface ClockMessage {
  kind: 'clock';
  dom0Ms: number;
  form: 'json';
}

/** What control/testing (and vm-data/xtv/testing) carry: a command, capabilities, or dom0's clock. */
export type TestingMessage = TestingCommand | CapabilityMessage | ClockMessage;

export function isCapabilityMessage(m: TestingMessage): m is CapabilityMessage {
  return (m as CapabilityMessage).kind === 'capabilities';
}

export function isClockMessage(m: TestingMessage): m is ClockMessage {
  return (m as ClockMessage).kind === 'clock';
}

/** A command (when, ack, action): neither capabilities nor a clock. */
export function isCommand(m: TestingMessage): m is TestingCommand {
  return !isCapabilityMessage(m) && !isClockMessage(m);
}

export type ControlErrorCode =
  | 'too-long'
  | 'invalid-utf8'
  | 'blank'
  | 'unrecognised'
  | 'bad-json'
  | 'too-deep'
  | 'not-object'
  | 'unknown-field'
  | 'missing-field'
  | 'wrong-type'
  | 'bad-value'
  | 'bad-envelope'
  | 'bad-shutdown';

/** A rejected message: a stable code for programs, an exact sentence for people. */
export interface ControlError {
  code: ControlErrorCode;
  message: string;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: ControlError };

/** Result of decoding a node's value: nothing there, a message, or a rejection. */
export type NodeDecoded<T> = { kind: 'empty' } | { kind: 'message'; value: T } | { kind: 'rejected'; error: ControlError };

function fail(code: ControlErrorCode, message: string): { kind: 'rejected'; error: ControlError } {
  return { kind: 'rejected', error: { code, message } };
}

// ---------------------------------------------------------------------------
// Bytes and text

/** A node's raw value. Strings are taken as already-decoded text. */
export type RawValue = string | Uint8Array;

/**
 * Strict UTF-8 decoding (no TextDecoder under QuickJS). utf8.ts's decoder
 * replaces bad bytes with U+FFFD, which is right for reading but would let a
 * corrupted message pass as a different one; here a bad byte is a rejection.
 * Overlong forms,
 * surrogates, code points above U+10FFFF and truncated sequences are errors;
 * returns the byte offset of the first bad byte instead of a string.
 */
export function decodeUtf8Strict(bytes: Uint8Array): { ok: true; text: string } | { ok: false; offset: number } {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b0 = bytes[i]!;
    if (b0 < 0x80) {
      out += String.fromCharCode(b0);
      i++;
      continue;
    }
    let need: number;
    let cp: number;
    let min: number;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      need = 1;
      cp = b0 & 0x1f;
      min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      need = 2;
      cp = b0 & 0x0f;
      min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      need = 3;
      cp = b0 & 0x07;
      min = 0x10000;
    } else return { ok: false, offset: i };
    for (let k = 1; k <= need; k++) {
      const b = bytes[i + k];
      if (b === undefined || (b & 0xc0) !== 0x80) return { ok: false, offset: i };
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return { ok: false, offset: i };
    out += String.fromCodePoint(cp);
    i += need + 1;
  }
  return { ok: true, text: out };
}

/** UTF-8 encoding of a JS string (lone surrogates become U+FFFD); shared with the xenstore wire code. */
export { encodeUtf8 };

/** A short, printable rendering of a value for error messages and console lines. */
export function quoteValue(text: string, max = 64): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  return JSON.stringify(cut) + (text.length > max ? `... (${text.length} chars)` : '');
}

/** Checks size and UTF-8; returns the text or a rejection. */
function toText(raw: RawValue): { kind: 'text'; text: string } | { kind: 'rejected'; error: ControlError } {
  if (typeof raw === 'string') {
    const bytes = encodeUtf8(raw).length;
    if (bytes > MAX_MESSAGE_BYTES) return fail('too-long', `message too long: ${bytes} bytes (max ${MAX_MESSAGE_BYTES})`);
    return { kind: 'text', text: raw };
  }
  if (raw.length > MAX_MESSAGE_BYTES) return fail('too-long', `message too long: ${raw.length} bytes (max ${MAX_MESSAGE_BYTES})`);
  const d = decodeUtf8Strict(raw);
  if (!d.ok) return fail('invalid-utf8', `message is not valid UTF-8 (bad byte 0x${raw[d.offset]!.toString(16).padStart(2, '0')} at offset ${d.offset})`);
  return { kind: 'text', text: d.text };
}

// ---------------------------------------------------------------------------
// control/shutdown

/**
 * Decodes control/shutdown. "" (or an absent node, passed as "") is nothing to
 * do: it is what an acknowledged request leaves behind. The match is exact,
 * as in Linux's drivers/xen/manage.c: no trimming, no case folding.
 */
export function decodeShutdown(raw: RawValue): NodeDecoded<ShutdownRequest> {
  const t = toText(raw);
  if (t.kind === 'rejected') return t;
  if (t.text === '') return { kind: 'empty' };
  if ((SHUTDOWN_REQUESTS as readonly string[]).includes(t.text)) return { kind: 'message', value: t.text as ShutdownRequest };
  return fail('bad-shutdown', `unknown shutdown request ${quoteValue(t.text)} (expected one of: ${SHUTDOWN_REQUESTS.join(', ')})`);
}

// ---------------------------------------------------------------------------
// control/testing

const WHITESPACE = /^[ \t\r\n]+|[ \t\r\n]+$/g;

function isOneOf<T extends string>(list: readonly T[], v: string): v is T {
  return (list as readonly string[]).includes(v);
}

/** "ok" | "none" | "delete" | any other string (written verbatim; "" counts as ok). */
export function ackFromString(s: string): Ack {
  if (s === 'ok' || s === '') return { kind: 'ok' };
  if (s === 'none') return { kind: 'none' };
  if (s === 'delete') return { kind: 'delete' };
  return { kind: 'write', value: s };
}

/** The JSON spelling of an ack. A written string that collides with a keyword
 *  cannot be expressed; ackFromString(ackToString(a)) is a for all others. */
export function ackToString(a: Ack): string {
  return a.kind === 'write' ? a.value : a.kind;
}

/** Depth of the deepest [ or { in a JSON text, ignoring string contents. */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped char
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/**
 * Checks JSON syntax (RFC 8259) and names the first error in words of our
 * own. JSON.parse's messages differ between engines (V8 quotes the input,
 * QuickJS does not), and the guest and the harness must report the same
 * sentence; JSON.parse is only called once this check has passed.
 */
export function jsonSyntaxError(text: string): string | null {
  let i = 0;
  const at = (what: string): string => {
    if (i >= text.length) return `bad JSON: unexpected end of input (expected ${what})`;
    return `bad JSON at offset ${i}: unexpected ${quoteValue(text[i]!)} (expected ${what})`;
  };
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const digits = (): boolean => {
    const from = i;
    while (i < text.length && text[i]! >= '0' && text[i]! <= '9') i++;
    return i > from;
  };
  const str = (): string | null => {
    i++; // the opening quote
    for (;;) {
      if (i >= text.length) return at('a closing quote');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return null;
      }
      if (c < 0x20) return at('no raw control character in a string');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
          continue;
        }
        if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          i += 6;
          continue;
        }
        i++;
        return at('a valid escape');
      }
      i++;
    }
  };
  const value = (): string | null => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return null;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') return at('a string key');
        const e = str();
        if (e) return e;
        ws();
        if (text[i] !== ':') return at('":"');
        i++;
        const v = value();
        if (v) return v;
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return null;
        }
        return at('"," or "}"');
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return null;
      }
      for (;;) {
        const v = value();
        if (v) return v;
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return null;
        }
        return at('"," or "]"');
      }
    }
    if (c === '"') return str();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return null;
      }
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      if (c === '-') i++;
      if (text[i] === '0') i++;
      else if (!digits()) return at('a digit');
      if (text[i] === '.') {
        i++;
        if (!digits()) return at('a digit');
      }
      if (text[i] === 'e' || text[i] === 'E') {
        i++;
        if (text[i] === '+' || text[i] === '-') i++;
        if (!digits()) return at('a digit');
      }
      return null;
    }
    return at('a JSON value');
  };
  const e = value();
  if (e) return e;
  ws();
  return i < text.length ? at('end of input') : null;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

const COMMAND_FIELDS = ['when', 'ack', 'action', 'ackAfterMs', 'actAfterMs'] as const;
const CAPABILITY_FIELDS = ['features', 'cantSuspendReason'] as const;
const JSON_FIELDS = [...COMMAND_FIELDS, ...CAPABILITY_FIELDS, 'clock'] as const;

function decodeClock(obj: Record<string, unknown>): NodeDecoded<ClockMessage> {
  const stray = Object.keys(obj).find((k) => k !== 'clock');
  if (stray !== undefined) return fail('bad-value', `field ${quoteValue(stray)} cannot be in a clock message (send it alone)`);
  const v = obj.clock;
  if (typeof v !== 'number') return fail('wrong-type', `field "clock" must be a number, got ${typeName(v)}`);
  if (!Number.isSafeInteger(v) || v < 0) return fail('bad-value', `field "clock" must be a whole number of ms since the epoch, got ${v}`);
  return { kind: 'message', value: { kind: 'clock', dom0Ms: v, form: 'json' } };
}

/** A delay field: absent, or a whole number of ms in 0..MAX_DELAY_MS. */
function delayField(obj: Record<string, unknown>, name: string): number | undefined | ControlError {
  if (!Object.prototype.hasOwnProperty.call(obj, name)) return undefined;
  const v = obj[name];
  if (typeof v !== 'number') return { code: 'wrong-type', message: `field "${name}" must be a number, got ${typeName(v)}` };
  if (!Number.isInteger(v) || v < 0 || v > MAX_DELAY_MS)
    return { code: 'bad-value', message: `field "${name}" must be a whole number of ms from 0 to ${MAX_DELAY_MS}, got ${v}` };
  return v;
}

function decodeCapabilities(obj: Record<string, unknown>): NodeDecoded<CapabilityMessage> {
  const stray = Object.keys(obj).find((k) => isOneOf(COMMAND_FIELDS, k));
  if (stray !== undefined) return fail('bad-value', `field ${quoteValue(stray)} cannot be in a capabilities message (send features and commands separately)`);
  const features: Array<[Feature, FeatureSetting]> = [];
  if (Object.prototype.hasOwnProperty.call(obj, 'features')) {
    const f = obj.features;
    if (typeof f !== 'object' || f === null || Array.isArray(f)) return fail('wrong-type', `field "features" must be an object, got ${typeName(f)}`);
    const given = f as Record<string, unknown>;
    for (const key of Object.keys(given)) {
      if (!isOneOf(FEATURES, key)) return fail('bad-value', `unknown feature ${quoteValue(key)} (expected one of: ${FEATURES.join(', ')})`);
      const v = given[key];
      if (typeof v !== 'boolean' && v !== null) return fail('wrong-type', `feature "${key}" must be true, false or null, got ${typeName(v)}`);
    }
    for (const name of FEATURES) if (Object.prototype.hasOwnProperty.call(given, name)) features.push([name, given[name] as FeatureSetting]);
    if (features.length === 0) return fail('bad-value', 'field "features" names no feature');
  }
  const msg: CapabilityMessage = { kind: 'capabilities', features, form: 'json' };
  if (Object.prototype.hasOwnProperty.call(obj, 'cantSuspendReason')) {
    const r = obj.cantSuspendReason;
    if (typeof r !== 'string' && r !== null) return fail('wrong-type', `field "cantSuspendReason" must be a string or null, got ${typeName(r)}`);
    if (typeof r === 'string' && encodeUtf8(r).length > MAX_REASON_BYTES)
      return fail('bad-value', `field "cantSuspendReason" is ${encodeUtf8(r).length} bytes (max ${MAX_REASON_BYTES})`);
    msg.cantSuspendReason = r;
  }
  return { kind: 'message', value: msg };
}

function decodeJsonTesting(text: string): NodeDecoded<TestingMessage> {
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) return fail('too-deep', `JSON nested too deeply (depth ${depth}, max ${MAX_JSON_DEPTH})`);
  const syntax = jsonSyntaxError(text);
  if (syntax) return fail('bad-json', syntax);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // Not reached when jsonSyntaxError is right; kept so that no input can throw.
    return fail('bad-json', `bad JSON: ${e instanceof Error ? e.message : String(e)}`.replace(/[\r\n]/g, ' '));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return fail('not-object', `JSON message must be an object, got ${typeName(parsed)}`);
  }
  const obj = parsed as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!isOneOf(JSON_FIELDS, key)) return fail('unknown-field', `unknown field ${quoteValue(key)} (allowed: ${JSON_FIELDS.join(', ')})`);
  }
  if (Object.prototype.hasOwnProperty.call(obj, 'clock')) return decodeClock(obj);
  if (Object.keys(obj).some((k) => isOneOf(CAPABILITY_FIELDS, k))) return decodeCapabilities(obj);
  const field = (name: string): string | undefined | ControlError => {
    if (!Object.prototype.hasOwnProperty.call(obj, name)) return undefined;
    const v = obj[name];
    if (typeof v !== 'string') return { code: 'wrong-type', message: `field "${name}" must be a string, got ${typeName(v)}` };
    return v;
  };
  const action = field('action');
  const when = field('when');
  const ack = field('ack');
  for (const v of [action, when, ack]) if (typeof v === 'object') return { kind: 'rejected', error: v };
  if (action === undefined) return fail('missing-field', 'missing field "action"');
  if (!isOneOf(ACTIONS, action as string)) return fail('bad-value', `unknown action ${quoteValue(action as string)} (expected one of: ${ACTIONS.join(', ')})`);
  const w = (when as string | undefined) ?? 'now';
  if (!isOneOf(WHENS, w)) return fail('bad-value', `unknown when ${quoteValue(w)} (expected now or onshutdown)`);
  const ackAfterMs = delayField(obj, 'ackAfterMs');
  const actAfterMs = delayField(obj, 'actAfterMs');
  for (const v of [ackAfterMs, actAfterMs]) if (typeof v === 'object') return { kind: 'rejected', error: v };
  if (ackAfterMs !== undefined && w !== 'onshutdown')
    return fail('bad-value', 'field "ackAfterMs" needs when "onshutdown" (there is no request to acknowledge now)');
  const value: TestingCommand = { when: w, ack: ackFromString((ack as string | undefined) ?? 'ok'), action: action as Action, form: 'json' };
  if (ackAfterMs !== undefined) value.ackAfterMs = ackAfterMs as number;
  if (actAfterMs !== undefined) value.actAfterMs = actAfterMs as number;
  return { kind: 'message', value };
}

/**
 * Decodes control/testing. Rules (docs/guest-protocol.md):
 * - "" is nothing to do (it is the agent's own acknowledgement);
 * - surrounding spaces, tabs, CR and LF are ignored; a value made only of them is rejected as blank;
 * - a value starting with "{" is JSON: a command {"when","ack","action","ackAfterMs","actAfterMs"},
 *   action required, when defaults to "now", ack to "ok", the delays to 0; or capabilities
 *   {"features": {NAME: true|false|null}, "cantSuspendReason": "text"|null}; or dom0's clock
 *   {"clock": MS}, alone; unknown fields and values of the wrong type are rejected;
 * - otherwise now:X, next:X or X, X one of suspend, poweroff, reboot, halt, crash (exact case).
 */
export function decodeTesting(raw: RawValue): NodeDecoded<TestingMessage> {
  const t = toText(raw);
  if (t.kind === 'rejected') return t;
  if (t.text === '') return { kind: 'empty' };
  const text = t.text.replace(WHITESPACE, '');
  if (text === '') return fail('blank', 'message is blank (only whitespace)');
  if (text.startsWith('{')) return decodeJsonTesting(text);
  const m = /^(now|next):(.*)$/s.exec(text);
  const word = m ? m[2]! : text;
  if (isOneOf(LEGACY_ACTIONS, word)) {
    const form: TestingForm = m ? (m[1] === 'now' ? 'legacy-now' : 'legacy-next') : 'bare';
    return { kind: 'message', value: { when: form === 'legacy-next' ? 'onshutdown' : 'now', ack: { kind: 'ok' }, action: word, form } };
  }
  if (m) return fail('bad-value', `unknown action ${quoteValue(word)} in ${m[1]}:X (expected one of: ${LEGACY_ACTIONS.join(', ')})`);
  return fail('unrecognised', `unrecognised message ${quoteValue(text)} (expected now:X, next:X, X or a JSON object)`);
}

/** One line that says what a command will do, for reports and console lines. */
export function describeCommand(c: TestingCommand): string {
  const delays = `${c.ackAfterMs !== undefined ? ` ack-after=${c.ackAfterMs}ms` : ''}${c.actAfterMs !== undefined ? ` act-after=${c.actAfterMs}ms` : ''}`;
  return c.when === 'now' ? `now action=${c.action}${delays}` : `onshutdown ack=${ackToString(c.ack)} action=${c.action}${delays}`;
}

/** One line for a capabilities message: "features suspend=0 poweroff=removed cant-suspend-reason=\"busy\"". */
export function describeCapabilities(m: CapabilityMessage): string {
  const parts = m.features.map(([f, v]) => `${f}=${v === null ? 'removed' : v ? '1' : '0'}`);
  if (m.cantSuspendReason !== undefined) parts.push(`cant-suspend-reason=${m.cantSuspendReason === null ? 'removed' : quoteValue(m.cantSuspendReason)}`);
  return `features ${parts.join(' ')}`;
}

/** describeCommand or describeCapabilities, whichever the message is. */
export function describeMessage(m: TestingMessage): string {
  if (isClockMessage(m)) return `clock dom0=${m.dom0Ms}`;
  return isCapabilityMessage(m) ? describeCapabilities(m) : describeCommand(m);
}

// ---------------------------------------------------------------------------
// vm-data/xtv/testing: "ID MESSAGE"

/** Message ids on the vm-data node: 1 to 64 of [A-Za-z0-9._:-]. */
export const VMDATA_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

export interface VmDataMessage {
  id: string;
  /** The testing message as decoded; 'empty' when the id carries no message. */
  message: NodeDecoded<TestingMessage>;
}

/**
 * Decodes vm-data/xtv/testing. XAPI's VM.set_xenstore_data rewrites the whole
 * vm-data subtree on every call, so the value is "ID MESSAGE": the agent acts
 * on a message once per id and treats a rewrite with the same id as nothing
 * new. MESSAGE is everything after the first space and is decoded exactly as
 * control/testing would decode it (so it may itself be rejected; the id is
 * still known then and the rejection is reported once).
 */
export function decodeVmData(raw: RawValue): NodeDecoded<VmDataMessage> {
  const t = toText(raw);
  if (t.kind === 'rejected') return t;
  if (t.text === '') return { kind: 'empty' };
  const sp = t.text.indexOf(' ');
  const id = sp < 0 ? t.text : t.text.slice(0, sp);
  if (sp < 0) return fail('bad-envelope', `vm-data message must be "ID MESSAGE", found no space in ${quoteValue(t.text)}`);
  if (!VMDATA_ID_PATTERN.test(id)) return fail('bad-envelope', `bad vm-data message id ${quoteValue(id)} (1 to 64 of A-Z a-z 0-9 . _ : -)`);
  return { kind: 'message', value: { id, message: decodeTesting(t.text.slice(sp + 1)) } };
}

// ---------------------------------------------------------------------------
// Encoders (the harness's side). They build any message, valid or not: the
// harness uses the malformed ones to test rejection.

export type TestingSpec =
  /** now:X / next:X (X is not checked: pass a bad one to test rejection). */
  | { form: 'legacy'; when: 'now' | 'next'; action: string }
  /** X alone (oldest form). */
  | { form: 'bare'; action: string }
  /** The JSON form. Omitted fields are omitted from the text. */
  | { form: 'json'; when?: string; ack?: string | Ack; action?: string; ackAfterMs?: number; actAfterMs?: number }
  /** A capabilities message (features: true "1", false "0", null removed). */
  | { form: 'capabilities'; features?: Partial<Record<Feature, FeatureSetting>>; cantSuspendReason?: string | null }
  /** dom0's clock, ms since the epoch. */
  | { form: 'clock'; dom0Ms: number }
  /** Any JSON value at all, serialised as is (malformed messages, extra fields). */
  | { form: 'json-raw'; value: unknown }
  /** Exactly this text. */
  | { form: 'raw'; text: string };

/** Builds a control/testing value. */
export function encodeTesting(spec: TestingSpec): string {
  switch (spec.form) {
    case 'legacy':
      return `${spec.when}:${spec.action}`;
    case 'bare':
      return spec.action;
    case 'json': {
      // Fixed key order so that the same spec always gives the same bytes.
      const o: Record<string, string | number> = {};
      if (spec.when !== undefined) o.when = spec.when;
      if (spec.ack !== undefined) o.ack = typeof spec.ack === 'string' ? spec.ack : ackToString(spec.ack);
      if (spec.action !== undefined) o.action = spec.action;
      if (spec.ackAfterMs !== undefined) o.ackAfterMs = spec.ackAfterMs;
      if (spec.actAfterMs !== undefined) o.actAfterMs = spec.actAfterMs;
      return JSON.stringify(o);
    }
    case 'capabilities': {
      const o: { features?: Record<string, FeatureSetting>; cantSuspendReason?: string | null } = {};
      if (spec.features !== undefined) {
        o.features = {};
        for (const f of FEATURES) if (spec.features[f] !== undefined) o.features[f] = spec.features[f]!;
      }
      if (spec.cantSuspendReason !== undefined) o.cantSuspendReason = spec.cantSuspendReason;
      return JSON.stringify(o);
    }
    case 'clock':
      return JSON.stringify({ clock: spec.dom0Ms });
    case 'json-raw':
      return JSON.stringify(spec.value) ?? 'undefined';
    case 'raw':
      return spec.text;
  }
}

/** The canonical JSON text of a decoded command (used for the report's `pending`). */
export function encodeCommand(c: TestingCommand): string {
  return encodeTesting({
    form: 'json',
    when: c.when,
    ack: c.ack,
    action: c.action,
    ...(c.ackAfterMs !== undefined ? { ackAfterMs: c.ackAfterMs } : {}),
    ...(c.actAfterMs !== undefined ? { actAfterMs: c.actAfterMs } : {}),
  });
}

/** The canonical JSON text of a capabilities message. */
export function encodeCapabilities(m: CapabilityMessage): string {
  return encodeTesting({
    form: 'capabilities',
    ...(m.features.length > 0 ? { features: Object.fromEntries(m.features) } : {}),
    ...(m.cantSuspendReason !== undefined ? { cantSuspendReason: m.cantSuspendReason } : {}),
  });
}

/** Builds a vm-data/xtv/testing value. The id is not checked, so a bad one can be sent. */
export function encodeVmData(id: string, message: string | TestingSpec): string {
  return `${id} ${typeof message === 'string' ? message : encodeTesting(message)}`;
}

/** Validates a message before sending it (the harness's `xtv send`). */
export function validateTesting(text: RawValue): Decoded<TestingMessage> {
  const d = decodeTesting(text);
  if (d.kind === 'message') return { ok: true, value: d.value };
  if (d.kind === 'empty') return { ok: false, error: { code: 'blank', message: 'message is empty' } };
  return { ok: false, error: d.error };
}

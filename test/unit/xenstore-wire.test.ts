// The xenstore wire format: golden bytes for every request, every reply
// parsed whole and one byte at a time, framing edge cases.
import test from 'tape';
import {
  FrameDecoder,
  XS_OPS,
  XsWireError,
  encodeFrame,
  encodeReplyPayload,
  encodeRequestPayload,
  formatPerm,
  opOfType,
  parsePerm,
  parseReplyPayload,
  parseRequestPayload,
  splitNulTerminated,
  type DecodeResult,
  type Frame,
  type XsOp,
  type XsReply,
  type XsRequest,
} from '../../protocol/xenstore-wire.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
/** The 16-byte header in hex: type, req_id, tx_id, len as little-endian u32. */
const hdr = (type: number, reqId: number, txId: number, len: number): string =>
  [type, reqId, txId, len].map((n) => Buffer.from(new Uint32Array([n]).buffer).toString('hex')).join('');
const str = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

test('opcode table matches xs_wire.h', (t) => {
  const expected: Record<string, number> = {
    DEBUG: 0,
    DIRECTORY: 1,
    READ: 2,
    GET_PERMS: 3,
    WATCH: 4,
    UNWATCH: 5,
    TRANSACTION_START: 6,
    TRANSACTION_END: 7,
    INTRODUCE: 8,
    RELEASE: 9,
    GET_DOMAIN_PATH: 10,
    WRITE: 11,
    MKDIR: 12,
    RM: 13,
    SET_PERMS: 14,
    WATCH_EVENT: 15,
    ERROR: 16,
    IS_DOMAIN_INTRODUCED: 17,
    RESUME: 18,
    SET_TARGET: 19,
    RESET_WATCHES: 21,
    DIRECTORY_PART: 22,
  };
  t.deepEqual({ ...XS_OPS }, expected);
  for (const [name, code] of Object.entries(expected)) t.equal(opOfType(code), name, `type ${code} is ${name}`);
  t.equal(opOfType(20), undefined, '20 is unused');
  t.equal(opOfType(23), undefined);
  t.end();
});

// Each request with the exact bytes libxenstore would send (req_id 7, tx_id 3).
const requestGolden: Array<[XsRequest, string]> = [
  [{ op: 'READ', path: '/local/domain/5/name' }, str('/local/domain/5/name\0')],
  [{ op: 'DIRECTORY', path: 'control' }, str('control\0')],
  [{ op: 'GET_PERMS', path: '/a' }, str('/a\0')],
  [{ op: 'MKDIR', path: 'data/x' }, str('data/x\0')],
  [{ op: 'RM', path: 'control/shutdown' }, str('control/shutdown\0')],
  [{ op: 'WRITE', path: 'control/shutdown', value: new TextEncoder().encode('poweroff') }, str('control/shutdown\0poweroff')],
  [{ op: 'WRITE', path: 'a', value: new Uint8Array(0) }, str('a\0')],
  [{ op: 'WRITE', path: 'a', value: new Uint8Array([0, 255, 10]) }, str('a\0') + '00ff0a'],
  [{ op: 'SET_PERMS', path: '/a', perms: ['n0', 'r5', 'b7'] }, str('/a\0n0\0r5\0b7\0')],
  [{ op: 'WATCH', path: 'control/shutdown', token: 'tok' }, str('control/shutdown\0tok\0')],
  [{ op: 'UNWATCH', path: '@releaseDomain', token: '' }, str('@releaseDomain\0\0')],
  [{ op: 'TRANSACTION_START' }, '00'],
  [{ op: 'TRANSACTION_END', commit: true }, str('T\0')],
  [{ op: 'TRANSACTION_END', commit: false }, str('F\0')],
  [{ op: 'GET_DOMAIN_PATH', domid: 5 }, str('5\0')],
  [{ op: 'IS_DOMAIN_INTRODUCED', domid: 12 }, str('12\0')],
  [{ op: 'RELEASE', domid: 3 }, str('3\0')],
  [{ op: 'RESUME', domid: 3 }, str('3\0')],
  [{ op: 'SET_TARGET', domid: 3, target: 4 }, str('3\x004\0')],
  [{ op: 'INTRODUCE', domid: 3, mfn: '1234', port: 9 }, str('3\x001234\x009\0')],
  [{ op: 'RESET_WATCHES' }, '00'],
  [{ op: 'DIRECTORY_PART', path: '/local/domain', offset: 42 }, str('/local/domain\x0042\0')],
  [{ op: 'DEBUG', args: ['print', 'hi'] }, str('print\0hi\0')],
];

test('request encoding: golden bytes for every op, and the server parses them back', (t) => {
  for (const [req, payloadHex] of requestGolden) {
    const payload = encodeRequestPayload(req);
    t.equal(hex(payload), payloadHex, `${req.op} payload`);
    const frame = encodeFrame({ op: req.op, reqId: 7, txId: 3, payload });
    t.equal(hex(frame), hdr(XS_OPS[req.op], 7, 3, payload.length) + payloadHex, `${req.op} frame`);
    t.deepEqual(parseRequestPayload(req.op, payload), req, `${req.op} parses back`);
  }
  t.end();
});

test('request encoding: UTF-8 paths and values', (t) => {
  const payload = encodeRequestPayload({ op: 'WRITE', path: 'data/é', value: new TextEncoder().encode('☃') });
  t.equal(hex(payload), '646174612fc3a900e29883');
  t.end();
});

// Each reply with the bytes C xenstored sends.
const replyGolden: Array<[XsReply, string]> = [
  [{ op: 'READ', value: new TextEncoder().encode('poweroff') }, str('poweroff')],
  [{ op: 'READ', value: new Uint8Array(0) }, ''],
  [{ op: 'DIRECTORY', entries: ['shutdown', 'feature-poweroff'] }, str('shutdown\0feature-poweroff\0')],
  [{ op: 'DIRECTORY', entries: [] }, ''],
  [{ op: 'GET_PERMS', entries: ['n5', 'r0'] }, str('n5\0r0\0')],
  [{ op: 'DIRECTORY_PART', generation: '17', children: ['a', 'b'], complete: true }, str('17\0a\0b\0\0')],
  [{ op: 'DIRECTORY_PART', generation: '17', children: ['a'], complete: false }, str('17\0a\0')],
  [{ op: 'DIRECTORY_PART', generation: '3', children: [], complete: true }, str('3\0\0')],
  [{ op: 'TRANSACTION_START', txId: 42 }, str('42\0')],
  [{ op: 'GET_DOMAIN_PATH', path: '/local/domain/5' }, str('/local/domain/5\0')],
  [{ op: 'IS_DOMAIN_INTRODUCED', introduced: true }, str('T\0')],
  [{ op: 'IS_DOMAIN_INTRODUCED', introduced: false }, str('F\0')],
  [{ op: 'ERROR', code: 'ENOENT' }, str('ENOENT\0')],
  [{ op: 'WATCH_EVENT', path: 'control/shutdown', token: 'tok', extra: [] }, str('control/shutdown\0tok\0')],
  [{ op: 'DEBUG', text: 'x' }, str('x\0')],
  ...(
    ['WRITE', 'MKDIR', 'RM', 'SET_PERMS', 'WATCH', 'UNWATCH', 'TRANSACTION_END', 'INTRODUCE', 'RELEASE', 'RESUME', 'SET_TARGET', 'RESET_WATCHES'] as const
  ).map((op): [XsReply, string] => [{ op }, str('OK\0')]),
];

function decodeAll(dec: FrameDecoder, bytes: Uint8Array, byteAtATime: boolean): DecodeResult[] {
  if (!byteAtATime) return dec.push(bytes);
  const out: DecodeResult[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(...dec.push(bytes.subarray(i, i + 1)));
  return out;
}

test('every reply: golden bytes, parsed whole and one byte at a time', (t) => {
  for (const [reply, payloadHex] of replyGolden) {
    const payload = encodeReplyPayload(reply);
    t.equal(hex(payload), payloadHex, `${reply.op} payload`);
    const wire = encodeFrame({ op: reply.op, reqId: 9, txId: 0, payload });
    for (const byteAtATime of [false, true]) {
      const dec = new FrameDecoder();
      const got = decodeAll(dec, wire, byteAtATime);
      t.equal(got.length, 1, `${reply.op}: one frame (${byteAtATime ? 'byte at a time' : 'whole'})`);
      const item = got[0]!;
      if (!item.ok) {
        t.fail(item.error.message);
        continue;
      }
      t.equal(item.frame.op, reply.op);
      t.equal(item.frame.reqId, 9);
      t.deepEqual(parseReplyPayload(item.frame.op, item.frame.payload), reply, `${reply.op} parses back`);
      t.equal(dec.buffered, 0, 'nothing left over');
    }
  }
  t.end();
});

test('replies from other servers: OK without NUL, watch events with extra fields', (t) => {
  t.deepEqual(parseReplyPayload('WRITE', unhex(str('OK'))), { op: 'WRITE' });
  t.deepEqual(parseReplyPayload('WATCH_EVENT', unhex(str('a\0t\0extra\0'))), { op: 'WATCH_EVENT', path: 'a', token: 't', extra: ['extra'] });
  t.end();
});

test('malformed reply payloads are typed errors', (t) => {
  const bad: Array<[XsOp, string]> = [
    ['WRITE', 'NO\0'],
    ['WRITE', ''],
    ['TRANSACTION_START', 'abc\0'],
    ['TRANSACTION_START', ''],
    ['WATCH_EVENT', 'onlypath\0'],
    ['IS_DOMAIN_INTRODUCED', 'X\0'],
    ['DIRECTORY_PART', ''],
    ['ERROR', 'A\0B\0'],
  ];
  for (const [op, payload] of bad) {
    t.throws(
      () => parseReplyPayload(op, unhex(str(payload))),
      (e: unknown) => e instanceof XsWireError && e.code === 'malformed-payload' && e.message.includes(op),
      `${op} ${JSON.stringify(payload)}`,
    );
  }
  t.end();
});

test('malformed request payloads are typed errors', (t) => {
  const bad: Array<[XsOp, string]> = [
    ['READ', ''],
    ['READ', '/a'],
    ['WRITE', '/a'],
    ['WATCH', '/a\0'],
    ['TRANSACTION_END', 'X\0'],
    ['GET_DOMAIN_PATH', 'x\0'],
    ['GET_DOMAIN_PATH', '99999999999\0'],
    ['WATCH_EVENT', 'a\0b\0'],
  ];
  for (const [op, payload] of bad) {
    t.throws(
      () => parseRequestPayload(op, unhex(str(payload))),
      (e: unknown) => e instanceof XsWireError && e.code === 'malformed-payload',
      `${op} ${JSON.stringify(payload)}`,
    );
  }
  t.end();
});

test('several frames in one chunk, split anywhere', (t) => {
  const frames: Frame[] = [
    { op: 'READ', reqId: 1, txId: 0, payload: unhex(str('value')) },
    { op: 'WATCH_EVENT', reqId: 0, txId: 0, payload: unhex(str('a\0t\0')) },
    { op: 'WRITE', reqId: 2, txId: 5, payload: unhex(str('OK\0')) },
    { op: 'READ', reqId: 3, txId: 0, payload: new Uint8Array(0) },
    { op: 'READ', reqId: 4, txId: 0, payload: new Uint8Array(4096).fill(0x41) },
  ];
  const wire = Buffer.concat(frames.map(encodeFrame));
  // Every split point into two chunks, then random chunkings.
  const chunkings: number[][] = [];
  for (let cut = 0; cut <= wire.length; cut += 7) chunkings.push([cut]);
  let seed = 1;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (let k = 0; k < 50; k++) chunkings.push(Array.from({ length: 1 + rand(10) }, () => rand(wire.length)).sort((a, b) => a - b));
  let allOk = true;
  for (const cuts of chunkings) {
    const dec = new FrameDecoder();
    const got: DecodeResult[] = [];
    let prev = 0;
    for (const c of [...cuts, wire.length]) {
      got.push(...dec.push(new Uint8Array(wire.subarray(prev, c))));
      prev = c;
    }
    const ok =
      got.length === frames.length && got.every((g, i) => g.ok && g.frame.reqId === frames[i]!.reqId && hex(g.frame.payload) === hex(frames[i]!.payload));
    if (!ok) {
      allOk = false;
      t.fail(`chunking at ${cuts.join(',')} gave ${got.length} frames`);
    }
  }
  t.ok(allOk, `${chunkings.length} chunkings all decode the same ${frames.length} frames`);
  const dec = new FrameDecoder();
  t.equal(dec.push(new Uint8Array(wire)).length, frames.length, 'all in one chunk');
  t.end();
});

test('a length over 4096 is fatal; the decoder stops', (t) => {
  const dec = new FrameDecoder();
  const bad = unhex(hdr(2, 1, 0, 4097));
  const got = dec.push(bad);
  t.equal(got.length, 1);
  const e = got[0]!;
  t.ok(!e.ok && e.error.code === 'payload-too-long' && e.error.fatal, 'payload-too-long, fatal');
  t.ok(!e.ok && /4097/.test(e.error.message), 'message names the length');
  t.ok(dec.failed, 'decoder failed');
  t.deepEqual(dec.push(encodeFrame({ op: 'READ', reqId: 2, txId: 0, payload: new Uint8Array(0) })), [], 'ignores later bytes');
  t.end();
});

test('an unknown type is reported and skipped by its length', (t) => {
  const dec = new FrameDecoder();
  const wire = Buffer.concat([unhex(hdr(99, 5, 0, 3) + str('abc')), encodeFrame({ op: 'WRITE', reqId: 6, txId: 0, payload: unhex(str('OK\0')) })]);
  const got = decodeAll(dec, new Uint8Array(wire), true);
  t.equal(got.length, 2);
  const [a, b] = got;
  t.ok(a && !a.ok && a.error.code === 'unknown-type' && !a.error.fatal && a.error.header?.reqId === 5, 'unknown-type with its header');
  t.ok(b && b.ok && b.frame.reqId === 6, 'the next frame still decodes');
  t.end();
});

test('encodeFrame refuses payloads over 4096 bytes', (t) => {
  t.doesNotThrow(() => encodeFrame({ op: 'WRITE', reqId: 1, txId: 0, payload: new Uint8Array(4096) }));
  t.throws(() => encodeFrame({ op: 'WRITE', reqId: 1, txId: 0, payload: new Uint8Array(4097) }), /4097 bytes/);
  t.end();
});

test('split and join of NUL-terminated strings', (t) => {
  t.deepEqual(splitNulTerminated(unhex(str('a\0b\0'))), ['a', 'b']);
  t.deepEqual(splitNulTerminated(new Uint8Array(0)), []);
  t.deepEqual(splitNulTerminated(unhex(str('\0'))), ['']);
  t.deepEqual(splitNulTerminated(unhex(str('a\0b'))), ['a', 'b'], 'a last string without NUL is kept');
  t.end();
});

test('permissions', (t) => {
  t.deepEqual(parsePerm('n0'), { access: 'n', domid: 0 });
  t.deepEqual(parsePerm('r5'), { access: 'r', domid: 5 });
  t.deepEqual(parsePerm('w32752'), { access: 'w', domid: 32752 });
  t.deepEqual(parsePerm('b7'), { access: 'b', domid: 7 });
  for (const bad of ['', 'x1', 'r', 'r-1', 'R5', 'r5 ', 'r70000', 'b']) t.equal(parsePerm(bad), null, JSON.stringify(bad));
  t.equal(formatPerm({ access: 'b', domid: 12 }), 'b12');
  t.end();
});

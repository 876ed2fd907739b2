// The xenstore wire protocol (Xen's docs/misc/xenstore.txt and
// xen/include/public/io/xs_wire.h), with no I/O. Shared by the guest agent
// (QuickJS, /dev/xen/xenbus), the harness (Node, xenstored's unix socket) and
// the in-memory test server, so all three agree byte for byte.
//
// Must run under QuickJS: only Uint8Array, DataView and plain JS here.
//
// A message is a 16-byte header of four little-endian u32 (type, req_id,
// tx_id, len) followed by len bytes of payload, len <= 4096. Strings in
// payloads are NUL-terminated, except READ's reply and WRITE's value, which
// are raw bytes.

import { decodeUtf8, encodeUtf8 } from './utf8.ts';

export const XS_HEADER_BYTES = 16;
/** XENSTORE_PAYLOAD_MAX: the largest payload either side may send. */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** XENSTORE_ABS_PATH_MAX (enforced by xenstored, not here). */
export const XENSTORE_ABS_PATH_MAX = 3072;

/** Message types, indexed by their wire code (xs_wire.h, enum xsd_sockmsg_type). 20 is unused. */
export const XS_OPS = {
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
} as const;
export type XsOp = keyof typeof XS_OPS;

const OP_BY_TYPE = new Map<number, XsOp>();
for (const name of Object.keys(XS_OPS) as XsOp[]) OP_BY_TYPE.set(XS_OPS[name], name);

/** The op of a wire type code, or undefined for a code this table does not know. */
export function opOfType(type: number): XsOp | undefined {
  return OP_BY_TYPE.get(type);
}

/** Error names xenstored sends in an ERROR reply (xs_wire.h xsd_errors, plus oxenstored's EQUOTA). */
export const XS_ERROR_NAMES = [
  'EINVAL',
  'EACCES',
  'EEXIST',
  'EISDIR',
  'ENOENT',
  'ENOMEM',
  'ENOSPC',
  'EIO',
  'ENOTEMPTY',
  'ENOSYS',
  'EROFS',
  'EBUSY',
  'EAGAIN',
  'EISCONN',
  'E2BIG',
  'EPERM',
  'EQUOTA',
] as const;

// ---------------------------------------------------------------------------
// Errors of the wire layer

export type XsWireErrorCode =
  | 'payload-too-long' // a header announces (or a caller wants to send) more than 4096 bytes
  | 'unknown-type' // a header's type is not in XS_OPS; the frame was skipped
  | 'malformed-payload'; // a payload does not have the shape its op requires

/** A violation of the wire format. `fatal` means the byte stream can no longer be trusted. */
export class XsWireError extends Error {
  readonly code: XsWireErrorCode;
  readonly fatal: boolean;
  /** The header of the offending frame, when there was one. */
  readonly header: FrameHeader | undefined;
  constructor(code: XsWireErrorCode, message: string, opts: { fatal?: boolean; header?: FrameHeader } = {}) {
    super(message);
    this.name = 'XsWireError';
    this.code = code;
    this.fatal = opts.fatal ?? false;
    this.header = opts.header;
  }
}

// ---------------------------------------------------------------------------
// Frames

export interface FrameHeader {
  type: number;
  reqId: number;
  txId: number;
  len: number;
}

export interface Frame {
  op: XsOp;
  reqId: number;
  txId: number;
  payload: Uint8Array;
}

/** Header + payload as sent on the wire. Throws XsWireError('payload-too-long') over 4096 bytes. */
export function encodeFrame(frame: Frame): Uint8Array {
  const len = frame.payload.length;
  if (len > XENSTORE_PAYLOAD_MAX) {
    throw new XsWireError('payload-too-long', `${frame.op} payload is ${len} bytes, more than the ${XENSTORE_PAYLOAD_MAX} xenstore allows`);
  }
  const out = new Uint8Array(XS_HEADER_BYTES + len);
  const view = new DataView(out.buffer);
  view.setUint32(0, XS_OPS[frame.op], true);
  view.setUint32(4, frame.reqId >>> 0, true);
  view.setUint32(8, frame.txId >>> 0, true);
  view.setUint32(12, len, true);
  out.set(frame.payload, XS_HEADER_BYTES);
  return out;
}

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: XsWireError };

/**
 * Incremental decoder: feed it bytes as they arrive, in any split, and it
 * returns every frame completed so far, in order. An unknown type is reported
 * (not fatal: its payload is skipped by its length). A length over 4096 is
 * fatal: the stream is out of step, so the decoder stops and `failed` is set.
 */
export class FrameDecoder {
  private buf = new Uint8Array(XS_HEADER_BYTES + XENSTORE_PAYLOAD_MAX);
  private used = 0;
  private failure: XsWireError | null = null;

  /** The fatal error that stopped this decoder, or null. */
  get failed(): XsWireError | null {
    return this.failure;
  }

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.used;
  }

  push(bytes: Uint8Array): DecodeResult[] {
    const out: DecodeResult[] = [];
    if (this.failure) return out;
    let at = 0;
    while (at < bytes.length) {
      // Copy at most what completes the current header or frame, so that the
      // buffer never holds more than one frame (<= 4112 bytes).
      const want = this.used < XS_HEADER_BYTES ? XS_HEADER_BYTES : XS_HEADER_BYTES + this.headerLen();
      const take = Math.min(want - this.used, bytes.length - at);
      this.buf.set(bytes.subarray(at, at + take), this.used);
      this.used += take;
      at += take;
      if (this.used === XS_HEADER_BYTES) {
        const header = this.header();
        if (header.len > XENSTORE_PAYLOAD_MAX) {
          this.failure = new XsWireError(
            'payload-too-long',
            `received a frame announcing ${header.len} payload bytes (type ${header.type}, req_id ${header.reqId}); the maximum is ${XENSTORE_PAYLOAD_MAX}, so the stream is out of step`,
            { fatal: true, header },
          );
          out.push({ ok: false, error: this.failure });
          this.used = 0;
          return out;
        }
      }
      if (this.used >= XS_HEADER_BYTES && this.used === XS_HEADER_BYTES + this.headerLen()) {
        out.push(this.complete());
        this.used = 0;
      }
    }
    return out;
  }

  private headerLen(): number {
    return new DataView(this.buf.buffer, 12, 4).getUint32(0, true);
  }

  private header(): FrameHeader {
    const v = new DataView(this.buf.buffer, 0, XS_HEADER_BYTES);
    return { type: v.getUint32(0, true), reqId: v.getUint32(4, true), txId: v.getUint32(8, true), len: v.getUint32(12, true) };
  }

  private complete(): DecodeResult {
    const header = this.header();
    const op = opOfType(header.type);
    if (op === undefined) {
      return {
        ok: false,
        error: new XsWireError('unknown-type', `received a frame of unknown type ${header.type} (req_id ${header.reqId}, ${header.len} bytes); skipped`, {
          header,
        }),
      };
    }
    const payload = this.buf.slice(XS_HEADER_BYTES, XS_HEADER_BYTES + header.len);
    return { ok: true, frame: { op, reqId: header.reqId, txId: header.txId, payload } };
  }
}

// ---------------------------------------------------------------------------
// NUL-separated strings

const NUL = 0;

/** Each string as UTF-8 followed by one NUL ("a\0b\0"). */
export function joinNulTerminated(strings: readonly string[]): Uint8Array {
  const parts = strings.map(encodeUtf8);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
    out[at++] = NUL;
  }
  return out;
}

/** Inverse of joinNulTerminated: "a\0b\0" -> ["a", "b"]; "" -> []. A last
 *  string without its NUL is still returned (some servers omit it). */
export function splitNulTerminated(payload: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === NUL) {
      out.push(decodeUtf8(payload.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start < payload.length) out.push(decodeUtf8(payload.subarray(start)));
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function malformed(op: XsOp, what: string, payload: Uint8Array): XsWireError {
  const shown = JSON.stringify(decodeUtf8(payload.subarray(0, 64))) + (payload.length > 64 ? '...' : '');
  return new XsWireError('malformed-payload', `malformed ${op} payload (${what}): ${shown}`);
}

// ---------------------------------------------------------------------------
// Permissions: "<letter><domid>", letter n (none), r (read), w (write), b (both).
// The first entry names the owner and what every other domain may do; later
// entries grant a specific domain.

export type PermAccess = 'n' | 'r' | 'w' | 'b';
export interface Perm {
  access: PermAccess;
  domid: number;
}

/** Parses "r5" -> { access: 'r', domid: 5 }; null if malformed. */
export function parsePerm(text: string): Perm | null {
  const m = /^([nrwb])(\d{1,10})$/.exec(text);
  if (!m) return null;
  const domid = Number(m[2]);
  if (domid > 0xffff) return null;
  return { access: m[1] as PermAccess, domid };
}

export function formatPerm(perm: Perm): string {
  return `${perm.access}${perm.domid}`;
}

// ---------------------------------------------------------------------------
// Request payloads (client -> xenstored)

export type XsRequest =
  | { op: 'READ' | 'DIRECTORY' | 'GET_PERMS' | 'MKDIR' | 'RM'; path: string }
  | { op: 'WRITE'; path: string; value: Uint8Array }
  | { op: 'SET_PERMS'; path: string; perms: string[] }
  | { op: 'WATCH' | 'UNWATCH'; path: string; token: string }
  | { op: 'TRANSACTION_START' | 'RESET_WATCHES' }
  | { op: 'TRANSACTION_END'; commit: boolean }
  | { op: 'GET_DOMAIN_PATH' | 'IS_DOMAIN_INTRODUCED' | 'RELEASE' | 'RESUME'; domid: number }
  | { op: 'DIRECTORY_PART'; path: string; offset: number }
  | { op: 'SET_TARGET'; domid: number; target: number }
  | { op: 'INTRODUCE'; domid: number; mfn: string; port: number }
  | { op: 'DEBUG'; args: string[] };

/** The payload of a request, exactly as libxenstore (xs.c) sends it. */
export function encodeRequestPayload(req: XsRequest): Uint8Array {
  switch (req.op) {
    case 'READ':
    case 'DIRECTORY':
    case 'GET_PERMS':
    case 'MKDIR':
    case 'RM':
      return joinNulTerminated([req.path]);
    case 'WRITE':
      // path\0value: the value is raw bytes with no terminating NUL.
      return concat(joinNulTerminated([req.path]), req.value);
    case 'SET_PERMS':
      return joinNulTerminated([req.path, ...req.perms]);
    case 'WATCH':
    case 'UNWATCH':
      return joinNulTerminated([req.path, req.token]);
    case 'TRANSACTION_START':
    case 'RESET_WATCHES':
      return joinNulTerminated(['']);
    case 'TRANSACTION_END':
      return joinNulTerminated([req.commit ? 'T' : 'F']);
    case 'GET_DOMAIN_PATH':
    case 'IS_DOMAIN_INTRODUCED':
    case 'RELEASE':
    case 'RESUME':
      return joinNulTerminated([String(req.domid)]);
    case 'DIRECTORY_PART':
      return joinNulTerminated([req.path, String(req.offset)]);
    case 'SET_TARGET':
      return joinNulTerminated([String(req.domid), String(req.target)]);
    case 'INTRODUCE':
      return joinNulTerminated([String(req.domid), req.mfn, String(req.port)]);
    case 'DEBUG':
      return joinNulTerminated(req.args);
  }
}

function firstNul(payload: Uint8Array): number {
  return payload.indexOf(NUL);
}

function parseUint(op: XsOp, text: string | undefined, payload: Uint8Array): number {
  if (text === undefined || !/^\d{1,10}$/.test(text) || Number(text) > 0xffffffff) throw malformed(op, 'expected a decimal number', payload);
  return Number(text);
}

/** Parses a request payload (the server side). Throws XsWireError('malformed-payload'). */
export function parseRequestPayload(op: XsOp, payload: Uint8Array): XsRequest {
  const fields = (min: number): string[] => {
    if (payload.length === 0 || payload[payload.length - 1] !== NUL) throw malformed(op, 'strings must end with NUL', payload);
    const f = splitNulTerminated(payload);
    if (f.length < min) throw malformed(op, `expected ${min} NUL-terminated string(s), got ${f.length}`, payload);
    return f;
  };
  switch (op) {
    case 'READ':
    case 'DIRECTORY':
    case 'GET_PERMS':
    case 'MKDIR':
    case 'RM':
      return { op, path: fields(1)[0]! };
    case 'WRITE': {
      const nul = firstNul(payload);
      if (nul < 0) throw malformed(op, 'no NUL after the path', payload);
      return { op, path: decodeUtf8(payload.subarray(0, nul)), value: payload.slice(nul + 1) };
    }
    case 'SET_PERMS': {
      const f = fields(1);
      return { op, path: f[0]!, perms: f.slice(1) };
    }
    case 'WATCH':
    case 'UNWATCH': {
      const f = fields(2);
      return { op, path: f[0]!, token: f[1]! };
    }
    case 'TRANSACTION_START':
    case 'RESET_WATCHES':
      return { op };
    case 'TRANSACTION_END': {
      const f = fields(1);
      if (f[0] !== 'T' && f[0] !== 'F') throw malformed(op, 'expected "T" or "F"', payload);
      return { op, commit: f[0] === 'T' };
    }
    case 'GET_DOMAIN_PATH':
    case 'IS_DOMAIN_INTRODUCED':
    case 'RELEASE':
    case 'RESUME':
      return { op, domid: parseUint(op, fields(1)[0], payload) };
    case 'DIRECTORY_PART': {
      const f = fields(2);
      return { op, path: f[0]!, offset: parseUint(op, f[1], payload) };
    }
    case 'SET_TARGET': {
      const f = fields(2);
      return { op, domid: parseUint(op, f[0], payload), target: parseUint(op, f[1], payload) };
    }
    case 'INTRODUCE': {
      const f = fields(3);
      return { op, domid: parseUint(op, f[0], payload), mfn: f[1]!, port: parseUint(op, f[2], payload) };
    }
    case 'DEBUG':
      return { op, args: payload.length === 0 ? [] : splitNulTerminated(payload) };
    case 'WATCH_EVENT':
    case 'ERROR':
      throw malformed(op, 'not a request type', payload);
  }
}

// ---------------------------------------------------------------------------
// Reply payloads (xenstored -> client)

/** Ops whose successful reply is just "OK\0". */
export type XsAckOp =
  'WRITE' | 'MKDIR' | 'RM' | 'SET_PERMS' | 'WATCH' | 'UNWATCH' | 'TRANSACTION_END' | 'INTRODUCE' | 'RELEASE' | 'RESUME' | 'SET_TARGET' | 'RESET_WATCHES';

export type XsReply =
  | { op: 'READ'; value: Uint8Array }
  | { op: 'DIRECTORY' | 'GET_PERMS'; entries: string[] }
  | { op: 'DIRECTORY_PART'; generation: string; children: string[]; complete: boolean }
  | { op: 'TRANSACTION_START'; txId: number }
  | { op: 'GET_DOMAIN_PATH'; path: string }
  | { op: 'IS_DOMAIN_INTRODUCED'; introduced: boolean }
  | { op: 'DEBUG'; text: string }
  | { op: XsAckOp }
  | { op: 'ERROR'; code: string }
  /** `extra`: fields after the token that newer xenstoreds may add; ignored by the client. */
  | { op: 'WATCH_EVENT'; path: string; token: string; extra?: string[] };

/** The payload of a reply, exactly as C xenstored sends it. */
export function encodeReplyPayload(reply: XsReply): Uint8Array {
  switch (reply.op) {
    case 'READ':
      return reply.value.slice();
    case 'DIRECTORY':
    case 'GET_PERMS':
      return joinNulTerminated(reply.entries);
    case 'DIRECTORY_PART':
      // gen\0child\0...; an empty string (one more NUL) marks the last part.
      return joinNulTerminated([reply.generation, ...reply.children, ...(reply.complete ? [''] : [])]);
    case 'TRANSACTION_START':
      return joinNulTerminated([String(reply.txId)]);
    case 'GET_DOMAIN_PATH':
      return joinNulTerminated([reply.path]);
    case 'IS_DOMAIN_INTRODUCED':
      return joinNulTerminated([reply.introduced ? 'T' : 'F']);
    case 'DEBUG':
      return joinNulTerminated([reply.text]);
    case 'ERROR':
      return joinNulTerminated([reply.code]);
    case 'WATCH_EVENT':
      return joinNulTerminated([reply.path, reply.token, ...(reply.extra ?? [])]);
    default:
      return joinNulTerminated(['OK']);
  }
}

/** Parses the payload of a frame of type `op` from xenstored. Throws XsWireError('malformed-payload'). */
export function parseReplyPayload(op: XsOp, payload: Uint8Array): XsReply {
  const one = (what: string): string => {
    const f = splitNulTerminated(payload);
    if (f.length !== 1) throw malformed(op, `expected ${what}`, payload);
    return f[0]!;
  };
  switch (op) {
    case 'READ':
      return { op, value: payload.slice() };
    case 'DIRECTORY':
    case 'GET_PERMS':
      return { op, entries: splitNulTerminated(payload) };
    case 'DIRECTORY_PART': {
      if (payload.length === 0 || payload[payload.length - 1] !== NUL) throw malformed(op, 'must end with NUL', payload);
      const f = splitNulTerminated(payload);
      const generation = f.shift();
      if (generation === undefined) throw malformed(op, 'no generation count', payload);
      const complete = f.length > 0 && f[f.length - 1] === '';
      if (complete) f.pop();
      return { op, generation, children: f, complete };
    }
    case 'TRANSACTION_START': {
      const id = one('a transaction id');
      return { op, txId: parseUint(op, id, payload) };
    }
    case 'GET_DOMAIN_PATH':
      return { op, path: one('a path') };
    case 'IS_DOMAIN_INTRODUCED': {
      const v = one('"T" or "F"');
      if (v !== 'T' && v !== 'F') throw malformed(op, 'expected "T" or "F"', payload);
      return { op, introduced: v === 'T' };
    }
    case 'DEBUG':
      return { op, text: splitNulTerminated(payload).join('\n') };
    case 'ERROR':
      return { op, code: one('an error name') };
    case 'WATCH_EVENT': {
      const f = splitNulTerminated(payload);
      if (f.length < 2) throw malformed(op, 'expected path\\0token\\0', payload);
      return { op, path: f[0]!, token: f[1]!, extra: f.slice(2) };
    }
    default: {
      if (one('"OK"') !== 'OK') throw malformed(op, 'expected "OK"', payload);
      return { op };
    }
  }
}

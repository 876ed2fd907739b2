// Errors of the xenstore client, in four kinds a caller can tell apart with
// instanceof (runs under QuickJS too: plain classes, no Node APIs):
//   XenstoreError            xenstored answered "no" (an ERROR reply), or the
//                            client refused a request that xenstored would refuse
//                            (E2BIG before sending, EINVAL for a NUL in a path)
//   XenstoreConnectionError  the connection is gone: every pending request fails with it
//   XenstoreTimeoutError     no reply within the client's per-request timeout
//   XenstoreProtocolError    xenstored answered something the protocol does not allow

import { XS_ERROR_NAMES } from '../protocol/xenstore-wire.ts';

/** Error names xenstored sends, plus 'EUNKNOWN' for a name not in that list (the raw name is kept in `reply`). */
export type XenstoreErrorCode = (typeof XS_ERROR_NAMES)[number] | 'EUNKNOWN';

export interface XenstoreErrorContext {
  /** The request's op, e.g. 'READ' or 'TRANSACTION_END'. */
  op: string;
  /** The node the request was about, when it had one. */
  path?: string;
  /** The transaction id the request ran in (0: none). */
  txId?: number;
}

function describe(ctx: XenstoreErrorContext): string {
  return ctx.op + (ctx.path !== undefined ? ` ${ctx.path}` : '') + (ctx.txId ? ` (transaction ${ctx.txId})` : '');
}

export class XenstoreError extends Error {
  readonly code: XenstoreErrorCode;
  readonly op: string;
  readonly path: string | undefined;
  readonly txId: number;
  /** The error name exactly as received (differs from code only for EUNKNOWN). */
  readonly reply: string;
  constructor(code: XenstoreErrorCode, ctx: XenstoreErrorContext, detail?: string, reply?: string) {
    super(`${describe(ctx)}: ${code === 'EUNKNOWN' ? `unknown error ${JSON.stringify(reply)}` : code}${detail ? ` (${detail})` : ''}`);
    this.name = 'XenstoreError';
    this.code = code;
    this.op = ctx.op;
    this.path = ctx.path;
    this.txId = ctx.txId ?? 0;
    this.reply = reply ?? code;
  }
}

/** The one place an ERROR reply's payload becomes a typed error. */
export function errorFromReply(payloadCode: string, ctx: XenstoreErrorContext): XenstoreError {
  // The payload is "ENOENT\0"; tolerate a missing NUL or stray whitespace.
  const name = payloadCode.replace(/\0+$/, '').trim();
  const known = (XS_ERROR_NAMES as readonly string[]).includes(name);
  return new XenstoreError(known ? (name as XenstoreErrorCode) : 'EUNKNOWN', ctx, undefined, name);
}

export function isXenstoreError(err: unknown, code?: XenstoreErrorCode): err is XenstoreError {
  return err instanceof XenstoreError && (code === undefined || err.code === code);
}

/** The connection closed (or was closed) before the reply came. */
export class XenstoreConnectionError extends Error {
  readonly code = 'ECONNRESET';
  readonly op: string | undefined;
  readonly path: string | undefined;
  /** Why the connection ended, when known (the transport's error, or a fatal XsWireError). */
  readonly reason: Error | undefined;
  constructor(message: string, opts: { op?: string; path?: string; reason?: Error } = {}) {
    super(message + (opts.reason ? `: ${opts.reason.message}` : ''));
    this.name = 'XenstoreConnectionError';
    this.op = opts.op;
    this.path = opts.path;
    this.reason = opts.reason;
  }
}

/** No reply within the client's request timeout: xenstored may be hung. */
export class XenstoreTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  readonly op: string;
  readonly path: string | undefined;
  readonly timeoutMs: number;
  constructor(ctx: XenstoreErrorContext, timeoutMs: number) {
    super(`${describe(ctx)}: no reply from xenstored within ${timeoutMs} ms`);
    this.name = 'XenstoreTimeoutError';
    this.op = ctx.op;
    this.path = ctx.path;
    this.timeoutMs = timeoutMs;
  }
}

/** xenstored's reply broke the protocol (wrong type, malformed payload, unknown type). */
export class XenstoreProtocolError extends Error {
  readonly code = 'EPROTO';
  readonly op: string | undefined;
  readonly path: string | undefined;
  constructor(message: string, ctx?: XenstoreErrorContext) {
    super(ctx ? `${describe(ctx)}: ${message}` : message);
    this.name = 'XenstoreProtocolError';
    this.op = ctx?.op;
    this.path = ctx?.path;
  }
}

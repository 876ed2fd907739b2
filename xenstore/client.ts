// A xenstore client over any Transport. Runs under QuickJS and Node: only
// Promise, Map, Set, Uint8Array and timers (injectable) are used.
//
// One dispatcher (onData) owns the byte stream: it decodes frames, routes a
// reply to the pending request with the same req_id, and hands watch events
// (which arrive between replies, req_id 0) to the watch listeners. When the
// connection ends, every pending request fails with XenstoreConnectionError.

import {
  XENSTORE_PAYLOAD_MAX,
  FrameDecoder,
  XsWireError,
  encodeFrame,
  encodeRequestPayload,
  parseReplyPayload,
  type Frame,
  type XsReply,
  type XsRequest,
} from '../protocol/xenstore-wire.ts';
import { decodeUtf8, encodeUtf8 } from '../protocol/utf8.ts';
import {
  XenstoreConnectionError,
  XenstoreError,
  XenstoreProtocolError,
  XenstoreTimeoutError,
  errorFromReply,
  isXenstoreError,
  type XenstoreErrorContext,
} from './errors.ts';
import type { Transport } from './transport.ts';

/** Timer functions; QuickJS's live in its `os` module, so they can be passed in. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface XenstoreClientOptions {
  /** Fail a request with XenstoreTimeoutError when no reply comes within this many ms. Default: wait forever. */
  requestTimeoutMs?: number;
  /** Default: the global setTimeout / clearTimeout. */
  timers?: Timers;
  /**
   * Told about things that are wrong but not fatal and belong to no request:
   * a watch listener that threw, a reply nobody waits for, an unknown frame
   * type. The library never prints; default: ignore.
   */
  onWarning?: (err: Error) => void;
  /** First transaction retry delay in ms (doubles each attempt, with jitter). Default 10. */
  retryBaseMs?: number;
  /**
   * At most this many requests sent and unanswered at once; later ones wait,
   * in order, for a reply (or a timeout) to free a slot. Default: the
   * transport's own maxInFlight, else no limit. See XENBUS_DEVICE_MAX_IN_FLIGHT.
   */
  maxInFlight?: number;
}

export interface TransactionOptions {
  /** How many times the body runs before an EAGAIN is given up on. Default 5. */
  maxAttempts?: number;
}

export type WatchListener = (path: string, token: string) => void;

/** Operations bound to one open transaction. */
export interface Transaction {
  readonly id: number;
  read(path: string): Promise<string>;
  readBytes(path: string): Promise<Uint8Array>;
  tryRead(path: string): Promise<string | null>;
  write(path: string, value: string | Uint8Array): Promise<void>;
  mkdir(path: string): Promise<void>;
  rm(path: string): Promise<void>;
  directory(path: string): Promise<string[]>;
  getPerms(path: string): Promise<string[]>;
  setPerms(path: string, perms: string[]): Promise<void>;
}

interface Pending {
  op: XsRequest['op'];
  ctx: XenstoreErrorContext;
  resolve(reply: XsReply): void;
  reject(err: Error): void;
  timer: unknown;
  /** The encoded frame while it waits for a slot; null once written to the transport. */
  unsent: Uint8Array | null;
}

/** How many timed-out req_ids are remembered so that their late replies are dropped quietly. */
const MAX_ABANDONED = 1024;

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** The node a request is about, for error messages. */
function pathOf(req: XsRequest): string | undefined {
  return 'path' in req ? req.path : undefined;
}

export class XenstoreClient {
  private readonly transport: Transport;
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  /** Requests that timed out: their late replies are dropped quietly. */
  private readonly abandoned = new Set<number>();
  private readonly watchListeners = new Set<WatchListener>();
  private readonly closeListeners = new Set<(err?: Error) => void>();
  private readonly timers: Timers;
  private readonly timeoutMs: number | undefined;
  private readonly warn: (err: Error) => void;
  private readonly retryBaseMs: number;
  private readonly maxInFlight: number;
  /** Requests written and not yet answered (or timed out). */
  private inFlight = 0;
  /** req_ids of requests waiting for a slot, oldest first. */
  private readonly sendQueue: number[] = [];
  private nextReqId = 1;
  private ended: XenstoreConnectionError | null = null;

  constructor(transport: Transport, options: XenstoreClientOptions = {}) {
    this.transport = transport;
    this.timers = options.timers ?? defaultTimers;
    this.timeoutMs = options.requestTimeoutMs;
    const onWarning = options.onWarning;
    // A throwing warning hook must not break the dispatcher (the agent is PID 1).
    this.warn = (err) => {
      try {
        onWarning?.(err);
      } catch {
        // nothing sensible left to do with it
      }
    };
    this.retryBaseMs = options.retryBaseMs ?? 10;
    const limit = options.maxInFlight ?? transport.maxInFlight;
    this.maxInFlight = limit !== undefined && limit >= 1 ? Math.floor(limit) : Infinity;
    transport.onData((bytes) => this.dispatch(bytes));
    transport.onClose((err) => this.shutdown('xenstore connection closed', err));
  }

  /** True once the connection has ended (closed, lost or broken by a bad frame). */
  get isClosed(): boolean {
    return this.ended !== null;
  }

  /** Called once when the connection ends, with the XenstoreConnectionError that pending requests got. */
  onClose(listener: (err?: Error) => void): () => void {
    if (this.ended) {
      const err = this.ended;
      this.timers.setTimeout(() => listener(err), 0);
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  // -------------------------------------------------------------------------
  // Operations outside a transaction

  read(path: string): Promise<string> {
    return this.doRead(path, 0);
  }
  readBytes(path: string): Promise<Uint8Array> {
    return this.doReadBytes(path, 0);
  }
  /** The value, or null if the node does not exist (ENOENT). Other errors are thrown. */
  tryRead(path: string): Promise<string | null> {
    return this.doTryRead(path, 0);
  }
  write(path: string, value: string | Uint8Array): Promise<void> {
    return this.doWrite(path, value, 0);
  }
  mkdir(path: string): Promise<void> {
    return this.ack({ op: 'MKDIR', path }, 0);
  }
  /** Removes the node and everything under it. */
  rm(path: string): Promise<void> {
    return this.ack({ op: 'RM', path }, 0);
  }
  directory(path: string): Promise<string[]> {
    return this.doDirectory(path, 0);
  }
  /** Permissions as xenstored prints them: ["n0", "r5", ...]; parsePerm() reads one. */
  getPerms(path: string): Promise<string[]> {
    return this.doGetPerms(path, 0);
  }
  setPerms(path: string, perms: string[]): Promise<void> {
    return this.ack({ op: 'SET_PERMS', path, perms }, 0);
  }
  async getDomainPath(domid: number): Promise<string> {
    const r = await this.request({ op: 'GET_DOMAIN_PATH', domid }, 0);
    return (r as { path: string }).path;
  }

  /** Registers a watch. xenstored fires it once at once, then on every change
   *  to the node or below it (removal included). Events go to onWatch listeners. */
  watch(path: string, token: string): Promise<void> {
    return this.ack({ op: 'WATCH', path, token }, 0);
  }
  unwatch(path: string, token: string): Promise<void> {
    return this.ack({ op: 'UNWATCH', path, token }, 0);
  }
  /** Every watch event (path as xenstored reports it: relative if the watch was). Returns an unsubscribe function. */
  onWatch(listener: WatchListener): () => void {
    this.watchListeners.add(listener);
    return () => this.watchListeners.delete(listener);
  }

  /**
   * Runs body inside a transaction and commits. If body throws, the
   * transaction is aborted and the error rethrown. On EAGAIN (a conflicting
   * change, reported at commit) the whole body runs again after a short,
   * growing delay, at most maxAttempts times in all; then the EAGAIN is thrown.
   */
  async transaction<T>(body: (tx: Transaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const maxAttempts = Math.max(1, opts.maxAttempts ?? 5);
    for (let attempt = 1; ; attempt++) {
      const started = await this.request({ op: 'TRANSACTION_START' }, 0);
      const txId = (started as { txId: number }).txId;
      const tx = new BoundTransaction(this, txId);
      let result: T;
      let failure: unknown = null;
      try {
        result = await body(tx);
      } catch (err) {
        failure = err;
        result = undefined as T;
      }
      tx.ended = true;
      if (failure === null) {
        try {
          await this.ack({ op: 'TRANSACTION_END', commit: true }, txId);
          return result;
        } catch (err) {
          failure = err;
        }
      } else {
        // Abort; a failure to abort must not hide the body's own error.
        await this.ack({ op: 'TRANSACTION_END', commit: false }, txId).catch(() => {});
      }
      if (!isXenstoreError(failure, 'EAGAIN')) throw failure;
      if (attempt >= maxAttempts) {
        throw new XenstoreError('EAGAIN', { op: 'TRANSACTION_END', txId }, `transaction still conflicting after ${attempt} attempt(s)`);
      }
      await this.sleep(this.retryBaseMs * 2 ** (attempt - 1) * (1 + Math.random() / 2));
    }
  }

  /** Ends the connection; pending requests fail with XenstoreConnectionError. */
  close(): void {
    if (this.ended) return;
    this.shutdown('xenstore connection closed by the client');
    this.transport.close();
  }

  // -------------------------------------------------------------------------
  // Shared by the client and its transactions

  /** @internal */
  async doRead(path: string, txId: number): Promise<string> {
    return decodeUtf8(await this.doReadBytes(path, txId));
  }
  /** @internal */
  async doReadBytes(path: string, txId: number): Promise<Uint8Array> {
    const r = await this.request({ op: 'READ', path }, txId);
    return (r as { value: Uint8Array }).value;
  }
  /** @internal */
  async doTryRead(path: string, txId: number): Promise<string | null> {
    try {
      return await this.doRead(path, txId);
    } catch (err) {
      if (isXenstoreError(err, 'ENOENT')) return null;
      throw err;
    }
  }
  /** @internal */
  doWrite(path: string, value: string | Uint8Array, txId: number): Promise<void> {
    return this.ack({ op: 'WRITE', path, value: typeof value === 'string' ? encodeUtf8(value) : value }, txId);
  }
  /** @internal */
  async doDirectory(path: string, txId: number): Promise<string[]> {
    try {
      const r = await this.request({ op: 'DIRECTORY', path }, txId);
      return (r as { entries: string[] }).entries;
    } catch (err) {
      // Too many children for one reply: page through them (as libxenstore does).
      if (isXenstoreError(err, 'E2BIG')) return this.directoryInParts(path, txId);
      throw err;
    }
  }
  /** @internal */
  async doGetPerms(path: string, txId: number): Promise<string[]> {
    const r = await this.request({ op: 'GET_PERMS', path }, txId);
    return (r as { entries: string[] }).entries;
  }
  /** @internal */
  async ack(req: XsRequest, txId: number): Promise<void> {
    await this.request(req, txId);
  }

  private async directoryInParts(path: string, txId: number): Promise<string[]> {
    for (let restart = 0; restart < 5; restart++) {
      const children: string[] = [];
      let generation: string | undefined;
      let offset = 0;
      let changed = false;
      for (;;) {
        const r = (await this.request({ op: 'DIRECTORY_PART', path, offset }, txId)) as Extract<XsReply, { op: 'DIRECTORY_PART' }>;
        if (generation !== undefined && r.generation !== generation) {
          changed = true; // the directory changed between parts: start over
          break;
        }
        generation = r.generation;
        children.push(...r.children);
        for (const c of r.children) offset += encodeUtf8(c).length + 1;
        if (r.complete) return children;
        if (r.children.length === 0)
          throw new XenstoreProtocolError('DIRECTORY_PART returned no children and no end marker', { op: 'DIRECTORY_PART', path, txId });
      }
      if (!changed) break;
    }
    throw new XenstoreError('EAGAIN', { op: 'DIRECTORY_PART', path, txId }, 'directory kept changing while being read in parts');
  }

  /** Sends one request and resolves with its parsed reply; the single entry point to the wire. */
  request(req: XsRequest, txId: number): Promise<XsReply> {
    const ctx: XenstoreErrorContext = { op: req.op, path: pathOf(req), txId };
    if (this.ended) {
      return rejectLater(new XenstoreConnectionError(`xenstore connection is closed (${this.ended.message})`, { op: req.op, path: ctx.path }));
    }
    const bad = nulInside(req);
    if (bad) return rejectLater(new XenstoreError('EINVAL', ctx, `${bad} contains a NUL byte, which the wire format cannot carry`));
    const payload = encodeRequestPayload(req);
    if (payload.length > XENSTORE_PAYLOAD_MAX) {
      return rejectLater(
        new XenstoreError(
          'E2BIG',
          ctx,
          `refused before sending: the ${req.op} payload would be ${payload.length} bytes, more than the ${XENSTORE_PAYLOAD_MAX} xenstore allows`,
        ),
      );
    }
    return new Promise<XsReply>((resolve, reject) => {
      const reqId = this.allocateReqId();
      const frame: Frame = { op: req.op, reqId, txId, payload };
      const entry: Pending = { op: req.op, ctx, resolve, reject, timer: undefined, unsent: encodeFrame(frame) };
      if (this.timeoutMs !== undefined) {
        const ms = this.timeoutMs;
        entry.timer = this.timers.setTimeout(() => {
          if (this.pending.get(reqId) !== entry) return;
          this.pending.delete(reqId);
          if (entry.unsent === null) {
            // Sent: a late reply may still come and must be dropped quietly.
            this.abandoned.add(reqId);
            // Bounded: a xenstored that never answers must not grow this for ever.
            if (this.abandoned.size > MAX_ABANDONED) this.abandoned.delete(this.abandoned.values().next().value as number);
          } else {
            const i = this.sendQueue.indexOf(reqId);
            if (i >= 0) this.sendQueue.splice(i, 1);
          }
          this.release(entry);
          reject(new XenstoreTimeoutError(ctx, ms));
        }, ms);
      }
      this.pending.set(reqId, entry);
      this.sendQueue.push(reqId);
      this.pump();
    });
  }

  /** Writes queued requests while slots are free. */
  private pump(): void {
    while (!this.ended && this.inFlight < this.maxInFlight && this.sendQueue.length > 0) {
      const reqId = this.sendQueue.shift() as number;
      const entry = this.pending.get(reqId);
      if (!entry || entry.unsent === null) continue;
      const bytes = entry.unsent;
      entry.unsent = null;
      this.inFlight++;
      try {
        this.transport.write(bytes);
      } catch (err) {
        this.shutdown('writing to xenstore failed', asError(err));
        this.transport.close();
      }
    }
  }

  /** A request left the pending table: free its slot (if it had one) and send the next. */
  private release(entry: Pending): void {
    if (entry.unsent !== null) return; // never sent: it held no slot
    this.inFlight--;
    this.pump();
  }

  private allocateReqId(): number {
    // u32 on the wire; skip ids still in use after a wrap-around.
    for (;;) {
      const id = this.nextReqId;
      this.nextReqId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.pending.has(id) && !this.abandoned.has(id)) return id;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.timers.setTimeout(resolve, ms));
  }

  /** The dispatcher: every byte from xenstored goes through here. */
  private dispatch(bytes: Uint8Array): void {
    if (this.ended) return;
    for (const item of this.decoder.push(bytes)) {
      if (!item.ok) {
        this.onWireError(item.error);
        if (this.ended) return;
        continue;
      }
      const frame = item.frame;
      if (frame.op === 'WATCH_EVENT') {
        this.deliverWatchEvent(frame);
        continue;
      }
      const entry = this.pending.get(frame.reqId);
      if (!entry) {
        if (!this.abandoned.delete(frame.reqId)) {
          this.warn(new XenstoreProtocolError(`reply ${frame.op} for req_id ${frame.reqId}, which no request is waiting for; ignored`));
        }
        continue;
      }
      this.pending.delete(frame.reqId);
      if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
      settle(entry, frame);
      // Its slot is free: the next queued request goes out now.
      this.release(entry);
      if (this.ended) return; // writing it failed and ended the connection
    }
  }

  private onWireError(err: XsWireError): void {
    if (err.fatal) {
      // The stream is out of step: nothing after this can be trusted.
      this.shutdown('xenstore connection dropped after a malformed frame', err);
      this.transport.close();
      return;
    }
    const reqId = err.header?.reqId;
    const entry = reqId !== undefined ? this.pending.get(reqId) : undefined;
    if (reqId !== undefined && entry) {
      this.pending.delete(reqId);
      if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
      this.release(entry);
      entry.reject(new XenstoreProtocolError(err.message, entry.ctx));
    } else this.warn(err);
  }

  private deliverWatchEvent(frame: Frame): void {
    let event: XsReply;
    try {
      event = parseReplyPayload('WATCH_EVENT', frame.payload);
    } catch (err) {
      this.warn(asError(err));
      return;
    }
    const { path, token } = event as { path: string; token: string };
    for (const listener of [...this.watchListeners]) {
      try {
        listener(path, token);
      } catch (err) {
        this.warn(new Error(`a watch listener threw on ${path} (token ${JSON.stringify(token)}): ${asError(err).message}`));
      }
    }
  }

  private shutdown(message: string, reason?: Error): void {
    if (this.ended) return;
    const err = new XenstoreConnectionError(message, { reason });
    this.ended = err;
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.abandoned.clear();
    this.sendQueue.length = 0;
    this.inFlight = 0;
    for (const entry of pending) {
      if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
      const what = `${entry.ctx.op}${entry.ctx.path !== undefined ? ` ${entry.ctx.path}` : ''}`;
      entry.reject(new XenstoreConnectionError(`${message} before the reply to ${what}`, { op: entry.ctx.op, path: entry.ctx.path, reason }));
    }
    for (const listener of [...this.closeListeners]) {
      try {
        listener(err);
      } catch (e) {
        this.warn(asError(e));
      }
    }
    this.closeListeners.clear();
  }
}

class BoundTransaction implements Transaction {
  ended = false;
  constructor(
    private readonly client: XenstoreClient,
    readonly id: number,
  ) {}

  // Not async on purpose: an ended transaction answers with rejectLater (see there).
  private ended_(op: string, path: string): Promise<never> | null {
    return this.ended ? rejectLater(new XenstoreError('EINVAL', { op, path, txId: this.id }, 'the transaction has already ended')) : null;
  }
  read(path: string): Promise<string> {
    return this.ended_('READ', path) ?? this.client.doRead(path, this.id);
  }
  readBytes(path: string): Promise<Uint8Array> {
    return this.ended_('READ', path) ?? this.client.doReadBytes(path, this.id);
  }
  tryRead(path: string): Promise<string | null> {
    return this.ended_('READ', path) ?? this.client.doTryRead(path, this.id);
  }
  write(path: string, value: string | Uint8Array): Promise<void> {
    return this.ended_('WRITE', path) ?? this.client.doWrite(path, value, this.id);
  }
  mkdir(path: string): Promise<void> {
    return this.ended_('MKDIR', path) ?? this.client.ack({ op: 'MKDIR', path }, this.id);
  }
  rm(path: string): Promise<void> {
    return this.ended_('RM', path) ?? this.client.ack({ op: 'RM', path }, this.id);
  }
  directory(path: string): Promise<string[]> {
    return this.ended_('DIRECTORY', path) ?? this.client.doDirectory(path, this.id);
  }
  getPerms(path: string): Promise<string[]> {
    return this.ended_('GET_PERMS', path) ?? this.client.doGetPerms(path, this.id);
  }
  setPerms(path: string, perms: string[]): Promise<void> {
    return this.ended_('SET_PERMS', path) ?? this.client.ack({ op: 'SET_PERMS', path, perms }, this.id);
  }
}

/** Resolves or rejects a pending request with its reply frame. */
function settle(entry: Pending, frame: Frame): void {
  if (frame.op === 'ERROR') {
    entry.reject(errorFromReply(decodeUtf8(frame.payload), entry.ctx));
    return;
  }
  if (frame.op !== entry.op) {
    entry.reject(new XenstoreProtocolError(`xenstored answered with a ${frame.op} frame`, entry.ctx));
    return;
  }
  let reply: XsReply;
  try {
    reply = parseReplyPayload(frame.op, frame.payload);
  } catch (err) {
    entry.reject(new XenstoreProtocolError(asError(err).message, entry.ctx));
    return;
  }
  entry.resolve(reply);
}

/** Which string of a request holds a NUL (it would split the payload), if any. */
function nulInside(req: XsRequest): string | null {
  if ('path' in req && req.path.includes('\0')) return 'the path';
  if ('token' in req && req.token.includes('\0')) return 'the token';
  if ('perms' in req && req.perms.some((p) => p.includes('\0'))) return 'a permission';
  return null;
}

/**
 * A promise that rejects one microtask from now, for errors found before a
 * request is sent. QuickJS's qjs (2025-04-26) exits at once when a promise is
 * rejected while nothing handles it yet (unless run with
 * --no-unhandled-rejection); by the next microtask the caller's await has
 * attached its handler.
 */
function rejectLater<T>(err: Error): Promise<T> {
  return new Promise<T>((_resolve, reject) => {
    void Promise.resolve().then(() => reject(err));
  });
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

// The client against a scripted transport: the dispatcher (replies by req_id,
// watch events between replies, unknown types), refusals before sending,
// connection loss, timeouts, and transactions (abort, retry on EAGAIN).
import test from 'tape';
import { FrameDecoder, encodeFrame, encodeReplyPayload, parseRequestPayload, type Frame, type XsReply, type XsRequest } from '../../protocol/xenstore-wire.ts';
import { XenstoreClient, type XenstoreClientOptions } from '../../xenstore/client.ts';
import { XenstoreConnectionError, XenstoreError, XenstoreProtocolError, XenstoreTimeoutError } from '../../xenstore/errors.ts';
import type { Transport } from '../../xenstore/transport.ts';

interface Sent {
  frame: Frame;
  req: XsRequest;
}

/** A transport whose far end is the test: it sees every frame and feeds bytes back. */
class ScriptedTransport implements Transport {
  readonly sent: Sent[] = [];
  writes = 0;
  closed = false;
  /** Called for each request; may answer through feed(). */
  responder: ((s: Sent) => void) | null = null;
  private dataCb: ((b: Uint8Array) => void) | null = null;
  private closeCb: ((err?: Error) => void) | null = null;
  private readonly dec = new FrameDecoder();

  write(bytes: Uint8Array): void {
    this.writes++;
    const items = this.dec.push(bytes);
    if (items.length !== 1) throw new Error(`expected exactly one frame per write, got ${items.length}`);
    const item = items[0]!;
    if (!item.ok) throw item.error;
    const s = { frame: item.frame, req: parseRequestPayload(item.frame.op, item.frame.payload) };
    this.sent.push(s);
    this.responder?.(s);
  }
  onData(cb: (b: Uint8Array) => void): void {
    this.dataCb = cb;
  }
  onClose(cb: (err?: Error) => void): void {
    this.closeCb = cb;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCb?.();
  }
  feed(bytes: Uint8Array): void {
    this.dataCb!(bytes);
  }
  /** Sends a reply frame for request `s` (or any req_id). */
  answer(reqId: number, reply: XsReply, txId = 0): void {
    this.feed(replyBytes(reqId, reply, txId));
  }
  lose(err?: Error): void {
    this.closed = true;
    this.closeCb?.(err);
  }
}

function replyBytes(reqId: number, reply: XsReply, txId = 0): Uint8Array {
  return encodeFrame({ op: reply.op, reqId, txId, payload: encodeReplyPayload(reply) });
}
const event = (path: string, token: string): Uint8Array => replyBytes(0, { op: 'WATCH_EVENT', path, token });
const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

function setup(opts: XenstoreClientOptions = {}): { t: ScriptedTransport; c: XenstoreClient; warnings: Error[] } {
  const t = new ScriptedTransport();
  const warnings: Error[] = [];
  const c = new XenstoreClient(t, { onWarning: (e) => warnings.push(e), retryBaseMs: 1, ...opts });
  return { t, c, warnings };
}

test('replies are routed by req_id, in any order; watch events between them go to listeners', async (t) => {
  const { t: tr, c } = setup();
  const events: string[] = [];
  c.onWatch((p, tok) => events.push(`${p}|${tok}`));
  const a = c.read('a');
  const b = c.read('b');
  const d = c.directory('d');
  t.deepEqual(
    tr.sent.map((s) => s.frame.reqId),
    [1, 2, 3],
    'req_ids from a counter',
  );
  t.equal(tr.writes, 3, 'one write per frame');
  // One chunk: event, reply 2, event, reply 1, half of reply 3.
  const r3 = replyBytes(3, { op: 'DIRECTORY', entries: ['x', 'y'] });
  tr.feed(
    concat(
      event('e1', 't'),
      replyBytes(2, { op: 'READ', value: Buffer.from('B') }),
      event('e2', 't'),
      replyBytes(1, { op: 'READ', value: Buffer.from('A') }),
      r3.subarray(0, 10),
    ),
  );
  t.equal(await b, 'B');
  t.equal(await a, 'A');
  for (const byte of r3.subarray(10)) tr.feed(Uint8Array.of(byte));
  t.deepEqual(await d, ['x', 'y']);
  t.deepEqual(events, ['e1|t', 'e2|t'], 'events in order');
});

test('watch listeners: unsubscribe, a throwing listener does not stop the others', async (t) => {
  const { t: tr, c, warnings } = setup();
  const got: string[] = [];
  c.onWatch(() => {
    throw new Error('boom');
  });
  const off = c.onWatch((p) => got.push(p));
  tr.feed(event('p1', 'x'));
  off();
  tr.feed(event('p2', 'x'));
  t.deepEqual(got, ['p1']);
  t.equal(warnings.length, 2, 'each throw reported as a warning');
  t.match(warnings[0]!.message, /watch listener threw on p1.*boom/);
  tr.feed(replyBytes(0, { op: 'WATCH_EVENT', path: 'p3', token: 't', extra: ['more', 'fields'] }));
  t.equal(warnings.length, 3, 'extra fields are fine (only the throwing listener warns)');
  const w = c.watch('p', 'tok');
  t.deepEqual(tr.sent[0]!.req, { op: 'WATCH', path: 'p', token: 'tok' });
  tr.answer(1, { op: 'WATCH' });
  await w;
  const u = c.unwatch('p', 'tok');
  tr.answer(2, { op: 'UNWATCH' });
  await u;
  t.pass('watch and unwatch acked');
});

test('ERROR replies become XenstoreError with op, path and code', async (t) => {
  const { t: tr, c } = setup();
  for (const code of ['ENOENT', 'EACCES', 'EINVAL', 'EQUOTA', 'E2BIG', 'EEXIST', 'EAGAIN', 'ENOSPC', 'EROFS', 'EBUSY', 'EISDIR', 'EIO', 'ENOSYS', 'EPERM']) {
    const p = c.write('data/x', 'v');
    tr.answer(tr.sent.at(-1)!.frame.reqId, { op: 'ERROR', code });
    try {
      await p;
      t.fail('should reject');
    } catch (e) {
      t.ok(e instanceof XenstoreError && e.code === code && e.op === 'WRITE' && e.path === 'data/x', `${code}: ${(e as Error).message}`);
    }
  }
  const p = c.read('x');
  tr.answer(tr.sent.at(-1)!.frame.reqId, { op: 'ERROR', code: 'EWEIRD' });
  await p.then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreError && e.code === 'EUNKNOWN' && e.reply === 'EWEIRD' && /EWEIRD/.test(e.message), 'unknown name kept'),
  );
  const q = c.tryRead('gone');
  tr.answer(tr.sent.at(-1)!.frame.reqId, { op: 'ERROR', code: 'ENOENT' });
  t.equal(await q, null, 'tryRead: null on ENOENT');
  const r = c.tryRead('secret');
  tr.answer(tr.sent.at(-1)!.frame.reqId, { op: 'ERROR', code: 'EACCES' });
  await r.then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreError && e.code === 'EACCES', 'tryRead: other errors thrown'),
  );
});

test('payloads over 4096 bytes are refused before sending', async (t) => {
  const { t: tr, c } = setup();
  const value = 'x'.repeat(4096 - 'data/x'.length - 1);
  const ok = c.write('data/x', value);
  t.equal(tr.sent[0]!.frame.payload.length, 4096, 'exactly 4096 is sent');
  tr.answer(1, { op: 'WRITE' });
  await ok;
  for (const [what, p] of [
    ['WRITE', () => c.write('data/x', value + 'y')],
    ['WRITE', () => c.write('data/x', new Uint8Array(5000))],
    [
      'SET_PERMS',
      () =>
        c.setPerms(
          'a',
          Array.from({ length: 1000 }, (_, i) => `r${i}`),
        ),
    ],
    ['READ', () => c.read('a/'.repeat(3000))],
  ] as const) {
    try {
      await p();
      t.fail('should reject');
    } catch (e) {
      t.ok(e instanceof XenstoreError && e.code === 'E2BIG' && e.op === what, `${what}: E2BIG`);
      t.match((e as Error).message, new RegExp(`refused before sending: the ${what} payload would be \\d+ bytes, more than the 4096`), 'clear message');
    }
  }
  t.equal(tr.writes, 1, 'nothing else was written');
  await c.read('a\0b').then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreError && e.code === 'EINVAL' && /NUL/.test(e.message), 'a NUL in a path is refused'),
  );
  t.equal(tr.writes, 1);
});

test('connection loss fails every pending request, and later ones at once', async (t) => {
  const { t: tr, c } = setup();
  const closes: Array<Error | undefined> = [];
  c.onClose((e) => closes.push(e));
  const ps = [c.read('a'), c.write('b', 'v'), c.directory('c')];
  tr.lose(new Error('socket reset'));
  for (const [i, p] of ps.entries()) {
    try {
      await p;
      t.fail('should reject');
    } catch (e) {
      t.ok(e instanceof XenstoreConnectionError, `pending ${i} fails with XenstoreConnectionError`);
      t.match((e as Error).message, /closed before the reply to (READ a|WRITE b|DIRECTORY c).*socket reset/, (e as Error).message);
    }
  }
  t.equal(closes.length, 1, 'onClose listener told once');
  t.ok(c.isClosed);
  await c.read('x').then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreConnectionError && /is closed/.test(e.message), 'a new request fails at once'),
  );
  t.equal(tr.sent.length, 3, 'nothing sent after the loss');
});

test('close() fails pending requests and closes the transport', async (t) => {
  const { t: tr, c } = setup();
  const p = c.read('a');
  c.close();
  t.ok(tr.closed);
  await p.then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreConnectionError && /closed by the client/.test(e.message), e.message),
  );
});

test('a transport write that throws is a connection loss', async (t) => {
  const { t: tr, c } = setup();
  tr.write = () => {
    throw new Error('EPIPE');
  };
  await c.read('a').then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreConnectionError && /writing to xenstore failed.*EPIPE/.test(e.message), e.message),
  );
  t.ok(tr.closed && c.isClosed);
});

test('unknown reply types, wrong reply types, malformed replies, stray replies', async (t) => {
  const { t: tr, c, warnings } = setup();
  const a = c.read('a');
  // type 99 with a's req_id
  const unknown = new Uint8Array(16 + 2);
  new DataView(unknown.buffer).setUint32(0, 99, true);
  new DataView(unknown.buffer).setUint32(4, 1, true);
  new DataView(unknown.buffer).setUint32(12, 2, true);
  tr.feed(unknown);
  await a.then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreProtocolError && /unknown type 99/.test(e.message) && e.op === 'READ', e.message),
  );
  const b = c.read('b');
  tr.answer(2, { op: 'WRITE' });
  await b.then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreProtocolError && /answered with a WRITE frame/.test(e.message), e.message),
  );
  const d = c.write('d', 'v');
  tr.feed(encodeFrame({ op: 'WRITE', reqId: 3, txId: 0, payload: Buffer.from('NOPE\0') }));
  await d.then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreProtocolError && /malformed WRITE payload/.test(e.message), e.message),
  );
  tr.answer(77, { op: 'READ', value: new Uint8Array(0) });
  unknown[4] = 88;
  tr.feed(unknown);
  t.equal(warnings.length, 2, 'a reply nobody waits for and an unknown type without a request are warnings');
  t.match(warnings[0]!.message, /req_id 77/);
  t.notOk(c.isClosed, 'the connection survives all of these');
  const e = c.read('e');
  tr.answer(4, { op: 'READ', value: Buffer.from('fine') });
  t.equal(await e, 'fine');
});

test('a frame announcing more than 4096 bytes ends the connection', async (t) => {
  const { t: tr, c } = setup();
  const p = c.read('a');
  const bad = new Uint8Array(16);
  new DataView(bad.buffer).setUint32(0, 2, true);
  new DataView(bad.buffer).setUint32(12, 5000, true);
  tr.feed(bad);
  await p.then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreConnectionError && /malformed frame/.test(e.message) && /5000/.test(e.message), e.message),
  );
  t.ok(tr.closed, 'transport closed');
});

test('request timeout: XenstoreTimeoutError, late reply dropped quietly, connection still usable', async (t) => {
  const { t: tr, c, warnings } = setup({ requestTimeoutMs: 30 });
  const started = Date.now();
  await c.read('slow').then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreTimeoutError && e.timeoutMs === 30 && /READ slow: no reply from xenstored within 30 ms/.test(e.message), e.message),
  );
  t.ok(Date.now() - started >= 25, 'waited about the timeout');
  tr.answer(1, { op: 'READ', value: Buffer.from('late') });
  t.equal(warnings.length, 0, 'late reply is not a warning');
  const p = c.read('next');
  t.equal(tr.sent[1]!.frame.reqId, 2);
  tr.answer(2, { op: 'READ', value: Buffer.from('ok') });
  t.equal(await p, 'ok');
});

test('without a timeout option, requests wait (no timer is armed)', async (t) => {
  let armed = 0;
  const { t: tr, c } = setup({ timers: { setTimeout: (fn, ms) => (armed++, setTimeout(fn, ms)), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) } });
  const p = c.read('a');
  await tick();
  tr.answer(1, { op: 'READ', value: Buffer.from('v') });
  t.equal(await p, 'v');
  t.equal(armed, 0);
});

/** Answers transactions automatically: START gives id 10+n, END replies with the next of `commitReplies` (default OK). */
function autoTx(tr: ScriptedTransport, commitReplies: XsReply[] = []): void {
  let n = 0;
  tr.responder = (s) => {
    const id = s.frame.reqId;
    queueMicrotask(() => {
      switch (s.req.op) {
        case 'TRANSACTION_START':
          return tr.answer(id, { op: 'TRANSACTION_START', txId: 10 + n++ });
        case 'TRANSACTION_END':
          return tr.answer(id, s.req.commit ? (commitReplies.shift() ?? { op: 'TRANSACTION_END' }) : { op: 'TRANSACTION_END' }, s.frame.txId);
        case 'READ':
          return tr.answer(id, { op: 'READ', value: Buffer.from('v') }, s.frame.txId);
        default:
          return tr.answer(id, { op: s.req.op } as XsReply, s.frame.txId);
      }
    });
  };
}
const ops = (tr: ScriptedTransport): string[] =>
  tr.sent.map((s) => `${s.req.op}${'commit' in s.req ? (s.req.commit ? ' T' : ' F') : ''}${'path' in s.req ? ' ' + s.req.path : ''} tx=${s.frame.txId}`);

test('transaction: ops carry the tx id, commit with T', async (t) => {
  const { t: tr, c } = setup();
  autoTx(tr);
  const r = await c.transaction(async (tx) => {
    t.equal(tx.id, 10);
    const v = await tx.read('a');
    await tx.write('a', v + '!');
    await tx.rm('b');
    await tx.mkdir('c');
    return v;
  });
  t.equal(r, 'v');
  t.deepEqual(ops(tr), ['TRANSACTION_START tx=0', 'READ a tx=10', 'WRITE a tx=10', 'RM b tx=10', 'MKDIR c tx=10', 'TRANSACTION_END T tx=10']);
  t.equal(Buffer.from(tr.sent[0]!.frame.payload).toString('hex'), '00', 'START payload is one NUL');
});

test('transaction: a throwing body aborts (F) and the error comes out unchanged', async (t) => {
  const { t: tr, c } = setup();
  autoTx(tr);
  const boom = new Error('body failed');
  let leaked: unknown = null;
  await c
    .transaction(async (tx) => {
      await tx.write('a', '1');
      leaked = tx;
      throw boom;
    })
    .then(
      () => t.fail('should reject'),
      (e) => t.equal(e, boom, 'same error'),
    );
  t.deepEqual(ops(tr), ['TRANSACTION_START tx=0', 'WRITE a tx=10', 'TRANSACTION_END F tx=10']);
  await (leaked as { read(p: string): Promise<string> }).read('a').then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreError && /already ended/.test(e.message), 'a leaked handle refuses to work'),
  );
});

test('transaction: EAGAIN at commit reruns the body, with a bound', async (t) => {
  const { t: tr, c } = setup();
  autoTx(tr, [
    { op: 'ERROR', code: 'EAGAIN' },
    { op: 'ERROR', code: 'EAGAIN' },
  ]);
  let runs = 0;
  const r = await c.transaction(async (tx) => {
    runs++;
    await tx.write('a', String(runs));
    return runs;
  });
  t.equal(r, 3, 'third run committed');
  t.deepEqual(
    ops(tr).filter((o) => o.startsWith('TRANSACTION')),
    [
      'TRANSACTION_START tx=0',
      'TRANSACTION_END T tx=10',
      'TRANSACTION_START tx=0',
      'TRANSACTION_END T tx=11',
      'TRANSACTION_START tx=0',
      'TRANSACTION_END T tx=12',
    ],
  );

  const s = setup();
  autoTx(
    s.t,
    Array.from({ length: 10 }, () => ({ op: 'ERROR', code: 'EAGAIN' }) as XsReply),
  );
  let runs2 = 0;
  await s.c
    .transaction(async () => void runs2++, { maxAttempts: 3 })
    .then(
      () => t.fail('should reject'),
      (e) => t.ok(e instanceof XenstoreError && e.code === 'EAGAIN' && /after 3 attempt/.test(e.message), e.message),
    );
  t.equal(runs2, 3, 'body ran maxAttempts times');

  const u = setup();
  autoTx(u.t, [{ op: 'ERROR', code: 'EACCES' }]);
  let runs3 = 0;
  await u.c
    .transaction(async () => void runs3++)
    .then(
      () => t.fail('should reject'),
      (e) => t.ok(e instanceof XenstoreError && e.code === 'EACCES', 'other commit errors are not retried'),
    );
  t.equal(runs3, 1);
});

test('transaction: EAGAIN from inside the body also aborts and retries', async (t) => {
  const { t: tr, c } = setup();
  autoTx(tr);
  let runs = 0;
  const r = await c.transaction(async () => {
    runs++;
    if (runs === 1) throw new XenstoreError('EAGAIN', { op: 'READ', path: 'a' });
    return 'done';
  });
  t.equal(r, 'done');
  t.deepEqual(
    ops(tr).filter((o) => o.startsWith('TRANSACTION_END')),
    ['TRANSACTION_END F tx=10', 'TRANSACTION_END T tx=11'],
  );
});

test('directory falls back to DIRECTORY_PART on E2BIG', async (t) => {
  const { t: tr, c } = setup();
  tr.responder = (s) =>
    queueMicrotask(() => {
      const id = s.frame.reqId;
      if (s.req.op === 'DIRECTORY') return tr.answer(id, { op: 'ERROR', code: 'E2BIG' });
      if (s.req.op === 'DIRECTORY_PART') {
        if (s.req.offset === 0) return tr.answer(id, { op: 'DIRECTORY_PART', generation: '7', children: ['a', 'bb'], complete: false });
        if (s.req.offset === 5) return tr.answer(id, { op: 'DIRECTORY_PART', generation: '7', children: ['c'], complete: true });
        return tr.answer(id, { op: 'ERROR', code: 'EINVAL' });
      }
    });
  t.deepEqual(await c.directory('/big'), ['a', 'bb', 'c']);
  t.deepEqual(ops(tr), ['DIRECTORY /big tx=0', 'DIRECTORY_PART /big tx=0', 'DIRECTORY_PART /big tx=0']);
});

test('getDomainPath, getPerms, setPerms, readBytes', async (t) => {
  const { t: tr, c } = setup();
  tr.responder = (s) =>
    queueMicrotask(() => {
      const id = s.frame.reqId;
      if (s.req.op === 'GET_DOMAIN_PATH') tr.answer(id, { op: 'GET_DOMAIN_PATH', path: `/local/domain/${s.req.domid}` });
      else if (s.req.op === 'GET_PERMS') tr.answer(id, { op: 'GET_PERMS', entries: ['n5', 'r0'] });
      else if (s.req.op === 'SET_PERMS') tr.answer(id, { op: 'SET_PERMS' });
      else if (s.req.op === 'READ') tr.answer(id, { op: 'READ', value: Uint8Array.of(0, 0xff, 0xc3) });
    });
  t.equal(await c.getDomainPath(7), '/local/domain/7');
  t.deepEqual(await c.getPerms('x'), ['n5', 'r0']);
  await c.setPerms('x', ['n5', 'b0']);
  t.deepEqual(tr.sent[2]!.req, { op: 'SET_PERMS', path: 'x', perms: ['n5', 'b0'] });
  t.deepEqual([...(await c.readBytes('bin'))], [0, 0xff, 0xc3]);
  t.equal(await c.read('bin'), '\0\ufffd\ufffd', 'read decodes invalid UTF-8 to U+FFFD');
});

test('a throwing onWarning hook does not break the dispatcher', async (t) => {
  const tr = new ScriptedTransport();
  const c = new XenstoreClient(tr, {
    onWarning: () => {
      throw new Error('hook broke');
    },
  });
  const p = c.read('a');
  t.doesNotThrow(() => tr.feed(concat(replyBytes(99, { op: 'READ', value: new Uint8Array(0) }), replyBytes(1, { op: 'READ', value: Buffer.from('A') }))));
  t.equal(await p, 'A', 'the reply after the stray one is still delivered');
});

test('maxInFlight 1 (the xenbus device): one request outstanding at a time, in order; replies, errors and timeouts free the slot', async (t) => {
  const { t: tr, c } = setup({ maxInFlight: 1, requestTimeoutMs: 40 });
  const a = c.read('a');
  const b = c.write('b', 'B');
  const d = c.read('d');
  t.deepEqual(
    tr.sent.map((s) => s.frame.reqId),
    [1],
    'only the first request is written',
  );
  tr.answer(1, { op: 'READ', value: Buffer.from('A') });
  t.equal(await a, 'A');
  t.deepEqual(
    tr.sent.map((s) => s.frame.reqId),
    [1, 2],
    'its reply lets the second out',
  );
  tr.feed(replyBytes(2, { op: 'ERROR', code: 'EACCES' } as XsReply));
  await b.then(
    () => t.fail('should reject'),
    (e) => t.ok(e instanceof XenstoreError && e.code === 'EACCES', 'an ERROR reply also frees the slot'),
  );
  t.deepEqual(
    tr.sent.map((s) => s.req.op),
    ['READ', 'WRITE', 'READ'],
    'the third goes out, in order',
  );
  await d.then(
    () => t.fail('should time out'),
    (e) => t.ok(e instanceof XenstoreTimeoutError, 'a timeout frees the slot'),
  );
  const queuedA = c.read('q1');
  const queuedB = c.read('q2');
  t.equal(tr.sent.length, 4, 'after the timeout the next request goes out at once');
  tr.answer(4, { op: 'READ', value: Buffer.from('1') });
  t.equal(await queuedA, '1');
  tr.answer(5, { op: 'READ', value: Buffer.from('2') });
  t.equal(await queuedB, '2');
});

test('maxInFlight: a queued request that times out is never written; the transport can ask for the limit itself', async (t) => {
  const tr = new ScriptedTransport();
  Object.defineProperty(tr, 'maxInFlight', { value: 1 });
  // Timers fired by hand, so the queued request can time out while the first is still outstanding.
  const armed: Array<() => void> = [];
  const c = new XenstoreClient(tr, { requestTimeoutMs: 1000, timers: { setTimeout: (fn) => armed.push(fn), clearTimeout: () => {} } });
  const first = c.read('first');
  const second = c.read('second');
  t.equal(tr.sent.length, 1, "the transport's maxInFlight is honoured");
  armed[1]!();
  await second.then(
    () => t.fail('should time out'),
    (e) => t.ok(e instanceof XenstoreTimeoutError, 'the queued request times out'),
  );
  const third = c.read('third');
  t.equal(tr.sent.length, 1, 'the first still holds the slot');
  tr.answer(1, { op: 'READ', value: Buffer.from('1') });
  t.equal(await first, '1');
  t.deepEqual(
    tr.sent.map((s) => (s.req as { path: string }).path),
    ['first', 'third'],
    'the timed-out request was never written',
  );
  tr.answer(tr.sent[1]!.frame.reqId, { op: 'READ', value: Buffer.from('3') });
  t.equal(await third, '3');
});

test('maxInFlight 1: a transaction with concurrent writes still sends them one by one, and connection loss fails the queued ones', async (t) => {
  const { t: tr, c } = setup({ maxInFlight: 1 });
  tr.responder = (s) => {
    // Answer asynchronously, as a real xenstored does.
    const reply: XsReply = s.req.op === 'TRANSACTION_START' ? { op: 'TRANSACTION_START', txId: 9 } : ({ op: s.req.op } as XsReply);
    setTimeout(() => tr.answer(s.frame.reqId, reply, s.frame.txId), 1);
  };
  let maxOutstanding = 0;
  const outstanding = new Set<number>();
  const origAnswer = tr.answer.bind(tr);
  tr.answer = (reqId, reply, txId) => {
    outstanding.delete(reqId);
    origAnswer(reqId, reply, txId);
  };
  const origWrite = tr.write.bind(tr);
  tr.write = (bytes) => {
    origWrite(bytes);
    outstanding.add(tr.sent.at(-1)!.frame.reqId);
    maxOutstanding = Math.max(maxOutstanding, outstanding.size);
  };
  await c.transaction(async (tx) => {
    await Promise.all(['k1', 'k2', 'k3', 'k4'].map((k) => tx.write(k, k)));
  });
  t.deepEqual(
    tr.sent.map((s) => s.req.op),
    ['TRANSACTION_START', 'WRITE', 'WRITE', 'WRITE', 'WRITE', 'TRANSACTION_END'],
  );
  t.equal(maxOutstanding, 1, 'never more than one request outstanding');
  tr.responder = null;
  const p1 = c.read('x');
  const p2 = c.read('y');
  tr.lose(new Error('gone'));
  for (const p of [p1, p2])
    await p.then(
      () => t.fail('should reject'),
      (e) => t.ok(e instanceof XenstoreConnectionError, 'sent and queued requests fail on loss'),
    );
});

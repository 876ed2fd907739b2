// The client against the in-memory xenstored over a real unix socket: every
// op, xenstored's error rules, watches (initial fire, descendants, rm,
// relative paths), transactions (conflicts, injected EAGAIN), and faults.
import test from 'tape';
import { XenstoreClient } from '../../xenstore/client.ts';
import { XenstoreConnectionError, XenstoreError, XenstoreTimeoutError, type XenstoreErrorCode } from '../../xenstore/errors.ts';
import { startTestXenstored, type TestXenstored } from '../../testing/test-xenstored.ts';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';
import { XS_OPS, encodeFrame } from '../../protocol/xenstore-wire.ts';

async function withServer(domid: number, body: (srv: TestXenstored, guest: XenstoreClient, dom0: XenstoreClient) => Promise<void>): Promise<void> {
  const srv = await startTestXenstored({ domid });
  const guest = new XenstoreClient(await connectUnixSocket(srv.socketPath), { requestTimeoutMs: 5000, retryBaseMs: 1 });
  const dom0 = new XenstoreClient(await connectUnixSocket(srv.dom0SocketPath), { requestTimeoutMs: 5000, retryBaseMs: 1 });
  try {
    await body(srv, guest, dom0);
  } finally {
    guest.close();
    dom0.close();
    await srv.close();
  }
}

async function code(p: Promise<unknown>): Promise<XenstoreErrorCode | 'ok' | string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof XenstoreError ? e.code : String(e);
  }
}

/** Resolves once `n` watch events have arrived (bounded). */
function collect(c: XenstoreClient, n: number, ms = 2000): Promise<string[]> {
  const got: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`expected ${n} watch events within ${ms} ms, got ${JSON.stringify(got)}`));
    }, ms);
    const off = c.onWatch((p, tok) => {
      got.push(`${p} ${tok}`);
      if (got.length === n) {
        clearTimeout(timer);
        off();
        resolve(got);
      }
    });
  });
}
/** Lets in-flight events arrive (a round trip orders them after everything sent before). */
const sync = (c: XenstoreClient): Promise<unknown> => c.getDomainPath(0);

test('read, write, mkdir, rm, directory; implicit parents; relative paths', (t) =>
  withServer(5, async (srv, g) => {
    t.equal(await g.getDomainPath(5), '/local/domain/5');
    await g.write('data/a/b/c', 'héllo ☃');
    t.equal(await g.read('data/a/b/c'), 'héllo ☃');
    t.equal(await g.read('/local/domain/5/data/a/b/c'), 'héllo ☃', 'absolute = relative');
    t.equal(await g.read('data/a'), '', 'implicit parent has an empty value');
    t.deepEqual(await g.directory('data/a'), ['b']);
    t.equal(srv.store.read('data/a/b/c'), 'héllo ☃', 'store API sees it');
    await g.write('data/bin', Uint8Array.of(0, 1, 255));
    t.deepEqual([...(await g.readBytes('data/bin'))], [0, 1, 255], 'binary values byte for byte');
    await g.write('data/empty', '');
    t.equal(await g.read('data/empty'), '');
    await g.mkdir('data/dir');
    await g.mkdir('data/dir');
    t.deepEqual(await g.directory('data/dir'), [], 'mkdir twice is fine; empty directory');
    t.deepEqual((await g.directory('data')).sort(), ['a', 'bin', 'dir', 'empty']);
    await g.rm('data/a');
    t.equal(await g.tryRead('data/a/b/c'), null, 'rm is recursive');
    t.equal(await code(g.rm('data/a')), 'ok', 'rm of a missing node whose parent exists is fine');
    t.equal(await code(g.rm('data/nope/deeper')), 'ENOENT', 'rm with a missing parent is ENOENT');
    t.equal(await code(g.read('data/nope')), 'ENOENT');
    t.equal(await code(g.directory('data/nope')), 'ENOENT');
    const value4k = 'v'.repeat(4096 - 'data/big'.length - 1);
    await g.write('data/big', value4k);
    t.equal((await g.read('data/big')).length, value4k.length, 'largest value round-trips');
  }));

test('EINVAL for bad paths, as xenstored', (t) =>
  withServer(5, async (_srv, g) => {
    for (const p of ['', 'a//b', 'data/', 'data/a b', 'data/ü', '/local/domain/5/data/x/']) {
      t.equal(await code(g.write(p, 'x')), 'EINVAL', `write ${JSON.stringify(p)}`);
    }
    t.equal(await code(g.rm('/')), 'EINVAL', 'rm /');
    t.equal(await code(g.read('@releaseDomain')), 'EINVAL', 'special paths only for watches');
    t.equal(await code(g.watch('@releaseDomain', 'r')), 'ok', 'a watch on a special path is fine');
  }));

test('permissions: libxl layout, EACCES, get/set perms, ownership of created nodes', (t) =>
  withServer(5, async (srv, g, d0) => {
    t.deepEqual(await g.getPerms('control'), ['n0', 'r5'], 'control is read-only for the guest');
    t.deepEqual(await g.getPerms('control/shutdown'), ['n5'], "control/shutdown is the guest's");
    t.equal(await code(g.write('control/new-node', 'x')), 'EACCES', 'cannot create under control/');
    t.equal(await code(g.write('control/shutdown', '')), 'ok', 'can ack control/shutdown');
    t.equal(await code(g.write('domid', '9')), 'EACCES', 'cannot overwrite a read-only node');
    t.equal(await g.read('domid'), '5', 'but can read it');
    t.equal(await code(g.read('/local/domain/0')), 'EACCES', "cannot read dom0's home");
    t.equal(await code(g.directory('/local/domain/0')), 'EACCES');
    await g.write('data/mine', 'x');
    t.deepEqual(await g.getPerms('data/mine'), ['n5'], 'created nodes are owned by the creator');
    await d0.write('/local/domain/5/data/from-dom0', 'x');
    t.deepEqual(await d0.getPerms('/local/domain/5/data/from-dom0'), ['n5'], "dom0 creations inherit the parent's perms");
    await d0.write('/local/domain/5/control/testing', 'now:poweroff');
    t.deepEqual(await g.getPerms('control/testing'), ['n0', 'r5'], 'a dom0 node under control inherits n0,r5');
    t.equal(await code(g.write('control/testing', '')), 'EACCES', 'so the guest cannot ack it unless perms are set');
    await d0.setPerms('/local/domain/5/control/testing', ['n5']);
    t.equal(await code(g.write('control/testing', '')), 'ok', 'after setPerms it can');
    t.deepEqual(srv.store.getPerms('control/testing'), ['n5']);
    await g.setPerms('data/mine', ['n5', 'r7']);
    t.deepEqual(await g.getPerms('data/mine'), ['n5', 'r7']);
    t.equal(await code(g.setPerms('data/mine', ['n7'])), 'EPERM', 'a guest cannot give its node away');
    t.equal(await code(g.setPerms('domid', ['n5'])), 'EACCES', 'nor take a node it does not own');
    t.equal(await code(g.setPerms('data/mine', ['x5'])), 'EINVAL', 'malformed perms');
    t.equal(await code(g.getPerms('data/nope')), 'ENOENT');
  }));

test('watches: fire on registration, on the node and below, on rm; relative paths stay relative', (t) =>
  withServer(5, async (srv, g, d0) => {
    let ev = collect(g, 1);
    await g.watch('control/shutdown', 'tok1');
    t.deepEqual(await ev, ['control/shutdown tok1'], 'fires once at registration, with the path as given');

    ev = collect(g, 3);
    srv.store.write('control/shutdown', 'poweroff'); // dom0 side, no socket
    await d0.write('/local/domain/5/control/shutdown/child', 'x');
    await d0.rm('/local/domain/5/control/shutdown');
    t.deepEqual(await ev, ['control/shutdown tok1', 'control/shutdown/child tok1', 'control/shutdown tok1'], 'write, descendant write, rm');

    ev = collect(g, 2);
    await g.watch('/local/domain/5/data', 'abs');
    await g.write('data/x', '1');
    t.deepEqual(await ev, ['/local/domain/5/data abs', '/local/domain/5/data/x abs'], 'absolute watch hears absolute paths');

    ev = collect(g, 2);
    await g.watch('data/deep/node', 'below');
    await d0.rm('/local/domain/5/data');
    const got = await ev;
    t.deepEqual(got.sort(), ['/local/domain/5/data abs', 'data/deep/node below'].sort(), 'removing an ancestor fires a watch below it, with its own path');

    const before = collect(g, 1);
    await g.watch('/local/domain', 'top');
    t.deepEqual(await before, ['/local/domain top']);
    let leaks = 0;
    const offLeak = g.onWatch((p) => void (p.startsWith('/local/domain/0') && leaks++));
    await d0.write('/local/domain/0/secret', 'x');
    await sync(g);
    t.equal(leaks, 0, 'no event about a node the watcher may not read');
    offLeak();
    await g.unwatch('/local/domain', 'top');

    await g.unwatch('data/deep/node', 'below');
    await g.unwatch('/local/domain/5/data', 'abs');
    t.equal(await code(g.unwatch('data/deep/node', 'below')), 'ENOENT', 'unwatch twice is ENOENT');
    t.equal(await code(g.watch('control/shutdown', 'tok1')), 'EEXIST', 'same path and token twice is EEXIST');
    t.deepEqual(srv.watches(), ['control/shutdown tok1']);
    let count = 0;
    const off = g.onWatch(() => count++);
    await g.write('data/y', '1');
    await sync(g);
    t.equal(count, 0, 'no events after unwatch');
    off();
  }));

test('watch events interleave with replies on a busy connection', (t) =>
  withServer(5, async (_srv, g, d0) => {
    await g.watch('data', 'w');
    const ev = collect(g, 50);
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < 50; i++) {
      writes.push(d0.write(`/local/domain/5/data/n${i}`, String(i)));
      writes.push(g.read('domid').then(() => undefined));
    }
    await Promise.all(writes);
    const got = await ev;
    t.equal(got.length, 50, '50 events, none lost');
    t.equal(got[49], 'data/n49 w');
  }));

test('transactions: commit, abort, conflict -> EAGAIN -> retry', (t) =>
  withServer(5, async (srv, g, d0) => {
    const v = await g.transaction(async (tx) => {
      await tx.write('data/t1', 'a');
      t.equal(srv.store.read('data/t1'), undefined, 'not visible before commit');
      t.equal(await tx.read('data/t1'), 'a', 'visible inside');
      return tx.directory('data');
    });
    t.deepEqual(v, ['t1']);
    t.equal(srv.store.read('data/t1'), 'a', 'visible after commit');

    await g
      .transaction(async (tx) => {
        await tx.write('data/t2', 'b');
        throw new Error('changed my mind');
      })
      .catch(() => {});
    t.equal(srv.store.read('data/t2'), undefined, 'abort discards');

    let runs = 0;
    const r = await g.transaction(async (tx) => {
      runs++;
      const cur = await tx.read('data/t1');
      if (runs === 1) await d0.write('/local/domain/5/data/t1', 'changed'); // a conflicting write from dom0
      await tx.write('data/t1', cur + '+');
      return cur;
    });
    t.equal(runs, 2, 'conflict detected at commit, body rerun');
    t.equal(r, 'changed');
    t.equal(srv.store.read('data/t1'), 'changed+');

    runs = 0;
    await g.write('data/unrelated', '0');
    await g.transaction(async (tx) => {
      runs++;
      await tx.read('data/t1');
      if (runs === 1) await d0.write('/local/domain/5/data/unrelated', 'x');
      await tx.write('data/t3', '1');
    });
    t.equal(runs, 1, 'a change to a node the transaction did not touch is no conflict');

    runs = 0;
    await g.transaction(async (tx) => {
      runs++;
      if (runs === 1) await d0.write('/local/domain/5/data/sibling', 'x');
      await tx.write('data/t3b', '1');
    });
    t.equal(runs, 2, "creating a sibling changes the parent's child list: conflict, as in xenstored");

    srv.faults.failNextCommits(2);
    runs = 0;
    await g.transaction(async (tx) => {
      runs++;
      await tx.write('data/t4', String(runs));
    });
    t.equal(runs, 3);
    t.equal(srv.store.read('data/t4'), '3');

    srv.faults.failNextCommits(10);
    runs = 0;
    t.equal(await code(g.transaction(async () => void runs++, { maxAttempts: 4 })), 'EAGAIN');
    t.equal(runs, 4, 'gives up after maxAttempts');
    srv.faults.failNextCommits(0);

    const ev = collect(g, 2);
    await g.watch('data/t5', 'tx');
    await g.transaction(async (tx) => {
      await tx.write('data/t5', 'x');
    });
    t.deepEqual(await ev, ['data/t5 tx', 'data/t5 tx'], 'watches fire at commit');
    t.deepEqual(await g.getPerms('data/t5'), ['n5'], 'a node created in a transaction is owned by its creator');
    t.equal(await code(g.transaction(async (tx) => tx.write('control/x', '1'))), 'EACCES', 'permissions apply inside transactions');
  }));

test('injected faults: op failures, held replies (hung xenstored), dropped connections', (t) =>
  withServer(5, async (srv, g) => {
    srv.faults.failNext('WRITE', 'EQUOTA', 1, 'data/q');
    t.equal(await code(g.write('data/q', 'x')), 'EQUOTA');
    t.equal(await code(g.write('data/q', 'x')), 'ok', 'only once');

    srv.faults.delayReplies(30);
    const t0 = Date.now();
    await g.read('domid');
    t.ok(Date.now() - t0 >= 25, 'delayed reply');
    srv.faults.delayReplies(0);

    const hung = new XenstoreClient(await connectUnixSocket(srv.socketPath), { requestTimeoutMs: 50 });
    srv.faults.holdReplies();
    const err = await hung.read('domid').catch((e: unknown) => e);
    t.ok(err instanceof XenstoreTimeoutError, 'a hung xenstored is reported by the timeout');
    srv.faults.releaseReplies();
    t.equal(await hung.read('domid'), '5', 'released: the connection works again (late reply dropped)');
    hung.close();

    const p = g.read('domid');
    srv.faults.holdReplies();
    const q = g.read('name');
    srv.faults.dropConnections();
    srv.faults.releaseReplies();
    await p.catch(() => {});
    const e = await q.catch((x: unknown) => x);
    t.ok(e instanceof XenstoreConnectionError, `pending request fails on connection loss: ${(e as Error).message}`);
  }));

test('server answers unknown types with EINVAL and drops a connection that breaks framing', (t) =>
  withServer(5, async (srv) => {
    const raw = await connectUnixSocket(srv.socketPath);
    const chunks: Buffer[] = [];
    raw.onData((b) => chunks.push(Buffer.from(b)));
    const closed = new Promise<void>((r) => raw.onClose(() => r()));
    const unknown = Buffer.alloc(16);
    unknown.writeUInt32LE(99, 0);
    unknown.writeUInt32LE(4, 4);
    raw.write(unknown);
    // A correct request after it still works.
    raw.write(encodeFrame({ op: 'GET_DOMAIN_PATH', reqId: 5, txId: 0, payload: Buffer.from('3\0') }));
    await new Promise((r) => setTimeout(r, 50));
    const all = Buffer.concat(chunks);
    t.equal(all.readUInt32LE(0), XS_OPS.ERROR);
    t.equal(all.readUInt32LE(4), 4, 'ERROR carries the req_id');
    t.equal(all.subarray(16, 16 + all.readUInt32LE(12)).toString(), 'EINVAL\0');
    const second = 16 + all.readUInt32LE(12);
    t.equal(all.subarray(second + 16).toString(), '/local/domain/3\0');
    const tooLong = Buffer.alloc(16);
    tooLong.writeUInt32LE(2, 0);
    tooLong.writeUInt32LE(9999, 12);
    raw.write(tooLong);
    await closed;
    t.pass('connection dropped after a frame announcing 9999 bytes');
    t.ok(
      srv.requests.some((r) => r.op === 99),
      'the request log records the unknown type',
    );
  }));

test('request log and store helpers', (t) =>
  withServer(5, async (srv, g) => {
    await g.write('data/logged', 'v');
    const last = srv.requests.at(-1)!;
    t.equal(last.op, 'WRITE');
    t.equal(last.path, '/local/domain/5/data/logged', 'path resolved to absolute');
    t.equal(Buffer.from(last.payload).toString(), 'data/logged\0v', 'payload byte for byte');
    const waiting = srv.store.waitFor('data/later', (v) => v === 'yes', 2000);
    await g.write('data/later', 'no');
    await g.write('data/later', 'yes');
    t.equal(await waiting, 'yes');
    await srv.store
      .waitFor('data/never', (v) => v === 'x', 30)
      .then(
        () => t.fail('should time out'),
        (e: Error) => t.match(e.message, /waitFor \/local\/domain\/5\/data\/never: condition not met within 30 ms/),
      );
    t.deepEqual(srv.store.dump('data'), { '/local/domain/5/data': '', '/local/domain/5/data/logged': 'v', '/local/domain/5/data/later': 'yes' });
    t.equal(srv.connections(), 2);
  }));

test('DIRECTORY_PART pages through a directory too big for DIRECTORY', (t) =>
  withServer(5, async (srv, g) => {
    const names = Array.from({ length: 300 }, (_, i) => `child-with-a-long-name-${String(i).padStart(4, '0')}`);
    for (const n of names) srv.store.write(`data/big/${n}`, '');
    const from = srv.requests.length;
    t.deepEqual(await g.directory('data/big'), names, 'all children, in order');
    const ops = srv.requests.slice(from).map((r) => r.op);
    t.equal(ops[0], 'DIRECTORY', 'DIRECTORY first');
    t.ok(ops.filter((o) => o === 'DIRECTORY_PART').length >= 3, `then DIRECTORY_PART pages (${ops.join(' ')})`);
    const past = await g.request({ op: 'DIRECTORY_PART', path: 'data/big', offset: 1_000_000 }, 0);
    t.deepEqual((past as { children: string[]; complete: boolean }).children, [], 'offset past the end: no children');
    t.ok((past as { complete: boolean }).complete, 'and the end marker');
  }));

test('dom0 as a client: GET_DOMAIN_PATH, introduced, privileged reads', (t) =>
  withServer(7, async (_srv, g, d0) => {
    t.equal(await d0.read('/local/domain/7/domid'), '7');
    t.deepEqual(await d0.directory('/local/domain'), ['0', '7']);
    const r = await d0.request({ op: 'IS_DOMAIN_INTRODUCED', domid: 7 }, 0);
    t.deepEqual(r, { op: 'IS_DOMAIN_INTRODUCED', introduced: true });
    t.equal(await code(g.request({ op: 'RELEASE', domid: 7 }, 0)), 'EACCES', 'guests may not RELEASE');
  }));

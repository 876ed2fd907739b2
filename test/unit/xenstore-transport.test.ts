// Node transports. The xenbus device transport is exercised on a FIFO opened
// read-write: whatever the client writes comes back as if xenstored had sent
// it, which is enough to test the read loop (several frames per read), the
// one-write-per-frame rule and a prompt close while a read is blocked.
import test from 'tape';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { encodeFrame, encodeReplyPayload } from '../../protocol/xenstore-wire.ts';
import { XenstoreClient } from '../../xenstore/client.ts';
import { connectUnixSocket, openXenbusDevice } from '../../xenstore/transport-node.ts';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'xtv-transport-'));
}

test('xenbus device transport: loopback read, several frames in one read, prompt close', async (t) => {
  const dir = tempDir();
  const fifo = path.join(dir, 'xenbus');
  execFileSync('mkfifo', [fifo]);
  try {
    const transport = await openXenbusDevice(fifo);
    const c = new XenstoreClient(transport, { requestTimeoutMs: 2000 });
    // The READ request comes straight back: a READ frame with the same req_id, payload "x\0".
    t.equal(await c.read('x'), 'x\0', 'a frame written is read back whole');

    const events: string[] = [];
    c.onWatch((p, tok) => events.push(`${p} ${tok}`));
    const three = Buffer.concat(['a', 'b', 'c'].map((p) => encodeFrame({ op: 'WATCH_EVENT', reqId: 0, txId: 0, payload: encodeReplyPayload({ op: 'WATCH_EVENT', path: p, token: 't' }) })));
    const other = fs.openSync(fifo, fs.constants.O_RDWR);
    fs.writeSync(other, three); // one write, so one read returns all three frames
    fs.closeSync(other);
    const deadline = Date.now() + 2000;
    while (events.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    t.deepEqual(events, ['a t', 'b t', 'c t'], 'three frames from one read');

    let closed = 0;
    transport.onClose(() => closed++);
    const started = Date.now();
    c.close(); // a read is blocked in the thread pool right now
    t.equal(closed, 1, 'onClose runs at once');
    // The wake-up frame unblocks the read; without it this test file would never exit.
    await new Promise((r) => setTimeout(r, 50));
    t.ok(Date.now() - started < 1000, 'close did not wait for traffic');
    t.throws(() => transport.write(new Uint8Array(16)), /closed/, 'writes after close throw');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('xenbus device transport: a missing device is a clear error', async (t) => {
  await openXenbusDevice('/nonexistent/xenbus').then(
    () => t.fail('should reject'),
    (e: Error) => t.match(e.message, /opening \/nonexistent\/xenbus: ENOENT/),
  );
});

test('unix socket transport: connect errors name the path; close and remote close', async (t) => {
  await connectUnixSocket('/nonexistent/xenstored/socket').then(
    () => t.fail('should reject'),
    (e: Error) => t.match(e.message, /connecting to xenstored at \/nonexistent\/xenstored\/socket: .*ENOENT/),
  );

  const dir = tempDir();
  const sock = path.join(dir, 'socket');
  const peers: net.Socket[] = [];
  const server = net.createServer((s) => peers.push(s));
  await new Promise<void>((r) => server.listen(sock, () => r()));
  try {
    const a = await connectUnixSocket(sock);
    const aClosed: Array<Error | undefined> = [];
    a.onClose((e) => aClosed.push(e));
    a.close();
    a.close();
    t.deepEqual(aClosed, [undefined], 'close(): onClose once, without an error');
    t.throws(() => a.write(new Uint8Array(1)), /is closed/);

    const b = await connectUnixSocket(sock);
    const got: Buffer[] = [];
    b.onData((bytes) => got.push(Buffer.from(bytes)));
    const bClosed = new Promise<Error | undefined>((r) => b.onClose(r));
    while (peers.length < 2) await new Promise((r) => setTimeout(r, 5));
    peers[1]!.write(Buffer.from('hello'));
    b.write(Buffer.from('ping'));
    const echoed = await new Promise<Buffer>((r) => peers[1]!.once('data', r));
    t.equal(echoed.toString(), 'ping', 'write reaches the server');
    peers[1]!.destroy();
    const err = await bClosed;
    t.match(String(err), /closed by the other end/, 'remote close reports an error');
    t.equal(Buffer.concat(got).toString(), 'hello', 'data delivered');
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

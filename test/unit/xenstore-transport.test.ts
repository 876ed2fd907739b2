// The Node transport: xenstored's unix socket.
import test from 'tape';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'xtv-transport-'));
}

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

// The Node transport for the xenstore client (Node only; the guest's QuickJS
// transport, on /dev/xen/xenbus, lives with the agent):
//   connectUnixSocket  xenstored's socket in dom0 (/run/xenstored/socket), or the test server's
import * as net from 'node:net';
import type { Transport } from './transport.ts';

/** Where xenstored listens in dom0 (Xen 4.17; older releases used /var/run/xenstored/socket). */
export const XENSTORED_SOCKET = '/run/xenstored/socket';

/** Runs the onClose callbacks once, with the first cause seen. */
class CloseOnce {
  private callbacks: Array<(err?: Error) => void> = [];
  private done = false;
  private cause: Error | undefined;
  add(cb: (err?: Error) => void): void {
    if (this.done) queueMicrotask(() => cb(this.cause));
    else this.callbacks.push(cb);
  }
  fire(err?: Error): void {
    if (this.done) return;
    this.done = true;
    this.cause = err;
    for (const cb of this.callbacks.splice(0)) cb(err);
  }
  get closed(): boolean {
    return this.done;
  }
}

/**
 * Connects to a xenstored unix socket. Resolves once connected; rejects with
 * a message naming the path (ENOENT: xenstored not running; EACCES: not root).
 */
export function connectUnixSocket(path: string = XENSTORED_SOCKET, opts: { timeoutMs?: number } = {}): Promise<Transport> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to xenstored at ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`connecting to xenstored at ${path}: ${err.message}`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socketTransport(socket, path));
    });
  });
}

function socketTransport(socket: net.Socket, path: string): Transport {
  const closing = new CloseOnce();
  let lastError: Error | undefined;
  socket.on('error', (err) => {
    lastError = new Error(`xenstored socket ${path}: ${err.message}`);
  });
  socket.on('close', () => closing.fire(lastError ?? (closing.closed ? undefined : new Error(`xenstored socket ${path} closed by the other end`))));
  let closedByUs = false;
  return {
    write(bytes) {
      if (closedByUs || socket.destroyed) throw new Error(`xenstored socket ${path} is closed`);
      socket.write(bytes);
    },
    onData(cb) {
      // Copy: Node may hand out slices of a pooled buffer.
      socket.on('data', (chunk: Buffer) => cb(new Uint8Array(chunk)));
    },
    onClose(cb) {
      closing.add(cb);
    },
    close() {
      if (closedByUs) return;
      closedByUs = true;
      socket.destroy();
      closing.fire();
    },
  };
}

// Node transports for the xenstore client (Node only; the guest's QuickJS
// transport lives with the agent):
//   connectUnixSocket  xenstored's socket in dom0 (/run/xenstored/socket), or the test server's
//   openXenbusDevice   /dev/xen/xenbus, in a guest or in dom0
import * as fs from 'node:fs';
import * as net from 'node:net';
import { encodeFrame, encodeRequestPayload } from '../protocol/xenstore-wire.ts';
import { XENBUS_DEVICE_MAX_IN_FLIGHT, type Transport } from './transport.ts';

/** Where xenstored listens in dom0 (Xen 4.17; older releases used /var/run/xenstored/socket). */
export const XENSTORED_SOCKET = '/run/xenstored/socket';
export const XENBUS_DEVICE = '/dev/xen/xenbus';

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

/**
 * Opens the xenbus device. Writes are synchronous, one write(2) per frame
 * (the kernel takes one message per write). Reads run in a loop on libuv's
 * thread pool; one read may return several frames, or part of one.
 *
 * A blocking read cannot be interrupted, so close() reports the transport
 * closed at once but closes the descriptor only when the read in flight
 * returns; to make that prompt it sends a harmless GET_DOMAIN_PATH whose
 * reply ends the read (and is dropped).
 */
export function openXenbusDevice(path: string = XENBUS_DEVICE): Promise<Transport> {
  return new Promise((resolve, reject) => {
    fs.open(path, fs.constants.O_RDWR, (err, fd) => {
      if (err) {
        reject(new Error(`opening ${path}: ${err.message}`));
        return;
      }
      resolve(deviceTransport(fd, path));
    });
  });
}

/** A request whose only purpose is to make xenstored answer (req_id chosen to stand out in traces). */
const WAKE_FRAME = encodeFrame({ op: 'GET_DOMAIN_PATH', reqId: 0xfffffffe, txId: 0, payload: encodeRequestPayload({ op: 'GET_DOMAIN_PATH', domid: 0 }) });

function deviceTransport(fd: number, path: string): Transport {
  const closing = new CloseOnce();
  const dataCallbacks: Array<(bytes: Uint8Array) => void> = [];
  let reading = false;
  let closedByUs = false;
  let fdClosed = false;
  const buf = Buffer.alloc(65536);

  const closeFd = (err?: Error): void => {
    if (fdClosed) return;
    fdClosed = true;
    fs.close(fd, () => closing.fire(err));
  };

  const readLoop = (): void => {
    if (closedByUs) {
      closeFd();
      return;
    }
    reading = true;
    fs.read(fd, buf, 0, buf.length, null, (err, n) => {
      reading = false;
      if (closedByUs) {
        closeFd();
        return;
      }
      if (err) {
        closeFd(new Error(`reading ${path}: ${err.message}`));
        return;
      }
      if (n === 0) {
        closeFd(new Error(`${path} reached end of file`));
        return;
      }
      const bytes = new Uint8Array(buf.subarray(0, n)); // a copy: buf is reused
      for (const cb of dataCallbacks) cb(bytes);
      readLoop();
    });
  };

  return {
    // One request outstanding at a time: see XENBUS_DEVICE_MAX_IN_FLIGHT.
    maxInFlight: XENBUS_DEVICE_MAX_IN_FLIGHT,
    write(bytes) {
      if (closedByUs || fdClosed) throw new Error(`${path} is closed`);
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    },
    onData(cb) {
      dataCallbacks.push(cb);
      if (!reading && !fdClosed) readLoop();
    },
    onClose(cb) {
      closing.add(cb);
    },
    close() {
      if (closedByUs) return;
      closedByUs = true;
      closing.fire();
      if (!reading) {
        closeFd();
        return;
      }
      try {
        fs.writeSync(fd, WAKE_FRAME);
      } catch {
        // The read still ends with the next message; nothing else to do.
      }
    },
  };
}

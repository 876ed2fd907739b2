// The real guest: QuickJS (qjs) as PID 1 of the test image. Only QuickJS's
// own 'os' and 'std' modules here (imported as 'qjs:*', see qjs.d.ts).
//
//   xenstore   /dev/xen/xenbus, read through os.setReadHandler (no polling)
//   console    stdout, which the kernel points at /dev/console (hvc0)
//   poweroff   /bin/busybox poweroff -f   (reboot(2) at once, no init scripts)
//   halt       /bin/busybox poweroff -f   (Xen has no halt code; on PVH a kernel
//                                          halt would only stop the vCPU, and the
//                                          toolstack would never see a shutdown)
//   reboot     /bin/busybox reboot -f
//   crash      "c" into /proc/sysrq-trigger (kernel panic: Xen sees a crash)
import * as os from 'qjs:os';
import * as std from 'qjs:std';
import { XenstoreClient, type Timers } from '../../xenstore/client.ts';
import { XENBUS_DEVICE_MAX_IN_FLIGHT, type Transport } from '../../xenstore/transport.ts';
import type { Platform, PlatformAction } from './platform.ts';
import type { AgentStore } from './store.ts';

export const XENBUS_DEVICE = '/dev/xen/xenbus';
const BUSYBOX = '/bin/busybox';
const SYSRQ_TRIGGER = '/proc/sysrq-trigger';
/** A request unanswered this long fails (a hung xenstored must not hang the agent for ever). */
const REQUEST_TIMEOUT_MS = 60_000;

const EINTR = 4;
const EAGAIN = 11;

const timers: Timers = {
  setTimeout: (fn, ms) => os.setTimeout(fn, ms),
  clearTimeout: (h) => os.clearTimeout(h),
};

function errnoText(negErrno: number): string {
  try {
    return std.strerror(-negErrno);
  } catch {
    return `errno ${-negErrno}`;
  }
}

/**
 * The xenbus device as a Transport: one frame per write(2), reads whenever
 * the fd is readable. `fd:N` uses the already open descriptor N instead (the
 * tests run the bundle under qjs with a socket to the test xenstored there).
 */
export function openXenbus(path: string = XENBUS_DEVICE): Transport {
  const inherited = /^fd:(\d+)$/.exec(path);
  const fd = inherited ? Number(inherited[1]) : os.open(path, os.O_RDWR);
  if (fd < 0) throw new Error(`opening ${path}: ${errnoText(fd)}`);
  const buf = new ArrayBuffer(65536);
  const dataCallbacks: Array<(bytes: Uint8Array) => void> = [];
  const closeCallbacks: Array<(err?: Error) => void> = [];
  let closed = false;

  const end = (err?: Error): void => {
    if (closed) return;
    closed = true;
    os.setReadHandler(fd, null);
    os.close(fd);
    for (const cb of closeCallbacks.splice(0)) cb(err);
  };

  os.setReadHandler(fd, () => {
    const n = os.read(fd, buf, 0, buf.byteLength);
    if (n > 0) {
      const bytes = new Uint8Array(buf.slice(0, n));
      for (const cb of dataCallbacks) cb(bytes);
    } else if (n === -EINTR || n === -EAGAIN) {
      // Spurious wake-up: wait for the next one.
    } else {
      end(new Error(n === 0 ? `${path} reached end of file` : `reading ${path}: ${errnoText(n)}`));
    }
  });

  return {
    // The kernel reads each request's payload from its one per-file buffer
    // after write(2) returns: a second request written before the first is
    // answered overwrites it (xenstored then answers EINVAL, or stores the
    // wrong bytes). The client keeps to this limit.
    maxInFlight: XENBUS_DEVICE_MAX_IN_FLIGHT,
    write(bytes) {
      if (closed) throw new Error(`${path} is closed`);
      let done = 0;
      while (done < bytes.length) {
        const n = os.write(fd, bytes.buffer as ArrayBuffer, bytes.byteOffset + done, bytes.length - done);
        if (n === -EINTR || n === -EAGAIN) continue;
        if (n <= 0) {
          const err = new Error(`writing ${path}: ${n === 0 ? 'wrote nothing' : errnoText(n)}`);
          end(err);
          throw err;
        }
        done += n;
      }
    },
    onData(cb) {
      dataCallbacks.push(cb);
    },
    onClose(cb) {
      if (closed) os.setTimeout(() => cb(), 0);
      else closeCallbacks.push(cb);
    },
    close() {
      end();
    },
  };
}

/**
 * Awaited first by every async function here that can throw: QuickJS's qjs
 * (unless started with --no-unhandled-rejection) exits the moment a promise is
 * rejected with no handler attached yet, and an async function that throws
 * before its first await rejects before its caller's `await` is attached.
 */
function settle(): Promise<void> {
  return Promise.resolve();
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Up to `max` bytes of a file from its start (one read: enough for /proc files and devices), or null. */
function readBytes(path: string, max: number, offset?: bigint): Uint8Array | null {
  const fd = os.open(path, os.O_RDONLY);
  if (fd < 0) return null;
  try {
    if (offset !== undefined && os.seek(fd, offset, std.SEEK_SET) !== offset) return null;
    const buf = new ArrayBuffer(max);
    const n = os.read(fd, buf, 0, max);
    return n > 0 ? new Uint8Array(buf, 0, n) : null;
  } finally {
    os.close(fd);
  }
}

const AT_NULL = 0n;
const AT_RANDOM = 25n;

/**
 * The 16 random bytes the kernel gives every program it starts (AT_RANDOM in
 * the auxiliary vector), read back through /proc/self. Not /dev/urandom:
 * read before the kernel's RNG is seeded, Linux 6.1 spins in its jitter
 * entropy loop until it is, which cost every boot of the test image ~2.8 s
 * of guest CPU (emulated CPUs, no RDRAND). These bytes come from the same
 * generator without the wait: they differ from boot to boot, which is what a
 * boot id is for.
 */
function atRandom(): Uint8Array | null {
  try {
    const auxv = readBytes('/proc/self/auxv', 4096);
    if (!auxv) return null;
    const view = new DataView(auxv.buffer, auxv.byteOffset, auxv.byteLength);
    for (let i = 0; i + 16 <= auxv.byteLength; i += 16) {
      const type = view.getBigUint64(i, true);
      if (type === AT_NULL) break;
      if (type !== AT_RANDOM) continue;
      const bytes = readBytes('/proc/self/mem', 16, view.getBigUint64(i + 8, true));
      return bytes?.length === 16 ? bytes : null;
    }
  } catch {
    // A kernel or qjs without these: the caller falls back.
  }
  return null;
}

/** Our process id, from /proc/self (QuickJS has no getpid). */
const startedAt = Date.now();

/** /proc/uptime's first field ("12345.67 ..."), in ms; null when unreadable (no /proc). */
export function uptimeFromProc(bytes: Uint8Array | null): number | null {
  if (!bytes) return null;
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  const m = /^(\d+)(?:\.(\d{1,3}))?/.exec(text);
  return m ? Number(m[1]) * 1000 + Number((m[2] ?? '0').padEnd(3, '0')) : null;
}

function ownPid(): number {
  try {
    const [target, err] = os.readlink('/proc/self');
    return err === 0 ? Number(target) : NaN;
  } catch {
    return NaN;
  }
}

/**
 * XTV_XENBUS overrides the xenbus path (tests: `fd:3`). Actions are carried
 * out only when the agent is PID 1: run anywhere else (a developer's machine,
 * a test), poweroff would stop that machine and sysrq "c" would crash it.
 */
export function createQjsPlatform(opts: { xenbusPath?: string } = {}): Platform {
  const xenbusPath = opts.xenbusPath ?? std.getenv('XTV_XENBUS') ?? XENBUS_DEVICE;
  return {
    name: 'qjs',
    async openXenstore(): Promise<AgentStore> {
      await settle();
      const transport = openXenbus(xenbusPath);
      return new XenstoreClient(transport, {
        timers,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        onWarning: (err) => writeLine(`xtv-agent ${new Date().toISOString()} warning message=${JSON.stringify(err.message)}`),
      });
    },
    nowMs: () => Date.now(),
    uptimeMs: () => uptimeFromProc(readBytes('/proc/uptime', 64)) ?? Date.now() - startedAt,
    setTimer(ms, fn) {
      const h = os.setTimeout(fn, ms);
      return () => os.clearTimeout(h);
    },
    consoleLine: writeLine,
    randomId() {
      const bytes = atRandom() ?? readBytes('/dev/urandom', 16);
      if (bytes?.length === 16) return hex(bytes);
      const fallback = new Uint8Array(16);
      for (let i = 0; i < 16; i++) fallback[i] = Math.floor(Math.random() * 256);
      return hex(fallback);
    },
    async perform(action: PlatformAction): Promise<void> {
      await settle();
      const pid = ownPid();
      if (pid !== 1) throw new Error(`refusing to ${action}: the agent is not PID 1 (pid ${pid}), so this is not the test guest`);
      if (action === 'crash') {
        const fd = os.open(SYSRQ_TRIGGER, os.O_WRONLY);
        if (fd < 0) throw new Error(`opening ${SYSRQ_TRIGGER}: ${errnoText(fd)}`);
        const c = new Uint8Array([0x63]); // "c": the kernel panics inside this write
        const n = os.write(fd, c.buffer, 0, 1);
        os.close(fd);
        throw new Error(`writing "c" to ${SYSRQ_TRIGGER} returned ${n < 0 ? errnoText(n) : n} and the kernel did not panic`);
      }
      const applet = action === 'reboot' ? 'reboot' : 'poweroff';
      const status = os.exec([BUSYBOX, applet, '-f'], { block: true, usePath: false });
      throw new Error(`${BUSYBOX} ${applet} -f returned (status ${status}) and the domain is still running`);
    },
  };
}

/** One line on stdout, flushed at once (a line lost in a buffer when the domain dies is lost for good). */
function writeLine(line: string): void {
  try {
    std.out.puts(line + '\n');
    std.out.flush();
  } catch {
    // The console is gone: nothing else can be done.
  }
}

// What the xenstore client needs from a connection, and nothing more, so that
// the same client runs over xenstored's unix socket (Node, dom0), over
// /dev/xen/xenbus (QuickJS in a guest) and over test doubles.
//
// A QuickJS implementation is a few lines with the `os` module:
//   fd = os.open('/dev/xen/xenbus', os.O_RDWR)
//   write(bytes)  -> os.write(fd, bytes.buffer, bytes.byteOffset, bytes.length) (loop on short writes)
//   onData(cb)    -> os.setReadHandler(fd, () => { const n = os.read(fd, buf, 0, buf.byteLength);
//                      if (n > 0) cb(new Uint8Array(buf, 0, n).slice()); else close-with-error })
//   onClose(cb)   -> remember cb; call it once when a read/write fails or close() is called
//   close()       -> os.setReadHandler(fd, null); os.close(fd); then the onClose callbacks

export interface Transport {
  /**
   * Sends exactly one whole frame (header + payload). The client never joins
   * two frames in one call, because the Linux xenbus device takes one message
   * per write(2) and discards whatever follows it in the same write. May
   * throw: the client then treats the connection as lost.
   */
  write(bytes: Uint8Array): void;
  /** Bytes as they arrive, split anywhere: several frames per call, or one frame over many calls.
   *  The client owns the array passed to cb (the transport must not reuse it). */
  onData(cb: (bytes: Uint8Array) => void): void;
  /** Called once when the connection ends, with the cause unless it was a plain close(). */
  onClose(cb: (err?: Error) => void): void;
  /** Ends the connection; onClose callbacks run (once). Safe to call twice. */
  close(): void;
  /**
   * How many requests may be sent and still unanswered at once (the client
   * holds the rest back, in order, until a reply frees a slot). Absent: no
   * limit. The Linux xenbus device needs 1: see XENBUS_DEVICE_MAX_IN_FLIGHT.
   */
  readonly maxInFlight?: number;
}

/**
 * Linux's /dev/xen/xenbus (drivers/xen/xenbus/xenbus_dev_frontend.c, 6.1 and
 * every kernel since the 4.11 rework) does not copy a request's payload: each
 * write(2) fills one per-open-file buffer, xenbus_dev_request_and_reply()
 * queues a request whose payload vector points INTO that buffer, and the
 * write returns before the xenbus kernel thread has copied it to the ring. The
 * next write(2) then overwrites the payload of a request still queued, and
 * xenstored receives the first request's header (its length) over a later
 * request's bytes: a WRITE cut inside a longer path has no NUL (EINVAL), one
 * cut after the NUL silently writes a wrong value. A reply proves its request
 * was read whole, so only one request may be outstanding on a device file.
 *
 * The bound also avoids a deadlock in the same file: write(2) of a WATCH or
 * UNWATCH holds the file's msgbuffer_mutex while it waits for xenstored's
 * answer, and the xenbus thread, delivering the reply to an earlier request
 * of the file first, blocks on that mutex in xenbus_dev_queue_reply(). The
 * guest's whole xenstore then hangs (after a restore the agent's resume probe
 * UNWATCH raced the echo's READ: the resume was never reported).
 * test/unit/agent-resume-xenbus-deadlock.test.ts models it.
 */
export const XENBUS_DEVICE_MAX_IN_FLIGHT = 1;

// What the xenstore client needs from a connection, and nothing more, so that
// the same client runs over xenstored's unix socket (Node, dom0), over
// /dev/xen/xenbus (Node or QuickJS in a guest) and over test doubles.
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
}

// The Linux xenbus device's flaw, modelled in front of the in-memory
// xenstored: drivers/xen/xenbus/xenbus_dev_frontend.c (6.1) copies each
// write(2) into ONE per-file buffer (u->u.buffer) and queues a request whose
// payload vector points into it (xenbus_dev_request_and_reply, iov_base =
// msg + 1); the xenbus kernel thread copies it to the ring later. A second
// write before that overwrites the first request's payload. This is what made
// the agent's report transaction (8 writes in flight) fail on real Xen with
// "WRITE data/xtv/domid (transaction 3): EINVAL". The client must keep to
// the device's maxInFlight (1) so that it never happens.
import test from 'tape';
import { startTestXenstored } from '../../testing/test-xenstored.ts';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';
import { XenstoreClient } from '../../xenstore/client.ts';
import { XENBUS_DEVICE_MAX_IN_FLIGHT, type Transport } from '../../xenstore/transport.ts';

const HEADER = 16;

/** A transport that behaves like the device: the header is copied at write time, the payload is read from the shared buffer when the "kernel thread" runs. */
function linuxXenbusModel(inner: Transport, maxInFlight: number | undefined): Transport {
  const buffer = new Uint8Array(4096 + HEADER); // u->u.buffer
  const queue: Array<{ header: Uint8Array; len: number }> = []; // xb_write_list
  const kthread = (): void => {
    const req = queue.shift();
    if (!req) return;
    const frame = new Uint8Array(HEADER + req.len);
    frame.set(req.header);
    frame.set(buffer.subarray(HEADER, HEADER + req.len), HEADER); // read NOW, from whatever the buffer holds
    inner.write(frame);
  };
  return {
    maxInFlight,
    write(bytes) {
      buffer.set(bytes); // copy_from_user into u->u.buffer
      const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
      queue.push({ header: bytes.slice(0, HEADER), len }); // xs_send: req->msg = *msg; vec -> buffer
      setImmediate(kthread); // the xenbus thread runs after write(2) returned
    },
    onData: (cb) => inner.onData(cb),
    onClose: (cb) => inner.onClose(cb),
    close: () => inner.close(),
  };
}

/** The agent's first report batch at start-up, as it wrote it on real Xen. */
const FIRST_BATCH: Record<string, string> = {
  version: '0.1.0',
  protocols: 'xtv-control/3',
  'boot-id': '0123456789abcdef0123456789abcdef',
  domid: '5',
  state: 'starting',
  resumes: '0',
  pending: '',
  received: '0',
};
const KEYS = Object.keys(FIRST_BATCH);

async function reportOnce(maxInFlight: number | undefined): Promise<{ error: string | null; values: Record<string, string | null> }> {
  const xs = await startTestXenstored({ domid: 5 });
  const client = new XenstoreClient(linuxXenbusModel(await connectUnixSocket(xs.socketPath), maxInFlight), { requestTimeoutMs: 5000 });
  let error: string | null = null;
  try {
    // What the agent's report does: up to 8 writes in flight in one transaction.
    await client.transaction(async (tx) => {
      await Promise.all(KEYS.map((k) => tx.write(`data/xtv/${k}`, FIRST_BATCH[k]!)));
    });
  } catch (e) {
    error = (e as Error).message;
  }
  const values: Record<string, string | null> = {};
  for (const k of KEYS) values[k] = xs.store.exists(`data/xtv/${k}`) ? (xs.store.read(`data/xtv/${k}`) ?? null) : null;
  client.close();
  await xs.close();
  return { error, values };
}

test('model of the Linux xenbus device: concurrent writes corrupt each other (the bug, reproduced)', async (t) => {
  const r = await reportOnce(undefined);
  // domid's 16-byte payload is overwritten by the last request's, whose path
  // ("data/xtv/received") is longer: no NUL in it, so xenstored says EINVAL.
  t.match(r.error ?? '', /^WRITE data\/xtv\/domid \(transaction \d+\): EINVAL$/, `the error seen on real Xen: ${r.error}`);
});

test('model of the Linux xenbus device: with the device limit (1 in flight) every write lands intact', async (t) => {
  t.equal(XENBUS_DEVICE_MAX_IN_FLIGHT, 1);
  const r = await reportOnce(XENBUS_DEVICE_MAX_IN_FLIGHT);
  t.equal(r.error, null, 'the transaction commits');
  t.deepEqual(r.values, FIRST_BATCH, 'every value as written');
});

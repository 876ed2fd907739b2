// The XenAPI double's ack window is judged by when the ack was seen, not by
// when a look at Xen ended. A CI run on a loaded emulated dom0 had a guest
// acknowledge 3.8 s after the 15 s window and VM.clean_shutdown succeed: the
// check had started an `xl list` (seconds there) before the window closed
// and read the node, acknowledged by then, after it. Here `xl list` is made
// slow on the fake hypervisor, and the guest acknowledges (then powers off)
// just after the window, or well inside it.
import test from 'tape';
import { installVm, powerOf, rejection, startDouble } from './xapi-fixture.ts';

const PASSWORD = 'test-password-ack-window';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function slowListing(windowMs: number, ackAfterMs: number, listMs: number) {
  const f = await startDouble({ password: PASSWORD, lifecycle: { shutdownAckTimeoutMs: windowMs } });
  const vm = await installVm(f.client);
  await f.client.call('VM.start', vm, false, false);
  f.hv.scripts.set(await f.client.call<string>('VM.get_uuid', vm), { ack: 'ok', action: 'as-requested', delayMs: ackAfterMs });
  const list = f.hv.listDomains.bind(f.hv);
  f.hv.listDomains = async () => {
    await sleep(listMs);
    return list();
  };
  return { f, vm };
}

test('XenAPI double: an ack after the window fails the call, however long a look at Xen takes', async (t) => {
  const { f, vm } = await slowListing(1000, 1300, 800);
  try {
    const t0 = Date.now();
    t.deepEqual(
      await rejection(f.client.call('VM.clean_shutdown', vm)),
      { code: 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', params: [vm] },
      'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT',
    );
    t.ok(Date.now() - t0 >= 1000, `not before the window closed (${Date.now() - t0} ms)`);
  } finally {
    await f.close();
  }
});

test('XenAPI double: an ack inside the window counts with the same slow look', async (t) => {
  const { f, vm } = await slowListing(3000, 500, 800);
  try {
    await f.client.call('VM.clean_shutdown', vm);
    t.deepEqual(await powerOf(f.client, vm), ['Halted', -1], 'Halted');
  } finally {
    await f.close();
  }
});

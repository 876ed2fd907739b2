// Why the agent stopped reporting the resume after `xl restore` on real Xen
// (data/xtv absent, the guest alive, "Restarting tasks ... done." printed):
// not the report logic but a deadlock in Linux 6.1's /dev/xen/xenbus
// (drivers/xen/xenbus/xenbus_dev_frontend.c). write(2) of a WATCH or UNWATCH
// holds the file's msgbuffer_mutex while register/unregister_xenbus_watch()
// waits for xenstored's answer, which only the xenbus kernel thread can
// deliver; but when a reply to an EARLIER request of the same file arrives
// first (xenstored answers in order), that thread runs
// xenbus_dev_queue_reply(), which takes the same msgbuffer_mutex, and
// blocks. From then on nothing in the guest reaches xenstore: the agent
// (PID 1) sleeps in write(2) for ever (no timer, no console line), the
// kernel's own watches (control/sysrq) go unserved.
//
// After a resume the kernel re-registers every watch, so they all fire at
// once: the echo (echo.ts) sends its READ of data/xtv/ping straight from the
// dispatcher while the agent's queue drops the resume probe (UNWATCH domid).
// Without a bound on requests in flight the UNWATCH goes out with the READ
// unanswered: deadlock. With the device's maxInFlight (1) the UNWATCH waits
// for the READ's reply. Seen on the embedded host (xl save + xl restore, PV,
// 32 MiB): bundles without the bound lost the resume in 4 of 6 cycles (the
// kernel resumed, then control/sysrq and the echo went unserved), with it in
// 0 of 9.
import test from 'tape';
import { startTestXenstored, type TestXenstored } from '../../testing/test-xenstored.ts';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';
import { XenstoreClient } from '../../xenstore/client.ts';
import { XENBUS_DEVICE_MAX_IN_FLIGHT, type Transport } from '../../xenstore/transport.ts';
import { FrameDecoder, XS_OPS } from '../../protocol/xenstore-wire.ts';
import { KERNEL_SHUTDOWN_NODE, REPORT_DIR, SHUTDOWN_NODE } from '../../protocol/control.ts';
import { Agent } from '../../guest/agent/agent.ts';
import { NodePlatform } from '../../guest/agent/platform-node.ts';
import { serve } from '../../guest/agent/run.ts';
import { PING_NODE, PONG_NODE } from '../../protocol/echo-nodes.ts';
import type { AgentStore } from '../../guest/agent/store.ts';

interface DeviceModel extends Transport {
  /** Set once a WATCH/UNWATCH was written with another request unanswered: the guest's xenbus is dead. */
  deadlocked: boolean;
}

/** The device's locking, as far as it matters here: replies of this file are held for ever once deadlocked. */
function linuxXenbusLocking(inner: Transport, maxInFlight: number | undefined): DeviceModel {
  const unanswered = new Set<number>(); // req_ids written whose reply has not reached the reader
  const decoder = new FrameDecoder();
  const model: DeviceModel = {
    deadlocked: false,
    maxInFlight,
    write(bytes) {
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const type = v.getUint32(0, true);
      if ((type === XS_OPS.WATCH || type === XS_OPS.UNWATCH) && unanswered.size > 0) model.deadlocked = true;
      unanswered.add(v.getUint32(4, true));
      if (!model.deadlocked) inner.write(bytes);
    },
    onData(cb) {
      inner.onData((bytes) => {
        if (model.deadlocked) return; // the xenbus thread is stuck on msgbuffer_mutex
        for (const r of decoder.push(bytes)) if (r.ok && r.frame.op !== 'WATCH_EVENT') unanswered.delete(r.frame.reqId);
        cb(bytes);
      });
    },
    onClose: (cb) => inner.onClose(cb),
    close: () => inner.close(),
  };
  return model;
}

class DevicePlatform extends NodePlatform {
  device: DeviceModel | null = null;
  constructor(
    private readonly socket: string,
    private readonly limit: number | undefined,
  ) {
    super({ socketPath: socket });
  }
  override async openXenstore(): Promise<AgentStore> {
    this.device = linuxXenbusLocking(await connectUnixSocket(this.socket), this.limit);
    return new XenstoreClient(this.device, { requestTimeoutMs: 10_000 });
  }
}

/** Boots the agent (with serve()'s echo), suspends it, and restores it as xl does; says whether the resume was reported. */
async function saveRestore(limit: number | undefined): Promise<{ resumed: boolean; deadlocked: boolean; report: Record<string, string> }> {
  const xs: TestXenstored = await startTestXenstored({ domid: 5 });
  const platform = new DevicePlatform(xs.socketPath, limit);
  const agent = new Agent({ platform, probeArmTimeoutMs: 500 });
  void serve(platform, agent, { maxAttempts: 1 });
  try {
    await xs.store.waitFor(`${REPORT_DIR}/state`, (v) => v === 'ready', 3000);
    xs.store.write(PING_NODE, 'up');
    await xs.store.waitFor(PONG_NODE, (v) => v === 'up', 3000); // the echo serves
    xs.store.write(SHUTDOWN_NODE, 'suspend');
    await xs.store.waitFor(KERNEL_SHUTDOWN_NODE, (v) => v === 'suspend', 3000);
    // The restore: a new domain without the old data/, the kernel acked,
    // replies slow (a loaded dom0), and every watch fired again at once,
    // the echo's ping (registered before the probe) first.
    xs.faults.delayReplies(30);
    xs.store.write(KERNEL_SHUTDOWN_NODE, '');
    xs.store.rm('data');
    xs.store.write(PING_NODE, 'x');
    xs.store.write('domid', '6');
    let resumed = true;
    try {
      await xs.store.waitFor(`${REPORT_DIR}/resumes`, (v) => v === '1', 2000);
    } catch {
      resumed = false;
    }
    return { resumed, deadlocked: platform.device?.deadlocked ?? false, report: xs.store.dump(`${xs.store.home}/data/xtv`) };
  } finally {
    platform.close();
    await xs.close();
  }
}

test('xenbus device model: without the in-flight bound, the probe UNWATCH after a restore deadlocks the device (the bug, reproduced)', async (t) => {
  const r = await saveRestore(undefined);
  t.ok(r.deadlocked, 'UNWATCH written with the echo READ unanswered');
  t.notOk(r.resumed, 'the resume is never reported');
});

test('xenbus device model: with the device bound (1 in flight) the resume is reported in full after a restore', async (t) => {
  t.equal(XENBUS_DEVICE_MAX_IN_FLIGHT, 1);
  const r = await saveRestore(XENBUS_DEVICE_MAX_IN_FLIGHT);
  t.notOk(r.deadlocked, 'no WATCH/UNWATCH with another request outstanding');
  t.ok(r.resumed, 'resumes = 1');
  const get = (k: string): string | undefined => Object.entries(r.report).find(([p]) => p.endsWith(`/data/xtv/${k}`))?.[1];
  t.deepEqual(
    [get('state'), get('domid'), get('event-action'), get('version')],
    ['resumed', '6', 'suspend', '0.1.0'],
    'the whole report written again in the new domain',
  );
});

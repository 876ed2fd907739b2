// A guest that says it cannot suspend (control/feature-suspend and
// data/cant_suspend_reason both present): the current line refuses VM.suspend
// with VM_NON_SUSPENDABLE [vm; reason] before anything reaches
// control/shutdown (xapi_vm_lifecycle.ml check_op_for_feature, from v25.24.0);
// the 1.249 line suspends as usual (profiles.ts refusesNonSuspendable).
// Through the real `xen-api` client, on the fake hypervisor.
import test from 'tape';
import type { ProfileName } from '../../dom0/xapi-double/src/profiles.ts';
import { BOOT, type Double, installVm, powerOf, rejection, startDouble } from './xapi-fixture.ts';

const PASSWORD = 'test-password-non-suspendable';

interface Started {
  f: Double;
  vm: string;
  domid: number;
  /** Every path written with xsWriteFresh (XAPI's requests into control/shutdown). */
  writes: string[];
}

/** The double on `profile`, a running PV VM, and its guest's nodes set as `nodes` (relative to its home). */
async function running(profile: ProfileName, nodes: Record<string, string>): Promise<Started> {
  const f = await startDouble({ password: PASSWORD, profile });
  const writes: string[] = [];
  const writeFresh = f.hv.xsWriteFresh.bind(f.hv);
  f.hv.xsWriteFresh = async (path: string, value: string) => {
    writes.push(path);
    await writeFresh(path, value);
  };
  const vm = await installVm(f.client, { boot: BOOT[profile], asHarness: true });
  await f.client.call('VM.start', vm, false, false);
  const [, domid] = await powerOf(f.client, vm);
  for (const [k, v] of Object.entries(nodes)) f.hv.xenstore.set(`/local/domain/${domid}/${k}`, v);
  return { f, vm, domid, writes };
}

const CANT = { 'control/feature-suspend': '1', 'data/cant_suspend_reason': 'UEFI variables would be lost' };

test('xenserver-8: feature-suspend and cant_suspend_reason → VM_NON_SUSPENDABLE [vm; reason], nothing written', async (t) => {
  const { f, vm, domid, writes } = await running('xenserver-8', CANT);
  try {
    const c = f.client;
    t.deepEqual(await rejection(c.call('VM.suspend', vm)), { code: 'VM_NON_SUSPENDABLE', params: [vm, 'UEFI variables would be lost'] });
    t.deepEqual(writes, [], 'nothing written into control/shutdown');
    t.equal(f.hv.xenstore.get(`/local/domain/${domid}/control/shutdown`), '', 'control/shutdown as the build left it');
    t.deepEqual(await powerOf(c, vm), ['Running', domid], 'still Running in the same domain');
    t.deepEqual(await c.call('VM.get_current_operations', vm), {}, 'no operation left behind');

    // Async: the task fails with the same error.
    const task = await c.call<string>('Async.VM.suspend', vm);
    for (let i = 0; i < 100 && (await c.call('task.get_status', task)) === 'pending'; i++) await new Promise((r) => setTimeout(r, 20));
    t.equal(await c.call('task.get_status', task), 'failure', 'Async: the task fails');
    t.deepEqual(await c.call('task.get_error_info', task), ['VM_NON_SUSPENDABLE', vm, 'UEFI variables would be lost'], 'Async: with VM_NON_SUSPENDABLE');
    t.deepEqual(writes, [], 'Async: nothing written either');

    // Before the suspend SR is looked for (that comes after the checks, in xapi_xenops.ml suspend).
    const [pool] = await c.call<string[]>('pool.get_all');
    const host = await c.call<string>('pool.get_master', pool);
    await c.call('pool.set_suspend_image_SR', pool, 'OpaqueRef:NULL');
    await c.call('host.set_suspend_image_sr', host, 'OpaqueRef:NULL');
    t.equal(((await rejection(c.call('VM.suspend', vm))) as { code: string }).code, 'VM_NON_SUSPENDABLE', 'before VM_NO_SUSPEND_SR');

    // After the power state: a paused VM is refused suspend for its state first.
    await c.call('VM.pause', vm);
    t.deepEqual(await rejection(c.call('VM.suspend', vm)), { code: 'VM_BAD_POWER_STATE', params: [vm, 'running', 'paused'] }, 'the power state first');
    t.deepEqual(writes, [], 'still nothing written');
  } finally {
    await f.close();
  }
});

test('xenserver-8: any values count, "" included; read at the time of the call', async (t) => {
  const { f, vm, domid, writes } = await running('xenserver-8', { 'control/feature-suspend': '0', 'data/cant_suspend_reason': '' });
  try {
    const c = f.client;
    t.deepEqual(await rejection(c.call('VM.suspend', vm)), { code: 'VM_NON_SUSPENDABLE', params: [vm, ''] }, 'feature-suspend 0 and an empty reason');
    t.deepEqual(writes, [], 'nothing written');
    f.hv.xenstore.delete(`/local/domain/${domid}/data/cant_suspend_reason`);
    await c.call('VM.suspend', vm);
    t.equal((await powerOf(c, vm))[0], 'Suspended', 'once the guest drops its reason, the suspend goes through');
    t.deepEqual(writes, [`/local/domain/${domid}/control/shutdown`], 'the request written then');
  } finally {
    await f.close();
  }
});

test('xcp-ng-8.2 (v1.249.42): the reason has no effect on a PV VM; the suspend goes through', async (t) => {
  const { f, vm, domid, writes } = await running('xcp-ng-8.2', CANT);
  try {
    await f.client.call('VM.suspend', vm);
    t.equal((await powerOf(f.client, vm))[0], 'Suspended');
    t.deepEqual(writes, [`/local/domain/${domid}/control/shutdown`], 'the request written as usual');
  } finally {
    await f.close();
  }
});

for (const [what, nodes] of [
  ['without cant_suspend_reason', { 'control/feature-suspend': '1' }],
  ['without feature-suspend', { 'data/cant_suspend_reason': 'UEFI variables would be lost' }],
  ['with neither', {}],
] as const) {
  test(`xenserver-8 ${what}: the suspend goes through`, async (t) => {
    const { f, vm, domid, writes } = await running('xenserver-8', nodes);
    try {
      await f.client.call('VM.suspend', vm);
      t.equal((await powerOf(f.client, vm))[0], 'Suspended');
      t.deepEqual(writes, [`/local/domain/${domid}/control/shutdown`], 'the request written');
    } finally {
      await f.close();
    }
  });
}

// The XenAPI double and a VM's actions_after_crash, as xapi has them: the
// setter takes any value of the enum, VM.start refuses rename_restart and a
// coredump of a non-PV domain (xapi_vm_helpers.ml validate_actions_after_crash,
// v1.249.42 and master); a crash under preserve leaves the VM Paused with its
// domain kept (xapi_xenops.ml on_action_behaviour: preserve -> [Pause]), and
// within 120 s of the start a restart becomes a shutdown while preserve stays
// (xenops_server.ml VM_check_state). Through the real `xen-api` client, on the
// fake hypervisor.
import test from 'tape';
import { installVm, powerOf, rejection, startDouble } from './xapi-fixture.ts';

const PASSWORD = 'test-password-lifecycle';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitPower(f: Awaited<ReturnType<typeof startDouble>>, vm: string, want: string): Promise<[string, number]> {
  for (let i = 0; i < 200; i++) {
    const p = await powerOf(f.client, vm);
    if (p[0] === want) return p;
    await sleep(10);
  }
  return powerOf(f.client, vm);
}

test('XenAPI double: VM.start refuses actions_after_crash rename_restart, and a coredump of a PVH domain', async (t) => {
  const f = await startDouble({ password: PASSWORD });
  try {
    const vm = await installVm(f.client, { asHarness: true });
    await f.client.call('VM.set_actions_after_crash', vm, 'rename_restart');
    t.equal(await f.client.call('VM.get_actions_after_crash', vm), 'rename_restart', 'the setter takes it');
    t.deepEqual(
      await rejection(f.client.call('VM.start', vm, false, false)),
      {
        code: 'VALUE_NOT_SUPPORTED',
        params: ['VM.actions_after_crash', 'rename_restart', 'option would leak a domain; VMs and not domains are managed by this API'],
      },
      'the start does not',
    );
    t.deepEqual(await powerOf(f.client, vm), ['Halted', -1], 'and nothing was built');
    await f.client.call('VM.set_actions_after_crash', vm, 'coredump_and_restart');
    await f.client.call('VM.set_domain_type', vm, 'pvh');
    t.deepEqual(
      await rejection(f.client.call('VM.start', vm, false, false)),
      {
        code: 'VALUE_NOT_SUPPORTED',
        params: ['VM.actions_after_crash', 'coredump_and_restart', 'cannot invoke a coredump of an HVM, PVH or PV-in-PVH domain'],
      },
      'a coredump of a PVH domain',
    );
    await f.client.call('VM.set_domain_type', vm, 'pv');
    await f.client.call('VM.start', vm, false, false);
    t.equal((await powerOf(f.client, vm))[0], 'Running', 'a PV domain may dump');
  } finally {
    await f.close();
  }
});

test('XenAPI double: a crash under preserve leaves the VM Paused on its kept domain, even within 120 s; restart then is a shutdown', async (t) => {
  const f = await startDouble({ password: PASSWORD });
  try {
    const vm = await installVm(f.client, { asHarness: true });
    await f.client.call('VM.set_actions_after_crash', vm, 'preserve');
    await f.client.call('VM.start', vm, false, false);
    const [, domid] = await powerOf(f.client, vm);
    f.hv.guestShutdown(domid, 'crash');
    t.deepEqual(await waitPower(f, vm, 'Paused'), ['Paused', domid], 'Paused, same domid');
    t.ok(f.hv.domains.has(domid), 'the domain is kept');
    await f.client.call('VM.hard_shutdown', vm);
    t.deepEqual(await powerOf(f.client, vm), ['Halted', -1], 'hard_shutdown destroys it');
    t.notOk(f.hv.domains.has(domid), 'gone');

    await f.client.call('VM.set_actions_after_crash', vm, 'coredump_and_restart');
    await f.client.call('VM.start', vm, false, false);
    const [, again] = await powerOf(f.client, vm);
    f.hv.guestShutdown(again, 'crash');
    t.deepEqual(await waitPower(f, vm, 'Halted'), ['Halted', -1], 'coredump_and_restart within 120 s: Halted');
  } finally {
    await f.close();
  }
});

// The XenAPI test double against what real XAPI does, line by line
// (dom0/xapi-double/src/profiles.ts): the version a host reports, which kernels
// boot, the side effects of the boot-mode setters, the suspend SR, the shapes
// of the errors, and the timing of a suspend a guest answers with something
// else. Through the real `xen-api` client, on the fake hypervisor.
import test from 'tape';
import type { Xapi } from 'xen-api';
import type { LifecycleConfig } from '../../dom0/xapi-double/src/lifecycle.ts';
import type { ProfileName } from '../../dom0/xapi-double/src/profiles.ts';
import { BOOT, installVm as installPv, powerOf, rejection, startDouble } from './xapi-fixture.ts';

const PASSWORD = 'test-password-2';

const fixture = (profile: ProfileName = 'xenserver-8', lifecycle: Partial<LifecycleConfig> = {}) => startDouble({ password: PASSWORD, profile, lifecycle });

/** The harness's install, booting the profile's kernel directory. */
const installVm = (c: Xapi, profile: ProfileName = 'xenserver-8') => installPv(c, { boot: BOOT[profile] });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("each profile reports its version: software_version in xapi's order, API version", async (t) => {
  for (const [profile, expected] of [
    ['xenserver-8', { major: 2, minor: 23, brand: 'XenServer', xapi: '26.17', build: '26.17.0' }],
    ['xcp-ng-8.2', { major: 2, minor: 15, brand: 'XCP-ng', xapi: '1.20', build: undefined }],
  ] as const) {
    const f = await fixture(profile);
    try {
      const [pool] = await f.client.call<string[]>('pool.get_all');
      const host = await f.client.call<Record<string, unknown>>('host.get_record', await f.client.call('pool.get_master', pool));
      const sv = host.software_version as Record<string, string>;
      t.equal(Number(host.API_version_major), expected.major, `${profile}: API_version_major`);
      t.equal(Number(host.API_version_minor), expected.minor, `${profile}: API_version_minor`);
      t.equal(sv.product_brand, expected.brand, `${profile}: product_brand`);
      t.equal(sv.xapi, expected.xapi, `${profile}: xapi`);
      t.equal(sv.xapi_build, expected.build, `${profile}: xapi_build`);
      t.equal(sv.xencenter_min, `${expected.major}.${expected.minor}`, `${profile}: xencenter_min is the API version`);
      t.deepEqual(
        Object.keys(sv).slice(0, 6),
        ['product_version', 'product_version_text', 'product_version_text_short', 'platform_name', 'platform_version', 'product_brand'],
        `${profile}: xapi's key order`,
      );
    } finally {
      await f.close();
    }
  }
});

test('every object has a uuid of its own (VM.create too)', async (t) => {
  const f = await fixture();
  try {
    const a = await f.client.call<string>('VM.create', { name_label: 'a' });
    const b = await f.client.call<string>('VM.create', { name_label: 'b' });
    const uuids = await Promise.all([
      f.client.call<string>('VM.get_uuid', a),
      f.client.call<string>('VM.get_uuid', b),
      f.client.call<string>('pool.get_uuid', (await f.client.call<string[]>('pool.get_all'))[0]),
      f.client.call<string>('host.get_uuid', (await f.client.call<string[]>('host.get_all'))[0]),
    ]);
    t.ok(
      uuids.every((u) => /^[0-9a-f-]{36}$/.test(u)),
      uuids.join(' '),
    );
    t.equal(new Set(uuids).size, 4, 'all different');
    t.equal(await f.client.call('VM.get_by_uuid', uuids[1]), b);
  } finally {
    await f.close();
  }
});

test('xenserver-8: kernels from /var/lib/xcp/guest only, refused at start with INVALID_VALUE [kernel|ramdisk; path; reason]', async (t) => {
  const f = await fixture('xenserver-8');
  const c = f.client;
  try {
    const vm = await installVm(c);
    const start = () => rejection(c.call('VM.start', vm, false, false));
    await c.call('VM.set_PV_kernel', vm, '/boot/guest/xtv-kernel');
    t.deepEqual(await start(), {
      code: 'INVALID_VALUE',
      params: ['kernel', '/boot/guest/xtv-kernel', 'Is not in any of the allowed kernel directories: [/var/lib/xcp/guest/]'],
    });
    await c.call('VM.set_PV_kernel', vm, '/var/lib/xcp/guest/nope');
    t.deepEqual(
      await start(),
      { code: 'INVALID_VALUE', params: ['kernel', '/var/lib/xcp/guest/nope', 'File does not exist'] },
      'a missing file, whatever its directory',
    );
    await c.call('VM.set_PV_kernel', vm, '/var/lib/xcp/guest');
    t.deepEqual(await start(), { code: 'INVALID_VALUE', params: ['kernel', '/var/lib/xcp/guest', 'Is not a regular file'] });
    await c.call('VM.set_PV_kernel', vm, '/var/lib/xcp/guest/../../../../boot/guest/xtv-kernel');
    t.deepEqual(
      await start(),
      {
        code: 'INVALID_VALUE',
        params: ['kernel', '/var/lib/xcp/guest/../../../../boot/guest/xtv-kernel', 'Is not in any of the allowed kernel directories: [/var/lib/xcp/guest/]'],
      },
      'judged by its realpath',
    );
    await c.call('VM.set_PV_kernel', vm, '/var/lib/xcp/guest/xtv-kernel');
    await c.call('VM.set_PV_ramdisk', vm, '/boot/guest/xtv-initrd');
    t.deepEqual(await start(), {
      code: 'INVALID_VALUE',
      params: ['ramdisk', '/boot/guest/xtv-initrd', 'Is not in any of the allowed kernel directories: [/var/lib/xcp/guest/]'],
    });
    t.equal(f.hv.domains.size, 0, 'nothing was built');
    await c.call('VM.set_PV_ramdisk', vm, '/var/lib/xcp/guest/sub/../xtv-initrd');
    await c.call('VM.start', vm, false, false);
    const spec = [...f.hv.domains.values()][0]!.spec;
    t.equal(spec.ramdisk, '/var/lib/xcp/guest/xtv-initrd', 'the builder gets the real path');
  } finally {
    await f.close();
  }
});

test('xcp-ng-8.2: kernels from /boot/guest; any other path becomes "" and the start fails in xenopsd\'s build', async (t) => {
  const f = await fixture('xcp-ng-8.2');
  const c = f.client;
  try {
    const vm = await installVm(c, 'xcp-ng-8.2');
    const start = () => rejection(c.call('VM.start', vm, false, false));
    await c.call('VM.set_PV_kernel', vm, '/var/lib/xcp/guest/xtv-kernel');
    t.deepEqual(
      await start(),
      { code: 'INTERNAL_ERROR', params: ['xenopsd internal error: Domain.Could_not_read_file("")'] },
      "the current line's directory is not allowed here",
    );
    await c.call('VM.set_PV_kernel', vm, '/boot/guest/../guest/xtv-kernel');
    t.deepEqual(await start(), { code: 'INTERNAL_ERROR', params: ['xenopsd internal error: Domain.Could_not_read_file("")'] }, '".." anywhere: not allowed');
    await c.call('VM.set_PV_kernel', vm, '/boot/guest/missing');
    t.deepEqual(
      await start(),
      { code: 'INTERNAL_ERROR', params: ['xenopsd internal error: Domain.Could_not_read_file("/boot/guest/missing")'] },
      'an allowed path that cannot be read',
    );
    await c.call('VM.set_PV_kernel', vm, '/boot/guest/xtv-kernel');
    await c.call('VM.set_PV_ramdisk', vm, '/var/lib/xcp/guest/xtv-initrd');
    t.deepEqual(await start(), { code: 'INTERNAL_ERROR', params: ['xenopsd internal error: Domain.Could_not_read_file("")'] }, 'the ramdisk too');
    await c.call('VM.set_PV_ramdisk', vm, '');
    await c.call('VM.start', vm, false, false);
    t.equal((await powerOf(c, vm))[0], 'Running', 'a kernel in /boot/guest and no ramdisk boot');
  } finally {
    await f.close();
  }
});

test('xcp-ng-8.2: no pvh, no actions_after_softreboot; OTHER_OPERATION_IN_PROGRESS ["VM.op"; vm]', async (t) => {
  const f = await fixture('xcp-ng-8.2', { shutdownAckTimeoutMs: 300 });
  const c = f.client;
  try {
    const vm = await installVm(c, 'xcp-ng-8.2');
    t.deepEqual(
      await rejection(c.call('VM.set_domain_type', vm, 'pvh')),
      { code: 'INTERNAL_ERROR', params: ['Failure("Unknown tag/contents")'] },
      'pvh is not a domain_type of 1.249',
    );
    t.equal(await c.call('VM.get_domain_type', vm), 'pv');
    t.notOk('actions_after_softreboot' in (await c.call<Record<string, unknown>>('VM.get_record', vm)), 'the record has no actions_after_softreboot');
    t.deepEqual(((await rejection(c.call('VM.set_actions_after_softreboot', vm, 'destroy'))) as { code: string }).code, 'MESSAGE_METHOD_UNKNOWN');
    await c.call('VM.start', vm, false, false);
    f.hv.scripts.set(await c.call<string>('VM.get_uuid', vm), { ack: 'none', action: 'ignore' });
    const pending = rejection(c.call('VM.clean_shutdown', vm));
    await sleep(50);
    t.deepEqual(await rejection(c.call('VM.clean_reboot', vm)), { code: 'OTHER_OPERATION_IN_PROGRESS', params: ['VM.clean_shutdown', vm] });
    t.equal(((await pending) as { code: string }).code, 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT');
  } finally {
    await f.close();
  }
});

test('set_HVM_boot_policy sets domain_type; set_domain_type sets HVM_boot_policy, in any power state, never unspecified', async (t) => {
  const f = await fixture();
  const c = f.client;
  try {
    const vm = await installVm(c);
    await c.call('VM.set_HVM_boot_policy', vm, 'BIOS order');
    t.equal(await c.call('VM.get_domain_type', vm), 'hvm', 'a boot policy: hvm');
    await c.call('VM.set_HVM_boot_policy', vm, '');
    t.equal(await c.call('VM.get_domain_type', vm), 'pv', '"": pv');
    await c.call('VM.set_domain_type', vm, 'PVH');
    t.equal(await c.call('VM.get_domain_type', vm), 'pvh', 'enum values in any case');
    t.equal(await c.call('VM.get_HVM_boot_policy', vm), '');
    await c.call('VM.set_domain_type', vm, 'hvm');
    t.equal(await c.call('VM.get_HVM_boot_policy', vm), 'BIOS order');
    t.deepEqual(await rejection(c.call('VM.set_domain_type', vm, 'unspecified')), { code: 'INVALID_VALUE', params: ['domain_type', 'unspecified'] });
    await c.call('VM.set_domain_type', vm, 'pvh');
    await c.call('VM.start', vm, false, false);
    await c.call('VM.set_HVM_boot_policy', vm, '');
    t.equal(await c.call('VM.get_domain_type', vm), 'pv', "a running pvh VM turns pv for its next start (the driver's reuse path)");
    await c.call('VM.set_domain_type', vm, 'pvh');
    t.equal(await c.call('VM.get_domain_type', vm), 'pvh', 'set_domain_type on a running VM');
  } finally {
    await f.close();
  }
});

test("suspend needs an SR: VM.suspend_SR, then the pool's, then the host's; VM_NO_SUSPEND_SR after the power-state check", async (t) => {
  const f = await fixture();
  const c = f.client;
  try {
    const [sr] = await c.call<string[]>('SR.get_by_name_label', 'Local storage');
    const rec = await c.call<Record<string, unknown>>('SR.get_record', sr);
    t.deepEqual([rec.type, rec.shared, rec.content_type], ['ext', false, 'user'], 'the local SR');
    t.equal(await c.call('SR.get_by_uuid', rec.uuid), sr);
    t.deepEqual(await c.call('SR.get_all'), [sr]);
    const pool = (await c.call<string[]>('pool.get_all'))[0]!;
    const host = await c.call<string>('pool.get_master', pool);
    t.equal(await c.call('pool.get_default_SR', pool), sr, "the pool's default SR");
    t.equal(await c.call('pool.get_suspend_image_SR', pool), sr, "the pool's suspend SR");
    t.equal(await c.call('host.get_suspend_image_sr', host), sr, "the host's suspend SR");
    await c.call('pool.set_suspend_image_SR', pool, 'OpaqueRef:NULL');
    await c.call('host.set_suspend_image_sr', host, 'OpaqueRef:NULL');
    const vm = await installVm(c);
    t.deepEqual(await rejection(c.call('VM.suspend', vm)), { code: 'VM_BAD_POWER_STATE', params: [vm, 'running', 'halted'] }, 'the power state first');
    await c.call('VM.start', vm, false, false);
    const domid = (await powerOf(c, vm))[1];
    t.deepEqual(await rejection(c.call('VM.suspend', vm)), { code: 'VM_NO_SUSPEND_SR', params: [vm] });
    t.equal(f.hv.xenstore.get(`/local/domain/${domid}/control/shutdown`), '', 'no request was written');
    await c.call('VM.set_suspend_SR', vm, 'OpaqueRef:not-an-sr');
    t.deepEqual(((await rejection(c.call('VM.suspend', vm))) as { code: string }).code, 'VM_NO_SUSPEND_SR', 'a ref that is no SR does not count');
    await c.call('VM.set_suspend_SR', vm, sr);
    await c.call('VM.suspend', vm);
    t.equal((await powerOf(c, vm))[0], 'Suspended', 'VM.suspend_SR alone is enough');
    await c.call('VM.resume', vm, false, false);
    await c.call('VM.set_suspend_SR', vm, 'OpaqueRef:NULL');
    await c.call('host.set_suspend_image_sr', host, sr);
    await c.call('VM.suspend', vm);
    t.equal((await powerOf(c, vm))[0], 'Suspended', "the host's SR alone is enough");
  } finally {
    await f.close();
  }
});

test("XAPI's error shapes: power state before template, VM_IS_TEMPLATE [vm; op], expected states in xapi's order, OTHER_OPERATION_IN_PROGRESS with 4 params", async (t) => {
  const f = await fixture('xenserver-8', { shutdownAckTimeoutMs: 10_000 });
  const c = f.client;
  try {
    const [tpl] = await c.call<string[]>('VM.get_by_name_label', 'Other install media');
    t.deepEqual(
      await rejection(c.call('VM.clean_shutdown', tpl)),
      { code: 'VM_BAD_POWER_STATE', params: [tpl, 'running', 'halted'] },
      'a halted template: the power state first',
    );
    t.deepEqual(await rejection(c.call('VM.start', tpl, false, false)), { code: 'VM_IS_TEMPLATE', params: [tpl, 'start'] });
    t.deepEqual(await rejection(c.call('VM.destroy', tpl)), { code: 'VM_IS_TEMPLATE', params: [tpl, 'destroy'] }, 'a default template cannot be destroyed');
    const all = await c.call<Record<string, Record<string, unknown>>>('VM.get_all_records');
    const dom0 = Object.keys(all).find((r) => all[r]!.is_control_domain === true)!;
    t.deepEqual(
      await rejection(c.call('VM.destroy', dom0)),
      { code: 'VM_BAD_POWER_STATE', params: [dom0, 'halted, suspended', 'running'] },
      'dom0: the power state first',
    );
    t.deepEqual(await rejection(c.call('VM.pause', dom0)), { code: 'OPERATION_NOT_ALLOWED', params: ['This operation is not allowed on a control domain'] });
    const vm = await installVm(c);
    t.deepEqual(await rejection(c.call('VM.hard_shutdown', vm)), { code: 'VM_BAD_POWER_STATE', params: [vm, 'paused, suspended, running', 'halted'] });
    t.deepEqual(await rejection(c.call('VM.hard_reboot', vm)), { code: 'VM_BAD_POWER_STATE', params: [vm, 'paused, running', 'halted'] });
    await c.call('VM.add_to_blocked_operations', vm, 'start', 'not today');
    t.deepEqual(await rejection(c.call('VM.start', vm, false, false)), { code: 'OPERATION_BLOCKED', params: [vm, 'not today'] }, 'blocked_operations first');
    await c.call('VM.remove_from_blocked_operations', vm, 'start');
    await c.call('VM.start', vm, false, false);
    f.hv.scripts.set(await c.call<string>('VM.get_uuid', vm), { ack: 'none', action: 'ignore' });
    const task = await c.call<string>('Async.VM.clean_shutdown', vm);
    await sleep(50);
    t.deepEqual(await c.call('VM.get_current_operations', vm), { [task]: 'clean_shutdown' }, 'current_operations: task → operation');
    t.deepEqual(await rejection(c.call('VM.suspend', vm)), { code: 'OTHER_OPERATION_IN_PROGRESS', params: ['VM', vm, 'clean_shutdown', task] });
    const t0 = Date.now();
    await c.call('VM.hard_shutdown', vm);
    t.ok(Date.now() - t0 < 5000, `hard_shutdown cancels the clean one at once, not after its 10 s window (${Date.now() - t0} ms)`);
    for (let i = 0; i < 50 && (await c.call<string>('task.get_status', task)) === 'pending'; i++) await sleep(20);
    t.equal(await c.call('task.get_status', task), 'cancelled', 'the cancelled task');
    t.deepEqual(await c.call('task.get_error_info', task), ['TASK_CANCELLED', task], 'TASK_CANCELLED [task]');
    t.deepEqual(await powerOf(c, vm), ['Halted', -1]);
    t.deepEqual(await c.call('VM.get_current_operations', vm), {});
  } finally {
    await f.close();
  }
});

test('task.cancel of a clean operation waiting on its guest: TASK_CANCELLED, the VM as it was', async (t) => {
  const f = await fixture('xenserver-8', { shutdownAckTimeoutMs: 5000 });
  const c = f.client;
  try {
    const vm = await installVm(c);
    await c.call('VM.start', vm, false, false);
    const before = await powerOf(c, vm);
    f.hv.scripts.set(await c.call<string>('VM.get_uuid', vm), { ack: 'none', action: 'ignore' });
    const task = await c.call<string>('Async.VM.clean_reboot', vm);
    await sleep(50);
    await c.call('task.cancel', task);
    for (let i = 0; i < 50 && ['pending', 'cancelling'].includes(await c.call<string>('task.get_status', task)); i++) await sleep(20);
    t.equal(await c.call('task.get_status', task), 'cancelled');
    t.deepEqual(await c.call('task.get_error_info', task), ['TASK_CANCELLED', task]);
    t.deepEqual(await powerOf(c, vm), before, 'still Running in the same domain');
  } finally {
    await f.close();
  }
});

test('resume of a VM without an image: VM_HAS_NO_SUSPEND_VDI ["VM"; vm], and the VM is Halted', async (t) => {
  const f = await fixture();
  const c = f.client;
  try {
    const vm = await installVm(c);
    await c.call('VM.start', vm, false, false);
    await c.call('VM.suspend', vm);
    // The image goes behind XAPI's back (the double keeps it in dom0; a real one is a VDI).
    const r = (f.ep.lifecycle as unknown as { runtime: Map<string, { suspendFile: string | null }> }).runtime.get(vm)!;
    r.suspendFile = null;
    t.deepEqual(await rejection(c.call('VM.resume', vm, false, false)), { code: 'VM_HAS_NO_SUSPEND_VDI', params: ['VM', vm] });
    t.deepEqual(await powerOf(c, vm), ['Halted', -1]);
  } finally {
    await f.close();
  }
});

test('suspend answered by a reboot: the error comes after the restart delay and the new domain; by a poweroff, after the VM is Halted', async (t) => {
  const f = await fixture('xenserver-8', { restartDelayMs: 400 });
  const c = f.client;
  try {
    const vm = await installVm(c);
    const uuid = await c.call<string>('VM.get_uuid', vm);
    await c.call('VM.start', vm, false, false);
    const first = (await powerOf(c, vm))[1];
    f.hv.scripts.set(uuid, { ack: 'ok', action: 'reboot' });
    const t0 = Date.now();
    const err = await rejection(c.call('VM.suspend', vm));
    const took = Date.now() - t0;
    t.equal((err as { code: string }).code, 'INTERNAL_ERROR');
    t.ok(took >= 380, `not before xenopsd's VM_delay (${took} ms)`);
    const domid = f.hv.domidOf(uuid);
    t.ok(domid !== null && domid !== first, 'the new domain was there when the error came');
    t.deepEqual(await powerOf(c, vm), ['Running', domid!]);
    f.hv.scripts.set(uuid, { ack: 'ok', action: 'poweroff' });
    t.equal(((await rejection(c.call('VM.suspend', vm))) as { code: string }).code, 'INTERNAL_ERROR');
    t.equal(f.hv.domidOf(uuid), null, 'a poweroff: the domain was gone when the error came');
    t.deepEqual(await powerOf(c, vm), ['Halted', -1]);
  } finally {
    await f.close();
  }
});

test('a domain Xen still lists while it dies is not taken for a guest acting alone', async (t) => {
  // Seen on the emulated host: clean_shutdown answered by a reboot ended Halted, then a look at Xen
  // found the destroyed domain still listed (dying, shut down for reboot), adopted it, and the
  // reboot action restarted the VM after VM_delay.
  const f = await fixture('xenserver-8', { restartDelayMs: 50 });
  const c = f.client;
  try {
    f.hv.dyingMs = 300;
    const vm = await installVm(c);
    const uuid = await c.call<string>('VM.get_uuid', vm);
    await c.call('VM.start', vm, false, false);
    // Another VM that runs: the endpoint keeps looking at Xen (as on a host with other guests).
    const other = await installPv(c, { boot: BOOT['xenserver-8'], name: 'xtv-other' });
    await c.call('VM.start', other, false, false);
    f.hv.scripts.set(uuid, { ack: 'ok', action: 'reboot' });
    await c.call('VM.clean_shutdown', vm);
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'clean_shutdown answered by a reboot: Halted');
    await c.call('VM.pause', other); // a look at Xen while the domain dies
    await sleep(400);
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'and still Halted after the dying domain is gone and the restart delay has passed');
    t.equal(f.hv.domidOf(uuid), null, 'no new domain');
  } finally {
    await f.close();
  }
});

test('a crash restarts from 120 s after the start on (run_time < 120 is destroyed), counted across suspend and resume', async (t) => {
  const f = await fixture('xenserver-8', { shortRunMs: 300 });
  const c = f.client;
  try {
    const vm = await installVm(c);
    const uuid = await c.call<string>('VM.get_uuid', vm);
    await c.call('VM.start', vm, false, false);
    f.hv.guestShutdown(f.hv.domidOf(uuid)!, 'crash');
    await sleep(60);
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'a crash soon after the start: Halted');
    await c.call('VM.start', vm, false, false);
    await sleep(200);
    await c.call('VM.suspend', vm);
    await c.call('VM.resume', vm, false, false);
    await sleep(150);
    const before = f.hv.domidOf(uuid)!;
    f.hv.guestShutdown(before, 'crash');
    await sleep(60);
    const [state, after] = await powerOf(c, vm);
    t.equal(state, 'Running', 'started more than shortRunMs ago (the resume does not count as a start): restarted');
    t.notEqual(after, before, 'in a new domain');
  } finally {
    await f.close();
  }
});

test('VM.shutdown: a suspended VM loses its image; a clean shutdown that fails becomes a hard one', async (t) => {
  const f = await fixture('xenserver-8', { shutdownAckTimeoutMs: 200 });
  const c = f.client;
  try {
    const vm = await installVm(c);
    await c.call('VM.start', vm, false, false);
    await c.call('VM.suspend', vm);
    await c.call('VM.shutdown', vm);
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'suspended → Halted');
    t.equal(f.hv.saved.size, 0, 'the image is gone');
    await c.call('VM.start', vm, false, false);
    f.hv.scripts.set(await c.call<string>('VM.get_uuid', vm), { ack: 'none', action: 'ignore' });
    await c.call('VM.shutdown', vm);
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'no ack → hard shutdown');
    t.equal(f.hv.domains.size, 0);
  } finally {
    await f.close();
  }
});

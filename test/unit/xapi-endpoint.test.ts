// The XenAPI test double with its fake hypervisor, driven through the real
// `xen-api` client (JSON-RPC and XML-RPC), plus raw HTTP for malformed input.
import test from 'tape';
import { createClient, type Xapi } from 'xen-api';
import { installVm as installPv, powerOf, rejection, startDouble, USER, type DoubleOptions } from './xapi-fixture.ts';
import { parseXlListVerbose } from '../../dom0/xapi-double/src/xl-hypervisor.ts';

const PASSWORD = 'test-password-1';
const KERNEL = '/var/lib/xcp/guest/xtv-kernel';
const INITRD = '/var/lib/xcp/guest/xtv-initrd';

const fixture = (opts: Omit<DoubleOptions, 'password'> = {}) => startDouble({ password: PASSWORD, ...opts });

/** The harness's install, with its other_config mark (xtv=true). */
const installVm = (c: Xapi, name?: string) => installPv(c, { name, asHarness: true, otherConfig: { xtv: 'true' } });

for (const transport of ['json-rpc', 'xml-rpc'] as const) {
  test(`${transport}: login, records of pool, host and VM, wrong password`, async (t) => {
    const f = await fixture({ transport });
    try {
      const pools = await f.client.call<Record<string, Record<string, unknown>>>('pool.get_all_records');
      t.equal(Object.keys(pools).length, 1, 'one pool');
      const pool = Object.values(pools)[0]!;
      const host = await f.client.call<Record<string, unknown>>('host.get_record', pool.master);
      t.equal(host.name_label, 'xtv-dom0');
      const vms = await f.client.call<Record<string, Record<string, unknown>>>('VM.get_all_records');
      t.ok(
        Object.values(vms).some((v) => v.is_control_domain === true),
        'dom0 is listed',
      );
      t.ok(
        Object.values(vms).some((v) => v.name_label === 'Other install media' && v.is_a_template === true),
        'the template is listed',
      );
      const [tpl] = await f.client.call<string[]>('VM.get_by_name_label', 'Other install media');
      const uuid = await f.client.call<string>('VM.get_uuid', tpl);
      t.equal(await f.client.call('VM.get_by_uuid', uuid), tpl, 'get_by_uuid');
      const bad = createClient({ url: f.url, auth: { user: USER, password: 'wrong' }, watchEvents: false, transport });
      t.deepEqual(await rejection(bad.connect()), { code: 'SESSION_AUTHENTICATION_FAILED', params: [USER, 'Authentication failure'] });
    } finally {
      await f.close();
    }
  });

  test(`${transport}: install by clone, start, clean_shutdown, clean_reboot, suspend/resume, pause, hard_shutdown, destroy`, async (t) => {
    const f = await fixture({ transport });
    const c = f.client;
    try {
      const vm = await installVm(c);
      t.deepEqual(await powerOf(c, vm), ['Halted', -1]);
      await c.call('VM.start', vm, false, false);
      const [s1, d1] = await powerOf(c, vm);
      t.equal(s1, 'Running');
      t.ok(d1 > 0, `domid ${d1}`);
      t.equal(f.hv.domidOf(await c.call<string>('VM.get_uuid', vm)), d1, "the domid is Xen's");
      await c.call('VM.clean_reboot', vm);
      const [s2, d2] = await powerOf(c, vm);
      t.equal(s2, 'Running');
      t.notEqual(d2, d1, 'clean_reboot gives a new domid');
      await c.call('VM.suspend', vm);
      t.deepEqual(await powerOf(c, vm), ['Suspended', -1]);
      await c.call('VM.resume', vm, false, false);
      t.equal((await powerOf(c, vm))[0], 'Running');
      await c.call('VM.pause', vm);
      t.equal((await powerOf(c, vm))[0], 'Paused');
      t.deepEqual(await rejection(c.call('VM.clean_shutdown', vm)), { code: 'VM_BAD_POWER_STATE', params: [vm, 'running', 'paused'] });
      await c.call('VM.unpause', vm);
      await c.call('VM.clean_shutdown', vm);
      t.deepEqual(await powerOf(c, vm), ['Halted', -1]);
      t.deepEqual(await rejection(c.call('VM.clean_shutdown', vm)), { code: 'VM_BAD_POWER_STATE', params: [vm, 'running', 'halted'] });
      await c.call('VM.start', vm, true, false);
      t.equal((await powerOf(c, vm))[0], 'Paused', 'start paused');
      await c.call('VM.hard_shutdown', vm);
      t.deepEqual(await powerOf(c, vm), ['Halted', -1]);
      t.equal(f.hv.domains.size, 0, 'no domain left');
      await c.call('VM.destroy', vm);
      t.deepEqual(await rejection(c.call('VM.get_record', vm)), { code: 'HANDLE_INVALID', params: ['VM', vm] });
    } finally {
      await f.close();
    }
  });
}

test('Async.* calls run as tasks; the client watches them through its event loop', async (t) => {
  const f = await fixture({ watchEvents: true });
  const c = f.client;
  try {
    await c.objectsFetched;
    const vm = await installVm(c);
    await c.callAsync('VM.start', vm, false, false);
    t.equal((await powerOf(c, vm))[0], 'Running', 'Async.VM.start resolved once the VM ran');
    t.deepEqual(
      await rejection(c.callAsync('VM.start', vm, false, false)),
      { code: 'VM_BAD_POWER_STATE', params: [vm, 'halted', 'running'] },
      'a failed task rejects with the XAPI error',
    );
    t.deepEqual(((await rejection(c.callAsync('VM.clone', vm, 'x'))) as { code: string }).code, 'VM_BAD_POWER_STATE', 'a running VM cannot be cloned');
    const [tpl] = await c.call<string[]>('VM.get_by_name_label', 'Other install media');
    const clone = await c.callAsync<string>('VM.clone', tpl, 'x');
    t.ok(clone.startsWith('OpaqueRef:'), 'the task result is the new ref');
    t.equal(await c.call('VM.get_name_label', clone), 'x');
  } catch (err) {
    t.fail(String(err));
  } finally {
    await f.close();
  }
});

test("event.from keeps the client's object cache current (create, change, power, destroy)", async (t) => {
  const f = await fixture({ watchEvents: true });
  const c = f.client;
  try {
    await c.objectsFetched;
    const seen = (pred: () => boolean, what: string) =>
      new Promise<void>((resolve, reject) => {
        const deadline = Date.now() + 5000;
        const tick = () => {
          if (pred()) resolve();
          else if (Date.now() > deadline) reject(new Error(`not seen in the cache within 5 s: ${what}`));
          else setTimeout(tick, 20);
        };
        tick();
      });
    const vm = await installVm(c, 'watched');
    await seen(() => c.getObjectByRef(vm, null)?.name_label === 'watched', 'new VM');
    t.pass('a new VM appears');
    await c.call('VM.add_to_other_config', vm, 'k', 'v');
    await seen(() => (c.getObjectByRef(vm, null)?.other_config as Record<string, string> | undefined)?.k === 'v', 'other_config');
    t.pass('a field change arrives');
    await c.call('VM.start', vm, false, false);
    await seen(() => c.getObjectByRef(vm, null)?.power_state === 'Running', 'Running');
    t.pass('power state Running arrives');
    const domid = Number(c.getObjectByRef(vm).domid);
    f.hv.guestShutdown(domid, 'poweroff');
    await seen(() => c.getObjectByRef(vm, null)?.power_state === 'Halted', 'Halted after the guest powered off');
    t.pass('a guest powering off alone ends Halted (actions_after_shutdown destroy)');
    await c.call('VM.destroy', vm);
    await seen(() => c.getObjectByRef(vm, null) === null, 'removed');
    t.pass('a destroyed VM leaves the cache');
    // event.from directly: classes filter, token, timeout
    const token = await c.call<string>('event.inject', 'pool', c.pool!.$ref);
    const t0 = Date.now();
    const r = await c.call<{ events: unknown[]; token: string }>('event.from', ['VM'], token, 0.3);
    t.ok(Date.now() - t0 >= 250, 'event.from waits for its timeout when nothing matches');
    t.equal(r.events.length, 0, 'the pool event does not match the VM class');
    t.deepEqual(await rejection(c.call('event.from', ['VM'], 'garbage', 0.1)), { code: 'EVENT_FROM_TOKEN_PARSE_FAILURE', params: ['garbage'] });
  } catch (err) {
    t.fail(String(err));
  } finally {
    await f.close();
  }
});

test('clean operations follow XAPI: ack and shutdown timeouts, any reason ends as the request says', async (t) => {
  const f = await fixture({ lifecycle: { shutdownAckTimeoutMs: 300, suspendAckTimeoutMs: 200, shutdownTotalTimeoutMs: 700, suspendTotalTimeoutMs: 600 } });
  const c = f.client;
  try {
    const vm = await installVm(c);
    const uuid = await c.call<string>('VM.get_uuid', vm);
    await c.call('VM.start', vm, false, false);
    const domid = (await powerOf(c, vm))[1];

    f.hv.scripts.set(uuid, { ack: 'none', action: 'ignore' });
    let t0 = Date.now();
    t.deepEqual(await rejection(c.call('VM.clean_shutdown', vm)), { code: 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', params: [vm] });
    t.ok(Date.now() - t0 >= 280, 'after the ack timeout');
    t.equal(f.hv.xenstore.get(`/local/domain/${domid}/control/shutdown`), 'poweroff', 'the request is left in control/shutdown');
    t.deepEqual(await powerOf(c, vm), ['Running', domid], 'still Running');

    f.hv.scripts.set(uuid, { ack: { write: 'bogus' }, action: 'ignore' });
    t.deepEqual(((await rejection(c.call('VM.clean_reboot', vm))) as { code: string }).code, 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', 'a bogus string is no ack');

    f.hv.scripts.set(uuid, { ack: 'ok', action: 'ignore' });
    t0 = Date.now();
    t.deepEqual(await rejection(c.call('VM.clean_shutdown', vm)), { code: 'VM_SHUTDOWN_TIMEOUT', params: [vm, '0.7'] }, 'the timeout as OCaml prints a float');
    t.ok(Date.now() - t0 >= 650, 'after the total timeout');
    t.deepEqual(await powerOf(c, vm), ['Running', domid]);

    f.hv.scripts.set(uuid, { ack: 'none', action: 'ignore' });
    t.deepEqual(((await rejection(c.call('VM.suspend', vm))) as { code: string }).code, 'VM_FAILED_SUSPEND_ACKNOWLEDGMENT');
    f.hv.scripts.set(uuid, { ack: 'ok', action: 'ignore' });
    t.deepEqual(((await rejection(c.call('VM.suspend', vm))) as { code: string }).code, 'VM_SUSPEND_TIMEOUT');

    f.hv.scripts.set(uuid, { ack: 'delete', action: 'reboot' });
    await c.call('VM.clean_shutdown', vm);
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'clean_shutdown answered by a reboot still ends Halted');

    await c.call('VM.start', vm, false, false);
    const before = (await powerOf(c, vm))[1];
    f.hv.scripts.set(uuid, { ack: 'ok', action: 'poweroff' });
    const token = String(f.ep.api.db.currentGeneration).padStart(20, '0');
    await c.call('VM.clean_reboot', vm);
    const seen = f.ep.api.db
      .eventsSince(['VM'], token)
      .events.filter((e) => e.ref === vm)
      .map((e) => e.snapshot.power_state);
    t.notOk(seen.includes('Halted'), `a rebooting VM is never shown Halted (${[...new Set(seen)].join(', ')})`);
    const [s, after] = await powerOf(c, vm);
    t.equal(s, 'Running', 'clean_reboot answered by a poweroff still ends Running');
    t.notEqual(after, before, 'with a new domid');

    f.hv.scripts.set(uuid, { ack: 'none', action: 'poweroff' });
    await c.call('VM.clean_shutdown', vm);
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'no ack but a shutdown within the ack timeout: success');

    await c.call('VM.start', vm, false, false);
    f.hv.scripts.set(uuid, { ack: 'ok', action: 'crash' });
    t.deepEqual(((await rejection(c.call('VM.suspend', vm))) as { code: string }).code, 'INTERNAL_ERROR', 'suspend answered by a crash: INTERNAL_ERROR');
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'the crash action came first (restart within 120 s of start becomes destroy)');
  } finally {
    await f.close();
  }
});

test('a guest acting alone: actions_after_* and self-suspend', async (t) => {
  const f = await fixture();
  const c = f.client;
  const settle = () => new Promise((r) => setTimeout(r, 60));
  try {
    const vm = await installVm(c);
    await c.call('VM.start', vm, false, false);
    let domid = (await powerOf(c, vm))[1];
    f.hv.guestShutdown(domid, 'reboot');
    await settle();
    const [s, d] = await powerOf(c, vm);
    t.equal(s, 'Running', 'reboot → restart');
    t.notEqual(d, domid, 'new domid');
    domid = d;
    f.hv.guestShutdown(domid, 'suspend');
    await settle();
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'self-suspend → Halted, no image');
    await c.call('VM.set_actions_after_crash', vm, 'preserve');
    await c.call('VM.start', vm, false, false);
    domid = (await powerOf(c, vm))[1];
    f.hv.guestShutdown(domid, 'crash');
    await settle();
    t.deepEqual(await powerOf(c, vm), ['Paused', domid], 'crash with preserve → Paused, domain kept');
    await c.call('VM.hard_shutdown', vm);
    t.equal(f.hv.domains.size, 0);
    t.deepEqual(
      await rejection(c.call('VM.set_actions_after_crash', vm, 'explode')),
      { code: 'INTERNAL_ERROR', params: ['Failure("Unknown tag/contents")'] },
      "an unknown enum value: the unmarshaller's failure",
    );
  } finally {
    await f.close();
  }
});

test('reading records looks at Xen only after a domain event: polling clients cost dom0 no xl list', async (t) => {
  const f = await fixture();
  const c = f.client;
  try {
    const vm = await installVm(c);
    await c.call('VM.start', vm, false, false);
    const domid = (await powerOf(c, vm))[1];
    await new Promise((r) => setTimeout(r, 20));
    const before = f.hv.lists;
    for (let i = 0; i < 5; i++) await powerOf(c, vm);
    await c.call('VM.get_all_records');
    t.equal(f.hv.lists - before, 0, 'six reads, no new look at Xen');
    f.hv.guestShutdown(domid, 'poweroff');
    await new Promise((r) => setTimeout(r, 60));
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'after the guest powers off (an event): Halted');
    t.ok(f.hv.lists > before, `the event made a look (${f.hv.lists - before})`);
    // Nothing of ours runs now: another domain's event makes no look (the next read does).
    const idle = f.hv.lists;
    const other = await f.hv.create(
      { name: 'someone-else', uuid: '00000000-0000-4000-8000-000000000001', type: 'pv', kernel: KERNEL, ramdisk: INITRD, cmdline: '', memoryMiB: 32, vcpus: 1 },
      {},
    );
    f.hv.guestShutdown(other, 'poweroff');
    await new Promise((r) => setTimeout(r, 60));
    t.equal(f.hv.lists, idle, "another domain's shutdown, none of ours running: no look");
    t.deepEqual(await powerOf(c, vm), ['Halted', -1], 'a read still answers (after one look)');
  } finally {
    await f.close();
  }
});

test('xenstore_data: set_ rewrites vm-data live in one go; add_to_ changes only the database', async (t) => {
  const f = await fixture();
  const c = f.client;
  try {
    const vm = await installVm(c);
    await c.call('VM.set_xenstore_data', vm, { 'vm-data/xtv/testing': '1 now:poweroff', 'other/key': 'x' });
    await c.call('VM.start', vm, false, false);
    const domid = (await powerOf(c, vm))[1];
    const home = `/local/domain/${domid}`;
    t.equal(f.hv.xenstore.get(`${home}/vm-data/xtv/testing`), '1 now:poweroff', 'vm-data written at start');
    t.equal(f.hv.xenstore.get(`${home}/other/key`), undefined, 'keys outside vm-data/ are not');
    await c.call('VM.add_to_xenstore_data', vm, 'vm-data/xtv/extra', 'y');
    t.equal(f.hv.xenstore.get(`${home}/vm-data/xtv/extra`), undefined, 'add_to_ does not reach the guest');
    f.hv.calls.length = 0;
    await c.call('VM.set_xenstore_data', vm, { 'vm-data/xtv/testing': '2 next:reboot' });
    t.deepEqual(f.hv.calls, [`replace ${home}/vm-data`], 'one transaction replaces the subtree');
    t.equal(f.hv.xenstore.get(`${home}/vm-data/xtv/testing`), '2 next:reboot');
    t.deepEqual(await c.call('VM.get_xenstore_data', vm), { 'vm-data/xtv/testing': '2 next:reboot' });
  } finally {
    await f.close();
  }
});

test("XAPI's errors for bad calls; kernels only from /var/lib/xcp/guest", async (t) => {
  const f = await fixture();
  const c = f.client;
  try {
    t.deepEqual(await rejection(c.call('VM.frobnicate', 'x')), { code: 'MESSAGE_METHOD_UNKNOWN', params: ['VM.frobnicate'] });
    t.deepEqual(await rejection(c.call('VM.start', 'OpaqueRef:nope')), { code: 'MESSAGE_PARAMETER_COUNT_MISMATCH', params: ['VM.start', '3', '1'] });
    t.deepEqual(await rejection(c.call('VM.start', 'OpaqueRef:nope', false, false)), { code: 'HANDLE_INVALID', params: ['VM', 'OpaqueRef:nope'] });
    t.deepEqual(await rejection(c.call('VM.get_by_uuid', 'nope')), { code: 'UUID_INVALID', params: ['VM', 'nope'] });
    const vm = await installVm(c);
    t.deepEqual(((await rejection(c.call('VM.start', vm, 'yes', false))) as { code: string }).code, 'FIELD_TYPE_ERROR');
    t.deepEqual(((await rejection(c.call('VM.add_to_other_config', vm, 'xtv', 'again'))) as { code: string }).code, 'MAP_DUPLICATE_KEY');
    await c.call('VM.set_PV_kernel', vm, '/boot/guest/xtv-kernel');
    t.deepEqual(await rejection(c.call('VM.start', vm, false, false)), {
      code: 'INVALID_VALUE',
      params: ['kernel', '/boot/guest/xtv-kernel', 'Is not in any of the allowed kernel directories: [/var/lib/xcp/guest/]'],
    });
    await c.call('VM.set_PV_kernel', vm, '/var/lib/xcp/guest/../../../etc/passwd');
    t.deepEqual(((await rejection(c.call('VM.start', vm, false, false))) as { code: string }).code, 'INVALID_VALUE', 'no escaping the guest directory');
    t.equal(f.hv.domains.size, 0, 'nothing was built');
    const [tpl] = await c.call<string[]>('VM.get_by_name_label', 'Other install media');
    t.deepEqual(await rejection(c.call('VM.start', tpl, false, false)), { code: 'VM_IS_TEMPLATE', params: [tpl, 'start'] });
    const created = await c.call<string>('VM.create', {
      name_label: 'made',
      PV_kernel: KERNEL,
      domain_type: 'pv',
      memory_static_max: String(32 << 20),
      other_config: { xtv: 'true' },
    });
    t.equal(await c.call('VM.get_name_label', created), 'made', 'VM.create');
    t.equal(Number(await c.call('VM.get_memory_static_max', created)), 32 << 20);
  } finally {
    await f.close();
  }
});

test('malformed input, in both protocols, gets an error and changes nothing; the server never crashes', async (t) => {
  const f = await fixture();
  try {
    const before = f.ep.api.db.currentGeneration;
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pieces = [
      '<methodCall>',
      '</methodCall>',
      '<methodName>',
      'VM.destroy',
      '</methodName>',
      '<params>',
      '<param>',
      '<value>',
      '<struct>',
      '<member>',
      '<name>',
      '<array>',
      '<data>',
      '<int>',
      '9999999999999999999999',
      '<boolean>',
      '&amp;',
      '&#0;',
      '<![CDATA[',
      ']]>',
      '{',
      '}',
      '[',
      ']',
      '"method"',
      ':',
      ',',
      '"params"',
      '"jsonrpc":"2.0"',
      'null',
      '"\\u0000"',
      '1e999',
      'OpaqueRef:x',
      '\u00ff',
      '\ud800',
    ];
    let answered = 0;
    for (let i = 0; i < 300; i++) {
      let body = '';
      const n = 1 + rand(30);
      for (let j = 0; j < n; j++) body += rand(4) === 0 ? String.fromCharCode(rand(256)) : pieces[rand(pieces.length)]!;
      const path = i % 2 === 0 ? '/' : '/jsonrpc';
      const res = await fetch(`${f.url}${path}`, { method: 'POST', body, headers: { 'content-type': path === '/' ? 'text/xml' : 'application/json' } });
      const text = await res.text();
      if (res.status === 200 && (text.includes('Failure') || text.includes('"error"'))) answered++;
    }
    t.equal(answered, 300, 'every malformed request got an API error back');
    const big = await fetch(`${f.url}/jsonrpc`, { method: 'POST', body: 'x'.repeat(5 * 1024 * 1024), headers: { 'content-type': 'application/json' } })
      .then((r) => r.text())
      .catch((e) => String(e));
    t.ok(/error|socket|fetch failed/i.test(big), 'an oversized body is refused');
    t.equal(f.ep.api.db.currentGeneration, before, 'nothing in the database changed');
    t.equal(f.hv.calls.length, 0, 'nothing reached the hypervisor');
    const vms = await f.client.call<Record<string, unknown>>('VM.get_all_records');
    t.ok(Object.keys(vms).length >= 2, 'the server still answers');
  } finally {
    await f.close();
  }
});

test('xl list -v as the double reads it: paused, shut down with its reason, dying', (t) => {
  const text = [
    'Name                                        ID   Mem VCPUs\tState\tTime(s)   UUID                            Reason-Code\tSecurity Label',
    'Domain-0                                     0  1024     2     r-----     100.0 00000000-0000-0000-0000-000000000000        -                -',
    'xapi-a                                       3    32     1     -b----       1.0 11111111-1111-1111-1111-111111111111        -                -',
    'xapi-b                                       4    32     1     --p---       0.0 22222222-2222-2222-2222-222222222222        -                -',
    'xapi-c                                       5    32     1     ---sr-       1.2 33333333-3333-3333-3333-333333333333        1                -',
    'xapi-d                                       6     0     1     ---sr d      1.2 44444444-4444-4444-4444-444444444444        1                -',
    '(null)                                       7     0     1     ---s-d       1.2 55555555-5555-5555-5555-555555555555        0                -',
  ].join('\n');
  const d = parseXlListVerbose(text);
  t.deepEqual(
    d.map((x) => [x.domid, x.paused, x.shutdownReason, x.dying ?? false]),
    [
      [3, false, null, false],
      [4, true, null, false],
      [5, false, 'reboot', false],
      [7, false, 'poweroff', true],
    ],
    'dom0 left out; a malformed line (6) too; a dying domain says so',
  );
  t.end();
});

// The XenAPI test double against the real XenAPI facts of
// conformance/xenapi.json (xapi's datamodel and the code that raises each
// error; see conformance/README.md): every method the double serves exists in
// XAPI with the same parameter count and Async form, every method the driver
// calls is served, the errors the fake hypervisor can provoke cheaply carry
// XAPI's parameters, and VM operations are refused in exactly the power states
// XAPI refuses them in. The double runs on its fake hypervisor and is called
// through the real `xen-api` client (raw JSON-RPC for the probes the client
// cannot send: a wrong parameter count, a session that does not exist).
//
// A failure here is a difference between the double and XAPI: fix the double
// (or, if XAPI changed, refresh the JSON), never the expectation.
import { readFileSync } from 'node:fs';
import test from 'tape';
import type { Xapi } from 'xen-api';
import type { LifecycleConfig } from '../../dom0/xapi-double/src/lifecycle.ts';
import { installVm as installPv, startDouble, USER } from './xapi-fixture.ts';

// ---- the facts ---------------------------------------------------------------

type PowerState = 'Halted' | 'Paused' | 'Suspended' | 'Running';
interface MethodFact {
  kind: 'custom' | 'implicit' | 'builtin';
  /** After the session: [name, type] or [name, type, 'optional']. */
  params: Array<[string, string] | [string, string, 'optional']>;
  session: boolean;
  async: boolean;
  errors: string[];
  usedBy: string[];
  driverCallsAsync?: boolean;
  allowedPowerStates?: PowerState[];
  cite: string;
}
interface ErrorFact {
  declared: string[];
  raised?: { params: string[]; cite: string };
  cite: string;
}
interface FieldFacts {
  all: string[];
  writable: Record<string, { qualifier: string; setters: Record<string, { kind: string; async: boolean; params: number }> }>;
}
interface Spec {
  source: { commit: string };
  methods: Record<string, MethodFact>;
  errors: Record<string, ErrorFact>;
  fields: Record<string, FieldFacts>;
}

const SPEC = JSON.parse(readFileSync(new URL('../../conformance/xenapi.json', import.meta.url), 'utf8')) as Spec;
const NULL_REF = 'OpaqueRef:NULL';
const BOGUS_SESSION = 'OpaqueRef:00000000-0000-0000-0000-00000000dead';

/** What XAPI says about `name`: an explicit entry, or a generic getter/setter of a field the JSON lists. */
function factFor(name: string): { params: number; optional: number; session: boolean; async: boolean; cite: string } | string {
  const m = SPEC.methods[name];
  if (m) {
    const optional = m.params.filter((p) => p[2] === 'optional').length;
    return { params: m.params.length - optional, optional, session: m.session, async: m.async, cite: m.cite };
  }
  const dot = name.indexOf('.');
  const cls = name.slice(0, dot);
  const msg = name.slice(dot + 1);
  const fields = SPEC.fields[cls];
  if (!fields) return `${name}: class ${cls} is not in conformance/xenapi.json`;
  const g = /^get_(.+)$/.exec(msg);
  if (g && fields.all.includes(g[1]!)) return { params: 1, optional: 0, session: true, async: false, cite: `field ${cls}.${g[1]}` };
  const s = /^(set_|add_to_|remove_from_|add_|remove_)(.+)$/.exec(msg);
  if (s) {
    const w = fields.writable[s[2]!];
    if (!w) {
      return fields.all.includes(s[2]!)
        ? `${name}: ${cls}.${s[2]} is a field, but conformance/xenapi.json does not list it as writable (add it to fields.${cls}.writable)`
        : `${name}: ${cls} has no field ${s[2]} in XAPI`;
    }
    const setter = w.setters[s[1]!];
    if (!setter) return `${name}: XAPI has no ${s[1]} for ${cls}.${s[2]} (${w.qualifier})`;
    return { params: setter.params, optional: 0, session: true, async: setter.async, cite: `field ${cls}.${s[2]} ${w.qualifier}` };
  }
  return `${name}: not a XenAPI method (not in conformance/xenapi.json)`;
}

// ---- the double ----------------------------------------------------------------

const PASSWORD = 'conformance-password';

const fixture = (lifecycle: Partial<LifecycleConfig> = {}) => startDouble({ password: PASSWORD, lifecycle });

interface Outcome {
  ok: boolean;
  value?: unknown;
  code?: string;
  params?: string[];
}

/** One JSON-RPC 2.0 call with exactly these parameters (the client would add the session itself). */
async function raw(url: string, method: string, params: unknown[]): Promise<Outcome> {
  const res = await fetch(`${url}/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }),
  });
  const body = (await res.json()) as { result?: unknown; error?: { message: string; data?: unknown } };
  if (body.error) return { ok: false, code: body.error.message, params: Array.isArray(body.error.data) ? body.error.data.map(String) : [] };
  return { ok: true, value: body.result };
}

/** The error code (and params) a promise rejects with. */
async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    const e = err as { code?: string; params?: unknown[] };
    return { ok: false, code: String(e.code), params: (e.params ?? []).map(String) };
  }
}

/** The methods the double lists (system.listMethods, as the xen-api client calls it: no session). */
async function servedBy(url: string): Promise<string[]> {
  const o = await raw(url, 'system.listMethods', []);
  if (!o.ok || !Array.isArray(o.value)) throw new Error(`system.listMethods: ${o.code} [${(o.params ?? []).join(', ')}]`);
  return o.value as string[];
}

const show = (o: Outcome) => (o.ok ? 'success' : `${o.code} [${(o.params ?? []).join(', ')}]`);

/** The shape XAPI raises an error with (JSON errors.X.raised, else the declared list). */
function raisedCount(code: string): number {
  const e = SPEC.errors[code];
  if (!e) throw new Error(`${code} has no entry in conformance/xenapi.json`);
  return (e.raised?.params ?? e.declared).length;
}

/** Clones the template into a PV VM the way the harness installs one. */
const installVm = (c: Xapi, name = 'xtv-conformance') => installPv(c, { name, asHarness: true });

async function uuidOf(c: Xapi, vm: string): Promise<string> {
  return c.call<string>('VM.get_uuid', vm);
}

/** Polls a task until it is no longer pending. */
async function taskResult(c: Xapi, task: string, timeoutMs = 10_000): Promise<Outcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rec = await c.call<Record<string, unknown>>('task.get_record', task);
    if (rec.status !== 'pending' && rec.status !== 'cancelling') {
      if (rec.status === 'success') return { ok: true, value: rec.result };
      const info = (rec.error_info as string[] | undefined) ?? [];
      return { ok: false, code: info[0], params: info.slice(1) };
    }
    if (Date.now() > deadline) return { ok: false, code: 'TEST_TIMEOUT', params: [task] };
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- 1. what the double serves -----------------------------------------------------

test(`conformance (xen-api ${SPEC.source.commit.slice(0, 10)}): every method the double serves exists in XAPI, with XAPI's parameter count and Async form`, async (t) => {
  const f = await fixture();
  try {
    const served = await servedBy(f.url);
    t.ok(served.length > 50, `the double lists ${served.length} methods`);
    // XAPI answers system.listMethods before looking at the parameters (gen_server.ml:496).
    const withSession = await raw(f.url, 'system.listMethods', [BOGUS_SESSION]);
    t.ok(
      withSession.ok,
      `system.listMethods with a parameter is answered, as in XAPI (${SPEC.methods['system.listMethods']!.cite}); the double answered ${withSession.ok ? 'the list' : show(withSession)}`,
    );
    for (const name of served) {
      const fact = factFor(name);
      if (typeof fact === 'string') {
        t.fail(fact);
        continue;
      }
      if (name === 'system.listMethods') continue; // XAPI answers it with any parameters
      const session = fact.session ? [BOGUS_SESSION] : [];
      const filler = (n: number) => Array.from({ length: n }, (_, i) => `x${i}`);
      // One too few: the count is wrong whatever the values.
      if (fact.params + session.length > 0) {
        const fewer = await raw(f.url, name, [...session, ...filler(fact.params)].slice(0, -1));
        t.equal(
          fewer.code,
          'MESSAGE_PARAMETER_COUNT_MISMATCH',
          `${name} with ${fact.params - 1} parameter(s) after the session: MESSAGE_PARAMETER_COUNT_MISMATCH (XAPI takes ${fact.params}: ${fact.cite}); the double answered ${show(fewer)}`,
        );
      }
      // The right count: the count check passes (the session, or the credentials, fail next).
      const exact = await raw(f.url, name, [...session, ...filler(fact.params)]);
      t.notEqual(
        exact.code,
        'MESSAGE_PARAMETER_COUNT_MISMATCH',
        `${name} takes ${fact.params} parameter(s) after the session, as in XAPI (${fact.cite}); the double answered ${show(exact)}`,
      );
      // Async.<name> exists in XAPI only for messages with the `Async flag. The double
      // refuses an unknown Async form before it looks at the session.
      if (fact.session) {
        const asyncProbe = await raw(f.url, `Async.${name}`, [...session, ...filler(fact.params)]);
        const doubleHasAsync = asyncProbe.code !== 'MESSAGE_METHOD_UNKNOWN';
        t.equal(
          doubleHasAsync,
          fact.async,
          `Async.${name}: XAPI ${fact.async ? 'has' : 'has no'} Async form (${fact.cite}); the double ${doubleHasAsync ? 'accepts' : 'refuses'} it (${show(asyncProbe)})`,
        );
      }
    }
  } finally {
    await f.close();
  }
});

test('conformance: every method the harness driver calls (directly or through the xen-api client) is served, Async where the driver calls it so', async (t) => {
  const f = await fixture();
  try {
    const served = new Set(await servedBy(f.url));
    for (const [name, m] of Object.entries(SPEC.methods)) {
      if (!m.usedBy.includes('driver') && !m.usedBy.includes('client')) continue;
      t.ok(served.has(name), `${name} (called by the ${m.usedBy.includes('driver') ? 'driver' : 'xen-api client'}) is served`);
      if (m.driverCallsAsync) {
        t.ok(m.async, `${name}: XAPI has the Async form the driver uses (${m.cite})`);
        const probe = await raw(f.url, `Async.${name}`, [BOGUS_SESSION, ...m.params.map(() => 'x')]);
        t.notEqual(probe.code, 'MESSAGE_METHOD_UNKNOWN', `Async.${name} is served (${show(probe)})`);
      }
    }
  } finally {
    await f.close();
  }
});

// ---- 2. error parameters ---------------------------------------------------------------

test('conformance: MESSAGE_PARAMETER_COUNT_MISMATCH is [method without Async., required count, received count], the session not counted', async (t) => {
  const f = await fixture();
  try {
    const session = f.client.sessionId;
    const cases: Array<[string, unknown[], string[]]> = [
      ['VM.start', [session, NULL_REF], ['VM.start', '3', '1']],
      ['VM.clean_shutdown', [session], ['VM.clean_shutdown', '1', '0']],
      ['Async.VM.clean_shutdown', [session], ['VM.clean_shutdown', '1', '0']],
      ['VM.get_record', [session, NULL_REF, 'extra'], ['VM.get_record', '1', '2']],
      ['session.login_with_password', [USER], ['session.login_with_password', '2', '1']],
    ];
    for (const [method, params, want] of cases) {
      const o = await raw(f.url, method, params);
      t.equal(o.params?.length, raisedCount('MESSAGE_PARAMETER_COUNT_MISMATCH'), `${method}: three parameters`);
      t.deepEqual(
        [o.code, ...(o.params ?? [])],
        ['MESSAGE_PARAMETER_COUNT_MISMATCH', ...want],
        `${method} with ${params.length} parameter(s): ${want.join(', ')} (ocaml/idl/ocaml_backend/gen_server.ml:421-433); the double answered ${show(o)}`,
      );
    }
    // Defaulted parameters (version, originator) may be given.
    const four = await raw(f.url, 'session.login_with_password', [USER, PASSWORD, '1.1', 'xtv-conformance']);
    t.ok(four.ok, `session.login_with_password takes its two optional parameters (${show(four)})`);
    if (four.ok) await raw(f.url, 'session.logout', [four.value]);
  } finally {
    await f.close();
  }
});

test("conformance: the errors the fake hypervisor can provoke carry XAPI's parameters", async (t) => {
  const f = await fixture({ shutdownAckTimeoutMs: 200, suspendAckTimeoutMs: 200, shutdownTotalTimeoutMs: 1000, suspendTotalTimeoutMs: 1000 });
  const c = f.client;
  const expectError = (o: Outcome, code: string, params: string[] | null, why: string) => {
    t.equal(o.code, code, `${code}: ${why} (the double answered ${show(o)})`);
    if (o.code !== code) return;
    // The count XAPI raises this error with (errors.X.raised in the JSON), unless this raise site has its own shape.
    const count = params ? params.length : raisedCount(code);
    const fact = SPEC.errors[code]!;
    t.equal(
      o.params?.length,
      count,
      `${code} has ${count} parameter(s) here in XAPI (shape: [${(fact.raised?.params ?? fact.declared).join('; ')}]; ${fact.raised?.cite ?? fact.cite}); the double gave [${(o.params ?? []).join(', ')}]`,
    );
    if (params) t.deepEqual(o.params, params, `${code} parameters`);
  };
  try {
    const ghost = 'OpaqueRef:00000000-0000-0000-0000-000000000001';
    expectError(await outcome(c.call('VM.get_record', ghost)), 'HANDLE_INVALID', ['VM', ghost], 'an unknown ref');
    expectError(await outcome(c.call('VM.get_by_uuid', 'no-such-uuid')), 'UUID_INVALID', ['VM', 'no-such-uuid'], 'an unknown uuid');
    const bad = await raw(f.url, 'session.login_with_password', [USER, 'wrong']);
    expectError(bad, 'SESSION_AUTHENTICATION_FAILED', null, 'a wrong password');
    if (bad.params?.[0] !== undefined) t.equal(bad.params[0], USER, 'SESSION_AUTHENTICATION_FAILED names the user first');

    const [tpl] = await c.call<string[]>('VM.get_by_name_label', 'Other install media');
    expectError(await outcome(c.call('VM.start', tpl, false, false)), 'VM_IS_TEMPLATE', [tpl!, 'start'], 'starting a template');

    // A kernel outside /var/lib/xcp/guest/ (it exists in dom0: realpath and the regular-file test pass).
    const outside = await installVm(c, 'xtv-kernel-outside');
    await c.call('VM.set_PV_kernel', outside, '/boot/guest/xtv-kernel');
    expectError(
      await outcome(c.call('VM.start', outside, false, false)),
      'INVALID_VALUE',
      ['kernel', '/boot/guest/xtv-kernel', 'Is not in any of the allowed kernel directories: [/var/lib/xcp/guest/]'],
      'a kernel outside the allowed directory',
    );
    await c.call('VM.set_PV_kernel', outside, '/var/lib/xcp/guest/no-such-kernel');
    expectError(
      await outcome(c.call('VM.start', outside, false, false)),
      'INVALID_VALUE',
      ['kernel', '/var/lib/xcp/guest/no-such-kernel', 'File does not exist'],
      'a kernel that does not exist',
    );
    expectError(
      await outcome(c.call('VM.set_domain_type', outside, 'unspecified')),
      'INVALID_VALUE',
      ['domain_type', 'unspecified'],
      'set_domain_type unspecified',
    );

    const vm = await installVm(c);
    const uuid = await uuidOf(c, vm);
    await c.call('VM.start', vm, false, false);
    f.hv.scripts.set(uuid, { ack: 'none', action: 'ignore' });
    expectError(await outcome(c.call('VM.clean_shutdown', vm)), 'VM_FAILED_SHUTDOWN_ACKNOWLEDGMENT', [vm], 'no acknowledgement');
    expectError(await outcome(c.call('VM.suspend', vm)), 'VM_FAILED_SUSPEND_ACKNOWLEDGMENT', [vm], 'no acknowledgement of a suspend');
    f.hv.scripts.set(uuid, { ack: 'ok', action: 'ignore' });
    // domain_shutdown_total_timeout = 1 s: xapi passes 1. and prints it with string_of_float.
    expectError(await outcome(c.call('VM.clean_shutdown', vm)), 'VM_SHUTDOWN_TIMEOUT', [vm, '1.'], 'acknowledged, never shut down (total timeout 1 s)');
    expectError(await outcome(c.call('VM.suspend', vm)), 'VM_SUSPEND_TIMEOUT', [vm, '1.'], 'acknowledged, never suspended (suspend timeout 1 s)');
    f.hv.scripts.delete(uuid);
    await c.call('VM.hard_shutdown', vm);

    // No suspend SR anywhere: not on the VM, the pool or the host (helpers.ml choose_suspend_sr).
    const [pool] = await c.call<string[]>('pool.get_all');
    const [host] = await c.call<string[]>('host.get_all');
    const cleared = await outcome(
      (async () => {
        await c.call('VM.set_suspend_SR', vm, NULL_REF);
        await c.call('pool.set_suspend_image_SR', pool, NULL_REF);
        await c.call('host.set_suspend_image_sr', host, NULL_REF);
      })(),
    );
    t.ok(
      cleared.ok,
      `VM.suspend_SR, pool.suspend_image_SR and host.suspend_image_sr can be set to NULL, as in XAPI (RW fields); the double answered ${show(cleared)}`,
    );
    await c.call('VM.start', vm, false, false);
    expectError(await outcome(c.call('VM.suspend', vm)), 'VM_NO_SUSPEND_SR', [vm], 'no suspend SR on the VM, the pool or the host');
    await outcome(c.call('VM.hard_shutdown', vm));
  } finally {
    await f.close();
  }
});

test('conformance: a second operation during a clean one is OTHER_OPERATION_IN_PROGRESS; hard_shutdown cancels the clean one (TASK_CANCELLED [task])', async (t) => {
  const f = await fixture({ shutdownAckTimeoutMs: 30_000 });
  const c = f.client;
  try {
    const vm = await installVm(c);
    await c.call('VM.start', vm, false, false);
    f.hv.scripts.set(await uuidOf(c, vm), { ack: 'none', action: 'ignore' });
    const task = await c.call<string>('Async.VM.clean_shutdown', vm);
    // Let the request reach the guest (the operation is then waiting for the acknowledgement).
    await new Promise((r) => setTimeout(r, 200));
    const other = await outcome(c.call('VM.suspend', vm));
    t.equal(other.code, 'OTHER_OPERATION_IN_PROGRESS', `suspend during clean_shutdown: ${show(other)}`);
    t.equal(
      other.params?.length,
      raisedCount('OTHER_OPERATION_IN_PROGRESS'),
      `OTHER_OPERATION_IN_PROGRESS has ${raisedCount('OTHER_OPERATION_IN_PROGRESS')} parameters in XAPI (${SPEC.errors.OTHER_OPERATION_IN_PROGRESS!.raised!.cite}); the double gave [${(other.params ?? []).join(', ')}]`,
    );
    t.deepEqual(other.params, ['VM', vm, 'clean_shutdown', task], 'OTHER_OPERATION_IN_PROGRESS ["VM"; vm; the operation; its task]');
    const hard = await outcome(c.call('VM.hard_shutdown', vm));
    t.ok(hard.ok, `hard_shutdown is allowed during clean_shutdown and cancels it (${show(hard)})`);
    const r = await taskResult(c, task);
    t.equal(r.code, 'TASK_CANCELLED', `the clean_shutdown task ends TASK_CANCELLED (${show(r)})`);
    t.equal(r.params?.length, raisedCount('TASK_CANCELLED'), 'TASK_CANCELLED has one parameter');
    t.deepEqual(r.params, [task], 'TASK_CANCELLED names the cancelled task (xapi_xenops.ml:3614-3621)');
    t.equal(await c.call('VM.get_power_state', vm), 'Halted', 'the VM is Halted');
  } finally {
    await f.close();
  }
});

test('conformance: set_domain_type and set_HVM_boot_policy set each other, in any power state', async (t) => {
  const f = await fixture();
  const c = f.client;
  try {
    const vm = await installVm(c);
    const both = async () => [await c.call<string>('VM.get_domain_type', vm), await c.call<string>('VM.get_HVM_boot_policy', vm)];
    await c.call('VM.set_domain_type', vm, 'hvm');
    t.deepEqual(await both(), ['hvm', 'BIOS order'], 'set_domain_type hvm sets HVM_boot_policy "BIOS order" (xapi_vm.ml:1656-1661, xapi_vm_helpers.ml:67-71)');
    await c.call('VM.set_domain_type', vm, 'pvh');
    t.deepEqual(await both(), ['pvh', ''], 'set_domain_type pvh sets HVM_boot_policy ""');
    await c.call('VM.set_HVM_boot_policy', vm, 'BIOS order');
    t.deepEqual(await both(), ['hvm', 'BIOS order'], 'set_HVM_boot_policy "BIOS order" sets domain_type hvm (xapi_vm.ml:1675-1678, xapi_vm_helpers.ml:54-58)');
    await c.call('VM.set_domain_type', vm, 'pvh');
    await c.call('VM.set_HVM_boot_policy', vm, '');
    t.deepEqual(await both(), ['pv', ''], 'set_HVM_boot_policy "" sets domain_type pv, even from pvh');
  } finally {
    await f.close();
  }
});

// ---- 3. power states -----------------------------------------------------------------------

const STATES: PowerState[] = ['Halted', 'Running', 'Paused', 'Suspended'];

/** Arguments after the VM for each operation tried (the values are valid for the fake). */
function argsFor(name: string, host: string): unknown[] | null {
  const bytes = 32 << 20;
  const table: Record<string, unknown[]> = {
    'VM.start': [false, false],
    'VM.start_on': [host, false, false],
    'VM.resume': [false, false],
    'VM.resume_on': [host, false, false],
    'VM.clean_shutdown': [],
    'VM.hard_shutdown': [],
    'VM.shutdown': [],
    'VM.clean_reboot': [],
    'VM.hard_reboot': [],
    'VM.suspend': [],
    'VM.pause': [],
    'VM.unpause': [],
    'VM.destroy': [],
    'VM.provision': [],
    'VM.clone': ['xtv-conformance-clone'],
    'VM.copy': ['xtv-conformance-copy', NULL_REF],
    'VM.set_memory_limits': [bytes, bytes, bytes, bytes],
    'VM.set_memory': [bytes],
    'VM.set_memory_dynamic_range': [bytes, bytes],
    'VM.set_VCPUs_max': [1],
    'VM.set_VCPUs_at_startup': [1],
    'VM.set_domain_type': ['pv'],
    'VM.set_HVM_boot_policy': [''],
  };
  return table[name] ?? null;
}

test('conformance: VM operations are refused (VM_BAD_POWER_STATE [vm; allowed states; actual]) in exactly the power states XAPI refuses them in', async (t) => {
  // VM.shutdown of a Paused VM waits for an acknowledgement a paused guest cannot give, then
  // falls back to hard_shutdown (xapi_vm.ml:428-444): shorten that wait.
  const f = await fixture({ shutdownAckTimeoutMs: 300, suspendAckTimeoutMs: 300 });
  const c = f.client;
  try {
    const [host] = await c.call<string[]>('host.get_all');
    const served = new Set(await servedBy(f.url));
    // A VM in each state, made fresh for every attempt.
    const reach = async (state: PowerState): Promise<string | null> => {
      const vm = await installVm(c, `xtv-conformance-${state.toLowerCase()}`);
      const steps: Record<PowerState, () => Promise<unknown>> = {
        Halted: async () => undefined,
        Running: () => c.call('VM.start', vm, false, false),
        Paused: () => c.call('VM.start', vm, true, false),
        Suspended: async () => {
          await c.call('VM.start', vm, false, false);
          await c.call('VM.suspend', vm);
        },
      };
      const o = await outcome(steps[state]());
      const now = await c.call<string>('VM.get_power_state', vm);
      return o.ok && now === state ? vm : null;
    };
    const unreachable = new Set<PowerState>();
    for (const [name, m] of Object.entries(SPEC.methods)) {
      if (!m.allowedPowerStates || !name.startsWith('VM.') || !served.has(name)) continue;
      const args = argsFor(name, host!);
      if (!args) continue;
      const order = ['Halted', 'Paused', 'Suspended', 'Running'] as const; // allowed_power_states' order is kept
      const expected = order
        .filter((s) => m.allowedPowerStates!.includes(s))
        .map((s) => s.toLowerCase())
        .join(', ');
      for (const state of STATES) {
        if (unreachable.has(state)) continue;
        const vm = await reach(state);
        if (!vm) {
          unreachable.add(state);
          t.comment(`the fake cannot reach ${state}: that column is not tried`);
          continue;
        }
        const o = await outcome(c.call(name, vm, ...args));
        const allowed = m.allowedPowerStates.includes(state);
        if (allowed) {
          t.notEqual(
            o.code,
            'VM_BAD_POWER_STATE',
            `${name} from ${state}: allowed in XAPI (${m.allowedPowerStates.join(', ')}; ${m.cite}); the double answered ${show(o)}`,
          );
        } else {
          t.deepEqual(
            [o.code, ...(o.params ?? [])],
            ['VM_BAD_POWER_STATE', vm, expected, state.toLowerCase()],
            `${name} from ${state}: VM_BAD_POWER_STATE [vm; "${expected}"; "${state.toLowerCase()}"] in XAPI; the double answered ${show(o)}`,
          );
        }
        // Leave nothing running for the next attempt.
        const now = await outcome(c.call<string>('VM.get_power_state', vm));
        if (now.ok && now.value !== 'Halted') await outcome(c.call('VM.hard_shutdown', vm));
      }
    }
  } finally {
    await f.close();
  }
});

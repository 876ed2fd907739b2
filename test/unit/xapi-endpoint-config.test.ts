// The XenAPI test double's configuration: config.json / config-NAME.json, the
// toolstack's own config files (/etc/xenopsd.conf, /etc/xapi.conf) read as
// xenopsd and xapi read them, the dom0 start hook that starts one endpoint
// per configuration, and two endpoints side by side on one hypervisor.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'tape';
import { createClient, type Xapi } from 'xen-api';
// @ts-expect-error build.mjs is plain JavaScript
import { START_HOOK } from '../../dom0/xapi-double/build.mjs';
import { lifecycleFor, parseConfig } from '../../dom0/xapi-double/src/config.ts';
import { startEndpoint } from '../../dom0/xapi-double/src/endpoint.ts';
import { FakeHypervisor } from '../../testing/fake-hypervisor.ts';
import { PROFILES } from '../../dom0/xapi-double/src/profiles.ts';
import { ConfigError, timeoutsFromConf } from '../../dom0/xapi-double/src/toolstack-conf.ts';
import { floatOfString, parseXcpConf } from '../../protocol/xcp-conf.ts';

const REPO = join(import.meta.dirname, '..', '..');

function configError(f: () => unknown): string {
  try {
    f();
    return 'no error';
  } catch (err) {
    return err instanceof ConfigError ? err.message : `not a ConfigError: ${String(err)}`;
  }
}

test("xenopsd.conf / xapi.conf lines are read the way xcp-idl's Config_file reads them", (t) => {
  const m = parseXcpConf(
    [
      '# a comment',
      'domain_shutdown_ack_timeout = 60   ',
      '   indented=7 # and a comment',
      'quoted = "1 2"',
      "single='x'",
      'a b = 3',
      'no equals sign here',
      'domain_shutdown_ack_timeout=15',
    ].join('\n'),
  );
  t.equal(m.get('domain_shutdown_ack_timeout'), '15', 'a later line wins');
  t.equal(m.get('indented'), '7', 'leading blanks, comment after the value');
  t.equal(m.get('quoted'), '1 2', 'quotes go');
  t.equal(m.get('single'), 'x');
  t.equal(m.get('b'), '3', 'the first KEY = VALUE on the line (KEY without blanks)');
  t.equal(m.size, 5);
  t.deepEqual(['60', '1_200', '0.5', '1e3', '.5', '-0'].map(floatOfString), [60, 1200, 0.5, 1000, 0.5, -0]);
  t.deepEqual(['abc', '', '0x10', 'nan', '60s', '6 0'].map(floatOfString), [null, null, null, null, null, null]);
  t.end();
});

test("timeouts from the toolstack's files, per profile; a malformed value stops the start", (t) => {
  const files = (xenopsd: string | null, xapi: string | null) => ({
    xenopsd: { path: '/etc/xenopsd.conf', text: xenopsd },
    xapi: { path: '/etc/xapi.conf', text: xapi },
  });
  const xenopsd = 'domain_shutdown_ack_timeout = 15\nvm-suspend-ack-timeout = 5\nvm-suspend-timeout = 90.5\nvm_suspend_timeout = 1\n';
  const xs8 = timeoutsFromConf(PROFILES['xenserver-8'], files(xenopsd, 'domain_shutdown_total_timeout = 300\n'));
  t.deepEqual(
    xs8.timeouts,
    { shutdownAckTimeoutMs: 15_000, suspendAckTimeoutMs: 5000, suspendTotalTimeoutMs: 90_500, shutdownTotalTimeoutMs: 300_000 },
    'xenserver-8: all four',
  );
  t.ok(
    xs8.notes.some((n) => n.includes('vm_suspend_timeout is not a key of xenopsd (vm-suspend-timeout is)')),
    'a key with _ for - is named as ignored',
  );
  const ng = timeoutsFromConf(PROFILES['xcp-ng-8.2'], files(xenopsd, null));
  t.deepEqual(ng.timeouts, { shutdownAckTimeoutMs: 15_000 }, 'xcp-ng-8.2: xenopsd 0.150 has no suspend timeouts to set');
  t.ok(ng.notes.some((n) => n.includes("vm-suspend-ack-timeout ignored: xcp-ng-8.2's xenopsd has no such setting")));
  t.deepEqual(timeoutsFromConf(PROFILES['xenserver-8'], files(null, null)).timeouts, {}, 'absent files: the defaults');
  t.equal(
    configError(() => timeoutsFromConf(PROFILES['xenserver-8'], files('domain_shutdown_ack_timeout = soon\n', null))),
    '/etc/xenopsd.conf: domain_shutdown_ack_timeout = "soon" is not a number of seconds (xenopsd would not start either)',
  );
  t.ok(
    configError(() => timeoutsFromConf(PROFILES['xenserver-8'], files(null, 'domain_shutdown_total_timeout = -1\n'))).startsWith(
      '/etc/xapi.conf: domain_shutdown_total_timeout',
    ),
  );
  t.end();
});

test('config.json: keys, defaults per endpoint, and a clear error for anything malformed', (t) => {
  const base = { user: 'root', passwordFile: '/etc/xtv/xapi/password', httpsPort: 443, tlsKey: '/k', tlsCert: '/c' };
  const c = parseConfig(JSON.stringify(base), 'config.json', null);
  t.equal(c.profile, 'xenserver-8', 'default profile');
  t.deepEqual([c.runDir, c.suspendDir], ['/run/xtv-xapi', '/var/lib/xtv-xapi/suspend'], "the default endpoint's directories");
  t.deepEqual(
    [c.xenopsdConf, c.xapiConf],
    [
      { path: '/etc/xenopsd.conf', explicit: false },
      { path: '/etc/xapi.conf', explicit: false },
    ],
  );
  t.deepEqual(c.https, { port: 443, key: '/k', cert: '/c' });
  t.equal(c.httpPort, null);
  const n = parseConfig(JSON.stringify({ ...base, profile: 'xcp-ng-8.2', xenopsdConf: '/tmp/x.conf' }), 'config-old.json', 'old');
  t.deepEqual([n.profile, n.runDir, n.suspendDir], ['xcp-ng-8.2', '/run/xtv-xapi-old', '/var/lib/xtv-xapi-old/suspend'], "a named endpoint's own directories");
  t.deepEqual(n.xenopsdConf, { path: '/tmp/x.conf', explicit: true });
  const err = (cfg: unknown, name: string | null = null) => configError(() => parseConfig(typeof cfg === 'string' ? cfg : JSON.stringify(cfg), 'F', name));
  t.ok(err('{').startsWith('F: not JSON'));
  t.equal(err([]), 'F: not a JSON object');
  t.ok(err({ ...base, logFile: 'x' }).startsWith('F: unknown key "logFile"'));
  t.equal(err({ ...base, profile: 'xenserver-7' }), 'F: profile "xenserver-7" is not one of xenserver-8, xcp-ng-8.2');
  t.equal(err({ ...base, user: '' }), 'F: user must be a non-empty string');
  t.equal(err({ ...base, passwordFile: undefined }), 'F: passwordFile must be a non-empty string');
  t.equal(err({ ...base, httpsPort: 70000 }), 'F: httpsPort must be a port number (0-65535)');
  t.equal(err({ ...base, tlsKey: undefined }), 'F: httpsPort needs tlsKey and tlsCert');
  t.equal(err({ user: 'root', passwordFile: '/p' }), 'F: neither httpPort nor httpsPort: the endpoint would listen nowhere');
  t.ok(err({ ...base, lifecycle: { guestDir: '/x' } }).startsWith('F: lifecycle.guestDir is not a setting'));
  t.equal(err({ ...base, lifecycle: { pollMs: '5' } }), 'F: lifecycle.pollMs must be a number of milliseconds >= 0');
  t.ok(err(base, '../x').startsWith('F: endpoint name "../x"'));
  t.end();
});

test("config.json's lifecycle wins over the toolstack's files, which win over XAPI's defaults", (t) => {
  const cfg = parseConfig(JSON.stringify({ user: 'root', passwordFile: '/p', httpPort: 80, lifecycle: { shutdownAckTimeoutMs: 1000 } }), 'F', null);
  const { lifecycle, summary } = lifecycleFor(cfg, { shutdownAckTimeoutMs: 15_000, suspendAckTimeoutMs: 5000 });
  t.deepEqual([lifecycle.shutdownAckTimeoutMs, lifecycle.suspendAckTimeoutMs, lifecycle.shutdownTotalTimeoutMs], [1000, 5000, 1_200_000]);
  t.equal(
    summary,
    'timeouts: shutdown ack 1 s (config.json lifecycle), shutdown total 1200 s (default), suspend ack 5 s (toolstack config), suspend after the ack 1200 s (default)',
  );
  t.end();
});

test('main.ts refuses a malformed configuration at start, naming the file and the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-xapi-cfg-'));
  try {
    const run = (file: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', join(REPO, 'dom0', 'xapi-double', 'src', 'main.ts'), '--config', file],
          { cwd: REPO, timeout: 60_000 },
          (err, _out, stderr) => {
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
          },
        );
      });
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ user: 'root', passwordFile: '/p', httpPort: 80, profile: 'xs8' }));
    const a = await run(join(dir, 'a.json'));
    t.equal(a.code, 1, 'exit status 1');
    t.ok(a.stderr.includes(`failed to start: ${join(dir, 'a.json')}: profile "xs8" is not one of xenserver-8, xcp-ng-8.2`), a.stderr.trim());
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ user: 'root', passwordFile: '/p', httpPort: 80, xenopsdConf: join(dir, 'xenopsd.conf') }));
    writeFileSync(join(dir, 'xenopsd.conf'), 'domain_shutdown_ack_timeout = 1m\n');
    const b = await run(join(dir, 'b.json'));
    t.ok(b.stderr.includes(`failed to start: ${join(dir, 'xenopsd.conf')}: domain_shutdown_ack_timeout = "1m" is not a number of seconds`), b.stderr.trim());
    rmSync(join(dir, 'xenopsd.conf'));
    const c = await run(join(dir, 'b.json'));
    t.ok(c.stderr.includes(`failed to start: cannot read xenopsdConf (config.json) ${join(dir, 'xenopsd.conf')}`), 'a file config.json names must exist');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the start hook starts one endpoint per configuration, each with its own log, and makes both kernel directories', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xtv-xapi-hook-'));
  try {
    // The hook with its absolute paths moved under `root`, and a node that notes its arguments.
    const hook = String(START_HOOK)
      .replaceAll('/usr/bin/node', `${root}/node`)
      .replaceAll('/etc/xtv/xapi', `${root}/etc/xtv/xapi`)
      .replaceAll('/var/', `${root}/var/`)
      .replaceAll('/boot/guest', `${root}/boot/guest`);
    writeFileSync(join(root, 'hook.sh'), hook);
    writeFileSync(join(root, 'node'), `#!/bin/sh\necho "$*" >> '${root}/calls'\necho started\n`);
    chmodSync(join(root, 'node'), 0o755);
    const runHook = () => new Promise<string>((resolve) => execFile('sh', [join(root, 'hook.sh')], (_e, out) => resolve(out)));
    t.equal(await runHook(), '', 'no configuration: nothing');
    t.notOk(existsSync(join(root, 'boot', 'guest')), 'and no directories');
    mkdirSync(join(root, 'etc', 'xtv', 'xapi'), { recursive: true });
    mkdirSync(join(root, 'var', 'log'), { recursive: true });
    for (const f of ['config.json', 'config-old.json', 'config-bad name.json']) writeFileSync(join(root, 'etc', 'xtv', 'xapi', f), '{}');
    const out = await runHook();
    t.ok(out.includes(`xtv-dom0: XenAPI test double default starting (log ${root}/var/log/xtv-xapi.log)`), 'the default endpoint');
    t.ok(out.includes(`xtv-dom0: XenAPI test double old starting (log ${root}/var/log/xtv-xapi-old.log)`), 'config-old.json');
    t.ok(out.includes('config-bad name.json skipped'), 'a NAME with a blank is skipped, with a word');
    for (let i = 0; i < 100 && readFileSync(join(root, 'calls'), { encoding: 'utf8', flag: 'a+' }).trim().split('\n').length < 2; i++)
      await new Promise((r) => setTimeout(r, 20));
    const calls = readFileSync(join(root, 'calls'), 'utf8').trim().split('\n').sort();
    t.deepEqual(
      calls,
      [
        `/opt/xtv-xapi/xapi-endpoint.cjs --config ${root}/etc/xtv/xapi/config-old.json --name old`,
        `/opt/xtv-xapi/xapi-endpoint.cjs --config ${root}/etc/xtv/xapi/config.json`,
      ],
      'one node per endpoint, --name for the named one',
    );
    t.equal(readFileSync(join(root, 'var', 'log', 'xtv-xapi-old.log'), 'utf8'), 'started\n', 'its output goes to its own log');
    t.ok(existsSync(join(root, 'boot', 'guest')) && existsSync(join(root, 'var', 'lib', 'xcp', 'guest')), '/boot/guest and /var/lib/xcp/guest');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("two endpoints on one hypervisor leave each other's VMs and domains alone", async (t) => {
  const hv = new FakeHypervisor();
  const open = async (profile: 'xenserver-8' | 'xcp-ng-8.2') => {
    const ep = await startEndpoint({
      user: 'root',
      password: 'pw',
      hypervisor: hv,
      profile: PROFILES[profile],
      http: { port: 0, host: '127.0.0.1' },
      lifecycle: { pollMs: 0, restartDelayMs: 0 },
    });
    const c = createClient({ url: `http://127.0.0.1:${ep.httpPort}`, auth: { user: 'root', password: 'pw' }, watchEvents: false });
    await c.connect();
    return { ep, c };
  };
  const a = await open('xenserver-8');
  const b = await open('xcp-ng-8.2');
  const install = async (c: Xapi, dir: string, name: string) => {
    const [tpl] = await c.call<string[]>('VM.get_by_name_label', 'Other install media');
    const ref = await c.call<string>('VM.clone', tpl, name);
    await c.call('VM.set_is_a_template', ref, false);
    await c.call('VM.set_PV_kernel', ref, `${dir}/xtv-kernel`);
    await c.call('VM.set_HVM_boot_policy', ref, '');
    await c.call('VM.start', ref, false, false);
    return { ref, uuid: await c.call<string>('VM.get_uuid', ref) };
  };
  const state = async (c: Xapi, ref: string) => [await c.call<string>('VM.get_power_state', ref), Number(await c.call('VM.get_domid', ref))];
  try {
    const va = await install(a.c, '/var/lib/xcp/guest', 'vm-a');
    const vb = await install(b.c, '/boot/guest', 'vm-b');
    t.equal(hv.domains.size, 2, 'two domains');
    t.deepEqual(await a.c.call('VM.get_by_name_label', 'vm-b'), [], "A does not list B's VM");
    t.deepEqual(await b.c.call('VM.get_by_name_label', 'vm-a'), [], "B does not list A's VM");
    const domA = hv.domidOf(va.uuid)!;
    hv.guestShutdown(hv.domidOf(vb.uuid)!, 'poweroff');
    await new Promise((r) => setTimeout(r, 60));
    t.deepEqual(await state(b.c, vb.ref), ['Halted', -1], "B's guest powered off: B's VM Halted");
    t.deepEqual(await state(a.c, va.ref), ['Running', domA], "A's VM untouched");
    await b.c.call('VM.start', vb.ref, false, false);
    await a.c.call('VM.hard_shutdown', va.ref);
    t.equal(hv.domidOf(va.uuid), null, "A's domain destroyed");
    t.deepEqual(await state(b.c, vb.ref), ['Running', hv.domidOf(vb.uuid)!], "B's VM still Running");
    t.equal(Object.keys(await a.c.call<Record<string, unknown>>('VM.get_all_records')).length, 3, 'A knows dom0, its template and its VM only');
  } finally {
    for (const e of [a, b]) {
      await e.c.disconnect().catch(() => undefined);
      await e.ep.close();
    }
    await hv.close();
  }
});

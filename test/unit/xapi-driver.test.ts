// The XAPI driver's pure parts: telling XAPI versions apart, the host's
// timeouts from its config files, where xenconsoled keeps logs, and the
// client's errors mapped onto the driver contract.
import test from 'tape';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consoleLogDirOf, consoleLogFile } from '../../harness/toolstack/console-log.ts';
import { ConnectionError, ToolstackError } from '../../harness/toolstack/driver.ts';
import { mapXapiError, XapiDriver } from '../../harness/toolstack/xapi/xapi-driver.ts';
import { readCaFile } from '../../harness/toolstack/xapi/xapi-tls.ts';
import { startEndpoint } from '../../dom0/xapi-double/src/endpoint.ts';
import { FakeHypervisor } from '../../testing/fake-hypervisor.ts';
import { PROFILES } from '../../dom0/xapi-double/src/profiles.ts';
import { timeoutsFrom, XAPI_DEFAULT_TIMEOUTS } from '../../harness/toolstack/xapi/xapi-timeouts.ts';
import { parseXcpConf } from '../../protocol/xcp-conf.ts';
import { xapiVersionOf } from '../../harness/toolstack/xapi/xapi-versions.ts';

test('XAPI versions: the line from software_version (xapi_build, else xapi), not from product_version', (t) => {
  const xcpng82 = xapiVersionOf({ product_brand: 'XCP-ng', product_version: '8.2.1', platform_name: 'XCP', xapi: '1.20' });
  t.deepEqual([xcpng82.bootDir, xcpng82.pvh, xcpng82.suspendTimeoutsTunable], ['/boot/guest', false, false], 'XCP-ng 8.2 (xapi 1.20): /boot/guest, no PVH');
  t.match(xcpng82.label, /^XCP-ng 8\.2\.1 \(xapi 1\.20\)$/);
  const xcpng83 = xapiVersionOf({ product_brand: 'XCP-ng', product_version: '8.3.0', xapi: '24.11', xapi_build: '24.11.0' });
  t.deepEqual(
    [xcpng83.bootDir, xcpng83.pvh, xcpng83.suspendTimeoutsTunable],
    ['/var/lib/xcp/guest', true, false],
    'XCP-ng 8.3 (xapi 24.11): /var/lib/xcp/guest, PVH',
  );
  t.deepEqual(xapiVersionOf({ xapi: '23.8' }).bootDir, '/boot/guest', 'just before 23.9: /boot/guest');
  t.deepEqual(xapiVersionOf({ xapi_build: '23.9.0', xapi: '1.20' }).bootDir, '/var/lib/xcp/guest', 'xapi_build wins over xapi');
  t.equal(
    xapiVersionOf({ product_brand: 'XenServer', product_version: '8.4.0', xapi_build: '26.17.0' }).suspendTimeoutsTunable,
    true,
    'from 26.3 the suspend timeouts are settings',
  );
  const none = xapiVersionOf({});
  t.deepEqual([none.bootDir, none.xapi], ['/boot/guest', null], 'no version at all: the old line, and the label says so');
  t.match(none.label, /taken as the 1\.249 line/);
  t.end();
});

test('XAPI timeouts: xcp-idl config files, main file then .conf.d, the keys xenopsd really reads', (t) => {
  t.deepEqual(
    [...parseXcpConf('# c\nkey = 5 # note\nq="a b"\n  spaced=  7\nnot a line\n=x\n').entries()],
    [
      ['key', '5'],
      ['q', 'a b'],
      ['spaced', '7'],
    ],
  );
  const files = {
    xenopsd: [{ path: '/etc/xenopsd.conf', text: 'domain_shutdown_ack_timeout = 15\nvm-suspend-ack-timeout = 10\nvm_suspend_ack_timeout = 5\n' }],
    xapi: [
      { path: '/etc/xapi.conf', text: 'domain_shutdown_total_timeout = 1_200\n' },
      { path: '/etc/xapi.conf.d/90-x.conf', text: 'domain_shutdown_total_timeout = 300.5\n' },
    ],
  };
  const old = timeoutsFrom(files, false);
  t.deepEqual(
    old.timeouts,
    { ...XAPI_DEFAULT_TIMEOUTS, shutdownAckMs: 15_000, shutdownTotalMs: 300_500 },
    'before 26.3: the suspend keys are ignored, as xenopsd ignores them; the .conf.d file wins',
  );
  t.ok(
    old.notes.some((n) => /vm-suspend-ack-timeout = 10 is ignored by this xenopsd/.test(n)),
    '  and the notes say so',
  );
  t.equal(timeoutsFrom(files, true).timeouts.suspendAckMs, 10_000, 'from 26.3: vm-suspend-ack-timeout (hyphens; the underscore spelling means nothing)');
  const bad = timeoutsFrom({ xenopsd: [{ path: '/etc/xenopsd.conf', text: 'domain_shutdown_ack_timeout = soon\n' }], xapi: [] }, true);
  t.equal(bad.timeouts.shutdownAckMs, 60_000, 'a value that is no number keeps the default');
  t.match(bad.notes.join('\n'), /"soon" is not a number of seconds/);
  t.end();
});

test('console logs: only where xenconsoled runs with --log=guest|all, in its --log-dir', (t) => {
  t.equal(consoleLogDirOf([]), null, 'no xenconsoled');
  t.equal(consoleLogDirOf(['xenconsoled', '--pid-file=/run/x.pid']), null, 'XenServer, XCP-ng: no --log');
  t.equal(consoleLogDirOf(['xenconsoled', '--log=guest']), '/var/log/xen/console', 'Debian with XENCONSOLED_TRACE=guest');
  t.equal(consoleLogDirOf(['xenconsoled', '--log', 'all', '--log-dir', '/srv/log']), '/srv/log', 'separate values');
  t.equal(consoleLogDirOf(['xenconsoled', '--log=hv', '--log-dir=/srv/log']), null, 'hypervisor only');
  t.equal(consoleLogFile('/var/log/xen/console', 'xapi-1234'), '/var/log/xen/console/guest-xapi-1234.log', 'named after the domain');
  t.end();
});

/** What the xen-api client rejects a cancelled task with (promise-toolbox's Cancel; the package has no types). */
const { Cancel } = createRequire(import.meta.url)('promise-toolbox') as { Cancel: new (message: string) => object };

test("the client's errors: XAPI's answers as ToolstackError, a cancelled task as TASK_CANCELLED, the rest as ConnectionError", (t) => {
  const xe = Object.assign(new Error('VM_BAD_POWER_STATE'), { code: 'VM_BAD_POWER_STATE', params: ['OpaqueRef:1', 'running', 'halted'] });
  const a = mapXapiError(xe, 'VM.clean_shutdown');
  t.ok(a instanceof ToolstackError && a.code === 'VM_BAD_POWER_STATE' && a.params.length === 3);
  const nosr = mapXapiError(Object.assign(new Error('VM_NO_SUSPEND_SR'), { code: 'VM_NO_SUSPEND_SR', params: ['OpaqueRef:1'] }), 'VM.suspend');
  t.match(
    nosr.message,
    /VM_NO_SUSPEND_SR .*xe pool-param-set uuid=<pool> suspend-image-SR=<sr-uuid>/,
    'a host without a suspend SR: the error says how to set one',
  );
  const c = mapXapiError(new Cancel('task canceled'), 'VM.clean_shutdown');
  t.ok(c instanceof ToolstackError && c.code === 'TASK_CANCELLED', `a task XAPI cancelled (hard_shutdown meanwhile): ${String(c)}`);
  t.ok(mapXapiError(new Error('connect ECONNREFUSED'), 'VM.start') instanceof ConnectionError);
  t.end();
});

test(
  'XapiDriver.connect over https: TLS checked against --ca, refused without it, off only by name; the version read at once',
  { timeout: 60_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'xtv-tls-'));
    const hv = new FakeHypervisor();
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '2',
          '-subj',
          '/CN=xtv-test',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'k'),
          '-out',
          join(dir, 'c'),
        ],
        { stdio: 'ignore' },
      );
      const ep = await startEndpoint({
        user: 'root',
        password: 'pw',
        hypervisor: hv,
        profile: PROFILES['xcp-ng-8.2'],
        https: { port: 0, host: '127.0.0.1', key: readFileSync(join(dir, 'k')), cert: readFileSync(join(dir, 'c')) },
        lifecycle: { pollMs: 0 },
      });
      try {
        const url = `https://127.0.0.1:${ep.httpsPort}`;
        const base = { url, user: 'root', password: 'pw', target: null, callTimeoutMs: 20_000 };
        const refused = await XapiDriver.connect(base).then(
          () => null,
          (e: unknown) => e,
        );
        t.ok(refused instanceof ConnectionError && /certificate/i.test(refused.message), `the system's CAs: refused (${String(refused)})`);
        const d = await XapiDriver.connect({ ...base, ca: readCaFile(join(dir, 'c')) });
        t.equal(d.version.bootDir, '/boot/guest', 'with the CA file: connected, and the version (8.2) read');
        t.equal((await d.hostFacts()).consoleLogDir, null, 'no dom0: no console log');
        await d.close();
        const off = await XapiDriver.connect({ ...base, allowUnauthorized: true });
        t.pass('allowUnauthorized: connected without checking');
        await off.close();
      } finally {
        await ep.close();
      }
    } finally {
      await hv.close();
      rmSync(dir, { recursive: true, force: true });
    }
    t.end();
  },
);

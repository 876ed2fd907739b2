// The VM subcommands' argument handling, without a host: what is refused
// before anything is reached, with which exit code and sentence.
import test from 'tape';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectOptions, resolveEmbedded } from '../../harness/cli/common.ts';
import { ConnectionError } from '../../harness/toolstack/driver.ts';
import { connectXapi, dom0Of } from '../../harness/toolstack/xapi/xapi-connect.ts';
import { runCli } from './cli-capture.ts';

const run = runCli;

const VM_COMMANDS = ['install', 'uninstall', 'start', 'shutdown', 'reboot', 'suspend', 'resume', 'pause', 'unpause', 'destroy', 'send', 'watch', 'gc'];

test('every VM subcommand is listed and has --help with the exit codes', async (t) => {
  const top = await run(['--help']);
  for (const c of VM_COMMANDS) {
    t.ok(new RegExp(`^  ${c} `, 'm').test(top.out), `xtv --help lists ${c}`);
    const h = await run([c, '--help']);
    t.equal(h.code, 0, `xtv ${c} --help: exit 0`);
    t.ok(h.out.startsWith(`usage: xtv ${c}`) && h.out.includes('exit codes'), `xtv ${c} --help: usage and exit codes`);
  }
  t.end();
});

test("send refuses a malformed message with the decoder's sentence, exit 2, before reaching any host", async (t) => {
  const r = await run(['send', 'xtv-test', 'now:explode', '--host', 'ssh://root@192.0.2.1:1']);
  t.equal(r.code, 2);
  t.match(r.err, /^xtv send: refused: unknown action "explode" in now:X \(expected one of: suspend, poweroff, reboot, halt, crash\)$/m);
  const j = await run(['send', 'xtv-test', '{"action":"poweroff","x":1}', '--json', '--host', 'ssh://root@192.0.2.1:1']);
  t.equal(j.code, 2);
  t.deepEqual(JSON.parse(j.out), {
    ok: false,
    error: {
      kind: 'invalid-message',
      code: 'unknown-field',
      message: 'unknown field "x" (allowed: when, ack, action, ackAfterMs, actAfterMs, features, cantSuspendReason, clock)',
    },
  });
  t.end();
});

test('usage errors: exit 2 with the reason', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['start'], /missing VM/],
    [['shutdown', 'a', 'b'], /unexpected argument 'b'/],
    [['pause', 'a', '--hard'], /--hard is not an option of pause/],
    [['reboot', 'a', '--paused'], /--paused is an option of start only/],
    [['install', '--domain-type', 'hvm'], /--domain-type must be one of pv, pvh, got 'hvm'/],
    [['install', '--memory', '0'], /--memory wants a positive whole number/],
    [['gc', '--prefix', ''], /--prefix needs a non-empty name prefix/],
    [['gc', '--host', 'xen1'], /--host must be embedded, ssh:\/\/\[USER@\]HOST\[:PORT\] or https:\/\/HOST, got 'xen1'/],
    [['send', 'a', 'next:poweroff', '--via', 'vchan'], /--via must be one of xenstore, xapi/],
    [['shutdown', 'a', '--timeout', 'soon'], /--timeout wants a number of seconds/],
    [['watch', 'a', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [argv, re] of cases) {
    const r = await run(argv);
    t.equal(r.code, 2, `xtv ${argv.join(' ')}: exit 2`);
    t.match(r.err, re, `  ${r.err.split('\n')[0]}`);
  }
  t.end();
});

test('a host that does not answer: exit 2, a connection error', async (t) => {
  const r = await run(['gc', '--all', '--json', '--host', 'ssh://root@127.0.0.1:1']);
  t.equal(r.code, 2);
  const o = JSON.parse(r.out) as { ok: boolean; error: { kind: string; message: string } };
  t.equal(o.error.kind, 'connection');
  t.match(o.error.message, /could not reach dom0 at ssh:\/\/root@127\.0\.0\.1:1 over SSH/);
  t.end();
});

test('connection options: --host, $XTV_HOST, toolstack by scheme', (t) => {
  t.equal(connectOptions({}, {}).host, 'embedded');
  t.equal(connectOptions({}, { XTV_HOST: 'ssh://root@xen1' }).host, 'ssh://root@xen1');
  t.equal(connectOptions({}, { XTV_HOST: 'ssh://root@xen1' }).toolstack, 'xl');
  t.equal(connectOptions({ host: 'https://xs1' }, {}).toolstack, 'xapi');
  t.equal(connectOptions({ host: 'https://xs1', toolstack: 'xl' }, {}).toolstack, 'xl');
  t.deepEqual([connectOptions({ 'state-dir': '/s', identity: '/k' }, {}).stateDir, connectOptions({ identity: '/k' }, {}).identity], ['/s', '/k']);
  t.end();
});

test("--host embedded is only a short way to write a host's addresses", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-embedded-address-'));
  let qemu: ReturnType<typeof spawn> | undefined;
  try {
    t.throws(() => resolveEmbedded(connectOptions({ 'state-dir': dir }, {})), /no embedded host is running for state dir/, 'no host: says how to start one');
    // A host record as `xtv host up` leaves it, with a sleep named like QEMU standing in for it.
    mkdirSync(dir, { recursive: true });
    qemu = spawn('sleep', ['60'], { argv0: 'qemu-system-x86_64', stdio: 'ignore' });
    writeFileSync(join(dir, 'qemu.pid'), `${qemu.pid}\n`);
    writeFileSync(
      join(dir, 'host.json'),
      JSON.stringify({
        version: 1,
        pid: qemu.pid,
        sshPort: 2222,
        ports: { ssh: 2222, xapis: 4443 },
        privateKey: '/k/id',
        controlPath: '/c',
        bootLog: '/b',
        qemuLog: '/q',
        distDir: '/d',
        startedAt: new Date().toISOString(),
        memoryMiB: 1,
        dom0MemoryMiB: 1,
        cpus: 1,
        owner: 'cli',
        ownerPid: qemu.pid,
        extra: {
          xapi: { endpoints: [{ profile: 'xenserver-8', url: 'https://127.0.0.1:4443' }], user: 'root', passwordFile: `${dir}/pw`, caFile: `${dir}/ca.pem` },
        },
      }),
    );
    const xl = resolveEmbedded(connectOptions({ 'state-dir': dir }, {}));
    t.deepEqual(
      [xl.host, xl.identity, xl.knownHosts],
      ['ssh://root@127.0.0.1:2222', '/k/id', join(dir, 'known_hosts')],
      'xl: dom0 over ssh://, with the key and known_hosts of the state dir',
    );
    const x = resolveEmbedded(connectOptions({ 'state-dir': dir, toolstack: 'xapi', user: 'me' }, {}));
    t.deepEqual(
      [x.host, x.dom0, x.caFile, x.passwordFile, x.user],
      ['https://127.0.0.1:4443', 'ssh://root@127.0.0.1:2222', `${dir}/ca.pem`, `${dir}/pw`, 'me'],
      'xapi: the https:// URL, dom0, CA and password files; what the user gave stays',
    );
  } finally {
    qemu?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('XAPI addresses: one path, checked before anything is sent', async (t) => {
  const env = { XTV_PASSWORD: 'x' };
  const refuse = async (o: Parameters<typeof connectXapi>[0], re: RegExp, what: string): Promise<void> => {
    const err = await connectXapi({ ...o, env: { ...env, ...o.env } }).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof ConnectionError && re.test(err.message), `${what}: ${String(err)}`);
  };
  await refuse({ host: 'ssh://root@xs1', toolstack: 'xapi' }, /--host is the XenAPI URL, https:\/\/HOST/, 'ssh:// is not a XenAPI URL');
  await refuse({ host: 'http://xs1', toolstack: 'xapi' }, /plain http would send the password in clear/, 'http:// to another machine');
  await refuse({ host: 'https://root:pw@xs1', toolstack: 'xapi' }, /put no user or password in the URL/, 'credentials inside the URL');
  await refuse(
    { host: 'https://xs1', toolstack: 'xapi', dom0: 'xs1' },
    /--dom0 wants ssh:\/\/\[USER@\]HOST\[:PORT\], got "xs1" \(or none\)/,
    'a --dom0 that is not ssh://',
  );
  await refuse({ host: 'https://xs1', toolstack: 'xapi', env: { XTV_PASSWORD: '' } }, /no XAPI password for https:\/\/xs1/, 'no password');
  await refuse(
    { host: 'https://xs1', toolstack: 'xapi', caFile: '/nonexistent/ca.pem' },
    /cannot read the CA file \/nonexistent\/ca\.pem: ENOENT/,
    'a CA file that is not there',
  );
  await refuse(
    { host: 'https://xs1', toolstack: 'xapi', passwordFile: '/nonexistent/pw' },
    /cannot read the XAPI password file \/nonexistent\/pw/,
    "--password-file wins over $XTV_PASSWORD (the embedded host's file over a real host's password)",
  );
  const u = new URL('https://[fe80::1]:8443');
  t.deepEqual(dom0Of({}, u, {}), { user: 'root', host: 'fe80::1', port: 22 }, "dom0 defaults to root@ the URL's host, port 22");
  t.deepEqual(dom0Of({}, u, { XTV_DOM0: 'ssh://admin@xs1:2022' }), { user: 'admin', host: 'xs1', port: 2022 }, '$XTV_DOM0');
  t.equal(dom0Of({ dom0: 'none' }, u, {}), null, 'none: XenAPI only');
  t.throws(() => connectOptions({ host: 'ssh://root@xen1', dom0: 'ssh://xen1' }, {}), /--dom0 is for XAPI hosts/, '--dom0 with xl is a usage error');
  t.end();
});

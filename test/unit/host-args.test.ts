// `xtv host` argument parsing, state-dir resolution, and the pure builders
// (QEMU's and ssh's command lines), without booting anything.
import test from 'tape';
import { parseHostArgs, joinCommand, formatStatus } from '../../harness/cli/host-command.ts';
import { resolveStateDir, stateFiles } from '../../harness/embedded/paths.ts';
import { buildQemuArgs, escapeModuleArg, xenCommandLine } from '../../harness/embedded/qemu-args.ts';
import { sshCommandArgs, looksLikeSshFailure, retryWhileRefused } from '../../harness/remote/ssh-run.ts';
import { parseSshUrl } from '../../harness/remote/open-target.ts';
import { shq as shellQuote } from '../../harness/remote/target.ts';
import { UsageError } from '../../harness/cli/command.ts';

const env = {} as NodeJS.ProcessEnv;

test('state dir: --state-dir, else $XTV_STATE_DIR, else <cwd>/.xtv/host, always absolute', (t) => {
  t.equal(resolveStateDir('s', { XTV_STATE_DIR: '/env' }, '/work'), '/work/s');
  t.equal(resolveStateDir(undefined, { XTV_STATE_DIR: '/env' }, '/work'), '/env');
  t.equal(resolveStateDir(undefined, { XTV_STATE_DIR: 'rel' }, '/work'), '/work/rel');
  t.equal(resolveStateDir(undefined, {}, '/work'), '/work/.xtv/host');
  t.equal(resolveStateDir('', { XTV_STATE_DIR: '' }, '/work'), '/work/.xtv/host');
  t.end();
});

test('state files: the SSH control socket moves to the temp dir when the state dir is too long for a unix socket', (t) => {
  t.equal(stateFiles('/tmp/x').controlPath, '/tmp/x/ssh.sock');
  const long = `/tmp/${'d'.repeat(120)}`;
  const a = stateFiles(long).controlPath;
  t.ok(a.length < 100 && !a.startsWith(long), `short path ${a}`);
  t.equal(stateFiles(long).controlPath, a, 'stable for one state dir');
  t.notEqual(stateFiles(`${long}2`).controlPath, a, 'different for another');
  t.end();
});

test('parseHostArgs: subcommands and their options', (t) => {
  const up = parseHostArgs(['up', '--memory', '3072', '--cpus', '2', '--timeout', '60', '--state-dir', 'd'], env, '/w');
  t.deepEqual(up, { sub: 'up', stateDir: '/w/d', json: false, build: true, memoryMiB: 3072, cpus: 2, timeoutMs: 60_000 });
  t.equal(parseHostArgs(['up', '--no-build'], env, '/w').build, false);
  t.equal(parseHostArgs(['--state-dir', '/s', 'status', '--json'], env, '/w').stateDir, '/s', 'options may come before the subcommand');
  t.equal(parseHostArgs(['status', '--json'], env, '/w').json, true);
  t.equal(parseHostArgs(['down'], { XTV_STATE_DIR: '/e' }, '/w').stateDir, '/e');
  t.end();
});

test('parseHostArgs: exec takes everything after -- as the command', (t) => {
  t.equal(parseHostArgs(['exec', '--', 'xl', 'list'], env, '/w').command, 'xl list');
  t.equal(parseHostArgs(['exec', '--', 'xl list | tail -n +2'], env, '/w').command, 'xl list | tail -n +2', 'one word goes to the shell as is');
  t.equal(parseHostArgs(['exec', '--', 'xenstore-write', '/a', 'b c'], env, '/w').command, "xenstore-write /a 'b c'", 'several words are quoted');
  t.equal(parseHostArgs(['exec', '--timeout', '5', '--', 'ls', '-l'], env, '/w').command, 'ls -l', 'options after -- belong to the command');
  t.equal(parseHostArgs(['exec', 'uptime'], env, '/w').command, 'uptime', 'without --, the positionals');
  t.end();
});

test('parseHostArgs: mistakes are UsageErrors', (t) => {
  const bad: Array<[string[], RegExp]> = [
    [[], /missing subcommand/],
    [['start'], /unknown subcommand 'start'/],
    [['up', '--memory', 'lots'], /--memory wants a positive whole number/],
    [['up', '--cpus', '0'], /--cpus wants a positive whole number/],
    [['status', '--memory', '5'], /--memory is not an option of 'status'/],
    [['exec', '--json', '--', 'ls'], /--json is not an option of 'exec'/],
    [['exec'], /exec needs a command/],
    [['exec', '--', ''], /exec needs a command/],
    [['down', 'now'], /unexpected argument 'now'/],
    [['down', '--', 'x'], /'--' is only for exec/],
    [['up', '--bogus'], /bogus/],
  ];
  for (const [argv, re] of bad) {
    t.throws(
      () => parseHostArgs(argv, env, '/w'),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      `${JSON.stringify(argv)} -> ${re}`,
    );
  }
  t.end();
});

test('shell quoting', (t) => {
  t.equal(shellQuote('plain/path-1.2'), 'plain/path-1.2');
  t.equal(shellQuote("it's"), `'it'\\''s'`);
  t.equal(shellQuote(''), "''");
  t.equal(joinCommand(['echo', '$HOME', 'a b']), "echo '$HOME' 'a b'");
  t.end();
});

test('QEMU command line: multiboot modules, forwards on 127.0.0.1 only, TCG with npt', (t) => {
  const args = buildQemuArgs({
    xen: '/d/xen',
    kernel: '/d/vmlinuz',
    initrd: '/d/a,b.cpio.gz',
    memoryMiB: 2048,
    dom0MemoryMiB: 1024,
    cpus: 1,
    forwards: [
      { hostPort: 40022, guestPort: 22 },
      { hostPort: 40080, guestPort: 80 },
    ],
    bootLog: '/s/boot.log',
    pidFile: '/s/qemu.pid',
  });
  const after = (flag: string) => args[args.indexOf(flag) + 1];
  t.equal(after('-cpu'), 'qemu64,+svm,+npt');
  t.equal(after('-accel'), 'tcg');
  t.equal(after('-kernel'), '/d/xen');
  t.equal(after('-initrd'), '/d/vmlinuz console=hvc0 quiet,/d/a,,b.cpio.gz', 'a comma in a path is doubled');
  t.equal(after('-netdev'), 'user,id=net0,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:40080-:80');
  t.ok(args.includes('-no-reboot'), 'a Xen reboot or panic ends QEMU');
  t.match(after('-append')!, /dom0_mem=1024M,max:1024M/);
  t.equal(escapeModuleArg('a,b,,c'), 'a,,b,,,,c');
  t.match(xenCommandLine({ dom0MemoryMiB: 512, cpus: 2 }), /dom0_max_vcpus=2/);
  t.match(xenCommandLine({ dom0MemoryMiB: 512, cpus: 2 }), /(^| )bootscrub=0( |$)/, 'no scrub of free RAM: QEMU gives it zeroed');
  t.throws(
    () => buildQemuArgs({ xen: '', kernel: '', initrd: '', memoryMiB: 1024, dom0MemoryMiB: 1024, cpus: 1, forwards: [], bootLog: '', pidFile: '' }),
    /must be larger/,
  );
  t.end();
});

test('ssh command line: batch mode, no host-key prompts, the host key remembered, multiplexed', (t) => {
  const a = sshCommandArgs({ user: 'root', host: '127.0.0.1', port: 4022, identity: '/k', knownHosts: '/s/known_hosts' }, '/s/ssh.sock', 'xl list');
  t.deepEqual(a.slice(-3), ['root@127.0.0.1', '--', 'xl list']);
  for (const o of ['BatchMode=yes', 'StrictHostKeyChecking=accept-new', 'UserKnownHostsFile=/s/known_hosts', 'ControlPath=/s/ssh.sock', 'ControlMaster=no']) {
    t.ok(a.includes(o), o);
  }
  t.ok(looksLikeSshFailure('ssh: connect to host 127.0.0.1 port 4022: Connection refused\n'));
  t.ok(looksLikeSshFailure('kex_exchange_identification: read: Connection reset by peer\n'));
  t.notOk(looksLikeSshFailure('xl: command failed\n'), "a command's own stderr is not an ssh failure");
  t.end();
});

test('status text', (t) => {
  t.match(formatStatus({ running: false, stateDir: '/s', bootLog: '/s/boot.log' }), /^not running/);
  const s = formatStatus({
    running: true,
    stateDir: '/s',
    bootLog: '/s/boot.log',
    pid: 7,
    sshPort: 4022,
    ports: { ssh: 4022, xapi: 4080 },
    owner: 'cli',
    uptimeSec: 5,
    privateKey: '/k',
    xen: { version: '4.17.7', nrCpus: 1, totalMemoryMiB: 2047, freeMemoryMiB: 1000 },
    domains: 1,
  });
  t.match(s, /QEMU pid 7/);
  t.match(s, /xapi:\s+127\.0\.0\.1:4080/);
  t.match(s, /xen:\s+4\.17\.7/);
  t.end();
});

test('#15: an ssh URL whose user or host starts with "-" is refused (ssh would read it as an option)', (t) => {
  t.throws(() => parseSshUrl('ssh://-E@h'), /--host wants/);
  t.throws(() => parseSshUrl('ssh://root@-oProxyCommand=x'), /--host wants/);
  t.deepEqual(parseSshUrl('ssh://_ci@xen-1.example:2222'), { user: '_ci', host: 'xen-1.example', port: 2222 });
  t.end();
});

test('#16: xtv host up --xenopsd-conf / --xapi-conf: known timeout keys, seconds, nothing else', (t) => {
  const a = parseHostArgs(
    ['up', '--xenopsd-conf', 'domain_shutdown_ack_timeout=6, vm-suspend-ack-timeout=4.5', '--xapi-conf', 'domain_shutdown_total_timeout=20'],
    env,
    '/w',
  );
  t.deepEqual(a.xenopsdConf, { domain_shutdown_ack_timeout: 6, 'vm-suspend-ack-timeout': 4.5 });
  t.deepEqual(a.xapiConf, { domain_shutdown_total_timeout: 20 });
  t.throws(
    () => parseHostArgs(['up', '--xenopsd-conf', 'domain_shutdown_ack_timout=6'], env, '/w'),
    /unknown key 'domain_shutdown_ack_timout' \(known: domain_shutdown_ack_timeout/,
    'a typo is refused',
  );
  t.throws(() => parseHostArgs(['up', '--xapi-conf', 'domain_shutdown_ack_timeout=6'], env, '/w'), /unknown key/, "xenopsd's key is not xapi's");
  t.throws(() => parseHostArgs(['up', '--xapi-conf', 'domain_shutdown_total_timeout=0'], env, '/w'), /more than 0 seconds/);
  t.throws(() => parseHostArgs(['up', '--xapi-conf', 'domain_shutdown_total_timeout'], env, '/w'), /KEY=SECONDS/);
  t.throws(() => parseHostArgs(['up', '--xapi-conf', 'domain_shutdown_total_timeout=1,domain_shutdown_total_timeout=2'], env, '/w'), /given twice/);
  t.throws(() => parseHostArgs(['status', '--xenopsd-conf', 'domain_shutdown_ack_timeout=6'], env, '/w'), /not an option of 'status'/);
  t.end();
});

test('retryWhileRefused: a connection dropbear turned away is tried again; anything else is returned at once', async (t) => {
  const refused = { stdout: '', stderr: 'kex_exchange_identification: Connection closed by remote host\n', code: 255, timedOut: false };
  const ok = { stdout: 'x', stderr: '', code: 0, timedOut: false };
  const seen: number[] = [];
  const r = await retryWhileRefused(Date.now() + 10_000, async (ms) => {
    seen.push(ms);
    return seen.length < 3 ? refused : ok;
  });
  t.deepEqual([r, seen.length], [ok, 3], 'refused twice, then the command ran');
  t.ok(
    seen.every((ms) => ms > 0 && ms <= 10_000),
    'each try gets what is left of the deadline',
  );
  let n = 0;
  const other = { stdout: '', stderr: 'Permission denied (publickey).\n', code: 255, timedOut: false };
  t.equal(await retryWhileRefused(Date.now() + 10_000, async () => (n++, other)), other);
  t.equal(n, 1, 'another ssh failure is not retried');
  t.end();
});

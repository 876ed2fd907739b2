// The VM subcommands' argument handling, without a host: what is refused
// before anything is reached, with which exit code and sentence.
import test from 'tape';
import { main } from '../../harness/cli/main.ts';
import { connectOptions } from '../../harness/target/cli-common.ts';

/** Runs the CLI in-process, capturing what it prints. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  const log = console.log;
  const error = console.error;
  process.stdout.write = ((s: string) => { out += s; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  console.log = (...a: unknown[]) => { out += `${a.join(' ')}\n`; };
  console.error = (...a: unknown[]) => { err += `${a.join(' ')}\n`; };
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
    console.log = log;
    console.error = error;
  }
}

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

test('send refuses a malformed message with the decoder\'s sentence, exit 2, before reaching any host', async (t) => {
  const r = await run(['send', 'xtv-test', 'now:explode', '--host', 'ssh://root@192.0.2.1:1']);
  t.equal(r.code, 2);
  t.match(r.err, /^xtv send: refused: unknown action "explode" in now:X \(expected one of: suspend, poweroff, reboot, halt, crash\)$/m);
  const j = await run(['send', 'xtv-test', '{"action":"poweroff","x":1}', '--json', '--host', 'ssh://root@192.0.2.1:1']);
  t.equal(j.code, 2);
  t.deepEqual(JSON.parse(j.out), { ok: false, error: { kind: 'invalid-message', code: 'unknown-field', message: 'unknown field "x" (allowed: when, ack, action)' } });
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
  const r = await run(['gc', '--json', '--host', 'ssh://root@127.0.0.1:1']);
  t.equal(r.code, 2);
  const o = JSON.parse(r.out) as { ok: boolean; error: { kind: string; message: string } };
  t.equal(o.error.kind, 'connection');
  t.match(o.error.message, /could not reach root@127\.0\.0\.1:1 over SSH/);
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

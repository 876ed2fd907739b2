// The CLI's one translation point (harness/cli/errors.ts): each kind of error
// to its exit code and sentence, a bug to exit 70, and --debug showing the
// stack and the chain of causes.
import test from 'tape';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CheckFailed, EXIT_INTERNAL, MessageRefused, SetupError, UsageError } from '../../harness/cli/command.ts';
import { reportError, stackWithCauses, translate, wantsJson, type ErrorOutput } from '../../harness/cli/errors.ts';
import { takeDebugFlag } from '../../harness/cli/main.ts';
import { registerCommand } from '../../harness/cli/registry.ts';
import { HostAlreadyRunningError, HostBootError, HostNotRunningError, HostUnreachableError } from '../../harness/embedded/embedded-host.ts';
import { EmbeddedHostError } from '../../harness/embedded/host-error.ts';
import { WaitTimeout } from '../../harness/matrix/wait.ts';
import { TargetUnreachableError } from '../../harness/remote/target.ts';
import { ConnectionError, ToolstackError } from '../../harness/toolstack/driver.ts';
import { runCli } from './cli-capture.ts';

const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => runCli(argv, env);

/** reportError into strings. */
function report(err: unknown, o: Partial<ErrorOutput> = {}): { code: number; out: string; err: string[] } {
  let out = '';
  const lines: string[] = [];
  const code = reportError(err, {
    command: 'demo',
    json: false,
    debug: false,
    out: (t) => {
      out += t;
    },
    err: (l) => {
      lines.push(l);
    },
    ...o,
  });
  return { code, out, err: lines };
}

// Commands that fail on purpose, reached through main as any other.
function bug(): never {
  const o = null as unknown as { x: number };
  return o.x as never; // TypeError: a programming mistake, of no kind the CLI knows
}
registerCommand('test-crash', 'fails with a bug', async () => ({ name: 'test-crash', summary: '', usage: 'usage: xtv test-crash', run: async () => bug() }));
const inner = new TargetUnreachableError('ssh: connect to host 192.0.2.1 port 22: Connection refused');
registerCommand('test-unreachable', 'fails to reach its host', async () => ({
  name: 'test-unreachable',
  summary: '',
  usage: 'usage: xtv test-unreachable',
  run: async () => {
    throw new ConnectionError('could not reach dom0 at ssh://root@192.0.2.1', { cause: inner });
  },
}));

test('the table: each kind of error, its exit code and --json kind', (t) => {
  const rows: Array<[unknown, number, string]> = [
    [new UsageError('--x is not an option'), 2, 'usage'],
    [new MessageRefused('unknown action "x"', 'bad-value'), 2, 'invalid-message'],
    [new ConnectionError('no answer', { timedOut: true }), 2, 'connection'],
    [new HostAlreadyRunningError('/s', 1), 2, 'host'],
    [new HostNotRunningError('/s'), 2, 'host'],
    [new HostBootError('dom0 failed to start', '/b'), 2, 'host'],
    [new HostUnreachableError('no ssh'), 2, 'host'],
    [new EmbeddedHostError('booted without the XenAPI test double'), 2, 'host'],
    [new SetupError('the test image is missing'), 2, 'setup'],
    [new ToolstackError('VM_BAD_POWER_STATE', ['Halted'], 'VM.clean_shutdown'), 1, 'toolstack'],
    [new CheckFailed('not Halted within 5 s', { vm: 'a' }), 1, 'check'],
    [new WaitTimeout('the ack'), 1, 'timeout'],
    [new TypeError("Cannot read properties of null (reading 'x')"), 70, 'internal'],
    [new Error('a plain Error says nothing of its kind'), 70, 'internal'],
    ['a thrown string', 70, 'internal'],
  ];
  for (const [err, exit, kind] of rows) {
    const tr = translate(err, 'demo');
    t.deepEqual([tr.exit, tr.kind], [exit, kind], `${err instanceof Error ? err.name : typeof err}: exit ${exit}, ${kind}`);
  }
  let system: unknown;
  try {
    readFileSync('/nonexistent/xtv-file');
  } catch (e) {
    system = e;
  }
  t.deepEqual(
    translate(system, 'demo'),
    { exit: 2, kind: 'system', details: { code: 'ENOENT', syscall: 'open', path: '/nonexistent/xtv-file' } },
    "Node's system errors, by their syscall field: exit 2",
  );
  t.equal(EXIT_INTERNAL, 70, 'a bug: EX_SOFTWARE');
  t.end();
});

test('the sentence: "xtv COMMAND: message", a hint where there is one, JSON with --json', (t) => {
  t.deepEqual(report(new UsageError('missing VM')), { code: 2, out: '', err: ['xtv demo: missing VM', '(see: xtv demo --help)'] });
  t.deepEqual(report(new MessageRefused('unknown field "x"', 'unknown-field')).err, [
    'xtv demo: refused: unknown field "x"',
    '(the agent would reject it the same way; --raw sends it anyway)',
  ]);
  const j = report(new ToolstackError('VM_BAD_POWER_STATE', ['Halted'], 'VM.clean_shutdown'), { json: true });
  t.equal(j.code, 1);
  t.deepEqual(j.err, [], '--json: nothing on stderr');
  t.deepEqual(JSON.parse(j.out), {
    ok: false,
    error: {
      kind: 'toolstack',
      code: 'VM_BAD_POWER_STATE',
      params: ['Halted'],
      call: 'VM.clean_shutdown',
      message: 'VM.clean_shutdown: VM_BAD_POWER_STATE ["Halted"]',
    },
  });
  t.deepEqual(JSON.parse(report(new CheckFailed('no ack', { node: 'control/testing' }), { json: true }).out), {
    ok: false,
    error: { kind: 'check', node: 'control/testing', message: 'no ack' },
  });
  t.end();
});

test('a bug: exit 70, "internal error", the stack only under --debug', async (t) => {
  const plain = await run(['test-crash']);
  t.equal(plain.code, 70, 'exit 70, not 2');
  t.match(
    plain.err,
    /^xtv: internal error: Cannot read properties of null \(reading 'x'\) \(run with --debug for the stack\)\n$/,
    'one line, pointing at --debug',
  );
  t.notOk(/^\s+at /m.test(plain.err), 'no stack without --debug');
  for (const [argv, env, how] of [
    [['--debug', 'test-crash'], {}, '--debug before the command'],
    [['test-crash', '--debug'], {}, '--debug after it'],
    [['test-crash'], { XTV_DEBUG: '1' }, 'XTV_DEBUG=1'],
  ] as Array<[string[], NodeJS.ProcessEnv, string]>) {
    const d = await run(argv, env);
    t.equal(d.code, 70, `${how}: exit 70`);
    t.match(
      d.err,
      /^xtv: internal error: Cannot read properties of null \(reading 'x'\)\nTypeError: Cannot read properties of null/,
      `${how}: the message, then the error`,
    );
    t.match(d.err, /^\s+at bug \(.*cli-errors\.test\.ts:\d+:\d+\)$/m, `${how}: and its stack, down to where it was thrown`);
  }
  const j = await run(['test-crash', '--json']);
  t.equal(j.code, 70);
  t.deepEqual(
    JSON.parse(j.out),
    { ok: false, error: { kind: 'internal', message: "Cannot read properties of null (reading 'x')" } },
    '--json: the object on stdout',
  );
  t.match(j.err, /^xtv: internal error: /, 'and the sentence on stderr still');
  t.end();
});

test("--debug shows a ConnectionError's chain of causes", async (t) => {
  const plain = await run(['test-unreachable']);
  t.deepEqual([plain.code, plain.err], [2, 'xtv test-unreachable: could not reach dom0 at ssh://root@192.0.2.1\n'], 'without --debug: exit 2 and one line');
  const d = await run(['--debug', 'test-unreachable']);
  t.equal(d.code, 2, 'still exit 2: --debug changes what is printed, not the code');
  t.match(
    d.err,
    /^xtv test-unreachable: could not reach dom0 at ssh:\/\/root@192\.0\.2\.1\nConnectionError: could not reach dom0 at ssh:\/\/root@192\.0\.2\.1\n\s+at /,
    'the sentence, then the error with its stack',
  );
  t.match(
    d.err,
    /\ncaused by: TargetUnreachableError: ssh: connect to host 192\.0\.2\.1 port 22: Connection refused\n\s+at .*cli-errors\.test\.ts/,
    'then its cause, with its own stack',
  );
  // The same through a real driver: the xl connect path keeps what ssh said as the cause.
  const real = await run(['gc', '--all', '--debug', '--host', 'ssh://root@127.0.0.1:1']);
  t.equal(real.code, 2);
  t.match(
    real.err,
    /\nConnectionError: could not reach dom0 at ssh:\/\/root@127\.0\.0\.1:1[^\n]*\n(\s+at [^\n]*\n)+caused by: TargetUnreachableError: /,
    `a real connection: ${real.err.split('\n')[0]}`,
  );
  t.end();
});

test('the chain of causes: non-Error causes and cycles', (t) => {
  const a = new Error('outer', { cause: 'a string cause' });
  t.match(stackWithCauses(a), /^Error: outer\n(\s+at .*\n)+caused by: a string cause$/);
  const x = new Error('x');
  const y = new Error('y', { cause: x });
  x.cause = y;
  t.equal(
    stackWithCauses(x)
      .split('\n')
      .filter((l) => !/^\s+at /.test(l))
      .join('|'),
    'Error: x|caused by: Error: y',
    'a cycle ends the chain',
  );
  t.end();
});

test('global flags: --debug is taken wherever it stands before --, and --json is read the same way', (t) => {
  t.deepEqual(takeDebugFlag(['--debug', 'gc', '--json'], {}), { debug: true, argv: ['gc', '--json'] });
  t.deepEqual(
    takeDebugFlag(['host', 'exec', '--', 'cmd', '--debug'], {}),
    { debug: false, argv: ['host', 'exec', '--', 'cmd', '--debug'] },
    "after -- it is the other program's",
  );
  t.equal(takeDebugFlag(['gc'], { XTV_DEBUG: '0' }).debug, false, 'XTV_DEBUG=0: off');
  t.equal(wantsJson(['status', '--json']), true);
  t.equal(wantsJson(['exec', '--', 'tool', '--json']), false);
  t.end();
});

test('the exit codes are documented in xtv --help', async (t) => {
  const h = await run(['--help']);
  t.equal(h.code, 0);
  t.match(h.out, /exit codes: 0 ok, 1 a check failed[\s\S]*2 usage error[\s\S]*70 internal\s+error: a bug in xtv/);
  t.match(h.out, /--debug/);
  t.end();
});

test('exitOnUncaught (what bin/xtv.js installs): an error no await caught exits 70, whatever its class', async (t) => {
  // A process of its own, where a ConnectionError escapes from a timer: a bug (nothing awaited it), not exit 2 or Node's 1.
  const mainTs = fileURLToPath(new URL('../../harness/cli/main.ts', import.meta.url));
  const driverTs = fileURLToPath(new URL('../../harness/toolstack/driver.ts', import.meta.url));
  const script = `const { exitOnUncaught } = await import(${JSON.stringify(mainTs)});
const { ConnectionError } = await import(${JSON.stringify(driverTs)});
process.on('uncaughtException', exitOnUncaught(['watch'], {}));
setTimeout(() => { throw new ConnectionError('from a timer'); }, 1);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.equal(code, 70, `exit 70 (${err.trim().split('\n')[0]})`);
  t.match(err, /^xtv: internal error: from a timer \(run with --debug for the stack\)$/m);
  t.end();
});

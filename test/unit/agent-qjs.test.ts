// The real bundle (dist/agent/xtv-agent.js) under the real QuickJS, talking
// to the in-memory xenstored: the same bytes that boot in the guest, minus
// the guest. The xenbus device is replaced by a socket on fd 3
// (XTV_XENBUS=fd:3) that this test relays to the test server. Actions are
// refused by the agent itself because it is not PID 1 here (it would otherwise
// power off or crash this machine), which is checked too.
//
// qjs comes from XTV_QJS, the image build's cache, or PATH; without one the
// test is skipped (the image build makes it).
import test from 'tape';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import * as net from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { startTestXenstored, type TestXenstored } from '../../testing/test-xenstored.ts';
import { decodeTesting, REPORT_DIR, SHUTDOWN_NODE, TESTING_NODE, VMDATA_TESTING_NODE, KERNEL_SHUTDOWN_NODE } from '../../protocol/control.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BUNDLE = join(ROOT, 'dist/agent/xtv-agent.js');

function findQjs(): string | null {
  if (process.env.XTV_QJS) return process.env.XTV_QJS;
  const cache = join(process.env.XTV_CACHE_DIR ?? join(homedir(), '.cache/xtv'), 'image/qjs');
  if (existsSync(cache)) {
    for (const d of readdirSync(cache).sort().reverse()) if (existsSync(join(cache, d, 'qjs'))) return join(cache, d, 'qjs');
  }
  const which = spawnSync('sh', ['-c', 'command -v qjs'], { encoding: 'utf8' });
  return which.status === 0 ? which.stdout.trim() : null;
}

interface Running {
  xs: TestXenstored;
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
  /** Cuts the agent's xenstore connection (both ends of the relay). */
  cut(): void;
  /** Resolves with the first console line matching re (bounded). */
  waitLine(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

async function runAgent(qjs: string, qjsArgs: string[]): Promise<Running> {
  const xs = await startTestXenstored({ domid: 5 });
  xs.store.write(TESTING_NODE, '');
  xs.store.setPerms(TESTING_NODE, ['n5']);
  const child = spawn(qjs, [...qjsArgs, '--std', '-m', BUNDLE], {
    env: { ...process.env, XTV_XENBUS: 'fd:3' },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (b: Buffer) => {
    const parts = (partial + b.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr!.on('data', (b: Buffer) => lines.push(`stderr: ${b.toString('utf8').trimEnd()}`));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const fd3 = child.stdio[3] as net.Socket;
  const bridge = net.createConnection(xs.socketPath);
  fd3.pipe(bridge);
  bridge.pipe(fd3);
  fd3.on('error', () => {});
  bridge.on('error', () => {});
  return {
    xs,
    child,
    lines,
    exited,
    cut() {
      bridge.destroy();
      fd3.destroy();
    },
    async waitLine(re, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((l) => re.test(l));
        if (found) return found;
        if (Date.now() > deadline)
          throw new Error(`no console line matching ${re} within ${timeoutMs} ms (exit ${child.exitCode ?? child.signalCode ?? 'not yet'})`);
        await new Promise<void>((r) => {
          const done = (): void => {
            clearTimeout(timer);
            child.stdout!.off('data', done);
            r();
          };
          const timer = setTimeout(done, 100);
          child.stdout!.on('data', done);
        });
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      bridge.destroy();
      await xs.close();
    },
  };
}

/** The AT_RANDOM bytes of a running process of ours, hex, read through /proc as the agent reads its own. */
function atRandomOf(pid: number): string | null {
  const auxv = readFileSync(`/proc/${pid}/auxv`);
  for (let i = 0; i + 16 <= auxv.length; i += 16) {
    if (auxv.readBigUInt64LE(i) !== 25n) continue;
    const fd = openSync(`/proc/${pid}/mem`, 'r');
    try {
      const bytes = Buffer.alloc(16);
      readSync(fd, bytes, 0, 16, auxv.readBigUInt64LE(i + 8));
      return bytes.toString('hex');
    } finally {
      closeSync(fd);
    }
  }
  return null;
}

const seq = (xs: TestXenstored) => xs.store.read(`${REPORT_DIR}/event-seq`);
const waitSeq = (xs: TestXenstored, n: number) => xs.store.waitFor(`${REPORT_DIR}/event-seq`, (v) => v === String(n), 5000);

const qjs = findQjs();

// Twice: as the image starts it, and without --no-unhandled-rejection, where
// any promise rejected before its handler is attached would end the process.
for (const flags of [['--no-unhandled-rejection'], []]) {
  test(
    `the bundle under real qjs ${flags.join(' ') || '(default rejection tracker)'}: ready, messages, refusal to act when not PID 1, suspend and resume, survives losing xenstore`,
    { skip: qjs === null ? 'no qjs (set XTV_QJS, or build the image)' : false },
    async (t) => {
      const build = spawnSync(process.execPath, [join(ROOT, 'scripts/build-agent.mjs')], { encoding: 'utf8' });
      t.equal(build.status, 0, `bundle built: ${build.stdout.trim()}${build.stderr.trim()}`);
      const a = await runAgent(qjs!, flags);
      try {
        await a.xs.store.waitFor(`${REPORT_DIR}/state`, (v) => v === 'ready', 10_000);
        const r = a.xs.store.dump(REPORT_DIR);
        const get = (k: string) => r[`${a.xs.store.home}/${REPORT_DIR}/${k}`];
        t.equal(get('domid'), '5', 'domid read through the relative path');
        t.equal(get('boot-id'), atRandomOf(a.child.pid!), 'boot id: the 16 bytes the kernel gave the process (AT_RANDOM), not a /dev/urandom read');
        t.equal(a.xs.store.read('control/feature-suspend'), '1', 'feature flags');
        t.ok(
          await a.waitLine(/^xtv-agent \S+Z ready version=\S+ protocols=xtv-control\/3 domid=5 boot-id=[0-9a-f]{32} platform=qjs state=ready$/),
          'ready line on stdout',
        );

        a.xs.store.write(TESTING_NODE, 'next:reboot');
        await waitSeq(a.xs, 1);
        t.equal(a.xs.store.read(`${REPORT_DIR}/pending`), '{"when":"onshutdown","ack":"ok","action":"reboot"}', 'next:reboot pending');
        t.equal(a.xs.store.read(TESTING_NODE), '', 'acked');

        a.xs.store.write(SHUTDOWN_NODE, 'poweroff');
        await waitSeq(a.xs, 2);
        await a.xs.store.waitFor(`${REPORT_DIR}/errors`, (v) => v === '1', 5000);
        t.equal(a.xs.store.read(SHUTDOWN_NODE), '', 'shutdown request acked');
        t.equal(a.xs.store.read(`${REPORT_DIR}/event-action`), 'reboot', 'the pending action chosen');
        t.match(a.xs.store.read(`${REPORT_DIR}/last-error`) ?? '', /refusing to reboot: the agent is not PID 1/, 'not PID 1: refused, reported');
        await a.xs.store.waitFor(`${REPORT_DIR}/state`, (v) => v === 'ready', 5000);

        // The decoder's sentences are the same under QuickJS as under Node.
        let n = 2;
        for (const bad of [
          '{"action":"reboot",}',
          '{"action":"re\nboot"}',
          '{"action":1e999}',
          `{"a":${'['.repeat(20)}}`,
          'now:fly',
          '{"when":"onshutdown","ack":"x","action":"nope"}',
        ]) {
          a.xs.store.write(TESTING_NODE, bad);
          await waitSeq(a.xs, ++n);
          const d = decodeTesting(bad);
          t.equal(
            a.xs.store.read(`${REPORT_DIR}/event-error`),
            d.kind === 'rejected' ? d.error.message : '(accepted?)',
            `same error under qjs for ${JSON.stringify(bad)}`,
          );
        }
        a.xs.store.write(TESTING_NODE, Uint8Array.from([0x7b, 0xc3, 0x28]));
        await waitSeq(a.xs, ++n);
        t.equal(a.xs.store.read(`${REPORT_DIR}/event-error`), 'message is not valid UTF-8 (bad byte 0xc3 at offset 1)', 'invalid UTF-8 under qjs');
        a.xs.store.write(VMDATA_TESTING_NODE, '42 {"action":"ignore"}');
        await waitSeq(a.xs, ++n);
        t.equal(a.xs.store.read(`${REPORT_DIR}/event-id`), '42', 'vm-data message');

        a.xs.store.write(TESTING_NODE, 'now:suspend');
        await a.xs.store.waitFor(KERNEL_SHUTDOWN_NODE, (v) => v === 'suspend', 5000);
        t.equal(a.xs.store.read(`${REPORT_DIR}/state`), 'suspending');
        a.xs.store.write(KERNEL_SHUTDOWN_NODE, '');
        a.xs.store.write('domid', '9');
        await a.xs.store.waitFor(`${REPORT_DIR}/state`, (v) => v === 'resumed', 5000);
        t.equal(a.xs.store.read(`${REPORT_DIR}/domid`), '9', 'resumed with the new domid');
        t.ok(await a.waitLine(/ resumed domid=9 previous-domid=5 /), 'resumed line');
        n++;
        // Continuity (#17): the history of domids, one more resume, when it suspended and resumed, a run time.
        const rep = (k: string) => a.xs.store.read(`${REPORT_DIR}/${k}`) ?? '';
        t.deepEqual([rep('domids'), rep('resumes')], ['5 9', '1'], 'domids 5 9, resumes 1');
        t.ok(
          /^\d{4}-.*Z$/.test(rep('suspended-at')) && rep('resumed-at') >= rep('suspended-at'),
          `suspended at ${rep('suspended-at')}, resumed at ${rep('resumed-at')}`,
        );
        t.ok(Number(rep('run-ms')) > 0, `run time ${rep('run-ms')} ms`);
        a.xs.store.write(TESTING_NODE, JSON.stringify({ clock: Date.now() - 5000 }));
        await waitSeq(a.xs, ++n);
        const skew = Number(rep('clock-skew-ms'));
        t.ok(skew >= 5000 && skew < 7000, `a clock message 5 s behind: the guest reports itself ${skew} ms ahead`);

        t.equal(a.child.exitCode, null, 'still running');
        // Lose xenstore: the agent reports it and keeps retrying; it never exits.
        // Only with the image's flag: the xenstore client fails requests on a
        // broken transport by rejecting at once, which the default tracker (the
        // second run) treats as fatal.
        if (flags.length > 0) {
          a.cut();
          t.ok(await a.waitLine(/ error where="xenstore connection" /), 'losing xenstore is reported on the console');
          t.ok(await a.waitLine(/ error where="connecting to xenstore" /), 'reconnecting is tried, and its failure reported');
          t.equal(a.child.exitCode, null, 'still running after losing xenstore');
          t.equal(seq(a.xs), String(n), 'nothing else happened');
        }
        const stray = a.lines.filter((l) => !l.startsWith('xtv-agent '));
        t.deepEqual(stray, [], 'every output line is an agent line');
      } finally {
        if (a.lines.length && process.env.XTV_AGENT_ECHO) console.log(a.lines.join('\n'));
        await a.stop();
      }
      t.end();
    },
  );
}

test('the image starts qjs with --no-unhandled-rejection (QuickJS 2025-04-26 otherwise exits on the first error thrown in an async function, and PID 1 exiting panics the kernel)', (t) => {
  const init = join(ROOT, 'guest/image/init');
  if (!existsSync(init)) {
    t.skip('no guest/image/init');
    t.end();
    return;
  }
  const exec =
    readFileSync(init, 'utf8')
      .split('\n')
      .find((l) => /^\s*exec\s+\S*qjs\b/.test(l)) ?? '';
  t.ok(exec.includes('--no-unhandled-rejection'), `init's qjs line: ${exec.trim()}`);
  t.ok(/ -m /.test(exec) || exec.includes('--module'), 'loads the bundle as a module');
  t.end();
});

// The xtv CLI as a user runs it, against the embedded host with xl and the
// real test image: install (twice), start --wait, send (valid, malformed,
// --raw, --via xapi refused, --wait-ack), watch, pause/unpause,
// suspend/resume, reboot, shutdown, destroy, gc, uninstall, a soak of two
// loops; --json and exit codes; the same driver over plain ssh:// to dom0; a
// host that does not answer.
import test from 'tape';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../harness/embedded/paths.ts';
import { validateTesting } from '../../protocol/control.ts';
import { poll } from '../../harness/matrix/wait.ts';
import { xlSuite, type Ctx } from './xl-fixture.ts';
import { reportRoot, withReportDir } from './xtv-cli.ts';
import { readdirSync } from 'node:fs';

interface Run {
  args: string[];
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Starts `xtv ARGS`; `done` resolves when it exits (killed at the bound). */
function startXtv(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 200_000,
  onOutput?: (soFar: string) => void,
): { child: ChildProcess; done: Promise<Run>; seen(text: string): Promise<void> } {
  const t0 = Date.now();
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'xtv.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stdout!.on('data', (b: Buffer) => {
    stdout += b.toString();
    onOutput?.(stdout);
    for (const w of waiters.filter((x) => stdout.includes(x.text))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Run>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      for (const w of waiters.splice(0)) w.resolve();
      resolve({ args, code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
  /** Resolves once stdout holds `text` (or the command has ended). */
  const seen = (text: string): Promise<void> =>
    stdout.includes(text) || child.exitCode !== null
      ? Promise.resolve()
      : new Promise((resolve) => {
          waiters.push({ text, resolve });
        });
  return { child, done, seen };
}

const xtv = (args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 200_000): Promise<Run> => startXtv(args, env, timeoutMs).done;

const json = (r: Run | undefined): Record<string, unknown> => {
  try {
    return JSON.parse(r?.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
  } catch {
    return {};
  }
};

const VM = 'xtv-e2e-cli';
/** Not a prefix of VM's name, nor VM of its: `gc --prefix xtv-e2e-cli` must leave it alone. */
const POWER_VM = 'xtv-e2e-power';
/** `xtv soak` makes and removes a VM of its own. */
const SOAK_VM = 'xtv-e2e-soak';
const SUBCOMMANDS = ['install', 'uninstall', 'start', 'shutdown', 'reboot', 'suspend', 'resume', 'pause', 'unpause', 'destroy', 'send', 'watch', 'gc', 'soak'];

const suite = xlSuite({ parallel: 2, file: 'xl-cli' });

/** Runs `xtv` steps as a user would, in order, keeping each run by name. */
function stepper(x: Ctx): {
  r: Record<string, Run>;
  step: (name: string, args: string[], e?: NodeJS.ProcessEnv, timeoutMs?: number) => Promise<Run>;
  env: NodeJS.ProcessEnv;
} {
  const env = { XTV_STATE_DIR: x.host.stateDir, XTV_HOST: 'embedded' };
  const r: Record<string, Run> = {};
  const step = async (name: string, args: string[], e: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<Run> => {
    r[name] = await xtv(args, { ...env, ...e }, timeoutMs);
    x.lap(name);
    return r[name]!;
  };
  return { r, step, env };
}

// Two VMs at once, each through its own part of the CLI: messages, watch, reboot and gc on
// one; the power verbs on the other.
const session = suite.scenario('the CLI: install, send, watch, reboot, gc', async (x) => {
  const { r, step, env } = stepper(x);
  x.adopt(VM);
  await step('install', ['install', '--name', VM, '--json']);
  await step('install again', ['install', '--name', VM, '--json']);
  await step('start', ['start', VM, '--wait', '--json']);
  await step('console', ['console', VM, '--bytes', '4096']);
  await step('send next:reboot', ['send', VM, 'next:reboot', '--wait-ack', '--json']);
  await step('send malformed', ['send', VM, 'now:explode']);
  await step('send malformed --json', ['send', VM, '{"action":"x"}', '--json']);
  await step('send --raw malformed', ['send', VM, 'now:explode', '--raw', '--wait-ack', '--json']);
  await step('send --via xapi', ['send', VM, 'next:poweroff', '--via', 'xapi']);
  // The agent still holds next:reboot (the malformed one changed nothing): xl shutdown makes it reboot.
  // The watch must have seen the domain before the shutdown starts; Ctrl-C (SIGINT) ends it.
  // A minute between timed looks: what it reports comes from its xenstore watches.
  let watchStarted!: () => void;
  const firstLine = new Promise<void>((res) => {
    watchStarted = res;
  });
  const watching = startXtv(['watch', VM, '--json', '--timeout', '240', '--interval', '60000'], env, 300_000, (out) => {
    if (out.includes('\n')) watchStarted();
  });
  await Promise.race([firstLine, watching.done]);
  await step('shutdown (guest reboots instead)', ['shutdown', VM, '--json']);
  // The guest is rebooting itself (next:reboot): the xl daemon destroys the domain and creates it
  // again 2 s later. An `xtv reboot` in that gap waits for the new domain (the driver sees xl
  // re-creating it) instead of failing with no domain.
  await step('reboot --wait', ['reboot', VM, '--wait', '--json']);
  // Until the rebooted guest is ready and the watch has shown its boot id, then Ctrl-C.
  const ready = await poll(
    () => x.driver.readGuestMany({ name: VM, id: VM }, ['data/xtv/state', 'data/xtv/boot-id']),
    (v) => v['data/xtv/state'] === 'ready',
    { timeoutMs: 60_000, minMs: 300, maxMs: 1000, what: 'report after reboot' },
  );
  const bootId = ready.value?.['data/xtv/boot-id'];
  if (bootId) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      watching.seen(bootId),
      new Promise((res) => {
        timer = setTimeout(res, 30_000);
      }),
    ]);
    clearTimeout(timer);
  }
  watching.child.kill('SIGINT');
  r['watch'] = await watching.done;
  // The same host over plain SSH, as a real Xen host is reached.
  // --prefix: other e2e files share this host, and their VMs are not this file's to remove.
  const port = x.host.sshPort;
  await step(
    'gc --dry-run over ssh://',
    ['gc', '--prefix', VM, '--dry-run', '--json', '--host', `ssh://root@127.0.0.1:${port}`, '--identity', x.host.privateKeyPath],
    { XTV_SSH_KNOWN_HOSTS: '/dev/null' },
  );
  await step('gc', ['gc', '--prefix', VM, '--json']);
  await step('uninstall (already gone)', ['uninstall', VM, '--json']);
  await step('unknown VM', ['start', 'no-such-vm']);
  await step('unreachable host', ['gc', '--all', '--host', 'ssh://root@127.0.0.1:1', '--json']);
  await step('bad --host', ['gc', '--host', 'xen1']);
  for (const c of SUBCOMMANDS) r[`help ${c}`] = await xtv([c, '--help'], env);
  return r;
});

const power = suite.scenario('the CLI: power verbs', async (x) => {
  const { r, step } = stepper(x);
  x.adopt(POWER_VM);
  await step('install', ['install', '--name', POWER_VM, '--json']);
  await step('start', ['start', POWER_VM, '--wait', '--json']);
  await step('pause', ['pause', POWER_VM, '--json']);
  await step('unpause', ['unpause', POWER_VM, '--json']);
  await step('suspend --wait', ['suspend', POWER_VM, '--wait', '--json']);
  await step('resume', ['resume', POWER_VM, '--json']);
  await step('shutdown --wait', ['shutdown', POWER_VM, '--wait', '--json', '--timeout', '150']);
  await step('start --paused', ['start', POWER_VM, '--paused', '--json']);
  await step('destroy', ['destroy', POWER_VM, '--json']);
  await step('uninstall', ['uninstall', POWER_VM, '--json']);
  return r;
});

// #17's soak, a few loops (`xtv soak --loops 10` for PV and PVH, through xl and XAPI: the closing notes).
const soaked = suite.scenario('the CLI: soak', async (x) => {
  const { r, step } = stepper(x);
  x.adopt(SOAK_VM);
  // Its reports and journal where npm test keeps the e2e files' reports (CI publishes them).
  await withReportDir('xtv-e2e-soak-', async (tmp) => {
    const dir = reportRoot(tmp, 'xl-cli-soak');
    await step('soak', ['soak', '--name', SOAK_VM, '--loops', '2', '--ops', 'suspend,pause', '--json', '--report-dir', dir], {}, 400_000);
    r['soak reports'] = { args: [], code: 0, stdout: readdirSync(dir).sort().join(' '), stderr: '', ms: 0 };
  });
  await step('soak again (bad --ops)', ['soak', '--name', SOAK_VM, '--ops', 'migrate-to-mars']);
  return r;
});

test('xtv soak: 2 loops of xl save/restore and pause/unpause, each the same guest, timed; the VM removed', async (t) => {
  const r = await suite.result(t, soaked);
  if (!r) return;
  const j = json(r['soak']) as {
    ok?: boolean;
    iterations?: Array<{ loop: number; op: string; problems: string[]; continuity: string; durations: Record<string, number> }>;
    stats?: Array<{ step: string; n: number; medianMs: number }>;
  };
  t.equal(r['soak']!.code, 0, `exit 0${r['soak']!.code === 0 ? '' : `\n${r['soak']!.stdout.slice(-1500)}\n${r['soak']!.stderr.slice(-1500)}`}`);
  t.equal(j.ok, true, 'ok');
  t.deepEqual(
    j.iterations?.map((it) => `${it.loop} ${it.op}`),
    ['1 suspend', '1 pause', '2 suspend', '2 pause'],
    'four iterations',
  );
  for (const it of j.iterations ?? []) {
    t.deepEqual(it.problems, [], `loop ${it.loop} ${it.op}: ${it.continuity}`);
    t.ok(it.continuity.includes('clock skew'), `loop ${it.loop} ${it.op}: the clock measured against dom0's`);
  }
  t.match(j.iterations?.[2]?.continuity ?? '', /resumes 1 -> 2/, 'the second save is the second resume');
  t.deepEqual(
    j.stats?.map((s) => `${s.step} ${s.n}`),
    ['suspend 2', 'resume 2', 'agent back 4', 'pause 2', 'unpause 2'],
    `durations per step (medians: ${j.stats?.map((s) => `${s.step} ${(s.medianMs / 1000).toFixed(1)} s`).join(', ')})`,
  );
  t.match(r['soak']!.stderr, new RegExp(`removing ${SOAK_VM}`), 'it removes its VM');
  t.equal(r['soak reports']?.stdout, `.xtv-journal ${SOAK_VM}.json ${SOAK_VM}.junit.xml ${SOAK_VM}.tap`, 'its reports, named after its VM, and its journal');
  t.equal(r['soak again (bad --ops)']!.code, 2, 'a bad --ops: exit 2');
});

// ---------------------------------------------------------------------------

test('xtv install: registers the VM; again: nothing changes', async (t) => {
  const r = await suite.result(t, session);
  if (!r) return;
  t.equal(r['install']!.code, 0, `exit 0 (${(r['install']!.ms / 1000).toFixed(1)} s)`);
  t.deepEqual(json(r['install']).vm, { name: VM, id: VM }, '--json names the VM');
  t.equal(r['install again']!.code, 0, `again: exit 0 (${(r['install again']!.ms / 1000).toFixed(1)} s, nothing copied)`);
});

test('xtv start --wait: returns when the agent is ready', async (t) => {
  const r = await suite.result(t, session);
  if (!r) return;
  const o = json(r['start']);
  t.equal(r['start']!.code, 0, 'exit 0');
  t.equal((o.state as { powerState?: string }).powerState, 'Running', 'Running');
  // The embedded host's xenconsoled keeps guest logs: the agent's lines are there.
  t.equal(r['console']!.code, 0, `xtv console: exit 0${r['console']!.code === 0 ? '' : `\n${r['console']!.stderr}`}`);
  t.match(r['console']!.stdout, /xtv-agent /, "xtv console shows the agent's lines");
});

test("xtv send: checked with the agent's decoder; --wait-ack prints the report", async (t) => {
  const r = await suite.result(t, session);
  if (!r) return;
  const ok = json(r['send next:reboot']);
  t.equal(r['send next:reboot']!.code, 0, 'valid message: exit 0');
  t.equal((ok.report as Record<string, string>)['event-decision'], 'accepted', 'acknowledged and accepted');
  t.equal((ok.report as Record<string, string>)['pending'], '{"when":"onshutdown","ack":"ok","action":"reboot"}', 'pending in the report');
  const v = validateTesting('now:explode');
  t.equal(r['send malformed']!.code, 2, 'malformed: exit 2');
  t.ok(
    !v.ok && r['send malformed']!.stderr.includes(`refused: ${v.error.message}`),
    `with the decoder's sentence: ${r['send malformed']!.stderr.split('\n')[0]}`,
  );
  t.equal(r['send malformed --json']!.code, 2, 'malformed --json: exit 2');
  t.equal((json(r['send malformed --json']).error as { code?: string }).code, 'bad-value', 'error code in JSON');
  const raw = json(r['send --raw malformed']);
  t.equal(r['send --raw malformed']!.code, 0, '--raw: sent anyway, exit 0');
  t.equal((raw.report as Record<string, string>)['event-decision'], 'rejected', 'the agent rejected it');
  t.equal((raw.report as Record<string, string>)['pending'], '{"when":"onshutdown","ack":"ok","action":"reboot"}', 'and kept what was pending');
  t.equal(r['send --via xapi']!.code, 2, '--via xapi with xl: exit 2');
  t.match(r['send --via xapi']!.stderr, /VM\.set_xenstore_data; the xl toolstack has no such call/, 'with a clear reason');
});

test("xtv shutdown / reboot --wait / watch: the guest's pending command wins; watch streams it", async (t) => {
  const r = await suite.result(t, session);
  if (!r) return;
  t.equal(r['shutdown (guest reboots instead)']!.code, 0, 'xl shutdown: acked, exit 0');
  const rb = json(r['reboot --wait']);
  const rbRun = r['reboot --wait']!;
  t.equal(rbRun.code, 0, `reboot --wait: exit 0${rbRun.code === 0 ? '' : `\n${rbRun.stdout}\n${rbRun.stderr}`.slice(-2000)}`);
  const before = (rb.before as { domid?: number } | undefined)?.domid;
  const after = (rb.state as { domid?: number } | undefined)?.domid;
  t.ok(after !== undefined && after !== before, `running again with a new domid (${before} -> ${after})`);
  const lines = r['watch']!.stdout.trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { kind: string; state?: { powerState: string; domid: number | null }; changed?: Record<string, string | null> });
  const domids = new Set(lines.filter((l) => l.kind === 'power' && l.state?.domid != null).map((l) => l.state!.domid));
  t.equal(r['watch']!.code, 0, 'watch ends cleanly on Ctrl-C (SIGINT), exit 0');
  t.ok(domids.size >= 3, `watch saw the domain come back twice (domids ${[...domids].join(', ')})`);
  // A report that lives a second before the reboot can fall between two looks; each new boot's report cannot.
  // With a minute between timed looks, both of these came from xenstore watch events.
  const bootIds = new Set(lines.filter((l) => l.kind === 'report' && l.changed?.['boot-id']).map((l) => l.changed!['boot-id']));
  t.ok(bootIds.size >= 2, `and the guest's report of each boot (${bootIds.size} boot ids)`);
});

test('xtv pause / unpause / suspend --wait / resume / shutdown --wait / start --paused / destroy', async (t) => {
  const r = await suite.result(t, power);
  if (!r) return;
  const st = (name: string) => (json(r[name]).state as { powerState?: string } | undefined)?.powerState;
  // On a failure, what the command printed.
  const said = (name: string) => (r[name]!.code === 0 ? '' : `\n${r[name]!.stdout}\n${r[name]!.stderr}`.slice(-2000));
  t.deepEqual([r['pause']!.code, st('pause')], [0, 'Paused'], `pause: Paused${said('pause')}`);
  t.deepEqual([r['unpause']!.code, st('unpause')], [0, 'Running'], `unpause: Running${said('unpause')}`);
  t.deepEqual([r['suspend --wait']!.code, st('suspend --wait')], [0, 'Suspended'], `suspend --wait: Suspended${said('suspend --wait')}`);
  t.deepEqual([r['resume']!.code, st('resume')], [0, 'Running'], `resume: Running${said('resume')}`);
  t.deepEqual([r['shutdown --wait']!.code, st('shutdown --wait')], [0, 'Halted'], `shutdown --wait: Halted (and stays so)${said('shutdown --wait')}`);
  t.deepEqual([r['start --paused']!.code, st('start --paused')], [0, 'Paused'], `start --paused: Paused${said('start --paused')}`);
  t.deepEqual([r['destroy']!.code, st('destroy')], [0, 'Halted'], `destroy: Halted${said('destroy')}`);
  t.deepEqual([r['uninstall']!.code, json(r['uninstall']).removed], [0, true], 'uninstall: exit 0, removed');
});

test('xtv gc (also over ssh://), uninstall, and errors with their exit codes', async (t) => {
  const r = await suite.result(t, session);
  if (!r) return;
  const dry = json(r['gc --dry-run over ssh://']);
  t.equal(r['gc --dry-run over ssh://']!.code, 0, 'gc --dry-run over plain ssh:// to dom0: exit 0');
  t.ok(
    (dry.vms as Array<{ vm: { name: string } }> | undefined)?.some((v) => v.vm.name === VM),
    'lists the VM',
  );
  const gc = json(r['gc']);
  t.equal(r['gc']!.code, 0, 'gc: exit 0');
  t.ok(
    (gc.vms as Array<{ vm: { name: string }; removed: boolean }> | undefined)?.some((v) => v.vm.name === VM && v.removed),
    'destroyed and removed it',
  );
  t.equal(r['uninstall (already gone)']!.code, 0, 'uninstall of what is gone: exit 0');
  t.equal(json(r['uninstall (already gone)']).removed, false, 'nothing removed');
  t.equal(r['unknown VM']!.code, 2, 'unknown VM: exit 2');
  t.match(r['unknown VM']!.stderr, /no VM named 'no-such-vm' made by xtv/, 'named');
  t.equal(r['unreachable host']!.code, 2, 'unreachable host: exit 2');
  t.equal((json(r['unreachable host']).error as { kind?: string }).kind, 'connection', 'a connection error');
  t.equal(r['bad --host']!.code, 2, 'bad --host: exit 2');
  for (const c of SUBCOMMANDS) {
    const h = r[`help ${c}`]!;
    t.ok(h.code === 0 && h.stdout.startsWith(`usage: xtv ${c}`) && h.stdout.includes('exit codes'), `xtv ${c} --help`);
  }
});

suite.finish();

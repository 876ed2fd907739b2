// `xtv host up|status|exec|down`: the embedded Xen host from the command line.
// `up` leaves the host running (recorded in the state directory) for later
// commands; every other subcommand attaches to it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT_FAILED, EXIT_OK, SetupError, UsageError, type Command } from './command.ts';
import { EmbeddedHost, HostAlreadyRunningError, HostNotRunningError, HostUnreachableError, hostStatus, type HostStatus } from '../embedded/embedded-host.ts';
import { REPO_ROOT, resolveStateDir } from '../embedded/paths.ts';
import { shq } from '../remote/target.ts';
import { liveState } from '../embedded/state.ts';
import { embeddedAddress } from '../embedded/embedded-address.ts';
import { prepareEmbeddedXapi, XAPI_PROFILES, type XapiProfile } from '../embedded/xapi-double.ts';
import { timeoutKeysOf } from '../toolstack/xapi/xapi-timeouts.ts';

export const USAGE = `usage: xtv host up|status|exec|down [options]

Boots real Xen 4.17 with a Debian dom0 under QEMU (software emulation) and
reaches dom0 over SSH on 127.0.0.1, the way the harness reaches a real host.

  xtv host up [--memory MiB] [--cpus N] [--timeout SEC] [--no-build]
             [--xapi-profile P[,P...]] [--xenopsd-conf K=S[,K=S]]
             [--xapi-conf K=S] [--json]
      Builds the host if needed (npm run build:host, cached), boots it, and
      returns when dom0 answers over SSH. The host keeps running until
      'xtv host down'. One host per state directory. dom0 also serves
      XenAPI (a test double, not XAPI) as the XAPI version of each profile:
      ${XAPI_PROFILES.join(', ')} (default ${XAPI_PROFILES[0]}; the first
      is what --host embedded --toolstack xapi uses; XTV_NO_XAPI=1: none).
      --xenopsd-conf and --xapi-conf write dom0's /etc/xenopsd.conf and
      /etc/xapi.conf, as an administrator tunes a real host: seconds for
      ${timeoutKeysOf('xenopsd').join(', ')}
      (xenopsd) and ${timeoutKeysOf('xapi').join(', ')} (xapi). Short windows
      make the matrix's timing cases run in minutes, e.g.
      --xenopsd-conf domain_shutdown_ack_timeout=6 --xapi-conf
      domain_shutdown_total_timeout=20; xtv run reads them back as it reads
      a real host's.
  xtv host status [--json]
      Running or not, QEMU's pid, the SSH port, the boot log, uptime, and
      'xl info' basics. Exit 0 when running, 1 when not.
  xtv host exec [--timeout SEC] -- CMD [ARG...]
      Runs CMD as root in dom0 and relays its output and exit status. One
      word is passed to dom0's shell as is ('xl list | tail -n +2'); several
      words are quoted one by one.
  xtv host down [--timeout SEC]
      poweroff in dom0 (bounded by --timeout, default 30), then stops QEMU.

options (every subcommand):
  --state-dir DIR   where the host's record, boot log and SSH socket live
                    (default: $XTV_STATE_DIR, else ./.xtv/host)
  -h, --help        this text

exit codes: 0 ok, 1 a check failed (status: not running; exec: the command's
own status is relayed), 2 usage error, the host could not be reached or built,
70 a bug in xtv (run again with --debug for the stack)`;

export type HostSubcommand = 'up' | 'status' | 'exec' | 'down';

export interface HostArgs {
  sub: HostSubcommand;
  stateDir: string;
  json: boolean;
  /** exec: the command line for dom0's shell. */
  command?: string;
  timeoutMs?: number;
  memoryMiB?: number;
  cpus?: number;
  build: boolean;
  /** up: the XenAPI double's version profiles, the default first. */
  xapiProfiles?: XapiProfile[];
  /** up: lines of dom0's /etc/xenopsd.conf and /etc/xapi.conf (seconds). */
  xenopsdConf?: Record<string, number>;
  xapiConf?: Record<string, number>;
}

/** `K=S[,K=S...]` for --xenopsd-conf / --xapi-conf: known timeout keys only (a typo would change nothing), seconds > 0. */
export function parseConfPairs(flag: string, text: string, known: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of text.split(',').map((p) => p.trim())) {
    const m = /^([A-Za-z0-9_-]+)=(\d+(?:\.\d+)?)$/.exec(pair);
    if (!m) throw new UsageError(`--${flag} wants KEY=SECONDS[,KEY=SECONDS], got '${pair}'`);
    if (!known.includes(m[1]!)) throw new UsageError(`--${flag}: unknown key '${m[1]}' (known: ${known.join(', ')})`);
    if (Number(m[2]) <= 0) throw new UsageError(`--${flag}: ${m[1]} must be more than 0 seconds`);
    if (m[1]! in out) throw new UsageError(`--${flag}: ${m[1]} is given twice`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw new UsageError(`--${name} wants a positive whole number, got '${v}'`);
  return Number(v);
}

/** The words after `--` (or the positionals) as one command line for dom0's shell. */
export function joinCommand(words: string[]): string {
  if (words.length === 1) return words[0]!;
  return words.map(shq).join(' ');
}

/** Parses `xtv host ...` (without 'host'). Throws UsageError. */
export function parseHostArgs(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): HostArgs {
  const dashdash = argv.indexOf('--');
  const optionPart = dashdash >= 0 ? argv.slice(0, dashdash) : argv;
  const commandPart = dashdash >= 0 ? argv.slice(dashdash + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: optionPart,
      allowPositionals: true,
      strict: true,
      options: {
        'state-dir': { type: 'string' },
        json: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        memory: { type: 'string' },
        cpus: { type: 'string' },
        'no-build': { type: 'boolean', default: false },
        'xapi-profile': { type: 'string' },
        'xenopsd-conf': { type: 'string' },
        'xapi-conf': { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const [sub, ...rest] = parsed.positionals;
  if (sub === undefined) throw new UsageError('missing subcommand: up, status, exec or down');
  if (!['up', 'status', 'exec', 'down'].includes(sub)) throw new UsageError(`unknown subcommand '${sub}': use up, status, exec or down`);
  const v = parsed.values;
  const out: HostArgs = {
    sub: sub as HostSubcommand,
    stateDir: resolveStateDir(v['state-dir'], env, cwd),
    json: v.json ?? false,
    build: !(v['no-build'] ?? false),
  };
  const timeoutSec = positiveInt('timeout', v.timeout);
  if (timeoutSec !== undefined) out.timeoutMs = timeoutSec * 1000;
  const only = (flag: string, subs: HostSubcommand[], given: unknown) => {
    if (given !== undefined && given !== false && !subs.includes(out.sub)) throw new UsageError(`--${flag} is not an option of '${out.sub}'`);
  };
  only('memory', ['up'], v.memory);
  only('cpus', ['up'], v.cpus);
  only('no-build', ['up'], v['no-build']);
  only('xapi-profile', ['up'], v['xapi-profile']);
  if (v['xapi-profile'] !== undefined) {
    const list = v['xapi-profile'].split(',').map((p) => p.trim());
    for (const p of list)
      if (!(XAPI_PROFILES as readonly string[]).includes(p))
        throw new UsageError(`--xapi-profile: unknown profile '${p}' (known: ${XAPI_PROFILES.join(', ')})`);
    if (new Set(list).size !== list.length) throw new UsageError('--xapi-profile: a profile is named twice');
    out.xapiProfiles = list as XapiProfile[];
  }
  only('xenopsd-conf', ['up'], v['xenopsd-conf']);
  only('xapi-conf', ['up'], v['xapi-conf']);
  if (v['xenopsd-conf'] !== undefined) out.xenopsdConf = parseConfPairs('xenopsd-conf', v['xenopsd-conf'], timeoutKeysOf('xenopsd'));
  if (v['xapi-conf'] !== undefined) out.xapiConf = parseConfPairs('xapi-conf', v['xapi-conf'], timeoutKeysOf('xapi'));
  only('json', ['up', 'status'], v.json);
  only('timeout', ['up', 'exec', 'down'], v.timeout);
  const memoryMiB = positiveInt('memory', v.memory);
  if (memoryMiB !== undefined) out.memoryMiB = memoryMiB;
  const cpus = positiveInt('cpus', v.cpus);
  if (cpus !== undefined) out.cpus = cpus;
  if (out.sub === 'exec') {
    const words = dashdash >= 0 ? commandPart : rest;
    if (dashdash >= 0 && rest.length > 0) throw new UsageError(`unexpected '${rest.join(' ')}' before '--'`);
    if (words.length === 0 || words.join('').trim() === '') throw new UsageError('exec needs a command: xtv host exec -- CMD [ARG...]');
    out.command = joinCommand(words);
  } else {
    if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
    if (commandPart.length > 0) throw new UsageError(`'--' is only for exec`);
  }
  return out;
}

function say(message: string): void {
  process.stderr.write(`xtv host: ${message}\n`);
}

/** npm run build:host, relaying its progress on stderr. */
function buildHost(): Promise<void> {
  return new Promise((resolve, reject) => {
    const script = join(REPO_ROOT, 'dom0', 'image', 'build.sh');
    const child = spawn('bash', [script], { stdio: ['ignore', 2, 2] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new SetupError(`host build failed (bash ${script} exited with ${code})`))));
  });
}

async function up(a: HostArgs): Promise<number> {
  // Refuse before spending time on the build.
  const running = liveState(a.stateDir);
  if (running) throw new HostAlreadyRunningError(a.stateDir, running.pid);
  if (a.build) await buildHost();
  else if (!existsSync(join(REPO_ROOT, 'dist', 'host', 'manifest.json'))) {
    throw new SetupError('dist/host is missing: run npm run build:host (or drop --no-build)');
  }
  if (process.env.XTV_NO_XAPI && (a.xenopsdConf || a.xapiConf || a.xapiProfiles))
    throw new UsageError('--xapi-profile, --xenopsd-conf and --xapi-conf configure the XenAPI double, which XTV_NO_XAPI leaves out');
  const t0 = Date.now();
  // The XenAPI test double rides along (XAPI path of the harness); XTV_NO_XAPI=1 boots without it.
  const xapi = process.env.XTV_NO_XAPI
    ? null
    : await prepareEmbeddedXapi(a.stateDir, {
        onProgress: say,
        ...(a.xapiProfiles ? { profiles: a.xapiProfiles } : {}),
        ...(a.xenopsdConf ? { xenopsdConf: a.xenopsdConf } : {}),
        ...(a.xapiConf ? { xapiConf: a.xapiConf } : {}),
      });
  const host = await EmbeddedHost.up({
    stateDir: a.stateDir,
    detached: true,
    onProgress: say,
    ...(xapi ? xapi.upOptions : {}),
    ...(a.memoryMiB !== undefined ? { memoryMiB: a.memoryMiB } : {}),
    ...(a.cpus !== undefined ? { cpus: a.cpus } : {}),
    ...(a.timeoutMs !== undefined ? { timeoutMs: a.timeoutMs } : {}),
  });
  const xapiInfo = xapi ? await xapi.finish(host) : null;
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (a.json) {
    console.log(JSON.stringify(await host.status(), null, 2));
    return EXIT_OK;
  }
  const sd = a.stateDir === resolveStateDir(undefined) ? '' : ` --state-dir ${shq(a.stateDir)}`;
  const addr = embeddedAddress(host);
  console.log(
    [
      `embedded Xen host is up in ${secs} s (QEMU pid ${host.pid})`,
      `  run in dom0:  xtv host exec${sd} -- xl list`,
      `  dom0:         ${addr.dom0} (key ${addr.identity}, known_hosts ${addr.knownHosts})`,
      `  status:       xtv host status${sd}`,
      `  stop:         xtv host down${sd}`,
      `  boot log:     ${host.bootLogPath}`,
      ...(xapiInfo
        ? xapiInfo.endpoints.map(
            (e) =>
              `  XenAPI:       ${e.url} (test double, profile ${e.profile}; CA ${xapiInfo.caFile}, user ${xapiInfo.user}, password file ${xapiInfo.passwordFile})`,
          )
        : []),
      `  as a real host: --host embedded fills in these addresses (see xtv run --help)`,
    ].join('\n'),
  );
  return EXIT_OK;
}

export function formatStatus(s: HostStatus): string {
  if (!s.running) return `not running (state dir ${s.stateDir}; last boot log ${s.bootLog})`;
  const lines = [
    `running: QEMU pid ${s.pid}, up ${s.uptimeSec} s (${s.owner === 'cli' ? "started by 'xtv host up'" : 'owned by a test or library process'})`,
    `ssh:      127.0.0.1:${s.sshPort} (key ${s.privateKey})`,
    ...Object.entries(s.ports ?? {})
      .filter(([n]) => n !== 'ssh')
      .map(([n, p]) => `${`${n}:`.padEnd(9)} 127.0.0.1:${p}`),
    `boot log: ${s.bootLog}`,
  ];
  if (s.xen)
    lines.push(`xen:      ${s.xen.version}, ${s.xen.nrCpus} CPU(s), memory ${s.xen.freeMemoryMiB} of ${s.xen.totalMemoryMiB} MiB free, ${s.domains} domain(s)`);
  if (s.error) lines.push(`dom0:     not answering: ${s.error}`);
  return lines.join('\n');
}

async function status(a: HostArgs): Promise<number> {
  const s = await hostStatus(a.stateDir);
  console.log(a.json ? JSON.stringify(s, null, 2) : formatStatus(s));
  return s.running ? EXIT_OK : EXIT_FAILED;
}

async function exec(a: HostArgs): Promise<number> {
  const host = EmbeddedHost.attach(a.stateDir);
  await host.connect();
  // ssh itself relays stdin, stdout, stderr and the exit status, live.
  const child = spawn('ssh', host.sshArgs(a.command!), { stdio: 'inherit' });
  let timedOut = false;
  const timer =
    a.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGTERM');
        }, a.timeoutMs)
      : null;
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? (signal ? 128 + 15 : 255)));
  });
  if (timer) clearTimeout(timer);
  // Not the command's own status to relay: dom0 did not answer in time, or went away (ssh's 255).
  if (timedOut) throw new HostUnreachableError(`'${a.command}' did not finish within ${a.timeoutMs! / 1000} s`);
  if (code === 255 && !(await hostStatus(a.stateDir, { timeoutMs: 1 })).running) {
    throw new HostUnreachableError(`the host stopped (boot log: ${host.bootLogPath})`);
  }
  return code;
}

async function down(a: HostArgs): Promise<number> {
  let host: EmbeddedHost;
  try {
    host = EmbeddedHost.attach(a.stateDir);
  } catch (err) {
    if (!(err instanceof HostNotRunningError)) throw err;
    say(`no host is running for ${a.stateDir}; nothing to stop`);
    return EXIT_OK;
  }
  await host.down({ timeoutMs: a.timeoutMs ?? 30_000, onProgress: say });
  return EXIT_OK;
}

export const hostCommand: Command = {
  name: 'host',
  summary: 'boot, inspect and stop the embedded Xen host (up, status, exec, down)',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    // The host's errors (already running, not running, boot failed, unreachable) go to main: exit 2.
    const a = parseHostArgs(argv);
    switch (a.sub) {
      case 'up':
        return up(a);
      case 'status':
        return status(a);
      case 'exec':
        return exec(a);
      case 'down':
        return down(a);
    }
  },
};

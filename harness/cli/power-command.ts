// `xtv start|shutdown|reboot|suspend|resume|pause|unpause|migrate|destroy VM`: one
// host request each, through the toolstack driver, with an optional bounded
// wait for the state the request implies (--wait). Each prints the VM's state
// afterwards.
import { UsageError, type Command } from './command.ts';
import { REPORT_DIR } from '../../protocol/control.ts';
import { poll } from '../matrix/wait.ts';
import { CONNECT_HELP, CheckFailed, EXIT_OK, output, parseCli, resolveVm, seconds, withDriver } from './common.ts';
import type { DomainInfo, HostRequest, ToolstackDriver, VmRef } from '../toolstack/driver.ts';

export type PowerVerb = 'start' | 'shutdown' | 'reboot' | 'suspend' | 'resume' | 'pause' | 'unpause' | 'migrate' | 'destroy';

interface VerbSpec {
  summary: string;
  /** What it asks of the toolstack: clean by default, hard with --hard. */
  request: (hard: boolean) => HostRequest | 'start';
  hard?: string;
  /** --wait: what it waits for, and the check. */
  wait?: {
    what: string;
    done: (now: DomainInfo, before: DomainInfo, ready: string | null) => boolean;
    needsReport?: boolean;
    /** The state must still hold this long after it is first seen (ms). */
    confirmMs?: number;
  };
  help: string;
}

const DEFAULT_TIMEOUT_SEC = 120;

const VERBS: Record<PowerVerb, VerbSpec> = {
  start: {
    summary: 'start a halted VM (--paused: created paused)',
    request: () => 'start',
    wait: { what: 'the guest agent to report state=ready', done: (s, _b, ready) => s.powerState === 'Running' && ready === 'ready', needsReport: true },
    help: 'Starts the VM (xl create; XAPI VM.start). --paused creates it paused.\n--wait waits until the guest agent reports state=ready.',
  },
  shutdown: {
    summary: 'ask the guest to power off (--hard: destroy it)',
    request: (hard) => (hard ? 'hard_shutdown' : 'clean_shutdown'),
    hard: 'destroy the domain instead of asking the guest (xl destroy; XAPI hard_shutdown)',
    // Halted must outlast a restart: xl recreates a domain that rebooted (or was
    // told to by on_poweroff) about 2 s after destroying it, and creating takes
    // seconds more under emulation.
    wait: { what: 'the VM to be Halted', done: (s) => s.powerState === 'Halted' && s.domid === null, confirmMs: 8000 },
    help: "Clean: the toolstack writes poweroff to the guest's control/shutdown and returns\nonce the guest acknowledges (xl shutdown; XAPI clean_shutdown).",
  },
  reboot: {
    summary: 'ask the guest to reboot (--hard: destroy and start again)',
    request: (hard) => (hard ? 'hard_reboot' : 'clean_reboot'),
    hard: 'destroy and start again without asking the guest (xl destroy + create; XAPI hard_reboot)',
    wait: { what: 'the VM to run again with a new domid', done: (s, b) => s.powerState === 'Running' && s.domid !== null && s.domid !== b.domid },
    help: 'Clean: the toolstack writes reboot to control/shutdown (xl reboot; XAPI clean_reboot).',
  },
  suspend: {
    summary: 'suspend the VM to disk (xl save; XAPI suspend)',
    request: () => 'suspend',
    wait: { what: 'the VM to be Suspended', done: (s) => s.powerState === 'Suspended' },
    help: 'xl: xl save to /var/lib/xtv/save/VM.chk (the domain goes away). XAPI: VM.suspend.',
  },
  resume: {
    summary: 'resume a suspended VM (xl restore; XAPI resume)',
    request: () => 'resume',
    help: 'xl: xl restore of the save image, which is then removed. XAPI: VM.resume.',
  },
  pause: { summary: "pause the VM's vCPUs", request: () => 'pause', help: 'xl pause; XAPI VM.pause.' },
  unpause: { summary: 'unpause the VM', request: () => 'unpause', help: 'xl unpause; XAPI VM.unpause.' },
  migrate: {
    summary: 'live-migrate the VM to its own host (xl migrate NAME localhost; XAPI VM.pool_migrate)',
    request: () => 'migrate',
    wait: { what: 'the VM to run again with a new domid', done: (s, b) => s.powerState === 'Running' && s.domid !== null && s.domid !== b.domid },
    help: "The toolstack asks the guest to suspend once its memory is copied, and the domain\nis made anew on the same host. xl: `xl migrate NAME localhost`, which needs root's\n`ssh localhost` in dom0 to work without a prompt. XAPI: VM.pool_migrate to the\nhost the VM runs on, live.",
  },
  destroy: {
    summary: "destroy the VM's domain at once (= shutdown --hard)",
    request: () => 'hard_shutdown',
    help: 'xl destroy; XAPI hard_shutdown. Of a suspended xl VM: discards its save image.',
  },
};

function usageOf(verb: PowerVerb, spec: VerbSpec): string {
  const flags = [verb === 'start' ? '[--paused]' : '', spec.hard ? '[--hard]' : '', spec.wait ? '[--wait]' : '', '[--timeout SEC]'].filter(Boolean).join(' ');
  return `usage: xtv ${verb} VM ${flags} [--host H] [--toolstack xl|xapi]

${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.
${spec.help}

${spec.hard ? `  --hard         ${spec.hard}\n` : ''}${spec.wait ? `  --wait         then wait for ${spec.wait.what} (bounded by --timeout)\n` : ''}${verb === 'start' ? '  --paused       create the domain paused\n' : ''}  --timeout SEC  bound on the call, and again on --wait (default ${DEFAULT_TIMEOUT_SEC})

${CONNECT_HELP}`;
}

function describe(vm: VmRef, s: DomainInfo): string {
  return `${vm.name}: ${s.powerState}${s.domid !== null ? ` (domid ${s.domid}${s.shutdownReason ? `, shut down: ${s.shutdownReason}` : ''})` : ''}`;
}

async function readReady(driver: ToolstackDriver, vm: VmRef): Promise<string | null> {
  return driver.readGuest(vm, `${REPORT_DIR}/state`).catch(() => null);
}

export function powerCommand(verb: PowerVerb): Command {
  const spec = VERBS[verb];
  return {
    name: verb,
    summary: spec.summary,
    usage: usageOf(verb, spec),
    async run(argv) {
      const { values, positionals } = parseCli(
        argv,
        {
          hard: { type: 'boolean' },
          wait: { type: 'boolean' },
          paused: { type: 'boolean' },
          timeout: { type: 'string' },
        },
        { min: 1, max: 1, names: 'VM (the name given to xtv install)' },
      );
      if (values.hard && !spec.hard) throw new UsageError(`--hard is not an option of ${verb}`);
      if (values.wait && !spec.wait) throw new UsageError(`--wait is not an option of ${verb}`);
      if (values.paused && verb !== 'start') throw new UsageError(`--paused is an option of start only`);
      const timeoutMs = seconds('timeout', values.timeout, DEFAULT_TIMEOUT_SEC);
      return withDriver(verb, values, async (driver) => {
        const vm = await resolveVm(driver, positionals[0]!);
        const request = spec.request(values.hard === true);
        const before = await driver.state(vm);
        const t0 = Date.now();
        if (request === 'start') await driver.start(vm, { paused: values.paused === true });
        else await driver.request(vm, request, { timeoutMs });
        const callMs = Date.now() - t0;
        let after = await driver.state(vm);
        let waitedMs: number | undefined;
        if (values.wait && spec.wait) {
          const w = spec.wait;
          const t1 = Date.now();
          const probe = async (): Promise<{ s: DomainInfo; ready: string | null }> => ({
            s: await driver.state(vm),
            ready: w.needsReport ? await readReady(driver, vm) : null,
          });
          const done = (v: { s: DomainInfo; ready: string | null }): boolean => w.done(v.s, before, v.ready);
          // Seen is not enough where confirmMs is set: the state must still hold that long later (within the bound).
          const r = await poll(probe, done, { timeoutMs, minMs: 200, maxMs: 1000, what: w.what, ...(w.confirmMs ? { hold: { ms: w.confirmMs } } : {}) });
          waitedMs = Date.now() - t1;
          if (r.value) after = r.value.s;
          if (!r.done) {
            throw new CheckFailed(`${request} returned, but ${w.what} did not happen within ${Math.round(timeoutMs / 1000)} s; now ${describe(vm, after)}`, {
              vm,
              request,
              state: after,
            });
          }
        }
        output(
          values.json,
          { ok: true, vm, request, callMs, ...(waitedMs !== undefined ? { waitedMs } : {}), before, state: after },
          `${request} ok (${(callMs / 1000).toFixed(1)} s${waitedMs !== undefined ? `, then ${(waitedMs / 1000).toFixed(1)} s until ${spec.wait!.what.replace(/^the /, '')}` : ''}); ${describe(vm, after)}`,
        );
        return EXIT_OK;
      });
    },
  };
}

// Who made a VM: each driver records it on every VM it installs (xl: the
// config's marker line; XAPI: other_config:xtv-owner), so that `xtv gc` can
// leave a run that is still going. One line of text, the same on both:
//
//   user@host pid N started ISO-TIME [run ID]
//
// `started` is when this process first installed a VM (so the process began
// before it: a pid that is alive now but began later was reused).
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';

export interface VmOwner {
  user: string;
  /** This machine's hostname (os.hostname()) where the owning process ran. */
  host: string;
  pid: number;
  /** ISO time, no later than the VM was made. */
  started: string;
  run?: string;
}

/** Each field is kept to characters that need no quoting in an xl comment, other_config or a shell word. */
const safe = (s: string): string => s.replace(/[^A-Za-z0-9._:+-]/g, '_') || '_';

export function formatOwner(o: VmOwner): string {
  return `${safe(o.user)}@${safe(o.host)} pid ${o.pid} started ${safe(o.started)}${o.run ? ` run ${safe(o.run)}` : ''}`;
}

/** The owner a formatOwner line names; null when the text is not one. */
export function parseOwner(text: string): VmOwner | null {
  const m = /^([^\s@]+)@(\S+) pid (\d+) started (\S+)(?: run (\S+))?$/.exec(text.trim());
  if (!m || Number.isNaN(Date.parse(m[4]!))) return null;
  return { user: m[1]!, host: m[2]!, pid: Number(m[3]), started: m[4]!, ...(m[5] ? { run: m[5] } : {}) };
}

let mine: VmOwner | undefined;

/** This process as an owner, the same for every install it makes (so a reinstall writes the same bytes). */
export function currentOwner(): VmOwner {
  if (!mine) {
    let user: string;
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
    mine = { user, host: hostname(), pid: process.pid, started: new Date().toISOString() };
  }
  return mine;
}

/** What gc may do with a VM, given its owner record. */
export type OwnerVerdict =
  /** No record (made by an older xtv, or by hand): nobody to ask. */
  | { kind: 'none' }
  /** The owning process is gone (or its pid now belongs to a later process). */
  | { kind: 'dead'; why: string }
  /** The owning process still runs on this machine. */
  | { kind: 'alive'; why: string }
  /** Made on another machine, or a record that cannot be read: cannot be checked from here. */
  | { kind: 'unknown'; why: string };

const START_SLACK_MS = 5000;

/** Whether the owner recorded on a VM still runs. `here`: this machine's hostname. */
export function ownerVerdict(owner: string | undefined, here: string = hostname()): OwnerVerdict {
  if (owner === undefined || owner === '') return { kind: 'none' };
  const o = parseOwner(owner);
  if (!o) return { kind: 'unknown', why: `its owner record ${JSON.stringify(owner)} cannot be read` };
  const who = `${o.user}@${o.host} pid ${o.pid}`;
  if (o.host !== safe(here)) return { kind: 'unknown', why: `made on another machine (${who}), whose processes cannot be checked from here` };
  if (!pidExists(o.pid)) return { kind: 'dead', why: `${who} has exited` };
  const began = processStartMs(o.pid);
  // /proc's boot time is whole seconds, and the clock may have been stepped since: some slack, erring toward leaving the VM.
  if (began !== null && began > Date.parse(o.started) + START_SLACK_MS)
    return { kind: 'dead', why: `${who} has exited (that pid is now a process started ${new Date(began).toISOString()}, after the VM)` };
  return { kind: 'alive', why: `${who} is still running` };
}

function pidExists(pid: number): boolean {
  if (!Number.isInteger(pid) || pid < 1) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, as another user's process.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A zombie has exited (kill(0) still succeeds until it is reaped): its run is over.
  return statFields(pid)?.[0] !== 'Z';
}

/** The fields of /proc/PID/stat after the command name (field 3, the state, first); null when unreadable. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold anything: count from after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** When a process began (epoch ms), from Linux's /proc; null elsewhere or when unreadable. */
export function processStartMs(pid: number): number | null {
  const fields = statFields(pid);
  if (!fields) return null;
  try {
    const ticks = Number(fields[19]); // field 22, starttime: clock ticks after boot
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (!btime || !Number.isFinite(ticks)) return null;
    // USER_HZ: 100 on every Linux architecture Node runs on.
    return Number(btime[1]) * 1000 + ticks * 10;
  } catch {
    return null;
  }
}

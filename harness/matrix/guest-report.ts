// Reading what the guest agent says about itself: its xenstore report under
// data/xtv/ (while its domain exists) and its console lines (after the domain
// is gone, when the driver can show the console). The key names and the
// console line format are the agent's (guest/agent/report.ts,
// docs/guest-protocol.md); a unit test checks these names against the agent's
// list so the two cannot drift apart silently.
import { REPORT_DIR, TESTING_NODE, SHUTDOWN_NODE } from '../../protocol/control.ts';
import type { ToolstackDriver, VmRef } from '../toolstack/driver.ts';
import type { ReportKey } from '../../protocol/report-keys.ts';
import type { AckKind } from './scenarios.ts';
import { BOGUS_ACK_VALUE } from './scenarios.ts';
import { fmtMs, poll, type PollOptions } from './wait.ts';

/**
 * Waits until the agent reports state=ready (a boot done). Resolves with the state
 * last read when it does not within `o.timeoutMs`, null when it does: the message
 * for whoever says why.
 */
export async function waitAgentReady(driver: ToolstackDriver, vm: VmRef, o: Omit<PollOptions<string | null>, 'what'>): Promise<string | null> {
  const r = await poll(
    () => driver.readGuest(vm, `${REPORT_DIR}/state`),
    (v) => v === 'ready',
    { ...o, what: 'agent ready' },
  );
  return r.done ? null : `the guest did not report state=ready within ${fmtMs(o.timeoutMs)} (state: ${r.value ?? 'absent'})`;
}

/** The report keys the harness reads. */
export const READ_KEYS = [
  'state',
  'boot-id',
  'domid',
  'pending',
  'delayed',
  'features',
  'received',
  'last-error',
  'event-seq',
  'event-node',
  'event-value',
  'event-decision',
  'event-error',
  'event-command',
  'event-ack',
  'event-ack-value',
  'event-action',
  'event-note',
  'event-read-ms',
  'event-acked-ms',
  'event-acted-ms',
] as const satisfies readonly ReportKey[];
export type ReadKey = (typeof READ_KEYS)[number];

export type ReportSnapshot = Partial<Record<ReadKey, string | null>>;

/**
 * Reads report keys (the harness's READ_KEYS unless told others) in one round
 * trip where the driver offers readGuestMany; a key the agent has not written
 * is null. The one reader of the report: the runner and the CLI both use it.
 */
export async function readReport(driver: ToolstackDriver, vm: VmRef): Promise<ReportSnapshot>;
export async function readReport<K extends ReportKey>(driver: ToolstackDriver, vm: VmRef, keys: readonly K[]): Promise<Record<K, string | null>>;
export async function readReport(driver: ToolstackDriver, vm: VmRef, keys: readonly ReportKey[] = READ_KEYS): Promise<Record<string, string | null>> {
  const paths = keys.map((k) => `${REPORT_DIR}/${k}`);
  const values = driver.readGuestMany
    ? await driver.readGuestMany(vm, paths)
    : Object.fromEntries(await Promise.all(paths.map(async (p) => [p, await driver.readGuest(vm, p)] as const)));
  return Object.fromEntries(keys.map((k, i) => [k, values[paths[i]!] ?? null]));
}

/** The guest's account of the last control/shutdown request it handled. */
export interface GuestShutdownEvent {
  source: 'xenstore' | 'console';
  /** The value it read in control/shutdown. */
  received: string;
  /** How it acknowledged: ok, none, delete, write (a string), failed. */
  ack: string;
  ackValue: string;
  /** What it did: poweroff, reboot, halt, crash, suspend, ignore or none. */
  action: string;
}

/** The last event of a report, if it was about control/shutdown. */
export function shutdownEventFromReport(r: ReportSnapshot): GuestShutdownEvent | null {
  if (r['event-node'] !== SHUTDOWN_NODE) return null;
  return {
    source: 'xenstore',
    received: r['event-value'] ?? '',
    ack: r['event-ack'] ?? '',
    ackValue: r['event-ack-value'] ?? '',
    action: r['event-action'] ?? '',
  };
}

/** Parses `key=value` fields of a console line: bare words or JSON strings. */
export function parseConsoleFields(rest: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)=("(?:[^"\\]|\\.)*"(?:\.\.\. \(\d+ chars\))?|[^ ]*)/g;
  for (const m of rest.matchAll(re)) {
    let v = m[2]!;
    if (v.startsWith('"')) {
      const cut = v.replace(/\.\.\. \(\d+ chars\)$/, '');
      try {
        v = JSON.parse(cut) as string;
      } catch {
        /* keep it raw: hostile text */
      }
    }
    out[m[1]!] = v;
  }
  return out;
}

/** The agent's console lines, `xtv-agent <time> <kind> key=value ...`, parsed. */
export function parseConsole(text: string): Array<{ time: string; kind: string; fields: Record<string, string>; line: string }> {
  const out = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /xtv-agent (\S+) (\S+)(.*)$/.exec(line);
    if (!m) continue;
    out.push({ time: m[1]!, kind: m[2]!, fields: parseConsoleFields(m[3]!), line });
  }
  return out;
}

/**
 * The last control/shutdown event on the console after the agent line
 * `afterLine` (the last one seen before the request; null: from the start).
 * An anchor line rather than a count, because a driver may return only the
 * end of a long console; an anchor no longer present means all of it is new.
 */
export function shutdownEventFromConsole(text: string, afterLine: string | null = null): GuestShutdownEvent | null {
  const lines = parseConsole(text);
  const from = afterLine === null ? 0 : lines.map((l) => l.line).lastIndexOf(afterLine) + 1;
  const e = lines
    .slice(from)
    .filter((l) => l.kind === 'event' && l.fields.node === SHUTDOWN_NODE)
    .at(-1);
  if (!e) return null;
  return { source: 'console', received: e.fields.value ?? '', ack: e.fields.ack ?? '', ackValue: e.fields['ack-value'] ?? '', action: e.fields.action ?? '' };
}

/** The last agent line of a console (the anchor for shutdownEventFromConsole), or null when there is none. */
export function lastAgentLine(text: string): string | null {
  return parseConsole(text).at(-1)?.line ?? null;
}

export function countAgentLines(text: string): number {
  return parseConsole(text).length;
}

/** The ack kind an observed event corresponds to, or the raw word when it is none of them. */
export function ackKindOf(e: GuestShutdownEvent): AckKind | string {
  if (e.ack === 'write') return e.ackValue === BOGUS_ACK_VALUE ? 'bogus' : `write:${e.ackValue}`;
  return e.ack;
}

/** True once the agent has read and acknowledged a testing message (the node is "" or gone). */
export async function testingAcknowledged(driver: ToolstackDriver, vm: VmRef): Promise<boolean> {
  const v = await driver.readGuest(vm, TESTING_NODE);
  return v === null || v === '';
}

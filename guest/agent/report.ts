// The agent's report: the flat set of keys it keeps under data/xtv/ (what the
// harness reads) and the one console line per event (what a human reads on
// hvc0). Pure: builds values, does not write them. docs/guest-protocol.md
// documents both; keep the three in step.
import { REPORT_DIR, MAX_MESSAGE_BYTES, encodeUtf8, quoteValue } from '../../protocol/control.ts';
import { decodeUtf8 } from '../../protocol/utf8.ts';
import { REPORT_KEYS, type ReportKey } from '../../protocol/report-keys.ts';
import { REPORT_VALUE_MAX_BYTES, cutValue } from '../../protocol/report-limits.ts';

export type AgentState = 'starting' | 'ready' | 'acting' | 'suspending' | 'resumed' | 'suspend-failed';

/** How a message was acknowledged by the agent. */
export type AckDone =
  | 'ok' // wrote ""
  | 'none' // left as it was (asked for, or a rejected shutdown request)
  | 'delete' // removed the node
  | 'write' // wrote event-ack-value
  | 'failed' // tried and xenstore refused (see event-note)
  | 'n/a'; // nothing to acknowledge (the vm-data node is XAPI's, never written)

/** What happened to one message. */
export interface EventRecord {
  seq: number;
  node: string;
  /** The value as read, byte for byte. */
  value: Uint8Array;
  /** vm-data message id, "" elsewhere. */
  id: string;
  decision: 'accepted' | 'rejected';
  /** The rejection sentence from protocol/control.ts, "" when accepted. */
  error: string;
  /** describeCommand() of what was decided, "" when rejected. */
  command: string;
  ack: AckDone;
  ackValue: string;
  /** The action performed now: poweroff, reboot, halt, crash, suspend, ignore, or none. */
  action: string;
  /** Anything else worth knowing (pending stored/replaced/used, ack failure). */
  note: string;
  timeMs: number;
  /** When the message was read, acknowledged, acted on: the platform's uptime ms (null: not yet, or never). */
  readAtMs: number;
  ackedAtMs: number | null;
  actedAtMs: number | null;
}

export interface Counters {
  received: number;
  rejected: number;
  acked: number;
  actions: number;
  errors: number;
}

/** Everything the report holds, in memory. */
export interface AgentStatus {
  version: string;
  protocols: string;
  bootId: string;
  domid: string;
  state: AgentState;
  resumes: number;
  /**
   * The guest's uptime (ms) at its last start, attach, suspend, resume or clock message: it only goes
   * forward while the guest lives. Not at every report write: a key that changes each time would add
   * a node write, and a watch event for every watcher of the report, to every event.
   */
  runMs: number;
  /** Every domid the agent has run in, oldest first (a restore or a migration adds one): the newest DOMIDS_KEPT. */
  domids: string[];
  /** The guest's wall clock (ms since the epoch) when it last asked to suspend, and when it last noticed a resume. */
  suspendedAt: number | null;
  resumedAt: number | null;
  /** The guest's clock minus dom0's, from the last clock message (ms); null: none yet. */
  clockSkewMs: number | null;
  /** encodeCommand() of the pending onshutdown command, "" when none. */
  pending: string;
  /** describeDelayed() of the step waiting for its time, "" when none. */
  delayed: string;
  /** Capabilities.describe(): the flags as the agent wrote them. */
  features: string;
  counters: Counters;
  lastError: string;
  lastEvent: EventRecord | null;
}

export function isoTime(ms: number): string {
  try {
    return new Date(ms).toISOString();
  } catch {
    return String(ms);
  }
}

/**
 * The full report as path → value, written in one transaction; each value cut
 * to `maxValueBytes` (fitValue).
 */
export function reportEntries(s: AgentStatus, maxValueBytes = REPORT_VALUE_MAX_BYTES): Array<[string, string | Uint8Array]> {
  const e = s.lastEvent;
  const values: Record<ReportKey, string | Uint8Array> = {
    version: s.version,
    protocols: s.protocols,
    'boot-id': s.bootId,
    domid: s.domid,
    state: s.state,
    resumes: String(s.resumes),
    'run-ms': String(s.runMs),
    domids: s.domids.join(' '),
    'suspended-at': s.suspendedAt === null ? '' : isoTime(s.suspendedAt),
    'resumed-at': s.resumedAt === null ? '' : isoTime(s.resumedAt),
    'clock-skew-ms': s.clockSkewMs === null ? '' : String(s.clockSkewMs),
    pending: s.pending,
    delayed: s.delayed,
    features: s.features,
    received: String(s.counters.received),
    rejected: String(s.counters.rejected),
    acked: String(s.counters.acked),
    actions: String(s.counters.actions),
    errors: String(s.counters.errors),
    'last-error': s.lastError,
    'event-seq': e ? String(e.seq) : '0',
    'event-node': e ? e.node : '',
    'event-value': e ? e.value : '',
    'event-id': e ? e.id : '',
    'event-decision': e ? e.decision : '',
    'event-error': e ? e.error : '',
    'event-command': e ? e.command : '',
    'event-ack': e ? e.ack : '',
    'event-ack-value': e ? e.ackValue : '',
    'event-action': e ? e.action : '',
    'event-note': e ? e.note : '',
    'event-time': e ? isoTime(e.timeMs) : '',
    'event-read-ms': e ? String(e.readAtMs) : '',
    'event-acked-ms': e?.ackedAtMs != null ? String(e.ackedAtMs) : '',
    'event-acted-ms': e?.actedAtMs != null ? String(e.actedAtMs) : '',
  };
  return REPORT_KEYS.map((k) => {
    const path = `${REPORT_DIR}/${k}`;
    return [path, fitValue(path, values[k], maxValueBytes)];
  });
}

/**
 * A value as it can be written: xenstored refuses a guest's node bigger than
 * its quota (ENOSPC in C xenstored, E2BIG in oxenstored; the limits and their
 * sources are in protocol/report-limits.ts), and a WRITE carries path, NUL and
 * value in at most 4096 bytes. Either refusal would lose the whole report
 * (event-seq included), so a long value (3,000 bytes dom0 wrote, a note
 * quoting a long ack string) is cut, and says so: cutValue() ends it with the
 * full length in bytes and a hash of the full value. Strings are cut between
 * characters.
 */
export function fitValue(path: string, value: string | Uint8Array, maxValueBytes = REPORT_VALUE_MAX_BYTES): string | Uint8Array {
  const room = Math.min(maxValueBytes, MAX_MESSAGE_BYTES - encodeUtf8(path).length - 1);
  if (typeof value !== 'string') return cutValue(value, room);
  if (value.length * 3 <= room) return value; // a UTF-16 unit is at most 3 UTF-8 bytes
  const bytes = encodeUtf8(value);
  return bytes.length <= room ? value : decodeUtf8(cutValue(bytes, room));
}

/** key=value, the value quoted when it is empty or holds anything but plain characters. */
function field(key: string, value: string): string {
  return /^[A-Za-z0-9._:/@+-]+$/.test(value) ? `${key}=${value}` : `${key}=${quoteValue(value, 200)}`;
}

/**
 * Console line format (one line, no newline inside):
 *   xtv-agent <ISO-8601 UTC time> <kind> key=value ...
 * Values made only of [A-Za-z0-9._:/@+-] are bare; any other value is a JSON
 * string, cut to 200 characters (received bytes are shown decoded as UTF-8,
 * bad bytes as U+FFFD).
 */
export function consoleLine(timeMs: number, kind: string, fields: Array<[string, string]>): string {
  return [`xtv-agent ${isoTime(timeMs)} ${kind}`, ...fields.map(([k, v]) => field(k, v))].join(' ');
}

export function eventLine(e: EventRecord, s: AgentStatus): string {
  const fields: Array<[string, string]> = [
    ['seq', String(e.seq)],
    ['node', e.node],
    ['value', decodeUtf8(e.value)],
  ];
  if (e.id) fields.push(['id', e.id]);
  fields.push(['decision', e.decision]);
  if (e.error) fields.push(['error', e.error]);
  if (e.command) fields.push(['command', e.command]);
  fields.push(['ack', e.ack]);
  if (e.ack === 'write') fields.push(['ack-value', e.ackValue]);
  fields.push(['action', e.action]);
  if (e.note) fields.push(['note', e.note]);
  if (s.delayed) fields.push(['delayed', s.delayed]);
  fields.push(['state', s.state]);
  return consoleLine(e.timeMs, 'event', fields);
}

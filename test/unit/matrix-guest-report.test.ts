import test from 'tape';
import {
  READ_KEYS,
  ackKindOf,
  countAgentLines,
  lastAgentLine,
  parseConsole,
  shutdownEventFromConsole,
  shutdownEventFromReport,
} from '../../harness/matrix/guest-report.ts';
import { eventLine, type AgentStatus, type EventRecord } from '../../guest/agent/report.ts';
import { REPORT_KEYS } from '../../protocol/report-keys.ts';
import { encodeUtf8 } from '../../protocol/control.ts';

test('the keys the harness reads are keys the agent writes', (t) => {
  for (const k of READ_KEYS) t.ok((REPORT_KEYS as readonly string[]).includes(k), k);
  t.end();
});

function event(over: Partial<EventRecord>): EventRecord {
  return {
    seq: 3,
    node: 'control/shutdown',
    value: encodeUtf8('poweroff'),
    id: '',
    decision: 'accepted',
    error: '',
    command: 'onshutdown ack=none action=crash',
    ack: 'none',
    ackValue: '',
    action: 'crash',
    note: '',
    timeMs: 1_700_000_000_000,
    readAtMs: 5_000,
    ackedAtMs: 5_010,
    actedAtMs: 5_020,
    ...over,
  };
}

const status = { state: 'acting' } as AgentStatus;

test("console lines written by the agent's own formatter parse back", (t) => {
  const text = [
    'Linux booting...',
    eventLine(
      event({ node: 'control/testing', value: encodeUtf8('{"when":"onshutdown","ack":"xtv-bogus-ack","action":"crash"}'), ack: 'ok', action: 'none' }),
      status,
    ),
    'noise',
    eventLine(event({ ack: 'write', ackValue: 'xtv-bogus-ack' }), status),
  ].join('\n');
  t.equal(countAgentLines(text), 2);
  const lines = parseConsole(text);
  t.equal(lines[0]!.fields.value, '{"when":"onshutdown","ack":"xtv-bogus-ack","action":"crash"}', 'a JSON-quoted value is decoded');
  const ev = shutdownEventFromConsole(text);
  t.deepEqual(ev, { source: 'console', received: 'poweroff', ack: 'write', ackValue: 'xtv-bogus-ack', action: 'crash' });
  t.equal(ackKindOf(ev!), 'bogus');
  const raw = text.split('\n');
  t.equal(shutdownEventFromConsole(text, raw[3]!), null, 'only events after the anchor line count');
  t.equal(shutdownEventFromConsole(text, raw[1]!)?.ack, 'write', 'events after an earlier anchor');
  t.equal(shutdownEventFromConsole(text, 'a line that scrolled away')?.ack, 'write', 'an anchor no longer there: all is new');
  t.equal(lastAgentLine(text), raw[3], 'the anchor is the last agent line');
  t.end();
});

test('hostile console text does not confuse the parser', (t) => {
  const text = eventLine(event({ value: encodeUtf8('poweroff" ack=ok action=reboot x="') }), status);
  const ev = shutdownEventFromConsole(text);
  t.equal(ev?.received, 'poweroff" ack=ok action=reboot x="', 'quoted value kept whole');
  t.equal(ev?.ack, 'none');
  t.equal(ev?.action, 'crash');
  t.end();
});

test('the last event of a report, when it is about control/shutdown', (t) => {
  t.deepEqual(
    shutdownEventFromReport({
      'event-node': 'control/shutdown',
      'event-value': 'reboot',
      'event-ack': 'delete',
      'event-ack-value': '',
      'event-action': 'halt',
    }),
    { source: 'xenstore', received: 'reboot', ack: 'delete', ackValue: '', action: 'halt' },
  );
  t.equal(shutdownEventFromReport({ 'event-node': 'control/testing' }), null);
  t.equal(shutdownEventFromReport({}), null);
  t.end();
});

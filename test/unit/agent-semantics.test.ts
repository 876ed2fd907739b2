// Every row of the agent's semantics against the in-memory xenstored, over its
// socket: what dom0 writes, what the agent acknowledges (byte for byte), what
// it performs, and what it reports.
import test from 'tape';
import { startFixture, DOMID } from './agent-fixture.ts';
import {
  SHUTDOWN_NODE,
  TESTING_NODE,
  VMDATA_TESTING_NODE,
  KERNEL_SHUTDOWN_NODE,
  LEGACY_ACTIONS,
  SHUTDOWN_REQUESTS,
  REPORT_DIR,
} from '../../protocol/control.ts';
import { REPORT_KEYS } from '../../protocol/report-keys.ts';
import { REPORT_VALUE_MAX_BYTES, reportedValueIs } from '../../protocol/report-limits.ts';
import { WATCH_TOKENS } from '../../guest/agent/agent.ts';
import { DEFAULT_FEATURES } from '../../guest/agent/capabilities.ts';
import { featureNode } from '../../protocol/control.ts';

const LINE = /^xtv-agent \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [a-z-]+( [a-z-]+=("([^"\\]|\\.)*"(\.\.\. \(\d+ chars\))?|[A-Za-z0-9._:/@+-]+))*$/;

test('start: report, feature flags, watches, one ready line', async (t) => {
  const f = await startFixture();
  const r = f.report();
  t.deepEqual(Object.keys(r).sort(), [...REPORT_KEYS].sort(), 'every report key, nothing else');
  t.equal(r.version, '0.1.0');
  t.equal(r.protocols, 'xtv-control/3');
  t.match(r['boot-id']!, /^[0-9a-f]{32}$/, 'boot id: 32 hex digits');
  t.equal(r.domid, String(DOMID));
  t.equal(r.state, 'ready');
  for (const k of ['received', 'rejected', 'acked', 'actions', 'errors', 'resumes', 'event-seq']) t.equal(r[k], '0', `${k} = 0`);
  t.equal(r.pending, '');
  for (const n of DEFAULT_FEATURES.map(featureNode)) t.equal(f.xs.store.read(n), '1', n);
  t.deepEqual(
    f.xs.watches().sort(),
    [`${SHUTDOWN_NODE} ${WATCH_TOKENS.shutdown}`, `${TESTING_NODE} ${WATCH_TOKENS.testing}`, `${VMDATA_TESTING_NODE} ${WATCH_TOKENS.vmdata}`].sort(),
    'relative watches on the three nodes',
  );
  const paths = f.xs.requests.filter((q) => q.path !== undefined && q.domid === DOMID);
  t.ok(
    paths.length > 0 && f.xs.requests.every((q) => q.domid !== DOMID || !new TextDecoder().decode(q.payload).startsWith('/')),
    'every path the agent sends is relative',
  );
  t.deepEqual(f.events, [], 'empty nodes at start are not messages');
  t.equal(f.platform.lines.filter((l) => / ready /.test(l)).length, 1, 'one ready line');
  t.ok(
    f.platform.lines.every((l) => LINE.test(l)),
    'console lines follow the format',
  );
  await f.close();
  t.end();
});

test('now:X for each action: control/testing acked with "", X performed at once', async (t) => {
  for (const action of LEGACY_ACTIONS) {
    const f = await startFixture();
    const e = await f.send(TESTING_NODE, `now:${action}`);
    t.equal(f.xs.store.read(TESTING_NODE), '', `now:${action}: acked with ""`);
    t.deepEqual([e.decision, e.ack, e.action], ['accepted', 'ok', action], `now:${action}: event`);
    if (action === 'suspend') {
      t.deepEqual(f.platform.actions, [], 'suspend is not a platform action');
      t.equal(f.xs.store.read(KERNEL_SHUTDOWN_NODE), 'suspend', 'suspend asked of the kernel');
      t.equal(f.report().state, 'suspending');
    } else {
      t.deepEqual(f.platform.actions, [action], `${action} performed`);
      t.equal(f.report().state, 'acting');
    }
    const r = f.report();
    t.deepEqual(
      [r.received, r.acked, r.actions, r['event-value'], r['event-node'], r['event-command']],
      ['1', '1', '1', `now:${action}`, TESTING_NODE, `now action=${action}`],
    );
    t.equal(f.xs.store.read(SHUTDOWN_NODE), '', 'control/shutdown untouched');
    await f.close();
  }
  t.end();
});

test('bare X acts now; JSON now; ignore only reports', async (t) => {
  const f = await startFixture();
  let e = await f.send(TESTING_NODE, 'halt');
  t.deepEqual([e.action, f.platform.actions], ['halt', ['halt']], 'bare halt');
  e = await f.send(TESTING_NODE, '{"when":"now","action":"crash"}');
  t.deepEqual([e.action, f.platform.actions], ['crash', ['halt', 'crash']], 'JSON now crash');
  e = await f.send(TESTING_NODE, '{"action":"ignore"}');
  t.deepEqual([e.decision, e.action, f.platform.actions.length], ['accepted', 'ignore', 2], 'ignore: nothing performed');
  t.equal(f.report().actions, '2', 'ignore is not counted as an action');
  await f.close();
  t.end();
});

test('without a pending command, each shutdown request is acked with "" and performed', async (t) => {
  for (const request of SHUTDOWN_REQUESTS) {
    const f = await startFixture();
    const e = await f.send(SHUTDOWN_NODE, request);
    t.equal(f.xs.store.read(SHUTDOWN_NODE), '', `${request}: acked with ""`);
    t.deepEqual([e.decision, e.ack, e.action, e.command], ['accepted', 'ok', request, `request ${request}`], `${request}: event`);
    if (request === 'suspend') t.equal(f.xs.store.read(KERNEL_SHUTDOWN_NODE), 'suspend');
    else t.deepEqual(f.platform.actions, [request]);
    await f.close();
  }
  t.end();
});

test('next:X, then a shutdown request: acked with "", X performed instead', async (t) => {
  for (const action of LEGACY_ACTIONS) {
    const f = await startFixture();
    const primed = await f.send(TESTING_NODE, `next:${action}`);
    t.deepEqual([primed.ack, primed.action, primed.command], ['ok', 'none', `onshutdown ack=ok action=${action}`], `next:${action} stored`);
    t.equal(f.report().pending, `{"when":"onshutdown","ack":"ok","action":"${action}"}`, 'pending reported');
    t.deepEqual(f.platform.actions, [], 'nothing performed yet');
    const request = action === 'poweroff' ? 'reboot' : 'poweroff';
    const e = await f.send(SHUTDOWN_NODE, request);
    t.equal(f.xs.store.read(SHUTDOWN_NODE), '', 'acked with ""');
    t.equal(e.action, action, `${action} performed instead of ${request}`);
    t.equal(e.note, `pending command used instead of request ${request}`);
    if (action !== 'suspend') t.deepEqual(f.platform.actions, [action]);
    t.equal(f.report().pending, '', 'pending used up');
    await f.close();
  }
  t.end();
});

test('JSON onshutdown acks: ok, none, delete, a bogus string, a request word', async (t) => {
  const cases: Array<[string, string | undefined, string, string]> = [
    ['ok', '', 'ok', ''],
    ['none', 'poweroff', 'none', ''],
    ['delete', undefined, 'delete', ''],
    ['bogus', 'bogus', 'write', 'bogus'],
    ['poweroff', 'poweroff', 'write', 'poweroff'], // must not be taken for a new request
    ['\u00e9\u00e8 x', '\u00e9\u00e8 x', 'write', '\u00e9\u00e8 x'],
  ];
  for (const [ack, left, ackDone, ackValue] of cases) {
    const f = await startFixture();
    await f.send(TESTING_NODE, JSON.stringify({ when: 'onshutdown', ack, action: 'reboot' }));
    const e = await f.send(SHUTDOWN_NODE, 'poweroff');
    t.equal(f.xs.store.read(SHUTDOWN_NODE), left, `ack ${JSON.stringify(ack)}: control/shutdown holds ${JSON.stringify(left)}`);
    t.deepEqual([e.ack, e.ackValue, e.action], [ackDone, ackValue, 'reboot'], `ack ${JSON.stringify(ack)}: event`);
    t.deepEqual(f.platform.actions, ['reboot']);
    const r = f.report();
    t.deepEqual(
      [r['event-ack'], r['event-ack-value'], r.acked],
      [ackDone, ackValue, ack === 'none' ? '1' : '2'],
      'report: ack, and acks counted (testing ack included)',
    );
    // The agent's own write is not a new request: a later real one still works.
    // (After a delete, dom0 recreates the node and must give it back to the guest, as libxl's creation does.)
    const nextEvent = f.nextEvent();
    f.xs.store.write(SHUTDOWN_NODE, 'halt');
    f.xs.store.setPerms(SHUTDOWN_NODE, [`n${DOMID}`]);
    const next = await nextEvent;
    t.deepEqual([next.seq, next.action, next.ack], [3, 'halt', 'ok'], 'own ack not mistaken for a request; the next request is served');
    await f.close();
  }
  t.end();
});

test('malformed testing messages: acked, reported with the error, nothing changes', async (t) => {
  const f = await startFixture();
  await f.send(TESTING_NODE, 'next:crash');
  const before = f.report().pending;
  const bad: Array<[string | Uint8Array, string]> = [
    ['bogus', 'unrecognised message "bogus" (expected now:X, next:X, X or a JSON object)'],
    ['now:fly', 'unknown action "fly" in now:X (expected one of: suspend, poweroff, reboot, halt, crash)'],
    ['{"action":"reboot","x":1}', 'unknown field "x" (allowed: when, ack, action, ackAfterMs, actAfterMs, features, cantSuspendReason, clock)'],
    ['{"when":"later","action":"reboot"}', 'unknown when "later" (expected now or onshutdown)'],
    [Uint8Array.from([0x6e, 0xff]), 'message is not valid UTF-8 (bad byte 0xff at offset 1)'],
    ['   ', 'message is blank (only whitespace)'],
  ];
  let seq = 1;
  for (const [value, error] of bad) {
    const e = await f.send(TESTING_NODE, value);
    seq++;
    t.deepEqual([e.seq, e.decision, e.error, e.ack, e.action], [seq, 'rejected', error, 'ok', 'none'], `rejected: ${error}`);
    t.equal(f.xs.store.read(TESTING_NODE), '', 'acked with ""');
    t.equal(f.report()['event-error'], error, 'error in the report');
    t.equal(f.report().pending, before, 'pending unchanged');
  }
  t.deepEqual(f.platform.actions, [], 'nothing performed');
  t.equal(f.report().rejected, String(bad.length));
  const e = await f.send(SHUTDOWN_NODE, 'poweroff');
  t.equal(e.action, 'crash', 'the pending command survived the malformed ones');
  await f.close();
  t.end();
});

test('a new message replaces a pending one, and the report says so', async (t) => {
  const f = await startFixture();
  await f.send(TESTING_NODE, 'next:reboot');
  let e = await f.send(TESTING_NODE, '{"when":"onshutdown","ack":"none","action":"halt"}');
  t.equal(e.note, 'stored as pending until the next shutdown request; replaced pending: onshutdown ack=ok action=reboot');
  t.equal(f.report()['event-note'], e.note);
  t.equal(f.report().pending, '{"when":"onshutdown","ack":"none","action":"halt"}');
  e = await f.send(TESTING_NODE, '{"action":"ignore"}');
  t.equal(e.note, 'replaced pending: onshutdown ack=none action=halt', 'a now message replaces it too');
  t.equal(f.report().pending, '');
  e = await f.send(SHUTDOWN_NODE, 'poweroff');
  t.deepEqual([e.action, e.ack], ['poweroff', 'ok'], 'no pending left: the request itself');
  await f.close();
  t.end();
});

test('rejected shutdown values: reported, left unacknowledged, nothing done', async (t) => {
  const f = await startFixture();
  await f.send(TESTING_NODE, 'next:crash');
  for (const v of ['bogus', 'PowerOff', 'poweroff\n', 'sysrq']) {
    const e = await f.send(SHUTDOWN_NODE, v);
    t.deepEqual([e.decision, e.ack, e.action], ['rejected', 'none', 'none'], `${JSON.stringify(v)} rejected`);
    t.match(e.error, /^unknown shutdown request /);
    t.equal(f.xs.store.read(SHUTDOWN_NODE), v, 'left as written');
  }
  t.deepEqual(f.platform.actions, []);
  t.equal(f.report().pending, '{"when":"onshutdown","ack":"ok","action":"crash"}', 'pending not consumed by a rejected request');
  const e = await f.send(SHUTDOWN_NODE, 'reboot');
  t.equal(e.action, 'crash');
  await f.close();
  t.end();
});

test('vm-data: "ID MESSAGE"; a rewrite of the same id is ignored, a new id is acted on', async (t) => {
  const f = await startFixture();
  let e = await f.send(VMDATA_TESTING_NODE, '1 next:poweroff');
  t.deepEqual([e.id, e.ack, e.command], ['1', 'n/a', 'onshutdown ack=ok action=poweroff']);
  t.equal(f.xs.store.read(VMDATA_TESTING_NODE), '1 next:poweroff', 'the vm-data node is never written by the agent');
  t.equal(f.report()['event-id'], '1');
  // XAPI's set_xenstore_data: remove the whole vm-data subtree and write it again, same message.
  f.xs.store.rm('vm-data');
  f.xs.store.write(VMDATA_TESTING_NODE, '1 next:poweroff');
  f.xs.store.write(VMDATA_TESTING_NODE, '1 now:reboot'); // same id, different text: still the same message
  e = await f.send(VMDATA_TESTING_NODE, '2 {"action":"reboot"}');
  t.deepEqual([e.seq, e.id, e.action], [2, '2', 'reboot'], 'the rewrites made no event; id 2 acted on');
  t.deepEqual(f.platform.actions, ['reboot']);
  e = await f.send(VMDATA_TESTING_NODE, 'garbage');
  t.deepEqual([e.decision, e.error], ['rejected', 'vm-data message must be "ID MESSAGE", found no space in "garbage"']);
  f.xs.store.write(VMDATA_TESTING_NODE, 'garbage');
  e = await f.send(VMDATA_TESTING_NODE, '3 nonsense');
  t.deepEqual(
    [e.seq, e.id, e.decision, e.error],
    [4, '3', 'rejected', 'unrecognised message "nonsense" (expected now:X, next:X, X or a JSON object)'],
    'the same bad value rewritten is not reported twice; a bad message keeps its id',
  );
  f.xs.store.write(VMDATA_TESTING_NODE, '4 ');
  e = await f.send(VMDATA_TESTING_NODE, '5 next:halt');
  t.equal(e.seq, 5, 'an id without a message makes no event');
  e = await f.send(SHUTDOWN_NODE, 'reboot');
  t.deepEqual([e.action, e.ack], ['halt', 'ok'], 'a vm-data onshutdown command works like control/testing');
  await f.close();
  t.end();
});

test('vm-data present at start is the baseline, not a message', async (t) => {
  const f = await startFixture({ before: (xs) => xs.store.write(VMDATA_TESTING_NODE, '9 now:reboot') });
  t.deepEqual(f.events, []);
  t.deepEqual(f.platform.actions, [], 'not acted on (XAPI rewrites vm-data at every start)');
  t.ok(
    f.platform.lines.some((l) => / vm-data-baseline id=9 /.test(l)),
    'console says so',
  );
  const e = await f.send(VMDATA_TESTING_NODE, '10 now:reboot');
  t.deepEqual([e.id, f.platform.actions], ['10', ['reboot']], 'a new id is acted on');
  await f.close();
  t.end();
});

test('pre-existing values at start: a shutdown request is served; a testing message is acted on', async (t) => {
  let f = await startFixture({ before: (xs) => xs.store.write(SHUTDOWN_NODE, 'reboot') });
  await f.agent.idle();
  t.deepEqual(f.platform.actions, ['reboot'], 'control/shutdown=reboot before start: performed');
  t.equal(f.xs.store.read(SHUTDOWN_NODE), '', 'and acked');
  t.equal(f.report().state, 'acting');
  await f.close();
  f = await startFixture({ before: (xs) => xs.store.write(TESTING_NODE, 'next:crash') });
  await f.agent.idle();
  t.equal(f.report().pending, '{"when":"onshutdown","ack":"ok","action":"crash"}', 'control/testing before start: taken');
  t.equal(f.xs.store.read(TESTING_NODE), '');
  await f.close();
  t.end();
});

test('control/testing read-only for the guest: EACCES on the ack is reported, the message still counts', async (t) => {
  const f = await startFixture({ testingWritable: false });
  const e = await f.send(TESTING_NODE, 'next:reboot');
  t.equal(e.ack, 'failed');
  t.match(e.note, /ack failed: EACCES/);
  t.equal(f.xs.store.read(TESTING_NODE), 'next:reboot', 'still there');
  const r = f.report();
  t.deepEqual([r.errors, r.acked, r.pending], ['1', '0', '{"when":"onshutdown","ack":"ok","action":"reboot"}']);
  t.match(r['last-error'] ?? '', /acknowledging control\/testing: .*EACCES/);
  const s = await f.send(SHUTDOWN_NODE, 'poweroff');
  t.equal(s.action, 'reboot', 'the command was still taken, and not run twice');
  t.equal(f.events.length, 2);
  await f.close();
  t.end();
});

test('an action that fails is reported, and the agent goes on', async (t) => {
  const f = await startFixture({ failActions: true });
  await f.send(TESTING_NODE, 'now:poweroff');
  const r = f.report();
  t.deepEqual([r.state, r.errors], ['ready', '1']);
  t.match(r['last-error'] ?? '', /performing poweroff: poweroff failed/);
  const e = await f.send(TESTING_NODE, '{"action":"ignore"}');
  t.equal(e.seq, 2, 'still serving');
  await f.close();
  t.end();
});

test('suspend: asks the kernel, reports suspending, then resumed with the new domid, and keeps serving', async (t) => {
  const f = await startFixture();
  const e = await f.send(SHUTDOWN_NODE, 'suspend');
  t.equal(e.action, 'suspend');
  t.equal(f.xs.store.read(SHUTDOWN_NODE), '', 'the toolstack sees its ack');
  t.equal(f.xs.store.read(KERNEL_SHUTDOWN_NODE), 'suspend', 'the kernel is asked');
  t.equal(f.report().state, 'suspending');
  // The patched kernel acks on its node; after the restore the toolstack's domid differs.
  f.xs.store.write(KERNEL_SHUTDOWN_NODE, '');
  f.xs.store.rm(REPORT_DIR); // a restored domain starts without the old report
  f.xs.store.write('domid', '17');
  await f.xs.store.waitFor(`${REPORT_DIR}/state`, (v) => v === 'resumed', 3000);
  await f.agent.idle();
  const r = f.report();
  t.deepEqual([r.state, r.domid, r.resumes], ['resumed', '17', '1'], 'resumed, new domid');
  t.deepEqual(Object.keys(r).sort(), [...REPORT_KEYS].sort(), 'the whole report written again');
  t.equal(r['event-action'], 'suspend', 'with the last event');
  t.ok(
    f.platform.lines.some((l) => / resumed domid=17 previous-domid=5 /.test(l)),
    'console line',
  );
  t.notOk(
    f.xs.watches().some((w) => w.startsWith('domid ')),
    'the resume probe is removed',
  );
  const next = await f.send(TESTING_NODE, 'now:reboot');
  t.deepEqual([next.action, f.platform.actions], ['reboot', ['reboot']], 'still serving after resume');
  await f.close();
  t.end();
});

test('suspend that the kernel never acknowledges is reported as failed', async (t) => {
  const f = await startFixture({ agent: { kernelAckTimeoutMs: 200 } });
  await f.send(TESTING_NODE, 'now:suspend');
  await f.xs.store.waitFor(`${REPORT_DIR}/state`, (v) => v === 'suspend-failed', 3000);
  t.match(f.report()['last-error'] ?? '', /the kernel did not acknowledge "suspend" on data\/xtv\/kernel-shutdown within 200 ms/);
  t.equal(f.xs.store.read(KERNEL_SHUTDOWN_NODE), '', 'request taken back');
  const e = await f.send(TESTING_NODE, '{"action":"ignore"}');
  t.equal(e.seq, 2, 'still serving');
  await f.close();
  t.end();
});

test('each event is written in one transaction, and gets one console line', async (t) => {
  const f = await startFixture();
  const from = f.xs.requests.length;
  await f.send(TESTING_NODE, 'next:reboot');
  const reqs = f.xs.requests.slice(from).filter((q) => q.domid === DOMID);
  const reportWrites = reqs.filter((q) => q.op === 'WRITE' && q.path?.includes(`/${REPORT_DIR}/`));
  t.ok(reportWrites.length >= 8 && reportWrites.length <= REPORT_KEYS.length, `the changed keys written (${reportWrites.length})`);
  t.ok(
    reportWrites.every((q) => REPORT_KEYS.some((k) => q.path!.endsWith(`/${REPORT_DIR}/${k}`))),
    'only report keys',
  );
  const txIds = new Set(reportWrites.map((q) => q.txId));
  t.equal(txIds.size, 1, 'all in one transaction');
  t.notOk(txIds.has(0), 'a real transaction');
  const lines = f.platform.lines.filter((l) => / event /.test(l));
  t.equal(lines.length, 1);
  t.ok(LINE.test(lines[0]!), lines[0]);
  t.match(
    lines[0]!,
    /^xtv-agent \S+ event seq=1 node=control\/testing value=next:reboot decision=accepted command="onshutdown ack=ok action=reboot" ack=ok action=none note="stored as pending until the next shutdown request" state=ready$/,
  );
  await f.close();
  t.end();
});

test('long values: a 4000-byte ack string fits the report (cut where it must), nothing lost to E2BIG or ENOSPC', async (t) => {
  const f = await startFixture();
  const long = 'é'.repeat(1990); // 3980 bytes
  await f.send(TESTING_NODE, JSON.stringify({ when: 'onshutdown', ack: long, action: 'reboot' }));
  const e = await f.send(TESTING_NODE, 'next:halt');
  t.ok(new TextEncoder().encode(e.note).length > 4000, 'the note quotes the replaced command in full');
  const r = f.report();
  t.equal(r.errors, '0', 'no report write failed');
  t.equal(r['event-seq'], '2');
  const note = new TextEncoder().encode(r['event-note']);
  t.ok(note.length <= REPORT_VALUE_MAX_BYTES, `the note is cut to fit the node quota (${note.length} bytes)`);
  t.ok(reportedValueIs(new TextEncoder().encode(e.note), note), 'and says so, with the full length and hash');
  t.ok(reportedValueIs(new TextEncoder().encode(e.command), new TextEncoder().encode(r['event-command'])), 'the command too');
  const s = await f.send(SHUTDOWN_NODE, 'poweroff');
  t.deepEqual([s.action, s.ack], ['halt', 'ok']);
  await f.close();
  t.end();
});

test('a request left in place (ack none) and written again after a new test message is a new request', async (t) => {
  const f = await startFixture();
  await f.send(TESTING_NODE, '{"when":"onshutdown","ack":"none","action":"ignore"}');
  let e = await f.send(SHUTDOWN_NODE, 'poweroff');
  t.deepEqual([e.ack, e.action, f.xs.store.read(SHUTDOWN_NODE)], ['none', 'ignore', 'poweroff'], 'left in place');
  // Without a new test message, the same word again is the same request (a watch re-fire, or dom0 insisting).
  f.xs.store.write(SHUTDOWN_NODE, 'poweroff');
  // The next test primes the VM, then the toolstack asks again (XAPI: remove and rewrite, same word).
  e = await f.send(TESTING_NODE, 'next:halt');
  t.equal(e.seq, 3, 'the rewrite before priming made no event');
  f.xs.store.rm(SHUTDOWN_NODE);
  const next = f.nextEvent();
  f.xs.store.write(SHUTDOWN_NODE, 'poweroff');
  f.xs.store.setPerms(SHUTDOWN_NODE, [`n${DOMID}`]);
  e = await next;
  t.deepEqual([e.seq, e.action, e.ack], [4, 'halt', 'ok'], 'after priming, the same word is a new request');
  t.deepEqual(f.platform.actions, ['halt']);
  await f.close();
  t.end();
});

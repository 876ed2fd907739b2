// The agent's protocol on real Xen 4.17 (C xenstored) through xl.
//
// Quotas: the agent's report fits the guest's xenstore quotas: dom0 writes values into control/testing that the guest could
// not store itself (a guest's node is refused from 2048 bytes, header and
// permissions included: protocol/report-limits.ts), and each still makes a
// report: event-seq advances and event-value says it was cut, with the full
// length and hash. Before the fix, 3,000 bytes made xenstored refuse the
// whole report (ENOSPC) and event-seq never moved.
import test from 'tape';
import { CANT_SUSPEND_REASON_NODE, TESTING_NODE, featureNode } from '../../protocol/control.ts';
import { parseCutValue, reportedValueIs, fnv1a64, REPORT_VALUE_MAX_BYTES } from '../../protocol/report-limits.ts';
import { encodeUtf8 } from '../../protocol/utf8.ts';
import { callRequest, report, sendTesting, xlSuite, type Ctx } from './xl-fixture.ts';
import type { VmRef } from '../../harness/toolstack/driver.ts';

const suite = xlSuite({ parallel: 1, cases: 1, file: 'agent-protocol' });

/** Letters and digits (nothing a shell or the decoder treats specially), never a valid command. */
function junk(n: number, seed: number): string {
  const abc = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let x = seed;
  let s = '';
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += abc[x % abc.length];
  }
  return `junk-${s}`.slice(0, n);
}

interface Sent {
  bytes: number;
  value: string;
  report: Record<string, string | null> | null;
  error: string | null;
}

const quota = suite.scenario('long values into control/testing', async (x) => {
  const { vm, domid } = await x.boot('xtv-e2e-quota');
  // libxenstore's xs_talkv() (tools/libs/store/xs.c) refuses a payload over
  // XENSTORE_PAYLOAD_MAX (4096) with E2BIG, and a WRITE's payload is the
  // absolute path, a NUL and the value: this is the most dom0 can write.
  const dom0Max = 4096 - `/local/domain/${domid}/${TESTING_NODE}`.length - 1;
  const sent: Sent[] = [];
  for (const [i, bytes] of [2000, 3000, dom0Max, 4096].entries()) {
    const value = junk(bytes, i + 1);
    try {
      sent.push({ bytes, value, report: await sendTesting(x.driver, vm, value), error: null });
    } catch (e) {
      sent.push({ bytes, value, report: null, error: e instanceof Error ? e.message : String(e) });
    }
    x.lap(`${bytes} bytes`);
  }
  const after = await report(x.driver, vm);
  // The same guest then goes on with time and capabilities (below): one boot less for npm test.
  return { domid, dom0Max, sent, after, ...(await timeAndCapabilities(x, vm)) };
});

test('2,000 and 3,000 bytes and the most dom0 can write: each reported, cut with its length and hash', async (t) => {
  const o = await suite.result(t, quota);
  if (!o) return;
  let seq = 0;
  for (const s of o.sent.filter((s) => s.bytes !== 4096)) {
    const label = `${s.bytes} bytes`;
    t.equal(s.error, null, `${label}: written by dom0, acknowledged and reported`);
    if (!s.report) continue;
    t.equal(s.report['event-seq'], String(++seq), `${label}: event-seq advanced to ${seq}`);
    t.equal(s.report['event-node'], TESTING_NODE, `${label}: about ${TESTING_NODE}`);
    t.equal(s.report['event-decision'], 'rejected', `${label}: rejected (junk)`);
    const reported = encodeUtf8(s.report['event-value'] ?? '');
    t.ok(reported.length <= REPORT_VALUE_MAX_BYTES, `${label}: event-value is ${reported.length} bytes`);
    const cut = parseCutValue(reported);
    const full = encodeUtf8(s.value);
    t.deepEqual(cut && [cut.bytes, cut.fnv1a64], [s.bytes, fnv1a64(full)], `${label}: event-value says it was cut, with length and hash`);
    t.ok(reportedValueIs(full, reported), `${label}: and begins as sent`);
  }
  t.equal(o.after['errors'], '0', 'no report write was refused');
  t.equal(o.after['state'], 'ready', 'the agent is still ready');
});

test('4,096 bytes: more than dom0 can send (E2BIG in libxenstore), and nothing reaches the guest', async (t) => {
  const o = await suite.result(t, quota);
  if (!o) return;
  const s = o.sent.find((v) => v.bytes === 4096)!;
  t.notEqual(s.error, null, `dom0's xenstore-write refused it: ${s.error ?? '(it was written)'}`);
  t.equal(o.after['event-seq'], String(o.sent.filter((v) => v.bytes !== 4096 && v.report).length), 'no event for it');
  t.comment(`dom0 can write at most ${o.dom0Max} bytes into ${TESTING_NODE} of domain ${o.domid}`);
});

// Time and capabilities (#16): a late acknowledgement through xl, and the
// flags as dom0 sees them. libxl waits 60 s for the ack
// (libxl_domain.c libxl__domain_pvcontrol): a guest that acks 3 s late makes
// `xl shutdown` succeed after those 3 s; with `ignore` the domain stays.
const ACK_LATE_MS = 3000;
async function timeAndCapabilities(x: Ctx, vm: VmRef) {
  const caps = await sendTesting(x.driver, vm, '{"features":{"suspend":false,"reboot":null},"cantSuspendReason":"xtv e2e"}');
  const nodes = {
    suspend: await x.driver.readGuest(vm, featureNode('suspend')),
    reboot: await x.driver.readGuest(vm, featureNode('reboot')),
    poweroff: await x.driver.readGuest(vm, featureNode('poweroff')),
    reason: await x.driver.readGuest(vm, CANT_SUSPEND_REASON_NODE),
  };
  const recreate = await sendTesting(x.driver, vm, '{"features":{"reboot":true}}');
  x.lap('capabilities');
  await sendTesting(x.driver, vm, `{"when":"onshutdown","action":"ignore","ackAfterMs":${ACK_LATE_MS}}`);
  const call = await callRequest(x.driver, vm, 'clean_shutdown');
  x.lap('late ack');
  const after = await report(x.driver, vm);
  const state = await x.driver.state(vm);
  return { caps, nodes, recreate, call, late: after, state: state.powerState };
}
const timing = quota;

test('capabilities through xl: flags written, removed, the reason set; a removed flag cannot come back (control/ is read-only)', async (t) => {
  const o = await suite.result(t, timing);
  if (!o) return;
  t.equal(o.caps['event-command'], 'features reboot=removed suspend=0 cant-suspend-reason="xtv e2e"');
  t.deepEqual(o.nodes, { suspend: '0', reboot: null, poweroff: '1', reason: 'xtv e2e' }, 'as dom0 reads them');
  t.match(
    o.recreate['event-note'] ?? '',
    /not written: control\/feature-reboot \(EACCES\)/,
    'libxl_create.c libxl__domain_make: control/ is read-only to the guest',
  );
  t.equal(o.recreate['state'], 'ready');
});

test(`ackAfterMs through xl: xl shutdown waits for the ack ${ACK_LATE_MS} ms late and succeeds; the report has the times`, async (t) => {
  const o = await suite.result(t, timing);
  if (!o) return;
  t.deepEqual(o.call.result, { kind: 'ok' }, "inside libxl's 60 s window: success");
  t.ok(o.call.durationMs >= ACK_LATE_MS, `xl shutdown took ${o.call.durationMs} ms`);
  const [read, acked, acted] = ['event-read-ms', 'event-acked-ms', 'event-acted-ms'].map((k) => Number(o.late[k]));
  t.ok(acked! - read! >= ACK_LATE_MS, `acknowledged ${acked! - read!} ms after reading`);
  t.ok(acted! >= acked!, 'acted (ignore) after the ack');
  t.deepEqual([o.late['event-ack'], o.late['event-action'], o.late['delayed']], ['ok', 'ignore', ''], 'the same event, finished');
  t.equal(o.state, 'Running', 'ignore: the domain stays');
});

suite.finish();

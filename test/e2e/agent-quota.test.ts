// The agent's report fits the guest's xenstore quotas, on real Xen 4.17 (C
// xenstored): dom0 writes values into control/testing that the guest could
// not store itself (a guest's node is refused from 2048 bytes, header and
// permissions included: protocol/report-limits.ts), and each still makes a
// report: event-seq advances and event-value says it was cut, with the full
// length and hash. Before the fix, 3,000 bytes made xenstored refuse the
// whole report (ENOSPC) and event-seq never moved.
import test from 'tape';
import { TESTING_NODE } from '../../protocol/control.ts';
import { parseCutValue, reportedValueIs, fnv1a64, REPORT_VALUE_MAX_BYTES } from '../../protocol/report-limits.ts';
import { encodeUtf8 } from '../../protocol/utf8.ts';
import { report, sendTesting, xlSuite } from './xl-fixture.ts';

const suite = xlSuite({ parallel: 1, cases: 1, file: 'agent-quota' });

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
  return { domid, dom0Max, sent, after: await report(x.driver, vm) };
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

suite.finish();

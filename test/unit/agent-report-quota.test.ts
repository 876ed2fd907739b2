// The report must fit the guest's xenstore quotas. dom0 may write up to 4096
// bytes into control/testing (it is not subject to the quota), but C
// xenstored refuses a guest's node of 2048 bytes or more, header and
// permissions included (protocol/report-limits.ts has the sources): the
// agent's report, quoting the value in event-value, was refused with ENOSPC
// on every retry and the event never reached data/xtv/. The test xenstored
// enforces the same quota; the agent cuts long values, saying so with the full
// length and a hash, and the report lands.
import test from 'tape';
import { startFixture, DOMID } from './agent-fixture.ts';
import { startTestXenstored } from '../../testing/test-xenstored.ts';
import { XenstoreClient } from '../../xenstore/client.ts';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';
import { REPORT_DIR, TESTING_NODE } from '../../protocol/control.ts';
import { REPORT_KEYS } from '../../protocol/report-keys.ts';
import { PING_NODE } from '../../protocol/echo-nodes.ts';
import { AGENT_NODES_MAX, REPORT_VALUE_MAX_BYTES, cutValue, fnv1a64, parseCutValue, reportedValueIs } from '../../protocol/report-limits.ts';
import { encodeUtf8 } from '../../protocol/utf8.ts';

const EVENT_VALUE = `${REPORT_DIR}/event-value`;
/** The most dom0's own tools can send: libxenstore's xs_talkv() refuses a payload (path, NUL, value) over 4096 bytes with E2BIG. */
const DOM0_MAX = 4096 - `/local/domain/${DOMID}/${TESTING_NODE}`.length - 1;

function junk(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = 0x21 + (x % 94); // printable ASCII, never a valid command
  }
  return out;
}

test('FNV-1a 64: the published test vectors', (t) => {
  t.equal(fnv1a64(new Uint8Array(0)), 'cbf29ce484222325');
  t.equal(fnv1a64(encodeUtf8('a')), 'af63dc4c8601ec8c');
  t.equal(fnv1a64(encodeUtf8('foobar')), '85944171f73967e8');
  t.end();
});

test('cutValue: fits, keeps the first bytes, marks length and hash, never splits a UTF-8 character', (t) => {
  const short = encodeUtf8('short');
  t.equal(cutValue(short, 100), short, 'a value that fits is left alone');
  const long = encodeUtf8('é'.repeat(1500)); // 3000 bytes
  const cut = cutValue(long, REPORT_VALUE_MAX_BYTES);
  t.ok(cut.length <= REPORT_VALUE_MAX_BYTES, `cut to ${cut.length} bytes`);
  t.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(cut), 'still valid UTF-8');
  const parsed = parseCutValue(cut);
  t.deepEqual(parsed && [parsed.bytes, parsed.fnv1a64], [3000, fnv1a64(long)], 'the marker: full length and hash');
  t.ok(reportedValueIs(long, cut), 'the harness recognises its value');
  t.notOk(reportedValueIs(encodeUtf8('é'.repeat(1499) + 'e'), cut), 'and not another of the same length');
  t.ok(reportedValueIs(short, short), 'an uncut value is itself');
  t.end();
});

test('the test xenstored refuses a guest node as C xenstored 4.17 does: 24 + 8 per permission + value + children >= 2048', async (t) => {
  const xs = await startTestXenstored({ domid: DOMID, quotas: true });
  const guest = new XenstoreClient(await connectUnixSocket(xs.socketPath), { requestTimeoutMs: 5000 });
  const code = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => 'ok',
      (e: { code?: string }) => e.code ?? String(e),
    );
  try {
    // data/ is libxl's [n5]: one permission, inherited by data/q.
    t.equal(await code(guest.write('data/q', 'v'.repeat(2048 - 24 - 8 - 1))), 'ok', '2015 bytes: 2047 in all');
    t.equal(await code(guest.write('data/q', 'v'.repeat(2048 - 24 - 8))), 'ENOSPC', '2016 bytes: 2048 in all');
    xs.store.write('data/q', 'v'.repeat(3000));
    t.equal(xs.store.read('data/q')?.length, 3000, 'dom0 is not subject to the quota');
    t.equal(await code(guest.write('data/r/s', 'v'.repeat(2016))), 'ENOSPC', 'nor is a new node');
    t.notOk(xs.store.exists('data/r'), 'and nothing of it is left');
  } finally {
    guest.close();
    await xs.close();
  }
  t.end();
});

test('2,000, 3,000, and up to 4,096 bytes of junk in control/testing: each reported, the value cut with its length and hash', async (t) => {
  const f = await startFixture();
  let seq = 0;
  for (const n of [2000, 3000, DOM0_MAX, 4096]) {
    const sent = junk(n);
    // 4096 is more than dom0's tools can send (DOM0_MAX), but what the agent reads is not up to it.
    const e = await f.send(TESTING_NODE, sent);
    t.equal(e.decision, 'rejected', `${n} bytes: received and rejected`);
    const r = f.report();
    t.equal(r['event-seq'], String(++seq), `${n} bytes: event-seq advanced to ${seq}`);
    const reported = f.xs.store.readBytes(EVENT_VALUE)!;
    t.ok(reported.length <= REPORT_VALUE_MAX_BYTES, `${n} bytes: event-value is ${reported.length} bytes`);
    const cut = parseCutValue(reported);
    t.deepEqual(cut && [cut.bytes, cut.fnv1a64], [n, fnv1a64(sent)], `${n} bytes: the value says it was cut, with length ${n} and its hash`);
    t.ok(reportedValueIs(sent, reported), `${n} bytes: and starts as sent`);
    t.equal(f.xs.store.read(TESTING_NODE), '', `${n} bytes: acknowledged`);
  }
  t.equal(f.report().errors, '0', 'no report write was refused');
  t.notOk(
    f.platform.lines.some((l) => /writing the report/.test(l)),
    'no report error on the console',
  );
  await f.close();
  t.end();
});

test('a smaller quota than Xen 4.17 default: the first report is refused, the retry cuts values to half and lands', async (t) => {
  const f = await startFixture({ quotas: { maxEntrySize: 1200 }, agent: { reportRetryBaseMs: 10 } });
  const sent = junk(1500);
  f.xs.store.write(TESTING_NODE, sent);
  await f.xs.store.waitFor(`${REPORT_DIR}/event-seq`, (v) => v === '1', 3000);
  await f.agent.idle();
  const r = f.report();
  t.equal(r.errors, '1', 'one refusal, counted');
  t.match(r['last-error']!, /writing the report: .*ENOSPC/, 'and named');
  const reported = f.xs.store.readBytes(EVENT_VALUE)!;
  t.ok(reported.length <= 1200 - 24 - 8 - 1, `event-value cut to ${reported.length} bytes`);
  t.ok(reportedValueIs(sent, reported), 'with its length and hash');
  t.ok(
    f.platform.lines.some((l) => /report values cut to \d+ bytes from now on/.test(l)),
    'the console says so',
  );
  await f.close();
  t.end();
});

test('the agent keeps its nodes few: the per-domain node quota (1000) is far', async (t) => {
  t.ok(REPORT_KEYS.length + 3 <= AGENT_NODES_MAX, `${REPORT_KEYS.length} report keys, pong and kernel-shutdown within ${AGENT_NODES_MAX}`);
  const f = await startFixture({ quotas: { maxEntries: 200 } });
  for (let i = 0; i < 5; i++) await f.send(TESTING_NODE, `next:${i % 2 ? 'reboot' : 'halt'}`);
  await f.send(TESTING_NODE, 'now:suspend');
  f.xs.store.write(PING_NODE, 'x');
  const nodes = Object.keys(f.xs.store.dump(REPORT_DIR)).length;
  t.ok(nodes <= AGENT_NODES_MAX, `${nodes} nodes under ${REPORT_DIR}`);
  t.equal(f.report().errors, '0');
  await f.close();
  t.end();
});

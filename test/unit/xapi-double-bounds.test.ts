// The XenAPI test double's bounds (issue #15 item 6): a body over the limit
// refused before it is all sent, a cap on connections, requests that must
// arrive in time while long calls still wait, sessions that expire and are
// capped, and PV_args that cannot add a line to the xl config. In-process, on
// the fake hypervisor, with small limits so that each test is quick.
import { connect, type Socket } from 'node:net';
import test from 'tape';
import { startEndpoint, type Limits, type RunningEndpoint } from '../../dom0/xapi-double/src/endpoint.ts';
import { DEFAULT_LIMITS } from '../../dom0/xapi-double/src/endpoint.ts';
import { xlConfig } from '../../dom0/xapi-double/src/xl-hypervisor.ts';
import { FakeHypervisor } from '../../testing/fake-hypervisor.ts';

const PASSWORD = 'bounds-password';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(limits: Partial<Limits>): Promise<{ ep: RunningEndpoint; hv: FakeHypervisor; port: number; close(): Promise<void> }> {
  const hv = new FakeHypervisor();
  const ep = await startEndpoint({
    user: 'root',
    password: PASSWORD,
    hypervisor: hv,
    http: { port: 0, host: '127.0.0.1' },
    lifecycle: { pollMs: 0, restartDelayMs: 0 },
    limits,
  });
  return {
    ep,
    hv,
    port: ep.httpPort!,
    async close() {
      await ep.close();
      await hv.close();
    },
  };
}

/** A raw connection: what it received and when it closed. */
function raw(port: number): { sock: Socket; data: () => string; closed: Promise<number> } {
  const sock = connect(port, '127.0.0.1');
  let got = '';
  const t0 = Date.now();
  sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
  sock.on('error', () => {});
  const closed = new Promise<number>((r) => sock.on('close', () => r(Date.now() - t0)));
  return { sock, data: () => got, closed };
}

async function jsonCall(port: number, method: string, params: unknown[]): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('the defaults: 4 MiB bodies, 64 connections, 60 s to send a request, sessions idle 24 h, at most 400', (t) => {
  t.deepEqual(DEFAULT_LIMITS, { maxBodyBytes: 4 * 1024 * 1024, maxConnections: 64, requestTimeoutMs: 60_000, sessionIdleMs: 86_400_000, maxSessions: 400 });
  t.end();
});

test('a body over the limit is refused with 413 and the connection closed, at once or as soon as it crosses the limit', async (t) => {
  const f = await start({ maxBodyBytes: 1024 });
  try {
    // Content-Length says too much: answered before a byte of the body is sent.
    const a = raw(f.port);
    a.sock.write('POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n');
    const aMs = await a.closed;
    t.ok(a.data().startsWith('HTTP/1.1 413 '), `413 from Content-Length: ${JSON.stringify(a.data().split('\r\n')[0])}`);
    t.ok(/connection: close/i.test(a.data()), 'Connection: close');
    t.ok(aMs < 20_000, `closed without waiting for the body or the 60 s request timeout (${aMs} ms)`);

    // No Content-Length (chunked): the body trickles in; the server stops at the limit.
    const b = raw(f.port);
    b.sock.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n');
    let sent = 0;
    let open = true;
    void b.closed.then(() => (open = false));
    const chunk = 'x'.repeat(256);
    for (let i = 0; i < 100 && open; i++) {
      b.sock.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      sent += chunk.length;
      await sleep(10);
    }
    t.notOk(open, 'the connection was closed');
    t.ok(sent < 100 * 256, `while the client was still sending (${sent} of ${100 * 256} bytes sent)`);
    t.ok(b.data() === '' || b.data().startsWith('HTTP/1.1 413 '), `413 (or reset before it could be read): ${JSON.stringify(b.data().split('\r\n')[0])}`);

    // Under the limit: answered as usual.
    const ok = await jsonCall(f.port, 'session.login_with_password', ['root', PASSWORD]);
    t.equal(ok.status, 200, 'a small body is answered');
    t.ok(String(ok.body.result).startsWith('OpaqueRef:'), 'and logs in');
  } finally {
    await f.close();
  }
});

test('connections beyond the cap are closed at once; a freed slot serves again', async (t) => {
  const f = await start({ maxConnections: 3 });
  try {
    const held = [raw(f.port), raw(f.port), raw(f.port)];
    // Each one answered once (keep-alive): surely accepted and counted.
    for (const h of held) h.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    for (let i = 0; i < 100 && !held.every((h) => h.data().includes('\r\n\r\n')); i++) await sleep(10);
    t.ok(
      held.every((h) => h.data().startsWith('HTTP/1.1 200 ')),
      'three connections served',
    );
    const extra = raw(f.port);
    extra.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const ms = await extra.closed;
    t.equal(extra.data(), '', 'the fourth got nothing');
    t.ok(ms < 20_000, `and was closed at once, not at the 60 s request timeout (${ms} ms)`);
    held[0]!.sock.destroy();
    await held[0]!.closed;
    await sleep(20);
    const again = raw(f.port);
    again.sock.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await again.closed;
    t.ok(again.data().startsWith('HTTP/1.1 200 '), 'a slot freed serves a new connection');
    for (const h of held) h.sock.destroy();
  } finally {
    await f.close();
  }
});

test('a request must arrive within the timeout; calls that wait (event.from) are not cut', async (t) => {
  const f = await start({ requestTimeoutMs: 300 });
  try {
    const silent = raw(f.port);
    const silentMs = await silent.closed;
    t.ok(silentMs >= 250 && silentMs < 20_000, `a connection that sends nothing is closed (${silentMs} ms)`);

    const slowHeaders = raw(f.port);
    slowHeaders.sock.write('POST /jsonrpc HTTP/1.1\r\nHost: x\r\n');
    const shMs = await slowHeaders.closed;
    t.ok(slowHeaders.data().startsWith('HTTP/1.1 408 '), `unfinished headers: 408 (${shMs} ms)`);

    const slowBody = raw(f.port);
    slowBody.sock.write('POST /jsonrpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"jsonrpc"');
    const sbMs = await slowBody.closed;
    t.ok(slowBody.data().startsWith('HTTP/1.1 408 '), `a body that stops coming: 408 (${sbMs} ms)`);
    t.ok(sbMs < 20_000, `cut off by the 300 ms timeout, not left open (${sbMs} ms)`);

    const login = await jsonCall(f.port, 'session.login_with_password', ['root', PASSWORD]);
    const session = String(login.body.result);
    const first = await jsonCall(f.port, 'event.from', [session, ['VM'], '', 0]);
    const token = String((first.body.result as { token: string }).token);
    const t0 = Date.now();
    const ev = await jsonCall(f.port, 'event.from', [session, ['VM'], token, 1.0]);
    const evMs = Date.now() - t0;
    t.equal(ev.status, 200, 'event.from waiting longer than the request timeout is answered');
    t.ok(ev.body.result !== undefined && evMs >= 900, `after its own timeout (${evMs} ms)`);
  } finally {
    await f.close();
  }
});

test('an idle session expires with SESSION_INVALID [ref]; one in a long call does not', async (t) => {
  const f = await start({ sessionIdleMs: 200 });
  const api = f.ep.api;
  const code = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (e: { code: string; params: string[] }) => [e.code, ...e.params],
    );
  try {
    const s = String(await api.call('session.login_with_password', ['root', PASSWORD]));
    t.equal(await code(api.call('pool.get_all', [s])), 'ok', 'a fresh session works');
    await sleep(120);
    t.equal(await code(api.call('pool.get_all', [s])), 'ok', 'use keeps it alive');
    await sleep(120);
    t.equal(await code(api.call('pool.get_all', [s])), 'ok', 'still alive: idle only 120 ms');
    await sleep(300);
    t.deepEqual(await code(api.call('pool.get_all', [s])), ['SESSION_INVALID', s], 'idle 300 ms: SESSION_INVALID with the ref');
    t.deepEqual(await code(api.call('session.logout', [s])), ['SESSION_INVALID', s], 'and it stays gone');

    // Over the wire, as xapi answers it.
    const overWire = await jsonCall(f.port, 'pool.get_all', [s]);
    t.deepEqual(overWire.body.error, { code: 1, message: 'SESSION_INVALID', data: [s] }, 'JSON-RPC error SESSION_INVALID [ref]');

    const w = String(await api.call('session.login_with_password', ['root', PASSWORD]));
    const { token } = (await api.call('event.from', [w, ['VM'], '', 0])) as { token: string };
    const t1 = Date.now();
    const wait = await code(api.call('event.from', [w, ['VM'], token, 0.5]));
    t.ok(Date.now() - t1 >= 450, `event.from waited its 0.5 s (${Date.now() - t1} ms)`);
    t.equal(wait, 'ok', 'an event.from longer than the idle time completes');
    t.equal(await code(api.call('pool.get_all', [w])), 'ok', 'and its session is alive after it');
  } finally {
    await f.close();
  }
});

test('sessions are capped: a login beyond drops the least recently used', async (t) => {
  const f = await start({ maxSessions: 3 });
  const api = f.ep.api;
  const alive = async (s: string) =>
    api.call('pool.get_all', [s]).then(
      () => true,
      () => false,
    );
  try {
    const login = async () => String(await api.call('session.login_with_password', ['root', PASSWORD]));
    const a = await login();
    await sleep(5);
    const b = await login();
    await sleep(5);
    const c = await login();
    await sleep(5);
    t.ok(await alive(a), 'a used again: now the most recent');
    await sleep(5);
    const d = await login();
    t.equal(api.sessionCount, 3, 'still three');
    t.notOk(await alive(b), 'b, the least recently used, is gone');
    t.ok((await alive(a)) && (await alive(c)) && (await alive(d)), 'a, c and d live');
    for (let i = 0; i < 20; i++) await login();
    t.equal(api.sessionCount, 3, 'any number of logins keeps three');
  } finally {
    await f.close();
  }
});

test('PV_args with a newline cannot add a line to the xl config; unquotable characters are refused', async (t) => {
  const f = await start({});
  const api = f.ep.api;
  try {
    const s = String(await api.call('session.login_with_password', ['root', PASSWORD]));
    const [tpl] = (await api.call('VM.get_by_name_label', [s, 'Other install media'])) as string[];
    const vm = String(await api.call('VM.clone', [s, tpl, 'bounds']));
    await api.call('VM.set_is_a_template', [s, vm, false]);
    await api.call('VM.set_PV_kernel', [s, vm, '/var/lib/xcp/guest/xtv-kernel']);
    await api.call('VM.set_PV_ramdisk', [s, vm, '/var/lib/xcp/guest/xtv-initrd']);
    await api.call('VM.set_HVM_boot_policy', [s, vm, '']);
    await api.call('VM.set_memory_limits', [s, vm, 32 << 20, 32 << 20, 32 << 20, 32 << 20]);
    const evil = 'console=hvc0"\non_poweroff = "destroy"\r\n\tkernel = "/tmp/x" \\';
    await api.call('VM.set_PV_args', [s, vm, evil]);
    await api.call('VM.start', [s, vm, false, false]);
    const domid = Number(await api.call('VM.get_domid', [s, vm]));
    const spec = f.hv.domains.get(domid)!.spec;
    t.equal(spec.cmdline, evil, 'the guest is given PV_args as it is, as XAPI gives it');
    const text = xlConfig(spec);
    const plain = xlConfig({ ...spec, cmdline: 'console=hvc0' });
    t.equal(text.split('\n').length, plain.split('\n').length, 'no line added');
    const keys = text
      .split('\n')
      .filter(Boolean)
      .map((l) => /^(\w+) = /.exec(l)?.[1]);
    t.deepEqual(
      keys,
      plain
        .split('\n')
        .filter(Boolean)
        .map((l) => /^(\w+) = /.exec(l)?.[1]),
      'the same settings, in the same order',
    );
    const line = text.split('\n').find((l) => l.startsWith('cmdline = '))!;
    t.equal(line, 'cmdline = "console=hvc0\\"\\non_poweroff = \\"destroy\\"\\r\\n\\tkernel = \\"/tmp/x\\" \\\\"', 'escaped as xl reads it');
    // Read back the way libxlu_cfg.c xlu__cfgl_dequote does (the escapes used here).
    const dequoted = line
      .slice('cmdline = "'.length, -1)
      .replace(/\\(["\\nrtabfv'])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', f: '\f', v: '\v' })[c] ?? c);
    t.equal(dequoted, evil, 'xl reads back the same bytes');
    t.equal(text.split('\n').filter((l) => l.startsWith('on_poweroff')).length, 1, 'one on_poweroff, ours ("preserve")');

    await api.call('VM.hard_shutdown', [s, vm]);
    for (const bad of ['a\x00b', 'a\x01b', 'a\x1bb', 'a\x7fb']) {
      await api.call('VM.set_PV_args', [s, vm, bad]);
      const r = await api.call('VM.start', [s, vm, false, false]).then(
        () => 'started',
        (e: { code: string; params: string[] }) => [e.code, ...e.params.slice(0, 2)],
      );
      t.deepEqual(r, ['INVALID_VALUE', 'PV_args', bad], `${JSON.stringify(bad)}: INVALID_VALUE [PV_args; value; reason] at start`);
    }
    t.equal(await api.call('VM.get_power_state', [s, vm]), 'Halted', 'nothing was built');
    t.throws(() => xlConfig({ ...spec, cmdline: 'a\x00b' }), /control character/, 'and the renderer refuses them too');
  } finally {
    await f.close();
  }
});

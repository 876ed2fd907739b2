// Xen's own C client (libxenstore, through Debian's xenstore-utils) against
// the test xenstored: if Xen's client and ours both work with it, the test
// server speaks the real protocol and not just our reading of it. libxenstore
// connects to $XENSTORED_PATH when set. Skipped when xenstore-utils is absent.
import test from 'tape';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestXenstored } from '../../testing/test-xenstored.ts';

const run = promisify(execFile);
const available = spawnSync('sh', ['-c', 'command -v xenstore-read'], { encoding: 'utf8' }).status === 0;

async function xs(socket: string, cmd: string, ...args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    // Async on purpose: the server runs in this process and must keep answering.
    const r = await run(cmd, args, { env: { ...process.env, XENSTORED_PATH: socket }, encoding: 'utf8', timeout: 10000 });
    return { ok: true, out: r.stdout.trimEnd(), err: r.stderr.trim() };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    return { ok: false, out: String(x.stdout ?? '').trimEnd(), err: String(x.stderr ?? '').trim() };
  }
}

test('libxenstore (xenstore-utils) works against the test xenstored', { skip: !available && 'xenstore-utils not installed' }, async (t) => {
  const srv = await startTestXenstored({ domid: 5 });
  const dom0 = srv.dom0SocketPath;
  const guest = srv.socketPath;
  try {
    t.deepEqual(await xs(dom0, 'xenstore-read', '/local/domain/5/domid'), { ok: true, out: '5', err: '' }, 'READ');
    t.ok((await xs(dom0, 'xenstore-write', '/local/domain/5/data/x', 'héllo')).ok, 'WRITE');
    t.equal(srv.store.read('data/x'), 'héllo', 'value stored byte for byte (UTF-8)');
    t.equal(
      (await xs(dom0, 'xenstore-list', '/local/domain/5/control')).out,
      'shutdown\nfeature-poweroff\nfeature-reboot\nfeature-suspend\nfeature-s3\nfeature-s4\nsysrq',
      'DIRECTORY',
    );
    const ls = await xs(dom0, 'xenstore-ls', '-p', '/local/domain/5/data');
    t.match(ls.out, /^x = "h\\xc3\\xa9llo" .*\(n5\)$/m, "xenstore-ls: transaction, DIRECTORY, READ, GET_PERMS (dom0's node inherits n5 from data/)");
    t.ok((await xs(dom0, 'xenstore-chmod', '/local/domain/5/data/x', 'n5', 'r0')).ok, 'SET_PERMS');
    t.deepEqual(srv.store.getPerms('data/x'), ['n5', 'r0']);
    t.ok((await xs(dom0, 'xenstore-rm', '/local/domain/5/data/x')).ok, 'RM');
    t.notOk(srv.store.exists('data/x'));
    const missing = await xs(dom0, 'xenstore-read', '/local/domain/5/nope');
    t.notOk(missing.ok, 'ENOENT is a failure for xenstore-read');

    const names = Array.from({ length: 300 }, (_, i) => `child-with-a-long-name-${i}`);
    for (const n of names) srv.store.write(`data/big/${n}`, '');
    t.deepEqual((await xs(dom0, 'xenstore-list', '/local/domain/5/data/big')).out.split('\n'), names, 'E2BIG on DIRECTORY, then DIRECTORY_PART pages');
    t.ok(
      srv.requests.some((r) => r.op === 'DIRECTORY_PART'),
      'libxenstore used DIRECTORY_PART',
    );

    // As the guest: relative paths, and the libxl permissions.
    t.equal((await xs(guest, 'xenstore-read', 'domid')).out, '5', 'relative READ as domid 5');
    const denied = await xs(guest, 'xenstore-write', 'control/new', 'x');
    t.notOk(denied.ok, 'EACCES under control/');
    t.match(denied.err, /could not write path control\/new/, denied.err);

    // WATCH fires once at registration: xenstore-watch -n 1 prints that event and exits.
    const w = await xs(guest, 'xenstore-watch', '-n', '1', 'control/shutdown');
    t.deepEqual([w.ok, w.out], [true, 'control/shutdown'], 'initial watch event, relative path');
  } finally {
    await srv.close();
  }
});

// #15 item 11: the per-host archive of the XenAPI double is made in the state
// directory; a quote in that directory's name must not break (or steer) the
// shell step that packs it.
import test from 'tape';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCpio } from '../../harness/embedded/xapi-double.ts';

test('makeCpio: a state directory with a quote in its name; the archive private to its user', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xtv-cpio-'));
  try {
    const dir = join(root, "it's $(touch pwned) state");
    mkdirSync(dir);
    const out = join(dir, 'host.cpio.gz');
    makeCpio(dir, { 'etc/xtv/xapi/password': { content: 'secret\n', mode: 0o600 } }, out);
    const list = execFileSync('sh', ['-c', 'gzip -dc "$1" | cpio -t --quiet', 'sh', out], { encoding: 'utf8' });
    t.ok(list.split('\n').includes('etc/xtv/xapi/password'), 'packed');
    t.equal((statSync(out).mode & 0o777).toString(8), '600', 'mode 600');
    t.throws(() => statSync(join(root, 'pwned')), 'nothing in the name ran');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  t.end();
});

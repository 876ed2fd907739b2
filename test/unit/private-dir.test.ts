// #15: the state directory and the SSH control socket's directory are the
// user's alone (mode 0700), also when they existed before with looser modes.
import test from 'tape';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir, userSocketDir } from '../../harness/embedded/private-dir.ts';
import { claimStateDir } from '../../harness/embedded/state.ts';
import { stateFiles } from '../../harness/embedded/paths.ts';

const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);

test('ensurePrivateDir: made 0700; an existing 0755 one of ours tightened; a symlink refused', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xtv-private-'));
  try {
    const fresh = join(root, 'a', 'b');
    ensurePrivateDir(fresh);
    t.equal(mode(fresh), '700', 'a new directory: 700');
    const loose = join(root, 'loose');
    mkdirSync(loose);
    chmodSync(loose, 0o755);
    ensurePrivateDir(loose);
    t.equal(mode(loose), '700', 'an existing 755 one: 700');
    const link = join(root, 'link');
    symlinkSync(loose, link);
    t.throws(() => ensurePrivateDir(link), /not a directory/, 'a symbolic link is not taken');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  t.end();
});

test('the state directory of `xtv host up` ends 0700 even when it was 0755', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'xtv-private-'));
  try {
    const dir = join(root, 'state');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    const release = claimStateDir(dir);
    release();
    t.equal(mode(dir), '700');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  t.end();
});

test("a control socket whose state path is too long goes to this user's private directory, not a shared name in /tmp", (t) => {
  const deep = join(tmpdir(), 'x'.repeat(100), 'state');
  const f = stateFiles(deep);
  t.ok(f.controlPath.startsWith(`${userSocketDir()}/`), f.controlPath);
  t.equal(userSocketDir({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/xtv', '$XDG_RUNTIME_DIR first');
  t.ok(userSocketDir({}).endsWith(`/xtv-${process.getuid!()}`), 'else <tmp>/xtv-<uid>');
  t.end();
});

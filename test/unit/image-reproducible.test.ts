// The test image's initramfs is reproducible: guest/image/build-initramfs.sh
// run twice on the same inputs gives the same bytes, and any input change
// shows. Small stand-in inputs keep it fast (no kernel, no qjs build); the
// script does not care what the binaries are.
import test from 'tape';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = join(root, 'guest', 'image', 'build-initramfs.sh');

/** The archive tools the build script needs (scripts/deps.sh installs them; npm test runs it first). */
const missingTools = ['cpio', 'gzip'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
const skip = missingTools.length > 0 ? `${missingTools.join(', ')} not installed (bash scripts/deps.sh)` : false;

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function inputs(dir: string, agentText: string) {
  const busybox = join(dir, 'busybox');
  const qjs = join(dir, 'qjs');
  const agent = join(dir, 'agent.js');
  writeFileSync(busybox, '#!/bin/sh\necho stand-in busybox\n');
  writeFileSync(qjs, '#!/bin/sh\necho stand-in qjs\n');
  writeFileSync(agent, agentText);
  chmodSync(busybox, 0o700);
  chmodSync(qjs, 0o600); // modes and mtimes of the inputs must not leak into the archive
  utimesSync(agent, new Date(), new Date());
  return { busybox, qjs, agent };
}

function build(dir: string, files: ReturnType<typeof inputs>, out: string, env: NodeJS.ProcessEnv = {}) {
  execFileSync('bash', [script, '--out', out, '--busybox', files.busybox, '--qjs', files.qjs, '--agent', files.agent], {
    env: { ...process.env, ...env, TMPDIR: dir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return sha256(out);
}

/** `cpio -tv` of the gzip-compressed archive: name, mode, owner, mtime per line. */
function listing(file: string): string[] {
  const cpio = execFileSync('gzip', ['-dc', file]);
  return execFileSync('cpio', ['-itv', '--quiet'], { input: cpio, env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' } })
    .toString()
    .trim()
    .split('\n');
}

test('initramfs: same inputs, same sha256; a changed input changes it', { skip }, (t) => {
  const a = mkdtempSync(join(tmpdir(), 'xtv-image-a-'));
  const b = mkdtempSync(join(tmpdir(), 'xtv-image-b-'));
  try {
    const first = build(a, inputs(a, 'export const agent = 1;\n'), join(a, 'initrd.gz'));
    // Different directories, input mtimes and a different umask-free moment:
    // only the contents may count.
    const second = build(b, inputs(b, 'export const agent = 1;\n'), join(b, 'initrd.gz'), { SOURCE_DATE_EPOCH: undefined });
    t.equal(second, first, `two builds give the same sha256 (${first.slice(0, 16)}…)`);

    const changed = build(b, inputs(b, 'export const agent = 2;\n'), join(b, 'initrd2.gz'));
    t.notEqual(changed, first, 'another agent bundle gives another archive');

    const lines = listing(join(a, 'initrd.gz'));
    // the name follows the date (device entries have "major, minor" in place of a size)
    const names = lines.map((l) => l.replace(/^.* 2024 /, ''));
    t.deepEqual(names.slice(0, 2), ['bin', 'bin/busybox'], 'the list starts sorted');
    t.ok(names.includes('init') && names.includes('bin/qjs') && names.includes('xtv/agent.js'), '/init, /bin/qjs and /xtv/agent.js are there');
    t.ok(
      names.some((n) => n.startsWith('bin/sh -> busybox')),
      'applets are symlinks to busybox',
    );
    t.ok(
      lines.some((l) => l.startsWith('c') && l.includes('dev/console')),
      '/dev/console is a character device',
    );
    t.deepEqual(
      names.filter((n) => !n.includes(' -> ')),
      [...names.filter((n) => !n.includes(' -> '))].sort(),
      'names are in sorted order',
    );
    t.ok(
      lines.every((l) => /^\S+\s+\d+\s+root\s+root\s/.test(l)),
      'every entry is owned by root:root',
    );
    t.ok(
      lines.every((l) => l.includes(' 2024 ')),
      'every mtime is the fixed epoch (2024-01-01)',
    );
    t.ok(
      lines.some((l) => /^-rwxr-xr-x .* bin\/qjs$/.test(l)),
      'qjs is 0755 whatever the input mode was',
    );
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
  t.end();
});

test('initramfs: gzip with no name and no time in its header (what CONFIG_RD_GZIP unpacks, reproducibly)', { skip }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-image-c-'));
  try {
    build(dir, inputs(dir, 'x'), join(dir, 'initrd.gz'));
    const head = readFileSync(join(dir, 'initrd.gz')).subarray(0, 10);
    t.deepEqual([...head.subarray(0, 3)], [0x1f, 0x8b, 8], 'gzip, deflate');
    t.equal(head[3]! & 0x08, 0, 'no file name stored (FNAME clear)');
    t.equal(head.readUInt32LE(4), 0, 'no modification time stored');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('initramfs: missing input is a clear error, not an archive', { skip }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-image-d-'));
  try {
    const files = { ...inputs(dir, 'x'), qjs: join(dir, 'no-such-qjs') };
    t.throws(() => build(dir, files, join(dir, 'initrd.gz')), /input not found: .*no-such-qjs/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

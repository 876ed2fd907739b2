// The guest kernel's inputs, checked without building a kernel: the config
// fragment asks for what a Xen PV + PVH guest with the agent needs, the
// fragment checker catches options Kconfig dropped, and the patch applies to
// Debian's linux-source-6.1 and moves every use of control/shutdown.
import test from 'tape';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const image = join(root, 'guest', 'image');
const fragment = readFileSync(join(image, 'kernel.config'), 'utf8');
const LINUX_SOURCE = '/usr/src/linux-source-6.1.tar.xz';

test('kernel.config asks for PV, PVH, save/restore, hvc, xenbus needs, sysrq and a gzip initramfs', (t) => {
  const wanted = [
    'CONFIG_64BIT',
    'CONFIG_XEN',
    'CONFIG_XEN_PV',
    'CONFIG_XEN_PVH',
    'CONFIG_XEN_PVHVM',
    'CONFIG_ACPI',
    'CONFIG_XEN_SAVE_RESTORE',
    'CONFIG_HIBERNATE_CALLBACKS',
    'CONFIG_PM_SLEEP',
    'CONFIG_HVC_XEN',
    'CONFIG_PRINTK',
    'CONFIG_BLK_DEV_INITRD',
    'CONFIG_RD_GZIP',
    'CONFIG_PROC_FS',
    'CONFIG_SYSFS',
    'CONFIG_DEVTMPFS',
    'CONFIG_EPOLL',
    'CONFIG_FUTEX',
    'CONFIG_BINFMT_ELF',
    'CONFIG_BINFMT_SCRIPT',
    'CONFIG_MAGIC_SYSRQ',
  ];
  for (const sym of wanted) t.ok(fragment.split('\n').includes(`${sym}=y`), `${sym}=y`);
  t.ok(fragment.includes('# CONFIG_RD_XZ is not set'), 'only the gzip initramfs decoder (build-initramfs.sh uses gzip)');
  t.end();
});

function verify(config: string) {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-kcfg-'));
  try {
    writeFileSync(join(dir, 'frag'), 'CONFIG_A=y\n# CONFIG_B is not set\n# a comment\nCONFIG_C=y\n');
    writeFileSync(join(dir, '.config'), config);
    const r = spawnSync('bash', [join(image, 'verify-kernel-config.sh'), join(dir, 'frag'), join(dir, '.config')]);
    return { status: r.status, out: r.stdout.toString() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('verify-kernel-config.sh: passes when every line holds, names each one that does not', (t) => {
  t.deepEqual(verify('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n'), { status: 0, out: 'all 3 options of frag hold in .config\n' });
  const r = verify('CONFIG_A=m\nCONFIG_B=y\n');
  t.equal(r.status, 1, 'fails');
  t.deepEqual(r.out.trim().split('\n'), [
    'wanted CONFIG_A=y, got: CONFIG_A=m',
    'wanted CONFIG_B off, got: CONFIG_B=y',
    'wanted CONFIG_C=y, got: CONFIG_C absent',
  ]);
  t.end();
});

test(
  'the patches apply to linux-source-6.1: xen_shutdown_node moves every use of control/shutdown; Xen gives cpu_khz',
  { skip: !existsSync(LINUX_SOURCE) },
  (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'xtv-kpatch-'));
    try {
      const patches = readdirSync(join(image, 'patches'))
        .filter((f) => f.endsWith('.patch'))
        .sort();
      // Only the files the patches touch; --occurrence=1: stop reading the 130 MB archive once they are out.
      const touched = [
        ...new Set(
          patches.flatMap((p) => [...readFileSync(join(image, 'patches', p), 'utf8').matchAll(/^\+\+\+ b\/(\S+)/gm)].map((m) => `linux-source-6.1/${m[1]}`)),
        ),
      ];
      execFileSync('tar', ['-C', dir, '-xf', LINUX_SOURCE, '--occurrence=1', ...touched]);
      const src = join(dir, 'linux-source-6.1');
      for (const p of patches) {
        execFileSync('patch', ['-d', src, '-p1', '--forward', '--no-backup-if-mismatch', '-i', join(image, 'patches', p)], { stdio: 'pipe' });
        t.pass(`${p} applies`);
      }
      const c = readFileSync(join(src, 'drivers', 'xen', 'manage.c'), 'utf8');
      t.ok(c.includes('__setup("xen_shutdown_node=", parse_xen_shutdown_node);'), 'boot parameter xen_shutdown_node=');
      t.ok(c.includes('static char shutdown_node[SHUTDOWN_NODE_SIZE] = "control/shutdown";'), 'stock node by default');
      t.ok(c.includes('.node = shutdown_node,'), 'the watch follows it');
      t.ok(c.includes('xenbus_read(xbt, shutdown_node, "", NULL)'), 'the read follows it');
      t.ok(c.includes('xenbus_write(xbt, shutdown_node, "", "")'), 'the acknowledgement follows it');
      t.notOk(/"control", "shutdown"/.test(c), 'no use of control/shutdown is left behind');
      t.ok(c.includes('"feature-%s"'), 'the control/feature-* flags are still written');
      const time = readFileSync(join(src, 'arch', 'x86', 'xen', 'time.c'), 'utf8');
      t.match(
        time,
        /x86_platform\.calibrate_tsc = xen_tsc_khz;[^}]*x86_platform\.calibrate_cpu = xen_tsc_khz;/,
        'Xen guests take cpu_khz from Xen too (no PIT probe)',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    t.end();
  },
);

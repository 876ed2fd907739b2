// QEMU's command line for the embedded host. Pure: the controller decides the
// values, this only spells them the way QEMU and Xen want them.
//
// Facts this relies on (docs/xen-notes.md, with their sources): Xen is
// loaded through multiboot, gunzipped; dom0's kernel and initramfs are
// multiboot modules separated by commas; software emulation with
// `qemu64,+svm,+npt` (npt gives Xen HAP, which PVH guests need; `-cpu max`
// crashes dom0; Xen under KVM stops with an emulation failure).

export interface QemuConfig {
  xen: string;
  kernel: string;
  initrd: string;
  /** Memory of the whole machine (Xen + dom0 + guests). */
  memoryMiB: number;
  dom0MemoryMiB: number;
  cpus: number;
  /** Host ports on 127.0.0.1 forwarded to ports in dom0 (ssh: 22 among them). */
  forwards: Array<{ hostPort: number; guestPort: number }>;
  bootLog: string;
  pidFile: string;
  /** Extra words for dom0's kernel command line. */
  dom0Args?: string;
}

/** In -initrd, a comma separates modules; a literal comma is written twice. */
export function escapeModuleArg(s: string): string {
  return s.replaceAll(',', ',,');
}

/** The same rule for -chardev/-netdev option values. */
function escapeOption(s: string): string {
  return s.replaceAll(',', ',,');
}

export function xenCommandLine(c: Pick<QemuConfig, 'dom0MemoryMiB' | 'cpus'>): string {
  return [
    'console=com1',
    'com1=115200,8n1',
    `dom0_mem=${c.dom0MemoryMiB}M,max:${c.dom0MemoryMiB}M`,
    `dom0_max_vcpus=${c.cpus}`,
    // QEMU's RAM starts zeroed and holds no earlier guest's data, so Xen's scrub of free RAM
    // (default: in the background, on idle CPUs) only costs emulated CPU: about 6 CPU-s of a
    // 2 GiB host, at the moment the e2e files boot their guests (docs/xen-notes.md).
    'bootscrub=0',
    // No `noreboot`: Xen reboots after a panic or a dom0 crash, and QEMU's
    // -no-reboot turns that into QEMU exiting, so a crashed host is seen at
    // once instead of through a timeout.
  ].join(' ');
}

export function buildQemuArgs(c: QemuConfig): string[] {
  if (!Number.isInteger(c.memoryMiB) || c.memoryMiB <= c.dom0MemoryMiB) {
    throw new Error(`machine memory (${c.memoryMiB} MiB) must be larger than dom0's (${c.dom0MemoryMiB} MiB)`);
  }
  if (!Number.isInteger(c.cpus) || c.cpus < 1) throw new Error(`cpus must be a positive integer, got ${c.cpus}`);
  const dom0Cmdline = ['console=hvc0', 'quiet', c.dom0Args ?? ''].filter(Boolean).join(' ');
  const hostfwd = c.forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`).join('');
  return [
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-accel',
    'tcg',
    '-cpu',
    'qemu64,+svm,+npt',
    '-m',
    String(c.memoryMiB),
    '-smp',
    String(c.cpus),
    '-chardev',
    `file,id=serial0,path=${escapeOption(c.bootLog)}`,
    '-serial',
    'chardev:serial0',
    '-kernel',
    c.xen,
    '-append',
    xenCommandLine(c),
    '-initrd',
    `${escapeModuleArg(c.kernel)} ${escapeModuleArg(dom0Cmdline)},${escapeModuleArg(c.initrd)}`,
    '-netdev',
    `user,id=net0${hostfwd}`,
    '-device',
    'e1000,netdev=net0',
    '-pidfile',
    c.pidFile,
  ];
}

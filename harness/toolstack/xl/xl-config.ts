// The xl side of `xtv install`, as pure functions: where things go in dom0,
// and the config file, like xen-create-image writes one. The first line is
// the marker that says xtv made the file: `xtv uninstall`, `xtv gc` and
// listOwned only ever touch files that carry it.
import type { DomainType } from '../driver.ts';
import { quoteXlString } from '../../../protocol/xl-config-syntax.ts';

export const XL_MARKER = '# made by xtv';

/** Where the xl driver keeps its files in dom0. */
export interface XlPaths {
  /** One <name>.cfg per VM. */
  configDir: string;
  /** Kernel and initrd by content: <imageDir>/<sha256>/<file name>. */
  imageDir: string;
  /** `xl save` images: <saveDir>/<name>.chk. */
  saveDir: string;
  /** Where xenconsoled logs guest consoles (guest-<name>.log); absent: found out from how xenconsoled runs (console-log.ts). */
  consoleLogDir?: string;
}

export const DEFAULT_XL_PATHS: XlPaths = {
  configDir: '/etc/xen/xtv',
  imageDir: '/var/lib/xtv/images',
  saveDir: '/var/lib/xtv/save',
};

export const configPath = (p: XlPaths, name: string): string => `${p.configDir}/${name}.cfg`;
export const savePath = (p: XlPaths, name: string): string => `${p.saveDir}/${name}.chk`;
export const imagePath = (p: XlPaths, sha256: string, fileName: string): string => `${p.imageDir}/${sha256}/${fileName}`;

/** xl's domain names: what libxl accepts, kept to characters that need no quoting anywhere (file names, shell, xenstore). */
export const VM_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkVmName(name: string): void {
  if (!VM_NAME_PATTERN.test(name)) {
    throw new Error(`bad VM name ${JSON.stringify(name)}: 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit`);
  }
}

/** xl's on_poweroff / on_reboot / on_crash values (xl.cfg(5)). */
export const XL_ACTIONS = ['destroy', 'restart', 'rename-restart', 'preserve', 'coredump-destroy', 'coredump-restart', 'soft-reset'] as const;

export interface XlConfigSpec {
  name: string;
  type: DomainType;
  kernel: string;
  ramdisk: string;
  extra: string;
  memoryMiB: number;
  vcpus?: number;
  onPoweroff?: string;
  onReboot?: string;
  onCrash?: string;
  /** Recorded in the file's header, for people and for checks. */
  kernelSha256: string;
  initrdSha256: string;
  /** Who made it (vm-owner.ts formatOwner), appended to the marker line as "; owner ..." for listOwned to read back. */
  owner?: string;
}

/** The marker line's owner text; undefined when the line carries none (older configs). */
export function ownerOfMarkerLine(line: string): string | undefined {
  if (!line.startsWith(XL_MARKER)) return undefined;
  const m = /; owner (.+)$/.exec(line.trimEnd());
  return m ? m[1] : undefined;
}

/**
 * A string in xl's config syntax. libxlu reads "..." with backslash escapes;
 * control characters have no business in any value we write, so they are
 * refused rather than escaped.
 */
export function xlString(value: string): string {
  // Stricter than the syntax (which escapes \n, \t, ...): xtv's own values (names, paths, kernel
  // arguments) have no reason to hold any control character, so one is a mistake to report.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\x00-\x1f\x7f]/.test(value)) throw new Error(`value ${JSON.stringify(value)} holds a control character; xl configs cannot carry it`);
  return quoteXlString(value);
}

/** Owner text for a comment line: one line, no control characters. */
function markerText(owner: string): string {
  // eslint-disable-next-line no-control-regex -- control characters (a newline above all) would end the comment
  if (/[\x00-\x1f\x7f]/.test(owner)) throw new Error(`owner ${JSON.stringify(owner)} holds a control character`);
  return owner;
}

/** The config file's text. Deterministic: the same spec gives the same bytes, so install can tell "unchanged". */
export function renderXlConfig(c: XlConfigSpec): string {
  checkVmName(c.name);
  if (!Number.isInteger(c.memoryMiB) || c.memoryMiB < 1) throw new Error(`memory must be a whole number of MiB, got ${c.memoryMiB}`);
  for (const [k, v] of [
    ['on_poweroff', c.onPoweroff],
    ['on_reboot', c.onReboot],
    ['on_crash', c.onCrash],
  ] as const) {
    if (v !== undefined && !(XL_ACTIONS as readonly string[]).includes(v))
      throw new Error(`${k} must be one of ${XL_ACTIONS.join(', ')}, got ${JSON.stringify(v)}`);
  }
  const lines = [
    `${XL_MARKER}: remove it with 'xtv uninstall ${c.name}' (or 'xtv gc'), not by hand${c.owner ? `; owner ${markerText(c.owner)}` : ''}`,
    `# xtv: ${JSON.stringify({ kernelSha256: c.kernelSha256, initrdSha256: c.initrdSha256 })}`,
    `name = ${xlString(c.name)}`,
    `type = ${xlString(c.type)}`,
    `kernel = ${xlString(c.kernel)}`,
    `ramdisk = ${xlString(c.ramdisk)}`,
    `extra = ${xlString(c.extra)}`,
    `memory = ${c.memoryMiB}`,
    `vcpus = ${c.vcpus ?? 1}`,
  ];
  if (c.onPoweroff) lines.push(`on_poweroff = ${xlString(c.onPoweroff)}`);
  if (c.onReboot) lines.push(`on_reboot = ${xlString(c.onReboot)}`);
  if (c.onCrash) lines.push(`on_crash = ${xlString(c.onCrash)}`);
  return lines.join('\n') + '\n';
}

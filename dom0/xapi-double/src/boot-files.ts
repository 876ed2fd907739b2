// Which kernel and ramdisk a PV start hands to the domain builder, and how a
// start fails when they are not allowed, line by line (profiles.ts
// bootPathCheck). The errors are the real ones, parameters included.
import { errors } from './errors.ts';
import type { Hypervisor } from './hypervisor.ts';
import { printedException, printedUnixError } from './ocaml.ts';
import type { Profile } from './profiles.ts';

export interface BootFiles {
  kernel: string;
  /** '' when the VM has no ramdisk. */
  ramdisk: string;
}

/** The files a start boots, or the error the start fails with. `kernel`, `ramdisk`: VM.PV_kernel, VM.PV_ramdisk. */
export function bootFiles(profile: Profile, hv: Hypervisor, kernel: string, ramdisk: string): Promise<BootFiles> {
  return profile.bootPathCheck === 'refuse' ? refuse(profile, hv, kernel, ramdisk) : blank(profile, hv, kernel, ramdisk);
}

/**
 * The current line (ocaml/xapi/xapi_xenops.ml kernel_path and make_direct_boot_record, from
 * v24.20.0 on): each path is realpath'd, must be a regular file, and must lie in an allowed
 * directory; otherwise INVALID_VALUE [kernel|ramdisk; path as given; reason]. The builder gets
 * the real path. No ramdisk (PV_ramdisk "") is not checked (Helpers.boot_method_of_vm).
 */
async function refuse(profile: Profile, hv: Hypervisor, kernel: string, ramdisk: string): Promise<BootFiles> {
  const resolve = async (name: string, path: string): Promise<string> => {
    let real: string;
    try {
      real = await hv.realpath(path);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ENOENT') throw errors.invalidValue(name, path, 'File does not exist');
      throw errors.invalidValue(name, path, typeof code === 'string' ? printedUnixError(code, 'realpath', path) : String(err));
    }
    if (!(await hv.isRegularFile(real))) throw errors.invalidValue(name, path, 'Is not a regular file');
    if (!profile.bootDirs.some((d) => real.startsWith(d))) {
      throw errors.invalidValue(name, path, `Is not in any of the allowed kernel directories: [${profile.bootDirs.join('; ')}]`);
    }
    return real;
  };
  const k = await resolve('kernel', kernel);
  const r = ramdisk === '' ? '' : await resolve('ramdisk', ramdisk);
  return { kernel: k, ramdisk: r };
}

/**
 * The 1.249 line: xapi replaces a path that is not under the allowed directory, or that holds
 * "..", by "" and says nothing (xapi_xenops.ml is_boot_file_whitelisted and
 * make_direct_boot_record @ v1.249.42). xenopsd then builds with it: Domain.build checks the
 * kernel, then the ramdisk, with assert_file_is_readable, whose Could_not_read_file reaches
 * xapi as xenopsd's Internal_error (xenopsd 0.150 xc/domain.ml build; lib/xenops_task.ml
 * marshal_exn; xenopsd's dune-project is lang 1.11, so the module path is plain "Domain"), and
 * xapi answers INTERNAL_ERROR ["xenopsd internal error: ..."] (transform_xenops_exn).
 */
async function blank(profile: Profile, hv: Hypervisor, kernel: string, ramdisk: string): Promise<BootFiles> {
  const allowed = (p: string) => profile.bootDirs.some((d) => p.startsWith(d)) && !p.includes('..');
  const k = allowed(kernel) ? kernel : '';
  const r = ramdisk === '' || allowed(ramdisk) ? ramdisk : '';
  const unreadable = (p: string) => errors.internal(`xenopsd internal error: ${printedException('Domain.Could_not_read_file', p)}`);
  if (!(await hv.isReadable(k))) throw unreadable(k);
  // A ramdisk replaced by "" is still a ramdisk (Some ""), and "" cannot be read.
  if (ramdisk !== '' && !(await hv.isReadable(r))) throw unreadable(r);
  return { kernel: k, ramdisk: r };
}

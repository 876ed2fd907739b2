// What differs between the XAPI versions users run, and how the driver tells
// them apart from the host's software_version. Two lines matter today:
//   - 1.249 (Citrix Hypervisor 8.2 CU1, XCP-ng 8.2 LTS);
//   - 23.x and later (XenServer 8, XCP-ng 8.3).
// Facts and cites: docs/xapi-behaviour.md §4 (xapi-project/xen-api at
// v1.249.42 and e2ee48d688). Pure functions; the driver reads the record.
//
// The version to compare is software_version's `xapi_build` ("24.11.0", from
// v22.9.0 on), else its `xapi` ("MAJOR.MINOR"; the 1.249 line reports a
// hard-coded "1.20"), as XenCenter reads it (xenadmin Host.cs GetXapiVersion).
// product_version does not tell the line of a XenServer 8.

export interface XapiVersion {
  /** For messages and reports, e.g. "XCP-ng 8.2.1 (xapi 1.20)" or "XenServer 8.4.0 (xapi 25.6.0)". */
  label: string;
  /** xapi's MAJOR.MINOR; null when the host reports none (then treated as the old line). */
  xapi: [number, number] | null;
  /** The dom0 directory this xapi boots PV kernels and ramdisks from (PV_kernel must be inside it). */
  bootDir: string;
  /** Whether domain_type pvh exists (direct-kernel PVH guests). */
  pvh: boolean;
  /** Whether xenopsd reads the suspend timeouts from its config file (else 30 s and 1200 s, literals). */
  suspendTimeoutsTunable: boolean;
  /** Whether xapi refuses to suspend a guest that says why it cannot (VM_NON_SUSPENDABLE). */
  refusesNonSuspendable: boolean;
}

function parseMajorMinor(v: string | undefined): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function atLeast(v: [number, number] | null, major: number, minor: number): boolean {
  return v !== null && (v[0] > major || (v[0] === major && v[1] >= minor));
}

/** What the driver needs to know about a host's XAPI, from host.software_version. */
export function xapiVersionOf(sv: Readonly<Record<string, string>>): XapiVersion {
  const raw = sv['xapi_build'] ?? sv['xapi'];
  const xapi = parseMajorMinor(raw);
  const product = [sv['product_brand'] ?? sv['platform_name'] ?? 'XAPI', sv['product_version'] ?? sv['platform_version'] ?? ''].filter(Boolean).join(' ');
  return {
    label: `${product} (xapi ${xapi ? raw : 'version not reported: taken as the 1.249 line'})`,
    xapi,
    // /boot/guest/ only before v23.9.0 (v1.249.42 xapi_xenops.ml is_boot_file_whitelisted); from
    // v23.9.0 also /var/lib/xcp/guest (commit d582ce3df7), and only it from v24.20.0 (5dc2900f1f).
    bootDir: atLeast(xapi, 23, 9) ? '/var/lib/xcp/guest' : '/boot/guest',
    // domain_type pvh: commit 1f1bf9d010, first in v23.9.0 (v1.249.42 datamodel_vm.ml has no pvh).
    pvh: atLeast(xapi, 23, 9),
    // vm-suspend-ack-timeout / vm-suspend-timeout: commit aabf39f0f2, first in v26.3.0.
    suspendTimeoutsTunable: atLeast(xapi, 26, 3),
    // xapi_vm_lifecycle.ml check_op_for_feature raises VM_NON_SUSPENDABLE for PV too: commit c895469f54, first in
    // v25.24.0; at v1.249.42 it returns None for any PV VM (docs/toolstack-behaviour.md#guest-features).
    refusesNonSuspendable: atLeast(xapi, 25, 24),
  };
}

// The XAPI versions the double can pass for: what a client sees differ
// between them, as data. Two lines matter (xapi-project/xen-api, read at the
// tags named below; xenopsd of the 1.249 line is xapi-project/xenopsd,
// branch 0.150-lcm):
//
//   xenserver-8  the current line (XenServer 8), as of xapi v26.17.0 (HEAD
//                e2ee48d688 is v26.17.0-29). XCP-ng 8.3 ships older xapis of
//                this line (which one depends on its updates): no vm-suspend-*
//                keys before v26.3.0; from v23.9.0 to v24.19 /boot/guest/ and
//                /var/lib/xcp/guest/ both allowed, and a path outside blanked
//                as on 1.249 rather than refused;
//   xcp-ng-8.2   the 1.249 line (Citrix Hypervisor 8.2 CU1, XCP-ng 8.2 LTS),
//                as of v1.249.42, with xenopsd 0.150.
//
// The code that acts on a field cites where the behaviour comes from; this
// file says what each line does.

export const PROFILE_NAMES = ['xenserver-8', 'xcp-ng-8.2'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];
export const DEFAULT_PROFILE: ProfileName = 'xenserver-8';

export interface Profile {
  name: ProfileName;
  /** host.software_version, in xapi's order (the wire keeps it). */
  softwareVersion: Record<string, string>;
  /** host.API_version_major / _minor (ocaml/idl/datamodel_common.ml, api_version.ml). */
  apiVersion: { major: number; minor: number };
  /**
   * Where PV kernels and ramdisks may come from (ocaml/xapi/xapi_xenops.ml), and what a start
   * does with a path outside:
   *   'refuse': realpath'd, then INVALID_VALUE [kernel|ramdisk; path; reason] (kernel_path, from v24.20.0);
   *   'blank':  replaced by "" without a word, and xenopsd's build then fails on the unreadable
   *             file (is_boot_file_whitelisted @ v1.249.42; xenopsd 0.150 domain.ml assert_file_is_readable).
   */
  bootDirs: string[];
  bootPathCheck: 'refuse' | 'blank';
  /** VM.domain_type's values (ocaml/idl/datamodel_vm.ml domain_type): pvh only on the current line. */
  domainTypes: string[];
  /** OTHER_OPERATION_IN_PROGRESS's parameters (xapi_vm_lifecycle.ml report_concurrent_operations_error). */
  otherOperationShape: 'class-ref-op-task' | 'class.op-ref';
  /** xenopsd reads vm-suspend-ack-timeout / vm-suspend-timeout from its config file (from v26.3.0); before, 30 s / 1200 s fixed. */
  suspendTimeoutsConfigurable: boolean;
  /**
   * A live VM whose guest says it cannot suspend is refused suspend, checkpoint, pool_migrate and
   * migrate_send with VM_NON_SUSPENDABLE [vm; reason] (ocaml/xapi-consts/api_errors.ml; params per
   * ocaml/idl/datamodel_errors.ml). The guest says so with both control/feature-suspend and
   * data/cant_suspend_reason (any values, "" included): xapi_guest_agent.ml get_initial_guest_metrics
   * then puts data-cant-suspend-reason = reason in VM_guest_metrics.other instead of feature-suspend,
   * and xapi_vm_lifecycle.ml check_op_for_feature refuses on it, PV and PVH included, at call time
   * (MF with_vm_operation → assert_operation_valid), before anything reaches control/shutdown.
   * From commit c895469f54 (first tag v25.24.0; as at HEAD e2ee48d688). At v1.249.42,
   * check_op_for_feature answers None for any PV VM, and the reason has no effect.
   */
  refusesNonSuspendable: boolean;
  /** VM fields this line does not have yet. */
  vmFieldsAbsent: string[];
}

const XENSERVER_8: Profile = {
  name: 'xenserver-8',
  // Keys and order: v26.17.0 ocaml/xapi/xapi_globs.ml software_version, then
  // ocaml/xapi/create_misc.ml make_software_version. From the source: xapi and
  // xapi_build (Xapi_version.version of a 26.17.0 build), git_id (what
  // parse_xapi_version leaves after MAJOR.MINOR), hostname (hard-coded),
  // xencenter_min/max (the API version), db_schema (datamodel_common.ml).
  // Inferred (they come from the host's inventory, build or hardware, not from
  // xapi's source): product_*, platform_*, date, xen, linux, network_backend.
  // A real host also reports build_number (inventory) and dbv (v6d); their
  // values are not known here and the keys are left out.
  softwareVersion: {
    product_version: '8.4.0',
    product_version_text: '8',
    product_version_text_short: '8',
    platform_name: 'XCP',
    platform_version: '3.4.0',
    product_brand: 'XenServer',
    xapi: '26.17',
    git_id: '0',
    hostname: 'localhost',
    date: '20260810T00:00:00Z',
    xapi_build: '26.17.0',
    xen: '4.17.5',
    linux: '4.19.0+1',
    xencenter_min: '2.23',
    xencenter_max: '2.23',
    network_backend: 'openvswitch',
    db_schema: '5.909',
  },
  apiVersion: { major: 2, minor: 23 },
  bootDirs: ['/var/lib/xcp/guest/'],
  bootPathCheck: 'refuse',
  domainTypes: ['hvm', 'pv', 'pv_in_pvh', 'pvh', 'unspecified'],
  otherOperationShape: 'class-ref-op-task',
  suspendTimeoutsConfigurable: true,
  refusesNonSuspendable: true,
  vmFieldsAbsent: [],
};

const XCP_NG_8_2: Profile = {
  name: 'xcp-ng-8.2',
  // Keys and order: v1.249.42 xapi_globs.ml software_version (git_id is ""
  // there, and empty values are dropped), then create_misc.ml
  // make_software_version. From the source: xapi ("1.20": ocaml/util/xapi_version.ml
  // hard-codes 1.20 on this line), hostname, xencenter_min/max (API 2.15),
  // db_schema (5.603). product_brand and product_version as XCP-ng 8.2.1
  // reports them; the rest is inferred (inventory, build date, hardware). A
  // real host also reports build_number and possibly dbv; left out.
  softwareVersion: {
    product_version: '8.2.1',
    product_version_text: '8.2',
    product_version_text_short: '8.2',
    platform_name: 'XCP',
    platform_version: '3.2.1',
    product_brand: 'XCP-ng',
    hostname: 'localhost',
    date: '2025-09-03',
    xapi: '1.20',
    xen: '4.13.5',
    linux: '4.19.0+1',
    xencenter_min: '2.15',
    xencenter_max: '2.15',
    network_backend: 'openvswitch',
    db_schema: '5.603',
  },
  apiVersion: { major: 2, minor: 15 },
  bootDirs: ['/boot/guest/'],
  bootPathCheck: 'blank',
  domainTypes: ['hvm', 'pv', 'pv_in_pvh', 'unspecified'],
  otherOperationShape: 'class.op-ref',
  suspendTimeoutsConfigurable: false,
  refusesNonSuspendable: false,
  // actions_after_softreboot and pending_guidances came after 1.249 (datamodel_vm.ml).
  vmFieldsAbsent: ['actions_after_softreboot', 'pending_guidances'],
};

export const PROFILES: Record<ProfileName, Profile> = { 'xenserver-8': XENSERVER_8, 'xcp-ng-8.2': XCP_NG_8_2 };

export function isProfileName(s: unknown): s is ProfileName {
  return typeof s === 'string' && (PROFILE_NAMES as readonly string[]).includes(s);
}

// Default records of the classes the endpoint serves, with XAPI's field names
// (ocaml/idl/datamodel*.ml). VM.create fills what the caller leaves out from
// here; the "Other install media" template and the control domain start from
// here too.
import type { Record_ } from './database.ts';
import type { Profile } from './profiles.ts';
import { NULL_REF, XapiDate } from './values.ts';

const EPOCH = new XapiDate(new Date(0));

export function defaultVm(): Record_ {
  return {
    uuid: '', allowed_operations: [], current_operations: {},
    name_label: '', name_description: '', power_state: 'Halted', user_version: 1,
    is_a_template: false, is_default_template: false, is_a_snapshot: false, snapshot_of: NULL_REF, snapshots: [],
    suspend_VDI: NULL_REF, resident_on: NULL_REF, scheduled_to_be_resident_on: NULL_REF, affinity: NULL_REF,
    memory_overhead: 0, memory_target: 0,
    memory_static_max: 268435456, memory_dynamic_max: 268435456, memory_dynamic_min: 268435456, memory_static_min: 134217728,
    VCPUs_params: {}, VCPUs_max: 1, VCPUs_at_startup: 1,
    actions_after_softreboot: 'soft_reboot', actions_after_shutdown: 'destroy', actions_after_reboot: 'restart', actions_after_crash: 'restart',
    consoles: [], VIFs: [], VBDs: [], VUSBs: [], crash_dumps: [], VTPMs: [],
    PV_bootloader: '', PV_kernel: '', PV_ramdisk: '', PV_args: '', PV_bootloader_args: '', PV_legacy_args: '',
    HVM_boot_policy: '', HVM_boot_params: {}, HVM_shadow_multiplier: 1,
    platform: {}, PCI_bus: '', other_config: {}, domid: -1, domarch: '', last_boot_CPU_flags: {},
    is_control_domain: false, metrics: NULL_REF, guest_metrics: NULL_REF, last_booted_record: '', recommendations: '',
    xenstore_data: {}, ha_always_run: false, ha_restart_priority: '', tags: [], blocked_operations: {},
    suspend_SR: NULL_REF, domain_type: 'unspecified', hardware_platform_version: 0, has_vendor_device: false,
    requires_reboot: false, reference_label: '', NVRAM: {}, pending_guidances: [],
  };
}

/** A VM record of this profile's line: without the fields that line does not have. */
export function vmForProfile(profile: Profile, rec: Record_): Record_ {
  const out = { ...rec };
  for (const f of profile.vmFieldsAbsent) delete out[f];
  return out;
}

/** XAPI's blank template for booting from install media (HVM by default; PV once HVM_boot_policy is ""). */
export function otherInstallMediaTemplate(): Record_ {
  return {
    ...defaultVm(),
    name_label: 'Other install media',
    name_description: 'Template which allows VM installation from install media',
    is_a_template: true, is_default_template: true,
    HVM_boot_policy: 'BIOS order', HVM_boot_params: { order: 'dc' },
    platform: { nx: 'true', acpi: '1', apic: 'true', pae: 'true', viridian: 'true' },
    domain_type: 'hvm',
    memory_static_max: 2147483648, memory_dynamic_max: 2147483648, memory_dynamic_min: 2147483648, memory_static_min: 536870912,
    other_config: { install_methods: 'cdrom', 'instant': 'true' },
  };
}

export function controlDomain(hostRef: string): Record_ {
  return {
    ...defaultVm(),
    name_label: 'Control domain on host: xtv-dom0', is_control_domain: true, power_state: 'Running', domid: 0,
    resident_on: hostRef, domain_type: 'pv',
  };
}

export function defaultHost(profile: Profile): Record_ {
  return {
    uuid: '', name_label: 'xtv-dom0', name_description: 'The embedded Xen host (XenAPI test double)',
    allowed_operations: [], current_operations: {},
    API_version_major: profile.apiVersion.major, API_version_minor: profile.apiVersion.minor,
    API_version_vendor: 'XenSource', API_version_vendor_implementation: {},
    enabled: true,
    software_version: { ...profile.softwareVersion },
    other_config: {}, capabilities: [], cpu_configuration: {}, sched_policy: 'credit', supported_bootloaders: [],
    resident_VMs: [], logging: {}, PIFs: [], suspend_image_sr: NULL_REF, crash_dump_sr: NULL_REF, crashdumps: [], patches: [], updates: [],
    PBDs: [], host_CPUs: [], cpu_info: {}, hostname: 'xtv-dom0', address: '127.0.0.1', metrics: NULL_REF,
    license_params: {}, ha_statefiles: [], ha_network_peers: [], blobs: {}, tags: [], external_auth_type: '',
    external_auth_service_name: '', external_auth_configuration: {}, edition: 'xtv', license_server: {},
    bios_strings: {}, power_on_mode: '', power_on_config: {}, local_cache_sr: NULL_REF, chipset_info: {}, PCIs: [], PGPUs: [],
    PUSBs: [], ssl_legacy: false, guest_VCPUs_params: {}, display: 'enabled', virtual_hardware_platform_versions: [0],
    control_domain: NULL_REF, updates_requiring_reboot: [], features: [], iscsi_iqn: '', multipathing: false,
    uefi_certificates: '', certificates: [], editions: [], pending_guidances: [], tls_verification_enabled: false,
    memory_overhead: 0,
  };
}

export function defaultPool(masterRef: string): Record_ {
  return {
    uuid: '', name_label: '', name_description: '', master: masterRef, default_SR: NULL_REF, suspend_image_SR: NULL_REF,
    crash_dump_SR: NULL_REF, other_config: {}, ha_enabled: false, ha_configuration: {}, ha_statefiles: [],
    ha_host_failures_to_tolerate: 0, ha_plan_exists_for: 0, ha_allow_overcommit: false, ha_overcommitted: false,
    blobs: {}, tags: [], gui_config: {}, health_check_config: {}, wlb_url: '', wlb_username: '', wlb_enabled: false,
    wlb_verify_cert: false, redo_log_enabled: false, redo_log_vdi: NULL_REF, vswitch_controller: '', restrictions: {},
    metadata_VDIs: [], ha_cluster_stack: '', allowed_operations: [], current_operations: {}, guest_agent_config: {},
    cpu_info: {}, policy_no_vendor_device: false, live_patching_disabled: false, igmp_snooping_enabled: false,
    uefi_certificates: '', is_psr_pending: false, tls_verification_enabled: false, repositories: [],
    client_certificate_auth_enabled: false, client_certificate_auth_name: '', repository_proxy_url: '',
    repository_proxy_username: '', migration_compression: false, coordinator_bias: true,
  };
}

/**
 * The local SR an XCP-ng install makes ("Local storage", ext, not shared) and sets as the pool's
 * default and suspend-image SR and the host's suspend-image SR, so that VM.suspend finds one
 * (ocaml/xapi/helpers.ml choose_suspend_sr). Fields: ocaml/idl/datamodel.ml, class SR.
 */
export function localStorageSr(): Record_ {
  return {
    uuid: '', name_label: 'Local storage', name_description: '', allowed_operations: [], current_operations: {},
    VDIs: [], PBDs: [], virtual_allocation: 0, physical_utilisation: 0, physical_size: 0,
    type: 'ext', content_type: 'user', shared: false, other_config: {}, tags: [], sm_config: {}, blobs: {},
    local_cache_enabled: false, introduced_by: NULL_REF, clustered: false, is_tools_sr: false,
  };
}

export function newTask(label: string, hostRef: string): Record_ {
  return {
    uuid: '', name_label: label, name_description: '', allowed_operations: [], current_operations: {},
    created: new XapiDate(new Date()), finished: EPOCH, status: 'pending', resident_on: hostRef, progress: 0,
    type: '<none/>', result: '', error_info: [], other_config: {}, subtask_of: NULL_REF, subtasks: [], backtrace: '()',
  };
}

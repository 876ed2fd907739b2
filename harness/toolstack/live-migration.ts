// Which domain types a host can live-migrate, from `xl info`'s virt_caps (#17).
//
// A live migration keeps the domain running while its memory is copied, with
// Xen tracking the pages it dirties (log-dirty mode). For a PV domain Xen does
// that with shadow paging (xen/arch/x86/mm/paging.c paging_log_dirty_enable ->
// the shadow code's enable); a Xen built without CONFIG_SHADOW_PAGING (Debian's
// 4.17 packages) has shadow_enable return -EOPNOTSUPP
// (xen/arch/x86/include/asm/shadow.h), which libxc reports as "Failed to enable
// logdirty: 95" (tools/libs/guest/xg_sr_save.c enable_logdirty) before the
// guest is asked anything. Such a Xen leaves `shadow` out of virt_caps
// (tools/xl/xl_info.c output_physinfo). PVH and HVM domains use HAP's log-dirty
// mode instead and migrate either way.
import type { DomainType } from './driver.ts';

export interface MigrationFact {
  /** Domain types the host cannot live-migrate, each with the reason; absent: none. */
  cannotMigrate?: Partial<Record<DomainType, string>>;
  /** One line for the host's notes. */
  note: string;
}

/** virt_caps as `xl info` prints it ("pv hvm hap shadow …"); undefined when xl info could not be read. */
export function migrationFact(virtCaps: string | undefined): MigrationFact {
  if (virtCaps === undefined) return { note: 'live migration: assumed possible for every domain type (xl info could not be read)' };
  const caps = virtCaps.split(/\s+/).filter(Boolean);
  if (!caps.includes('pv') || caps.includes('shadow')) return { note: `live migration: every domain type (virt_caps: ${caps.join(' ') || 'none'})` };
  return {
    cannotMigrate: {
      pv: `this host cannot live-migrate PV domains: its Xen has no shadow paging for their log-dirty mode (xl info virt_caps: ${caps.join(' ')})`,
    },
    note: `live migration: PVH only; PV needs shadow paging, which this Xen lacks (virt_caps: ${caps.join(' ')})`,
  };
}

// How a domain's Xen state, as `xl list` shows it, maps onto the harness's
// power states. Pure.
import type { DomainInfo } from '../driver.ts';
import type { XlListEntry } from '../../../protocol/xl-output.ts';

/**
 * The harness's view of one VM from its `xl list` entry (or its absence) and
 * whether an `xl save` image of it exists:
 * - no domain: Suspended if a save image exists, else Halted;
 * - shut down for suspend and not destroyed (a guest that suspended itself;
 *   the xl daemon leaves it so): Suspended, with its domid;
 * - shut down for another reason, or dying: Halted, with its domid and reason
 *   (the daemon is about to destroy or restart it, or on_* is preserve);
 * - paused: Paused; otherwise Running.
 */
export function domainInfoOf(entry: XlListEntry | undefined, saveImageExists: boolean): DomainInfo {
  if (!entry) return { powerState: saveImageExists ? 'Suspended' : 'Halted', domid: null };
  if (entry.shutdown) {
    const info: DomainInfo = { powerState: entry.shutdownReason === 'suspend' ? 'Suspended' : 'Halted', domid: entry.domid };
    if (entry.shutdownReason) info.shutdownReason = entry.shutdownReason;
    return info;
  }
  if (entry.dying) return { powerState: 'Halted', domid: entry.domid };
  if (entry.paused) return { powerState: 'Paused', domid: entry.domid };
  return { powerState: 'Running', domid: entry.domid };
}

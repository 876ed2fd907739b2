// What the guest advertises to its toolstack: the control/feature-* flags and
// data/cant_suspend_reason. By default the flags Linux's drivers/xen/manage.c
// writes at boot (poweroff, reboot, suspend = "1"); a capabilities message
// (protocol/control.ts CapabilityMessage) changes them, and the settings are
// kept and written again after a restore into a new domain, whose control/
// and data/ start empty.
//
// Who reads what (docs/toolstack-behaviour.md#guest-features): libxl reads
// none of the flags (libxl_domain.c libxl__domain_pvcontrol_available asks
// only the domain's type); xapi reads them for HVM guests only
// (xapi_vm_lifecycle.ml check_op_for_feature), and, from v25.24.0, refuses
// suspend, checkpoint and migration of any guest that has both
// control/feature-suspend and data/cant_suspend_reason (VM_NON_SUSPENDABLE;
// xapi_guest_agent.ml). xenopsd watches control/ but not data/: the reason
// reaches xapi only with a write under control/, so feature-suspend is
// written again after it.
//
// On xl hosts control/ itself is read-only to the guest (libxl_create.c
// libxl__domain_make creates each feature node writable, the directory not):
// a removed flag cannot be created again there. A refused write is reported
// in the event's note, never thrown.
import { CANT_SUSPEND_REASON_NODE, FEATURES, featureNode, type CapabilityMessage, type Feature, type FeatureSetting } from '../../protocol/control.ts';
import { describeError, errorCode, type AgentStore } from './store.ts';

/** The flags written "1" at every start and resume unless a test said otherwise. */
export const DEFAULT_FEATURES: readonly Feature[] = ['poweroff', 'reboot', 'suspend'];

export class Capabilities {
  private readonly features = new Map<Feature, FeatureSetting>();
  /** undefined: never set (left alone); null: removed. */
  private reason: string | null | undefined = undefined;

  /** What the report's `features` key says: each flag as written ("1", "0", "removed"), then the reason if a test set one. */
  describe(): string {
    const parts: string[] = [];
    for (const f of FEATURES) {
      const v = this.setting(f);
      if (v !== undefined) parts.push(`${f}=${v === null ? 'removed' : v ? '1' : '0'}`);
    }
    if (this.reason !== undefined) parts.push(`cant-suspend-reason=${this.reason === null ? 'removed' : JSON.stringify(this.reason)}`);
    return parts.join(' ');
  }

  private setting(f: Feature): FeatureSetting | undefined {
    if (this.features.has(f)) return this.features.get(f)!;
    return DEFAULT_FEATURES.includes(f) ? true : undefined;
  }

  /** Writes every flag (and the reason) as the settings say; returns what xenstore refused. At start-up and after a resume. */
  async writeAll(store: AgentStore): Promise<string[]> {
    const refused: string[] = [];
    if (this.reason !== undefined) await this.writeReason(store, refused);
    for (const f of FEATURES) {
      const v = this.setting(f);
      if (v !== undefined) await this.writeFlag(store, f, v, refused);
    }
    return refused;
  }

  /** Applies a message: records it, writes what it names (the reason first, then feature-suspend again); returns what xenstore refused. */
  async apply(store: AgentStore, m: CapabilityMessage): Promise<string[]> {
    const refused: string[] = [];
    for (const [f, v] of m.features) this.features.set(f, v);
    if (m.cantSuspendReason !== undefined) {
      this.reason = m.cantSuspendReason;
      await this.writeReason(store, refused);
    }
    const named = new Set(m.features.map(([f]) => f));
    // xenopsd notices data/ only through a write under control/ (see the top).
    if (m.cantSuspendReason !== undefined && this.setting('suspend') !== undefined) named.add('suspend');
    for (const f of FEATURES) if (named.has(f)) await this.writeFlag(store, f, this.setting(f)!, refused);
    return refused;
  }

  private async writeFlag(store: AgentStore, f: Feature, v: FeatureSetting, refused: string[]): Promise<void> {
    const node = featureNode(f);
    try {
      if (v === null) await removeNode(store, node);
      else await store.write(node, v ? '1' : '0');
    } catch (e) {
      refused.push(`${node} (${errorCode(e) ?? describeError(e)})`);
    }
  }

  private async writeReason(store: AgentStore, refused: string[]): Promise<void> {
    try {
      if (this.reason === null || this.reason === undefined) await removeNode(store, CANT_SUSPEND_REASON_NODE);
      else await store.write(CANT_SUSPEND_REASON_NODE, this.reason);
    } catch (e) {
      refused.push(`${CANT_SUSPEND_REASON_NODE} (${errorCode(e) ?? describeError(e)})`);
    }
  }
}

async function removeNode(store: AgentStore, node: string): Promise<void> {
  try {
    await store.rm(node);
  } catch (e) {
    if (errorCode(e) !== 'ENOENT') throw e;
  }
}

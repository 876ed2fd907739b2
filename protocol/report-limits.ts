// How big the agent's report may be, and how a value too big for it is cut.
// The agent (guest/agent/report.ts) cuts; the harness recognises a cut value
// (reportedValueIs) and checks it against what it wrote. Pure and QuickJS-safe:
// QuickJS has no crypto module, hence a small hash of our own.
//
// xenstored refuses a guest's node that is too big, and the whole report
// transaction with it: 3,000 bytes written by dom0 into control/testing
// (dom0 is not subject to the quota) came back from the agent's report write
// as ENOSPC, every retry, and the event never reached data/xtv/.
//
// C xenstored, Xen 4.17 (the embedded host's; tools/xenstore/, RELEASE-4.17.7):
//  - xenstored_core.c write_node_raw(): an unprivileged domain's node is
//    refused with ENOSPC when `sizeof(struct xs_tdb_record_hdr) + num_perms *
//    sizeof(struct xs_permissions) + datalen + childlen >= quota_max_entry_size`
//    (2048 by default, xenstored_core.c). The header (tools/xenstore/utils.h:
//    u64 generation, u32 num_perms, datalen, childlen) is 24 bytes with
//    padding, a permission 8; the node's name is not counted, its children's
//    names are (each with its NUL). A report key is a leaf.
//  - do_set_perms(): an unprivileged domain sets at most quota_nb_perms_per_node
//    (5) permissions; a node inherits its parent's.
//  - create_node(): at most quota_nb_entry_per_domain (1000) nodes owned by the
//    domain, ENOSPC beyond.
//  - xenstored_transaction.c: at most quota_max_transaction (10) transactions
//    open per connection, quota_trans_nodes (1024) nodes touched by one.
//  Xen 4.18+ (tools/xenstored/core.c): a 16-byte struct node_hdr and `size >
//  2048` in domain_max_chk(ACC_NODESZ): a few bytes more room, same rule.
// OCaml oxenstored, Xen 4.17 (tools/ocaml/xenstored/):
//  - quota.ml _check / store.ml write: the value alone (String.length value)
//    may be at most quota-maxsize (2048, quota.ml maxsize and
//    oxenstored.conf.in), for every domain, dom0 included: E2BIG beyond.
//  - quota.ml: quota-maxentity 1000 nodes per domain (EQUOTA beyond);
//    define.ml / transaction.ml: maxtransaction 10 per connection,
//    maxrequests 1024 operations per transaction.
// C xenstored is the tighter on a value: with 5 permissions a leaf holds
// 2047 - 24 - 5 * 8 = 1983 bytes. The report is 25 leaves written in one
// transaction, the only one the agent has open: far below both transaction limits.

/** quota_max_entry_size (C xenstored) and quota-maxsize (oxenstored). */
export const NODE_QUOTA_BYTES = 2048;
/** sizeof(struct xs_tdb_record_hdr) in Xen 4.17 (16, struct node_hdr, from 4.18). */
const C_NODE_HEADER_BYTES = 24;
/** sizeof(struct xs_permissions), times quota_nb_perms_per_node. */
const PERMS_BYTES = 8 * 5;
/** The most bytes a report value may take: C xenstored refuses a node of NODE_QUOTA_BYTES or more. */
export const REPORT_VALUE_MAX_BYTES = NODE_QUOTA_BYTES - 1 - C_NODE_HEADER_BYTES - PERMS_BYTES;

/** quota_nb_entry_per_domain (C) and quota-maxentity (OCaml): the nodes a domain may own. */
export const DOMAIN_NODES_QUOTA = 1000;
/**
 * The nodes the agent itself creates (data/xtv, its report keys, the echo's
 * pong, the kernel's suspend node), at most. libxl gives a domain a few dozen
 * nodes of its own (its home, data/, control/ flags, each device's frontend):
 * the agent keeps well clear of DOMAIN_NODES_QUOTA by keeping a fixed set.
 */
export const AGENT_NODES_MAX = 40;

/** FNV-1a, 64 bits, as 16 hex digits. In 16-bit limbs: no BigInt needed. */
export function fnv1a64(bytes: Uint8Array): string {
  // Offset basis 0xcbf29ce484222325, low limb first.
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  for (let i = 0; i < bytes.length; i++) {
    h0 ^= bytes[i]!;
    // Times the prime 0x100000001b3 = 2^40 + 0x1b3, modulo 2^64.
    let r0 = h0 * 0x1b3;
    let r1 = h1 * 0x1b3;
    let r2 = h2 * 0x1b3 + (h0 << 8);
    let r3 = h3 * 0x1b3 + (h1 << 8);
    r1 += r0 >>> 16;
    r0 &= 0xffff;
    r2 += r1 >>> 16;
    r1 &= 0xffff;
    r3 += r2 >>> 16;
    r2 &= 0xffff;
    h0 = r0;
    h1 = r1;
    h2 = r2;
    h3 = r3 & 0xffff;
  }
  const hex = (n: number): string => (n + 0x10000).toString(16).slice(1);
  return hex(h3) + hex(h2) + hex(h1) + hex(h0);
}

/** What ends a cut value: the full value's length in bytes and its hash. ASCII only. */
export function cutMarker(fullBytes: number, hash: string): string {
  return `...[xtv-cut bytes=${fullBytes} fnv1a64=${hash}]`;
}
const CUT_MARKER = /\.\.\.\[xtv-cut bytes=(\d+) fnv1a64=([0-9a-f]{16})\]$/;

function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * `value` if it fits in `maxBytes`; else as many of its first bytes as fit
 * with cutMarker() after them, the cut moved back (at most 3 bytes) so that
 * it does not split a UTF-8 character.
 */
export function cutValue(value: Uint8Array, maxBytes: number): Uint8Array {
  if (value.length <= maxBytes) return value;
  const marker = ascii(cutMarker(value.length, fnv1a64(value)));
  let keep = Math.max(0, maxBytes - marker.length);
  for (let back = 0; back < 3 && keep > 0 && (value[keep]! & 0xc0) === 0x80; back++) keep--;
  const out = new Uint8Array(keep + marker.length);
  out.set(value.subarray(0, keep), 0);
  out.set(marker, keep);
  return out;
}

export interface CutValue {
  /** The first bytes of the value, as kept. */
  kept: Uint8Array;
  /** The full value's length in bytes. */
  bytes: number;
  /** fnv1a64() of the full value. */
  fnv1a64: string;
}

/** The parts of a value cutValue() cut, or null when it ends with no marker. */
export function parseCutValue(reported: Uint8Array): CutValue | null {
  const tail = reported.subarray(Math.max(0, reported.length - 64));
  let text = '';
  for (let i = 0; i < tail.length; i++) text += String.fromCharCode(tail[i]!);
  const m = CUT_MARKER.exec(text);
  if (!m) return null;
  return { kept: reported.slice(0, reported.length - m[0].length), bytes: Number(m[1]), fnv1a64: m[2]! };
}

/** True when `reported` is `sent`, in full or cut by cutValue() (same length, hash and first bytes). */
export function reportedValueIs(sent: Uint8Array, reported: Uint8Array): boolean {
  if (sameBytes(sent, reported)) return true;
  const cut = parseCutValue(reported);
  return cut !== null && cut.bytes === sent.length && cut.fnv1a64 === fnv1a64(sent) && sameBytes(sent.subarray(0, cut.kept.length), cut.kept);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

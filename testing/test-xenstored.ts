// An in-memory xenstored for tests (Node only). It speaks the real wire
// protocol over unix sockets, so a client (ours, or the guest agent's) is
// exercised byte for byte, and behaves like C xenstored where tests can see
// it: permissions, implicit parents, ENOENT/EINVAL/EACCES/EEXIST, recursive
// RM, watches that fire once on registration and then on every change at or
// below their node, transactions with conflict detection (EAGAIN at commit),
// relative paths resolved against the connection's domain home.
//
// Quotas, when asked for: C xenstored's size of one node and number of nodes
// per domain, on unprivileged connections (see NodeQuotas). Not modelled: the other quotas
// (permissions per node, watches, transactions, outstanding requests,
// memory), @introduceDomain/@releaseDomain events (watches on them are
// accepted and fire once), DEBUG, permission checks on events about removed
// nodes. Two sockets: `socketPath` connects as the test domain (options.domid),
// `dom0SocketPath` as dom0 (the toolstack side).

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  XENSTORE_ABS_PATH_MAX,
  XENSTORE_PAYLOAD_MAX,
  FrameDecoder,
  encodeFrame,
  encodeReplyPayload,
  formatPerm,
  parsePerm,
  parseRequestPayload,
  type Frame,
  type Perm,
  type XsOp,
  type XsReply,
  type XsRequest,
} from '../protocol/xenstore-wire.ts';
import { decodeUtf8, encodeUtf8 } from '../protocol/utf8.ts';

// ---------------------------------------------------------------------------
// The tree

interface XsNode {
  value: Uint8Array;
  perms: Perm[];
  children: Map<string, XsNode>;
}

/** A refusal, turned into an ERROR reply. */
class Refusal extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

const VALID_PATH = /^[A-Za-z0-9\-/_@]+$/;

/**
 * C xenstored's quotas on nodes, as Xen 4.17 (the embedded host's Debian 12
 * xenstored) enforces them on an unprivileged domain; dom0 is exempt.
 * tools/xenstore/xenstored_core.c, RELEASE-4.17.7:
 *  - write_node_raw(): a node is stored as struct xs_tdb_record_hdr
 *    (tools/xenstore/utils.h: u64 generation, u32 num_perms, datalen,
 *    childlen: 24 bytes with padding) + 8 bytes per permission (struct
 *    xs_permissions) + the value + the child names, each NUL-terminated; the
 *    node's own name is not counted. `dsize >= quota_max_entry_size` (2048) is
 *    ENOSPC. It is checked for the node written and for a parent that gains a
 *    child (create_node() rewrites it with the longer child list).
 *  - create_node(): `domain_entry(conn) >= quota_nb_entry_per_domain` (1000)
 *    is ENOSPC; domain_entry() counts the nodes the domain owns (first permission).
 * (Xen 4.18+ moved this to tools/xenstored/core.c: a 16-byte struct node_hdr
 * and `size > 2048` in domain_max_chk(), a few bytes more room.)
 */
export interface NodeQuotas {
  /** quota_max_entry_size; 0 turns the check off. */
  maxEntrySize: number;
  /** quota_nb_entry_per_domain; 0 turns the check off. */
  maxEntries: number;
}
export const C_XENSTORED_QUOTAS: NodeQuotas = { maxEntrySize: 2048, maxEntries: 1000 };
/** sizeof(struct xs_tdb_record_hdr) on x86-64, and sizeof(struct xs_permissions). */
const NODE_HEADER_BYTES = 24;
const PERM_BYTES = 8;

function childListBytes(n: XsNode): number {
  let size = 0;
  for (const k of n.children.keys()) size += encodeUtf8(k).length + 1;
  return size;
}

/** What write_node_raw() counts against quota_max_entry_size. */
function storedSize(perms: number, valueBytes: number, childBytes: number): number {
  return NODE_HEADER_BYTES + PERM_BYTES * perms + valueBytes + childBytes;
}

function cloneNode(n: XsNode): XsNode {
  const children = new Map<string, XsNode>();
  for (const [k, v] of n.children) children.set(k, cloneNode(v));
  return { value: n.value, perms: n.perms.map((p) => ({ ...p })), children };
}

function segments(abs: string): string[] {
  return abs === '/' ? [] : abs.slice(1).split('/');
}

function parentOf(abs: string): string {
  const i = abs.lastIndexOf('/');
  return i <= 0 ? '/' : abs.slice(0, i);
}

/** True if `p` is `base` or below it. */
function isAtOrBelow(p: string, base: string): boolean {
  return p === base || base === '/' || p.startsWith(base + '/');
}

type Mutation =
  | { kind: 'write'; path: string; value: Uint8Array }
  | { kind: 'mkdir'; path: string }
  | { kind: 'rm'; path: string }
  | { kind: 'setperms'; path: string; perms: Perm[] };

/**
 * A tree of nodes with C xenstored's permission rules. The live store and
 * each transaction's snapshot are XsTrees; a transaction's mutations are
 * replayed on the live tree at commit.
 */
class XsTree {
  root: XsNode;
  /** Paths whose node, value, perms or child list changed, with the generation of the change. */
  readonly changedAt = new Map<string, number>();
  generation = 0;
  /** Called with each changed path (absolute) and whether it was a removal. */
  onChange: ((path: string, removed: boolean) => void) | null = null;

  constructor(
    root: XsNode,
    readonly quotas: NodeQuotas,
  ) {
    this.root = root;
  }

  /** ENOSPC when an unprivileged domain would store a node too big (write_node_raw()). */
  private checkSize(domid: number, perms: number, valueBytes: number, childBytes: number): void {
    if (this.trusted || domid === 0 || this.quotas.maxEntrySize <= 0) return;
    if (storedSize(perms, valueBytes, childBytes) >= this.quotas.maxEntrySize) throw new Refusal('ENOSPC');
  }

  /** ENOSPC when an unprivileged domain already owns quota_nb_entry_per_domain nodes (create_node()). */
  private checkEntries(domid: number, creating: number): void {
    if (this.trusted || domid === 0 || this.quotas.maxEntries <= 0) return;
    let owned = 0;
    const walk = (n: XsNode): void => {
      if (n.perms[0]?.domid === domid) owned++;
      for (const c of n.children.values()) walk(c);
    };
    walk(this.root);
    if (owned + creating > this.quotas.maxEntries) throw new Refusal('ENOSPC');
  }

  get(abs: string): XsNode | undefined {
    let n: XsNode | undefined = this.root;
    for (const s of segments(abs)) {
      n = n.children.get(s);
      if (!n) return undefined;
    }
    return n;
  }

  /** Records a change for conflict detection, without an event. */
  private mark(abs: string): void {
    this.changedAt.set(abs, ++this.generation);
  }

  /** Records a change and fires watches (xenstored fires once per request, for the node it names). */
  private touch(abs: string, removed: boolean): void {
    this.mark(abs);
    this.onChange?.(abs, removed);
  }

  /** Set while a committed transaction is replayed: its permissions were checked when it ran. */
  trusted = false;

  canRead(n: XsNode, domid: number): boolean {
    return this.trusted || XsTree.access(n, domid, 'r');
  }
  canWrite(n: XsNode, domid: number): boolean {
    return this.trusted || XsTree.access(n, domid, 'w');
  }
  static access(n: XsNode, domid: number, want: 'r' | 'w'): boolean {
    if (domid === 0) return true; // dom0 is privileged
    const owner = n.perms[0];
    if (!owner || owner.domid === domid) return true;
    const grant = n.perms.slice(1).find((p) => p.domid === domid) ?? owner;
    return grant.access === 'b' || grant.access === want;
  }

  readable(abs: string, domid: number): XsNode {
    const n = this.get(abs);
    if (!n) throw new Refusal('ENOENT');
    if (!this.canRead(n, domid)) throw new Refusal('EACCES');
    return n;
  }

  /** Creates the node and any missing parents (write permission on the nearest existing ancestor). */
  private create(abs: string, domid: number, valueBytes = 0): XsNode {
    const segs = segments(abs);
    this.checkCreate(segs, domid, valueBytes);
    let n = this.root;
    let at = '';
    let checked = false;
    for (const s of segs) {
      at += '/' + s;
      const next = n.children.get(s);
      if (next) {
        n = next;
        continue;
      }
      if (!checked && !this.canWrite(n, domid)) throw new Refusal('EACCES');
      checked = true;
      // Children inherit their parent's permissions; an unprivileged creator owns what it creates.
      const perms = n.perms.map((p) => ({ ...p }));
      if (domid !== 0 && perms[0]) perms[0].domid = domid;
      const child: XsNode = { value: new Uint8Array(0), perms, children: new Map() };
      n.children.set(s, child);
      this.mark(parentOf(at));
      this.mark(at);
      n = child;
    }
    return n;
  }

  /**
   * The quotas of creating segs' missing nodes, checked before anything
   * changes (C xenstored undoes a half-done create; here nothing is done).
   * Permission refusals come first, as in C xenstored.
   */
  private checkCreate(segs: string[], domid: number, valueBytes: number): void {
    let n = this.root;
    let i = 0;
    while (i < segs.length && n.children.has(segs[i]!)) n = n.children.get(segs[i++]!)!;
    if (i === segs.length) return;
    if (!this.canWrite(n, domid)) throw new Refusal('EACCES');
    const missing = segs.length - i;
    this.checkEntries(domid, missing);
    // The existing ancestor gains a child; each new node has its parent's permissions.
    this.checkSize(domid, n.perms.length, n.value.length, childListBytes(n) + encodeUtf8(segs[i]!).length + 1);
    for (let j = i; j < segs.length - 1; j++) this.checkSize(domid, n.perms.length, 0, encodeUtf8(segs[j + 1]!).length + 1);
    this.checkSize(domid, n.perms.length, valueBytes, 0);
  }

  write(abs: string, value: Uint8Array, domid: number): void {
    const existing = this.get(abs);
    if (existing) {
      if (!this.canWrite(existing, domid)) throw new Refusal('EACCES');
      this.checkSize(domid, existing.perms.length, value.length, childListBytes(existing));
      existing.value = value;
      this.touch(abs, false);
      return;
    }
    const n = this.create(abs, domid, value.length);
    n.value = value;
    this.touch(abs, false);
  }

  mkdir(abs: string, domid: number): void {
    const existing = this.get(abs);
    if (existing) {
      if (!this.canWrite(existing, domid)) throw new Refusal('EACCES');
      return;
    }
    this.create(abs, domid);
    this.touch(abs, false);
  }

  rm(abs: string, domid: number): void {
    if (abs === '/') throw new Refusal('EINVAL');
    const n = this.get(abs);
    if (!n) {
      // As C xenstored: removing a missing node is fine if its parent exists.
      if (this.get(parentOf(abs))) return;
      throw new Refusal('ENOENT');
    }
    if (!this.canWrite(n, domid)) throw new Refusal('EACCES');
    const parent = this.get(parentOf(abs))!;
    parent.children.delete(abs.slice(abs.lastIndexOf('/') + 1));
    const removed: string[] = [];
    const walk = (node: XsNode, at: string): void => {
      removed.push(at);
      for (const [k, c] of node.children) walk(c, `${at}/${k}`);
    };
    walk(n, abs);
    this.mark(parentOf(abs));
    for (const p of removed) this.mark(p);
    // One event: watches at or above hear `abs`, watches below it hear their own path.
    this.onChange?.(abs, true);
  }

  setPerms(abs: string, perms: Perm[], domid: number): void {
    const n = this.get(abs);
    if (!n) throw new Refusal('ENOENT');
    const owner = n.perms[0]?.domid;
    if (!this.trusted && domid !== 0 && owner !== domid) throw new Refusal('EACCES');
    if (!this.trusted && domid !== 0 && perms[0]!.domid !== owner) throw new Refusal('EPERM'); // unprivileged: no change of owner
    this.checkSize(domid, perms.length, n.value.length, childListBytes(n));
    n.perms = perms.map((p) => ({ ...p }));
    this.touch(abs, false);
  }

  apply(m: Mutation, domid: number): void {
    switch (m.kind) {
      case 'write':
        return this.write(m.path, m.value, domid);
      case 'mkdir':
        return this.mkdir(m.path, domid);
      case 'rm':
        return this.rm(m.path, domid);
      case 'setperms':
        return this.setPerms(m.path, m.perms, domid);
    }
  }
}

function emptyNode(perms: Perm[]): XsNode {
  return { value: new Uint8Array(0), perms, children: new Map() };
}

/** What libxl creates for a new domain (libxl__domain_make), so permissions in tests are realistic. */
function seedLibxl(tree: XsTree, domid: number): void {
  const home = `/local/domain/${domid}`;
  const ro: Perm[] = [
    { access: 'n', domid: 0 },
    { access: 'r', domid },
  ];
  const rw: Perm[] = [{ access: 'n', domid }];
  tree.mkdir('/local/domain/0', 0);
  tree.get('/local')!.perms = [{ access: 'r', domid: 0 }];
  tree.get('/local/domain')!.perms = [{ access: 'r', domid: 0 }];
  if (domid === 0) return;
  tree.mkdir(home, 0);
  tree.setPerms(home, rw, 0);
  for (const d of ['control', 'device', 'memory', 'cpu']) {
    tree.mkdir(`${home}/${d}`, 0);
    tree.setPerms(`${home}/${d}`, ro, 0);
  }
  tree.write(`${home}/domid`, encodeUtf8(String(domid)), 0);
  tree.setPerms(`${home}/domid`, ro, 0);
  tree.write(`${home}/name`, encodeUtf8(`xtv-test-${domid}`), 0);
  tree.setPerms(`${home}/name`, ro, 0);
  const writable = [
    'control/shutdown',
    'control/feature-poweroff',
    'control/feature-reboot',
    'control/feature-suspend',
    'control/feature-s3',
    'control/feature-s4',
    'control/sysrq',
    'data',
    'drivers',
    'feature',
    'attr',
    'error',
    // XAPI's xenopsd makes vm-data writable by the guest (it copies the guest's writes back).
    'vm-data',
  ];
  for (const w of writable) {
    tree.mkdir(`${home}/${w}`, 0);
    tree.setPerms(`${home}/${w}`, rw, 0);
  }
}

// ---------------------------------------------------------------------------
// The server

export interface TestXenstoredOptions {
  /** The domain that connections on `socketPath` act as. Default 0. */
  domid?: number;
  /** 'libxl' (default): the nodes and permissions libxl gives a new domain. 'empty': just /local/domain. */
  seed?: 'libxl' | 'empty';
  /**
   * Node quotas on unprivileged connections: true for C_XENSTORED_QUOTAS (Xen
   * 4.17's defaults), or chosen limits. Default none, because some tests write
   * as the guest what only dom0 may (a value of nearly 4096 bytes).
   */
  quotas?: Partial<NodeQuotas> | boolean;
}

/** One request as the server received it, for tests that check what a client sent. */
export interface LoggedRequest {
  connection: number;
  domid: number;
  op: XsOp | number;
  reqId: number;
  txId: number;
  /** The request's payload bytes, exactly as received. */
  payload: Uint8Array;
  /** The path argument resolved to an absolute path, when the op has one. */
  path?: string;
}

export interface StoreApi {
  /** The test domain's home, /local/domain/<domid>. Relative paths below are resolved against it. */
  readonly home: string;
  read(p: string): string | undefined;
  readBytes(p: string): Uint8Array | undefined;
  exists(p: string): boolean;
  write(p: string, value: string | Uint8Array): void;
  mkdir(p: string): void;
  rm(p: string): void;
  /** Child names, or undefined if the node does not exist. */
  directory(p: string): string[] | undefined;
  getPerms(p: string): string[] | undefined;
  setPerms(p: string, perms: string[]): void;
  /** Calls cb(absolutePath, removed) for every change at or below p. No initial call. Returns unsubscribe. */
  watch(p: string, cb: (path: string, removed: boolean) => void): () => void;
  /** Resolves with the value once pred(value) holds (checked now and after each change at p); rejects after timeoutMs. */
  waitFor(p: string, pred: (value: string | undefined) => boolean, timeoutMs: number): Promise<string | undefined>;
  /** Every node at or below p (default: the home) as path -> value. */
  dump(p?: string): Record<string, string>;
}

export interface FaultApi {
  /** The next n TRANSACTION_END commits fail with `code` (default EAGAIN); the transaction is discarded. */
  failNextCommits(n: number, code?: string): void;
  /** The next n requests of type `op` (optionally only for this path) fail with `code` without effect. */
  failNext(op: XsOp, code: string, n?: number, p?: string): void;
  /** Every reply and event is sent this many ms late (order kept). 0 restores. */
  delayReplies(ms: number): void;
  /** Stop answering (a hung xenstored): replies and events queue up until releaseReplies(). */
  holdReplies(): void;
  releaseReplies(): void;
  /** Closes every client connection (the server keeps listening). */
  dropConnections(): void;
  /** Sends raw bytes to every client connection, e.g. a malformed frame. */
  sendRaw(bytes: Uint8Array): void;
}

export interface TestXenstored {
  readonly domid: number;
  /** Connections here act as `domid`. */
  readonly socketPath: string;
  /** Connections here act as dom0. */
  readonly dom0SocketPath: string;
  readonly store: StoreApi;
  readonly faults: FaultApi;
  /** Every request received, in order. */
  readonly requests: LoggedRequest[];
  /** Number of open client connections. */
  connections(): number;
  /** Watches currently registered by clients, as "path token" (path as the client gave it). */
  watches(): string[];
  close(): Promise<void>;
}

interface Watch {
  conn: Connection;
  abs: string;
  given: string;
  token: string;
}

interface OpenTransaction {
  tree: XsTree;
  startGeneration: number;
  touched: Set<string>;
  mutations: Mutation[];
}

interface Connection {
  id: number;
  domid: number;
  socket: net.Socket;
  decoder: FrameDecoder;
  transactions: Map<number, OpenTransaction>;
  send(frame: Frame): void;
}

let serverCount = 0;

export async function startTestXenstored(options: TestXenstoredOptions = {}): Promise<TestXenstored> {
  const domid = options.domid ?? 0;
  const home = `/local/domain/${domid}`;
  const quotas: NodeQuotas =
    options.quotas === undefined || options.quotas === false
      ? { maxEntrySize: 0, maxEntries: 0 }
      : { ...C_XENSTORED_QUOTAS, ...(options.quotas === true ? {} : options.quotas) };
  const live = new XsTree(emptyNode([{ access: 'n', domid: 0 }]), quotas);
  live.mkdir('/local/domain', 0);
  if ((options.seed ?? 'libxl') === 'libxl') seedLibxl(live, domid);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xtv-xenstored-${process.pid}-${++serverCount}-`));
  const socketPath = path.join(dir, 'socket');
  const dom0SocketPath = path.join(dir, 'socket-dom0');

  const requests: LoggedRequest[] = [];
  const connections = new Set<Connection>();
  const watches: Watch[] = [];
  const localWatchers = new Set<{ abs: string; cb: (p: string, removed: boolean) => void }>();
  let nextConnId = 0;
  let nextTxId = 1;

  // Faults
  let commitFailures: { n: number; code: string } = { n: 0, code: 'EAGAIN' };
  const opFailures: Array<{ op: XsOp; code: string; n: number; path?: string }> = [];
  let delayMs = 0;
  let held: Array<() => void> | null = null;

  const homeOf = (d: number): string => `/local/domain/${d}`;

  /** Client paths: absolute, or relative to the connection's home. Throws EINVAL as xenstored does. */
  const resolve = (p: string, connDomid: number, allowSpecial = false): string => {
    // "@releaseDomain" and friends are never relative, and only WATCH/UNWATCH accept them.
    if (p.startsWith('@')) {
      if (!allowSpecial || !VALID_PATH.test(p)) throw new Refusal('EINVAL');
      return p;
    }
    if (p === '' || !VALID_PATH.test(p) || p.includes('//') || (p.length > 1 && p.endsWith('/'))) throw new Refusal('EINVAL');
    const abs = p.startsWith('/') ? p : `${homeOf(connDomid)}/${p}`;
    if (abs.length > XENSTORE_ABS_PATH_MAX) throw new Refusal('EINVAL');
    return abs;
  };

  // Watch events from the live tree: to socket watches and to the test's own watchers.
  live.onChange = (abs, removed) => {
    for (const w of watches) {
      if (w.abs.startsWith('@')) continue;
      let reported: string | null = null;
      if (isAtOrBelow(abs, w.abs)) reported = abs;
      else if (removed && isAtOrBelow(w.abs, abs)) reported = w.abs; // the watched node went with an ancestor
      if (reported === null) continue;
      // As xenstored: no event about a node the watcher may not read.
      const node = live.get(reported);
      if (node && !XsTree.access(node, w.conn.domid, 'r')) continue;
      // A relative watch hears relative paths.
      if (!w.given.startsWith('/')) reported = reported.slice(homeOf(w.conn.domid).length + 1);
      if (reported === '') continue;
      sendEvent(w.conn, reported, w.token);
    }
    for (const lw of [...localWatchers]) if (isAtOrBelow(abs, lw.abs) || (removed && isAtOrBelow(lw.abs, abs))) lw.cb(abs, removed);
  };

  function sendEvent(conn: Connection, p: string, token: string): void {
    conn.send({ op: 'WATCH_EVENT', reqId: 0, txId: 0, payload: encodeReplyPayload({ op: 'WATCH_EVENT', path: p, token }) });
  }

  function output(conn: Connection, bytes: Uint8Array): void {
    const go = (): void => {
      if (!conn.socket.destroyed) conn.socket.write(bytes);
    };
    if (held) held.push(go);
    else if (delayMs > 0) setTimeout(go, delayMs);
    else go();
  }

  function handle(conn: Connection, frame: Frame): XsReply {
    const req: XsRequest = (() => {
      try {
        return parseRequestPayload(frame.op, frame.payload);
      } catch {
        throw new Refusal('EINVAL');
      }
    })();
    const reqPath = 'path' in req ? req.path : undefined;
    const failure = opFailures.find((f) => f.op === frame.op && (f.path === undefined || f.path === reqPath));
    if (failure) {
      if (--failure.n <= 0) opFailures.splice(opFailures.indexOf(failure), 1);
      throw new Refusal(failure.code);
    }

    let tx: OpenTransaction | undefined;
    if (frame.txId !== 0 && req.op !== 'TRANSACTION_START') {
      tx = conn.transactions.get(frame.txId);
      if (!tx) throw new Refusal('ENOENT');
    }
    const tree = tx ? tx.tree : live;
    const d = conn.domid;
    const mutate = (m: Mutation): void => {
      tree.apply(m, d);
      if (tx) {
        tx.mutations.push(m);
        tx.touched.add(m.path);
        tx.touched.add(parentOf(m.path));
      }
    };
    const looked = (abs: string): void => {
      tx?.touched.add(abs);
    };

    switch (req.op) {
      case 'READ': {
        const abs = resolve(req.path, d);
        looked(abs);
        return { op: 'READ', value: tree.readable(abs, d).value };
      }
      case 'WRITE': {
        const abs = resolve(req.path, d);
        mutate({ kind: 'write', path: abs, value: req.value });
        return { op: 'WRITE' };
      }
      case 'MKDIR': {
        const abs = resolve(req.path, d);
        mutate({ kind: 'mkdir', path: abs });
        return { op: 'MKDIR' };
      }
      case 'RM': {
        const abs = resolve(req.path, d);
        mutate({ kind: 'rm', path: abs });
        return { op: 'RM' };
      }
      case 'DIRECTORY': {
        const abs = resolve(req.path, d);
        looked(abs);
        const entries = [...tree.readable(abs, d).children.keys()];
        if (encodeReplyPayload({ op: 'DIRECTORY', entries }).length > XENSTORE_PAYLOAD_MAX) throw new Refusal('E2BIG');
        return { op: 'DIRECTORY', entries };
      }
      case 'DIRECTORY_PART': {
        const abs = resolve(req.path, d);
        looked(abs);
        const node = tree.readable(abs, d);
        const generation = String(tree.changedAt.get(abs) ?? 0);
        const all = [...node.children.keys()];
        // Offsets count bytes of the "a\0b\0..." list, as in C xenstored; past
        // the end, the reply is the generation and the end marker only.
        let skipped = 0;
        let i = 0;
        while (i < all.length && skipped < req.offset) skipped += encodeUtf8(all[i++]!).length + 1;
        if (skipped > req.offset) throw new Refusal('EINVAL'); // inside a name: we refuse rather than cut it
        const children: string[] = [];
        let size = encodeUtf8(generation).length + 2;
        while (i < all.length && size + encodeUtf8(all[i]!).length + 1 <= XENSTORE_PAYLOAD_MAX) {
          size += encodeUtf8(all[i]!).length + 1;
          children.push(all[i++]!);
        }
        return { op: 'DIRECTORY_PART', generation, children, complete: i === all.length };
      }
      case 'GET_PERMS': {
        const abs = resolve(req.path, d);
        looked(abs);
        return { op: 'GET_PERMS', entries: tree.readable(abs, d).perms.map(formatPerm) };
      }
      case 'SET_PERMS': {
        const abs = resolve(req.path, d);
        const perms = req.perms.map(parsePerm);
        if (perms.length === 0 || perms.some((p) => p === null)) throw new Refusal('EINVAL');
        mutate({ kind: 'setperms', path: abs, perms: perms as Perm[] });
        return { op: 'SET_PERMS' };
      }
      case 'WATCH': {
        const abs = resolve(req.path, d, true);
        if (watches.some((w) => w.conn === conn && w.abs === abs && w.token === req.token)) throw new Refusal('EEXIST');
        watches.push({ conn, abs, given: req.path, token: req.token });
        // As xenstored: the reply first, then one event at once.
        setReplyThen(conn, () => sendEvent(conn, req.path, req.token));
        return { op: 'WATCH' };
      }
      case 'UNWATCH': {
        const abs = resolve(req.path, d, true);
        const i = watches.findIndex((w) => w.conn === conn && w.abs === abs && w.token === req.token);
        if (i < 0) throw new Refusal('ENOENT');
        watches.splice(i, 1);
        return { op: 'UNWATCH' };
      }
      case 'RESET_WATCHES': {
        for (let i = watches.length - 1; i >= 0; i--) if (watches[i]!.conn === conn) watches.splice(i, 1);
        return { op: 'RESET_WATCHES' };
      }
      case 'TRANSACTION_START': {
        if (frame.txId !== 0) throw new Refusal('EBUSY');
        const id = nextTxId++;
        conn.transactions.set(id, { tree: new XsTree(cloneNode(live.root), quotas), startGeneration: live.generation, touched: new Set(), mutations: [] });
        return { op: 'TRANSACTION_START', txId: id };
      }
      case 'TRANSACTION_END': {
        if (!tx) throw new Refusal('ENOENT');
        conn.transactions.delete(frame.txId);
        if (!req.commit) return { op: 'TRANSACTION_END' };
        if (commitFailures.n > 0) {
          commitFailures.n--;
          throw new Refusal(commitFailures.code);
        }
        for (const p of tx.touched) if ((live.changedAt.get(p) ?? 0) > tx.startGeneration) throw new Refusal('EAGAIN');
        live.trusted = true; // permissions were checked inside the transaction
        try {
          for (const m of tx.mutations) live.apply(m, d);
        } finally {
          live.trusted = false;
        }
        return { op: 'TRANSACTION_END' };
      }
      case 'GET_DOMAIN_PATH':
        return { op: 'GET_DOMAIN_PATH', path: homeOf(req.domid) };
      case 'IS_DOMAIN_INTRODUCED':
        return { op: 'IS_DOMAIN_INTRODUCED', introduced: req.domid === 0 || req.domid === domid };
      case 'INTRODUCE':
      case 'RELEASE':
      case 'RESUME':
      case 'SET_TARGET':
        if (d !== 0) throw new Refusal('EACCES');
        return { op: req.op };
      case 'DEBUG':
        throw new Refusal('ENOSYS');
    }
  }

  // A WATCH's initial event must follow its reply; handle() returns the reply, so the event is queued here.
  const afterReply = new Map<Connection, Array<() => void>>();
  function setReplyThen(conn: Connection, fn: () => void): void {
    const list = afterReply.get(conn) ?? [];
    list.push(fn);
    afterReply.set(conn, list);
  }

  function onFrame(conn: Connection, frame: Frame): void {
    let reply: XsReply;
    try {
      reply = handle(conn, frame);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      reply = { op: 'ERROR', code: err.code };
    }
    conn.send({ op: reply.op, reqId: frame.reqId, txId: frame.txId, payload: encodeReplyPayload(reply) });
    const after = afterReply.get(conn);
    if (after) {
      afterReply.delete(conn);
      for (const fn of after) fn();
    }
  }

  function accept(socket: net.Socket, connDomid: number): void {
    const conn: Connection = {
      id: ++nextConnId,
      domid: connDomid,
      socket,
      decoder: new FrameDecoder(),
      transactions: new Map(),
      send: (frame) => output(conn, encodeFrame(frame)),
    };
    connections.add(conn);
    socket.on('data', (chunk: Buffer) => {
      for (const item of conn.decoder.push(new Uint8Array(chunk))) {
        if (!item.ok) {
          const h = item.error.header;
          requests.push({ connection: conn.id, domid: connDomid, op: h?.type ?? -1, reqId: h?.reqId ?? 0, txId: h?.txId ?? 0, payload: new Uint8Array(0) });
          if (item.error.fatal) {
            socket.destroy(); // as xenstored: a connection that breaks framing is dropped
            return;
          }
          // Unknown type: xenstored answers EINVAL.
          output(conn, encodeFrame({ op: 'ERROR', reqId: h?.reqId ?? 0, txId: h?.txId ?? 0, payload: encodeReplyPayload({ op: 'ERROR', code: 'EINVAL' }) }));
          continue;
        }
        const f = item.frame;
        let logged: string | undefined;
        try {
          const r = parseRequestPayload(f.op, f.payload);
          if ('path' in r) logged = resolve(r.path, connDomid, true);
        } catch {
          // Logged without a path; handle() answers EINVAL.
        }
        requests.push({
          connection: conn.id,
          domid: connDomid,
          op: f.op,
          reqId: f.reqId,
          txId: f.txId,
          payload: f.payload,
          ...(logged ? { path: logged } : {}),
        });
        onFrame(conn, f);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      connections.delete(conn);
      afterReply.delete(conn);
      for (let i = watches.length - 1; i >= 0; i--) if (watches[i]!.conn === conn) watches.splice(i, 1);
    });
  }

  const servers = [net.createServer((s) => accept(s, domid)), net.createServer((s) => accept(s, 0))];
  await Promise.all(
    [socketPath, dom0SocketPath].map(
      (p, i) =>
        new Promise<void>((res, rej) => {
          servers[i]!.once('error', rej);
          servers[i]!.listen(p, () => res());
        }),
    ),
  );

  const abs = (p: string): string => (p.startsWith('/') ? p : `${home}/${p}`);
  const store: StoreApi = {
    home,
    read: (p) => {
      const n = live.get(abs(p));
      return n ? decodeUtf8(n.value) : undefined;
    },
    readBytes: (p) => live.get(abs(p))?.value.slice(),
    exists: (p) => live.get(abs(p)) !== undefined,
    write: (p, value) => live.write(abs(p), typeof value === 'string' ? encodeUtf8(value) : value.slice(), 0),
    mkdir: (p) => live.mkdir(abs(p), 0),
    rm: (p) => {
      if (live.get(abs(p))) live.rm(abs(p), 0);
    },
    directory: (p) => {
      const n = live.get(abs(p));
      return n ? [...n.children.keys()] : undefined;
    },
    getPerms: (p) => live.get(abs(p))?.perms.map(formatPerm),
    setPerms: (p, perms) => {
      const parsed = perms.map(parsePerm);
      if (parsed.length === 0 || parsed.some((x) => x === null)) throw new Error(`setPerms ${p}: invalid permissions ${JSON.stringify(perms)}`);
      live.setPerms(abs(p), parsed as Perm[], 0);
    },
    watch: (p, cb) => {
      const entry = { abs: abs(p), cb };
      localWatchers.add(entry);
      return () => localWatchers.delete(entry);
    },
    waitFor: (p, pred, timeoutMs) =>
      new Promise((res, rej) => {
        const check = (): boolean => {
          const v = store.read(p);
          if (!pred(v)) return false;
          clearTimeout(timer);
          stop();
          res(v);
          return true;
        };
        const timer = setTimeout(() => {
          stop();
          rej(new Error(`waitFor ${abs(p)}: condition not met within ${timeoutMs} ms (value now ${JSON.stringify(store.read(p))})`));
        }, timeoutMs);
        const stop = store.watch(p, () => void check());
        check();
      }),
    dump: (p = home) => {
      const out: Record<string, string> = {};
      const walk = (n: XsNode, at: string): void => {
        out[at] = decodeUtf8(n.value);
        for (const [k, c] of n.children) walk(c, at === '/' ? `/${k}` : `${at}/${k}`);
      };
      const n = live.get(abs(p));
      if (n) walk(n, abs(p));
      return out;
    },
  };

  const faults: FaultApi = {
    failNextCommits: (n, code = 'EAGAIN') => {
      commitFailures = { n, code };
    },
    failNext: (op, code, n = 1, p) => {
      opFailures.push({ op, code, n, ...(p !== undefined ? { path: p } : {}) });
    },
    delayReplies: (ms) => {
      delayMs = ms;
    },
    holdReplies: () => {
      held ??= [];
    },
    releaseReplies: () => {
      const queued = held ?? [];
      held = null;
      for (const go of queued) go();
    },
    dropConnections: () => {
      for (const c of connections) c.socket.destroy();
    },
    sendRaw: (bytes) => {
      for (const c of connections) output(c, bytes);
    },
  };

  return {
    domid,
    socketPath,
    dom0SocketPath,
    store,
    faults,
    requests,
    connections: () => connections.size,
    watches: () => watches.map((w) => `${w.given} ${w.token}`),
    close: async () => {
      for (const c of connections) c.socket.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

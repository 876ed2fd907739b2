// The run's journal of VMs (issue #15 item 8). The cleanup registry is in
// memory: a run killed with kill -9 (or a machine that dies) leaves every VM
// it made behind. So each VM is written down before it is installed and again
// once it is gone, and the next run removes what a dead run left.
//
// The matrix only says when (VmJournal, injected through the CleanupRegistry);
// where the journal is kept, and how it is swept, is the CLI's
// (harness/cli/run-journal.ts). Parsing it is pure and lives here.

/** Told by the run about each VM it makes and removes; writes must be durable before returning. */
export interface VmJournal {
  /** Before install is called: from here on, the VM may exist on the host. */
  installing(name: string): void;
  /** Once the VM is gone from the host. */
  removed(name: string): void;
}

/** One line of the journal (JSON). */
export interface JournalEntry {
  event: 'installing' | 'removed';
  /** The host as given to --host, never a password (e.g. ssh://root@HOST, https://HOST, embedded, fake). */
  host: string;
  toolstack: string;
  vm: string;
  /** Who made it, as the drivers record it on the VM (vm-owner.ts). */
  owner: string;
  /** ISO time. */
  time: string;
}

export function formatEntry(e: JournalEntry): string {
  return JSON.stringify({ event: e.event, host: e.host, toolstack: e.toolstack, vm: e.vm, owner: e.owner, time: e.time }) + '\n';
}

function isEntry(v: unknown): v is JournalEntry {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    (o.event === 'installing' || o.event === 'removed') && ['host', 'toolstack', 'vm', 'owner', 'time'].every((k) => typeof o[k] === 'string' && o[k] !== '')
  );
}

/** The entries of a journal's text; a line that is not one (torn by a crash mid-write, edited by hand) is skipped. */
export function parseJournal(text: string): JournalEntry[] {
  const out: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v: unknown = JSON.parse(line);
      if (isEntry(v)) out.push(v);
    } catch {
      // not a line of ours
    }
  }
  return out;
}

/** The VMs installed and never removed: per host, toolstack and name, the last 'installing' not followed by a 'removed'. */
export function outstanding(entries: readonly JournalEntry[]): JournalEntry[] {
  const last = new Map<string, JournalEntry>();
  for (const e of entries) {
    const key = JSON.stringify([e.host, e.toolstack, e.vm]);
    if (e.event === 'installing') {
      last.delete(key); // re-inserted last: the output keeps the order of installs
      last.set(key, e);
    } else last.delete(key);
  }
  return [...last.values()];
}

/** A journal that writes nothing (a run without one). */
export const NO_JOURNAL: VmJournal = { installing: () => undefined, removed: () => undefined };

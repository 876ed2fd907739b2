// `xtv run`'s journal on disk (the entries: harness/matrix/journal.ts), and
// its sweep at the start of the next run (issue #15 item 8).
//
// Where: <report-dir>/.xtv-journal/, one file per run (run-PID-MS.jsonl).
// - The report directory is what a run already writes to, checked writable
//   before any case, and what a rerun (by hand or by CI, in the same
//   checkout) points at again; a per-user directory would also sweep after a
//   run with another --report-dir, but would outlive a CI workspace and mix
//   unrelated checkouts' runs.
// - One file per run, because only its own run ever appends to a file and
//   another run rewrites (compacts) it only once that run is dead: two runs
//   sharing the directory never lose each other's lines, with no lock.
// Each line is written and fsync'd before the install it announces.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { ToolstackDriver, VmRef } from '../toolstack/driver.ts';
import { currentOwner, formatOwner, ownerVerdict, parseOwner } from '../toolstack/vm-owner.ts';
import { destroyVm } from '../matrix/cleanup.ts';
import { formatEntry, outstanding, parseJournal, type JournalEntry, type VmJournal } from '../matrix/journal.ts';
import { errText } from '../matrix/case-run.ts';
import { bounded } from '../matrix/wait.ts';

/** The journal's directory inside the report directory. */
export function journalDir(reportDir: string): string {
  return join(reportDir, '.xtv-journal');
}

/** The host as the journal names it: --host as given, without a password (https://user:pw@h becomes https://user@h). */
export function hostDescription(host: string, stateDir?: string): string {
  if (host === 'embedded' && stateDir !== undefined) return `embedded:${stateDir}`;
  return host.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@:]*):[^/@]*@/i, '$1$2@');
}

/** An error's system code (ENOENT, EACCES...) when it has one, else its text. */
export function codeOf(e: unknown): string {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'string' ? c : errText(e);
}

export interface FileJournalOptions {
  dir: string;
  host: string;
  toolstack: string;
  /** Default: this process, as the drivers record it on each VM. */
  owner?: string;
  /** Said once if the journal cannot be written (the run goes on without it). */
  warn: (line: string) => void;
}

/** This run's journal file: made at the first VM, removed at the end when every VM in it is gone. */
export class FileJournal implements VmJournal {
  readonly path: string;
  private fd: number | undefined;
  private failed = false;
  private readonly owner: string;

  constructor(private readonly o: FileJournalOptions) {
    this.path = join(o.dir, `run-${process.pid}-${Date.now()}.jsonl`);
    this.owner = o.owner ?? formatOwner(currentOwner());
  }

  installing(name: string): void {
    this.write('installing', name);
  }

  removed(name: string): void {
    this.write('removed', name);
  }

  private write(event: JournalEntry['event'], vm: string): void {
    if (this.failed) return;
    try {
      if (this.fd === undefined) {
        mkdirSync(this.o.dir, { recursive: true, mode: 0o700 });
        this.fd = openSync(this.path, 'a', 0o600);
        syncDir(this.o.dir);
      }
      writeSync(this.fd, formatEntry({ event, host: this.o.host, toolstack: this.o.toolstack, vm, owner: this.owner, time: new Date().toISOString() }));
      fsyncSync(this.fd);
    } catch (e) {
      this.failed = true;
      this.o.warn(`journal: cannot write ${this.path} (${codeOf(e)}); if this run is killed, its VMs are left for \`xtv gc\``);
    }
  }

  /** Ends the journal; its file goes when nothing in it is left on the host. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
      this.fd = undefined;
      if (outstanding(parseJournal(readFileSync(this.path, 'utf8'))).length === 0) unlinkSync(this.path);
    } catch {
      // kept: the next run's sweep reads it
    }
  }
}

/** The new file's name is durable too (best effort: not every platform opens directories). */
function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // the file's own fsync still holds its lines
  }
}

/** The same owner record, however a driver spells it back. */
function sameOwner(onHost: string | undefined, journaled: string): boolean {
  if (onHost === undefined) return false;
  const a = parseOwner(onHost);
  const b = parseOwner(journaled);
  if (!a || !b) return onHost.trim() === journaled.trim();
  return a.user === b.user && a.host === b.host && a.pid === b.pid && a.started === b.started;
}

export interface SweepOptions {
  dir: string;
  /** hostDescription of the host this run drives, and its toolstack: only their entries are swept. */
  host: string;
  toolstack: string;
  /** Bound on listing the VMs and on each removal. */
  timeoutMs: number;
  log: (line: string) => void;
  /** This machine's hostname (default os.hostname()). */
  here?: string;
  signal?: AbortSignal;
}

export interface SweepReport {
  /** Removed from the host: their run is dead. */
  removed: string[];
  /** No longer on the host (or a VM of that name made by someone else): only dropped from the journal. */
  dropped: string[];
  /** Still there and could not be removed: kept in the journal. */
  failed: Array<{ vm: string; error: string }>;
}

/**
 * At the start of a run: the VMs that dead runs journaled on this host and
 * never removed are removed (a VM of that name whose recorded owner is not
 * the journal's is not ours: left alone); the files of runs still going, or
 * of another machine's (which cannot be checked from here), are not touched.
 * Then each dead run's file keeps only what is still on a host, or goes.
 */
export async function sweepJournal(driver: ToolstackDriver, o: SweepOptions): Promise<SweepReport> {
  const report: SweepReport = { removed: [], dropped: [], failed: [] };
  let names: string[];
  try {
    names = readdirSync(o.dir).filter((f) => f.endsWith('.jsonl'));
  } catch (e) {
    if (codeOf(e) !== 'ENOENT') o.log(`journal: cannot read ${o.dir} (${codeOf(e)}): nothing swept`);
    return report;
  }
  const dead: Array<{ path: string; lines: number; open: JournalEntry[]; why: string }> = [];
  for (const f of names) {
    const path = join(o.dir, f);
    let entries: JournalEntry[];
    try {
      entries = parseJournal(readFileSync(path, 'utf8'));
    } catch {
      continue;
    }
    // A file is one run's: its owner is on every line.
    const v = entries.length > 0 ? ownerVerdict(entries[0]!.owner, o.here) : undefined;
    if (v?.kind !== 'dead') continue;
    dead.push({ path, lines: entries.length, open: outstanding(entries), why: v.why });
  }
  const ours = dead.flatMap((d) => d.open.filter((e) => e.host === o.host && e.toolstack === o.toolstack).map((e) => ({ e, why: d.why })));
  const settled = new Set<JournalEntry>();
  if (ours.length > 0) {
    let onHost: Map<string, VmRef>;
    try {
      onHost = new Map((await bounded(driver.listOwned(), o.timeoutMs, 'listing the VMs xtv made', o.signal)).map((v) => [v.name, v]));
    } catch (e) {
      o.log(`journal: could not list the host's VMs (${errText(e)}): ${ours.length} VM(s) of dead runs kept for the next run`);
      return report;
    }
    for (const { e, why } of ours) {
      const vm = onHost.get(e.vm);
      if (!vm || !sameOwner(vm.owner, e.owner)) {
        report.dropped.push(e.vm);
        settled.add(e);
        continue;
      }
      if (o.signal?.aborted) continue;
      try {
        await bounded(destroyVm(driver, vm, o.timeoutMs), o.timeoutMs, `removing ${vm.name}`);
        report.removed.push(e.vm);
        settled.add(e);
        o.log(`journal: removed ${e.vm}, left by a run that is gone (${why})`);
      } catch (err) {
        report.failed.push({ vm: e.vm, error: errText(err) });
        o.log(`journal: could not remove ${e.vm}: ${errText(err)} (kept for the next run; or \`xtv gc --prefix ${e.vm}\`)`);
      }
    }
    if (report.dropped.length > 0)
      o.log(`journal: ${report.dropped.length} VM(s) of dead runs no longer on ${o.host}, dropped from the journal: ${report.dropped.join(', ')}`);
  }
  for (const d of dead) {
    const keep = d.open.filter((e) => !settled.has(e));
    try {
      if (keep.length === 0) unlinkSync(d.path);
      // Only what is still out there: the history of removed VMs goes.
      else if (keep.length < d.lines) rewrite(d.path, keep);
    } catch (e) {
      o.log(`journal: cannot compact ${d.path} (${codeOf(e)})`);
    }
  }
  return report;
}

/** Replaces a (dead run's) journal file at once: written, fsync'd, renamed over. */
function rewrite(path: string, entries: readonly JournalEntry[]): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, entries.map(formatEntry).join(''), { mode: 0o600 });
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

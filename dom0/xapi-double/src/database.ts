// The endpoint's object store: records by class and opaque ref, uuids, and the
// event log that event.from reads. Pure (no I/O); the clock is injected.
//
// Every change bumps a generation counter and appends an event with a
// snapshot of the record; event.from returns the events newer than its token.
// The log is bounded: a token older than what it still holds gets EVENTS_LOST,
// which makes the xen-api client refetch everything (as with XAPI).
import { randomUUID } from 'node:crypto';
import { ApiError, errors } from './errors.ts';
import { XapiDate, type XapiValue } from './values.ts';

export type XapiClass = 'pool' | 'host' | 'SR' | 'VM' | 'task' | 'session';
export const EVENT_CLASSES: readonly XapiClass[] = ['pool', 'host', 'SR', 'VM', 'task'];

export type Record_ = Record<string, XapiValue>;

export interface XapiEvent {
  id: number;
  timestamp: XapiDate;
  class: string; // lower case, as XAPI sends it
  operation: 'add' | 'mod' | 'del';
  ref: string;
  snapshot: Record_;
}

export interface DatabaseOptions {
  /** Events kept for event.from. */
  maxEvents?: number;
  now?: () => Date;
}

/** Tokens are zero-padded generation numbers, compared as numbers. */
export function formatToken(generation: number): string {
  return String(generation).padStart(20, '0');
}

export function parseToken(token: string): number {
  if (token === '') return -1;
  // XAPI's tokens are "GEN,GEN"; only the first part matters here.
  const first = token.split(',')[0]!;
  if (!/^\d{1,20}$/.test(first)) throw errors.eventFromTokenInvalid(token);
  return Number(first);
}

export class Database {
  private readonly objects = new Map<XapiClass, Map<string, Record_>>();
  private readonly byUuid = new Map<string, { cls: XapiClass; ref: string }>();
  private events: XapiEvent[] = [];
  private generation = 0;
  /** The id of the newest event no longer in the log (0: none dropped yet). */
  private droppedUpTo = 0;
  private readonly maxEvents: number;
  private readonly now: () => Date;
  private readonly waiters = new Set<() => void>();

  constructor(opts: DatabaseOptions = {}) {
    this.maxEvents = opts.maxEvents ?? 5000;
    this.now = opts.now ?? (() => new Date());
    for (const c of [...EVENT_CLASSES, 'session' as const]) this.objects.set(c, new Map());
  }

  newRef(): string {
    return `OpaqueRef:${randomUUID()}`;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  add(cls: XapiClass, record: Record_, ref = this.newRef()): string {
    const rec = { ...record };
    // The default records carry uuid "": every object gets its own.
    if (typeof rec.uuid !== 'string' || rec.uuid === '') rec.uuid = randomUUID();
    this.objects.get(cls)!.set(ref, rec);
    this.byUuid.set(rec.uuid as string, { cls, ref });
    this.emit(cls, 'add', ref, rec);
    return ref;
  }

  has(cls: XapiClass, ref: unknown): boolean {
    return typeof ref === 'string' && this.objects.get(cls)!.has(ref);
  }

  /** The live record (do not mutate: use update). Throws HANDLE_INVALID. */
  get(cls: XapiClass, ref: unknown): Record_ {
    const rec = typeof ref === 'string' ? this.objects.get(cls)!.get(ref) : undefined;
    if (rec === undefined) throw errors.handleInvalid(cls, String(ref));
    return rec;
  }

  /** A copy, safe to hand out. */
  snapshot(cls: XapiClass, ref: string): Record_ {
    return structuredCopy(this.get(cls, ref));
  }

  all(cls: XapiClass): Array<[string, Record_]> {
    return [...this.objects.get(cls)!.entries()];
  }

  count(cls: XapiClass): number {
    return this.objects.get(cls)!.size;
  }

  byUuidOf(cls: XapiClass, uuid: unknown): string {
    const hit = typeof uuid === 'string' ? this.byUuid.get(uuid) : undefined;
    if (hit === undefined || hit.cls !== cls) throw errors.uuidInvalid(cls, String(uuid));
    return hit.ref;
  }

  /** Applies changes to a record; emits one 'mod' event when anything changed. */
  update(cls: XapiClass, ref: string, changes: Record_): void {
    const rec = this.get(cls, ref);
    let changed = false;
    for (const [k, v] of Object.entries(changes)) {
      if (!sameValue(rec[k], v)) {
        rec[k] = v;
        changed = true;
      }
    }
    if (changed) this.emit(cls, 'mod', ref, rec);
  }

  remove(cls: XapiClass, ref: string): void {
    const rec = this.get(cls, ref);
    this.objects.get(cls)!.delete(ref);
    this.byUuid.delete(rec.uuid as string);
    this.emit(cls, 'del', ref, rec);
  }

  /** event.inject: a 'mod' event for the object without changing it; returns the new token. */
  inject(cls: XapiClass, ref: string): string {
    this.emit(cls, 'mod', ref, this.get(cls, ref));
    return formatToken(this.generation);
  }

  private emit(cls: XapiClass, operation: XapiEvent['operation'], ref: string, rec: Record_): void {
    this.generation += 1;
    if (cls === 'session') return; // sessions are not event classes here
    this.events.push({
      id: this.generation,
      timestamp: new XapiDate(this.now()),
      class: cls.toLowerCase(),
      operation,
      ref,
      snapshot: structuredCopy(rec),
    });
    if (this.events.length > this.maxEvents) {
      const dropped = this.events.splice(0, this.events.length - this.maxEvents);
      this.droppedUpTo = dropped[dropped.length - 1]!.id;
    }
    for (const w of [...this.waiters]) w();
  }

  /**
   * The events after `token` that match `classes` ("*", a class name in any
   * case, or "class/ref"). Throws EVENTS_LOST when the log no longer reaches
   * back to the token. An empty token means "everything there is now", given
   * as 'add' events of the current records.
   */
  eventsSince(classes: string[], token: string): { events: XapiEvent[]; token: string } {
    const from = parseToken(token);
    const match = classMatcher(classes);
    if (from < 0) {
      const events: XapiEvent[] = [];
      for (const cls of EVENT_CLASSES) {
        for (const [ref, rec] of this.all(cls)) {
          if (match(cls.toLowerCase(), ref)) {
            events.push({
              id: this.generation,
              timestamp: new XapiDate(this.now()),
              class: cls.toLowerCase(),
              operation: 'add',
              ref,
              snapshot: structuredCopy(rec),
            });
          }
        }
      }
      return { events, token: formatToken(this.generation) };
    }
    if (from > this.generation) throw errors.eventFromTokenInvalid(token);
    if (from < this.droppedUpTo) throw errors.eventsLost();
    return { events: this.events.filter((e) => e.id > from && match(e.class, e.ref)), token: formatToken(this.generation) };
  }

  /** Resolves at the next change of any object, or after `ms`. */
  waitForChange(ms: number, signal?: { cancelled: boolean }): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
      if (signal?.cancelled) done();
    });
  }

  wakeAll(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Counts of objects per requested class, as event.from's valid_ref_counts. */
  refCounts(classes: string[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const cls of EVENT_CLASSES) {
      const lc = cls.toLowerCase();
      if (classes.some((c) => c === '*' || c.toLowerCase() === lc || c.toLowerCase().startsWith(`${lc}/`))) out[lc] = this.count(cls);
    }
    return out;
  }
}

export function classMatcher(classes: string[]): (lcClass: string, ref: string) => boolean {
  const wanted = classes.map((c) => c.toLowerCase());
  return (lcClass, ref) => wanted.some((w) => w === '*' || w === lcClass || w === `${lcClass}/${ref.toLowerCase()}`);
}

/** Deep copy of a record (XapiDate kept as is: it is immutable). */
export function structuredCopy<T extends XapiValue | Record_>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => structuredCopy(x)) as T;
  if (v instanceof XapiDate || typeof v !== 'object' || v === null) return v;
  const out: Record<string, XapiValue> = {};
  for (const [k, x] of Object.entries(v)) out[k] = structuredCopy(x);
  return out as T;
}

function sameValue(a: XapiValue | undefined, b: XapiValue): boolean {
  if (a === b) return true;
  if (a === undefined) return false;
  if (a instanceof XapiDate && b instanceof XapiDate) return a.date.getTime() === b.date.getTime();
  if (typeof a === 'object' && typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

export { ApiError };

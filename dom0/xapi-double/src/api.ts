// The XenAPI methods this test double serves, as a table, and the dispatcher
// that checks sessions, parameter counts and types before any method runs, so
// that bad input changes nothing. `Async.X` runs X in a task, as XAPI does.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Database, EVENT_CLASSES, type Record_, type XapiClass } from './database.ts';
import { ApiError, errors, toApiError } from './errors.ts';
import type { Lifecycle, VmOperation } from './lifecycle.ts';
import type { Profile } from './profiles.ts';
import { controlDomain, defaultHost, defaultPool, defaultVm, localStorageSr, newTask, otherInstallMediaTemplate, vmForProfile } from './records.ts';
import { NULL_REF, XapiDate, type XapiValue } from './values.ts';
import { formatXmlValue } from './xmlrpc.ts';

type ParamType = 'string' | 'ref' | 'int' | 'bool' | 'float' | 'map' | 'strings' | 'record';

interface MethodDef {
  /** Parameter types after the session (when `session` is true). */
  params: ParamType[];
  session: boolean;
  /** May be called as Async.<name>. */
  async: boolean;
  fn: (ctx: CallCtx, args: unknown[]) => Promise<XapiValue> | XapiValue;
}

export interface CallCtx {
  session: string | null;
  /** Set while the call runs as a task (Async.*). */
  task: string | null;
}

export interface ApiOptions {
  user: string;
  password: string;
  /** The XAPI version the endpoint passes for (profiles.ts). */
  profile: Profile;
  /** Longest event.from wait (seconds); longer requests are cut to this. */
  maxEventWaitSec?: number;
  /** Over DEFAULT_SESSION_LIMITS. */
  sessions?: Partial<SessionLimits>;
}

/**
 * How long sessions live, as xapi's session GC decides (ocaml/xapi/db_gc_util.ml timeout_sessions
 * and timeout_sessions_common, run by the DB GC thread): a session whose last_active is older than
 * xapi_globs.ml inactive_session_timeout (86400 s, "24 hrs") is destroyed, and when a group holds
 * more than its limit the least recently active are destroyed; sessions with a pending task are
 * never touched. xapi's groups: root sessions without an originator, xapi_globs.ml max_sessions
 * (= max_tasks * 2 = 400); root sessions per originator, max_sessions_per_originator (500); other
 * users per name, max_sessions_per_user_name (500). The double has one user and keeps one group of
 * maxSessions for all, so that the total is bounded, and acts at once (at login, at each use)
 * instead of on GC passes. A session gone answers SESSION_INVALID [ref], as xapi's session_check.ml
 * does for a ref it no longer has.
 */
export interface SessionLimits {
  /** A session unused for longer is gone (ms); default 24 h (inactive_session_timeout). */
  sessionIdleMs: number;
  /** Live sessions at most; a login beyond drops the least recently used one (default 400, max_sessions). */
  maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { sessionIdleMs: 86_400_000, maxSessions: 400 };

interface Session {
  user: string;
  /** When a call last began or ended in it (xapi: last_active). */
  lastActive: number;
  /** Calls and Async tasks running in it: such a session neither expires nor is dropped while they run. */
  inUse: number;
}

/** Fields callers may set with set_<field> (and add_to_/remove_from_ for maps). */
const VM_WRITABLE: Record<string, ParamType> = {
  name_label: 'string',
  name_description: 'string',
  user_version: 'int',
  is_a_template: 'bool',
  affinity: 'ref',
  VCPUs_params: 'map',
  actions_after_shutdown: 'string',
  actions_after_reboot: 'string',
  actions_after_crash: 'string',
  actions_after_softreboot: 'string',
  PV_bootloader: 'string',
  PV_kernel: 'string',
  PV_ramdisk: 'string',
  PV_args: 'string',
  PV_bootloader_args: 'string',
  PV_legacy_args: 'string',
  HVM_boot_policy: 'string',
  HVM_boot_params: 'map',
  platform: 'map',
  PCI_bus: 'string',
  other_config: 'map',
  recommendations: 'string',
  xenstore_data: 'map',
  tags: 'strings',
  blocked_operations: 'map',
  domain_type: 'string',
  NVRAM: 'map',
  ha_restart_priority: 'string',
  HVM_shadow_multiplier: 'float',
  VCPUs_max: 'int',
  VCPUs_at_startup: 'int',
  memory_static_max: 'int',
  memory_static_min: 'int',
  memory_dynamic_max: 'int',
  memory_dynamic_min: 'int',
  suspend_SR: 'ref',
};
/** Setters that XAPI allows only on a halted VM. */
const VM_HALTED_ONLY = new Set(['memory_static_max', 'memory_static_min', 'VCPUs_max']);
/** VM enums (ocaml/idl/datamodel_vm.ml); domain_type's values depend on the line (profiles.ts). */
const VM_ENUMS: Record<string, string[]> = {
  actions_after_shutdown: ['destroy', 'restart'],
  actions_after_reboot: ['destroy', 'restart'],
  actions_after_crash: ['destroy', 'coredump_and_destroy', 'restart', 'coredump_and_restart', 'preserve', 'rename_restart'],
  actions_after_softreboot: ['soft_reboot', 'destroy', 'restart', 'preserve'],
};
const POOL_WRITABLE: Record<string, ParamType> = {
  name_label: 'string',
  name_description: 'string',
  other_config: 'map',
  tags: 'strings',
  default_SR: 'ref',
  suspend_image_SR: 'ref',
  crash_dump_SR: 'ref',
};
const HOST_WRITABLE: Record<string, ParamType> = {
  name_label: 'string',
  name_description: 'string',
  other_config: 'map',
  tags: 'strings',
  suspend_image_sr: 'ref',
  crash_dump_sr: 'ref',
};
const TASK_WRITABLE: Record<string, ParamType> = { other_config: 'map' };
const CLASSES: XapiClass[] = ['pool', 'host', 'SR', 'VM', 'task'];
/**
 * Field setters have no Async form (ocaml/idl/datamodel_utils.ml new_messages_of_field), except
 * these, which the datamodel declares as messages of their own (`call`, Async by default):
 * datamodel_vm.ml set_actions_after_crash and the blocked_operations trio; datamodel.ml task's other_config.
 */
const ASYNC_SETTERS = new Set([
  'VM.set_actions_after_crash',
  'VM.set_blocked_operations',
  'VM.add_to_blocked_operations',
  'VM.remove_from_blocked_operations',
  'task.set_other_config',
  'task.add_to_other_config',
  'task.remove_from_other_config',
]);

/**
 * An enum value as XAPI's unmarshaller reads it (ocaml-rpc ppx/ppx_deriving_rpc.ml, used by
 * ocaml/xapi-types for every enum): in any case, and a value the type lacks is a failwith.
 */
function parseEnum(allowed: readonly string[], v: string): string {
  const lower = v.toLowerCase();
  if (!allowed.includes(lower)) throw errors.unknownEnum();
  return lower;
}

function coerce(method: string, index: number, type: ParamType, v: unknown): unknown {
  const bad = () => errors.fieldType(`${method} parameter ${index + 1}`);
  switch (type) {
    case 'string':
    case 'ref':
      if (typeof v !== 'string') throw bad();
      return v;
    case 'int':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
      if (typeof v === 'string' && /^-?\d{1,18}$/.test(v)) return Number(v);
      throw bad();
    case 'float':
      if (typeof v === 'number' && Number.isFinite(v)) return v;
      if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
      throw bad();
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === 'false') return v === 'true';
      throw bad();
    case 'map': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad();
      const out: Record<string, string> = {};
      for (const [k, x] of Object.entries(v)) {
        if (typeof x !== 'string') throw bad();
        out[k] = x;
      }
      return out;
    }
    case 'strings':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad();
      return [...v];
    case 'record':
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad();
      return v;
  }
}

export class XenApi {
  readonly db: Database;
  readonly poolRef: string;
  readonly hostRef: string;
  private readonly methods = new Map<string, MethodDef>();
  private readonly sessions = new Map<string, Session>();
  private readonly sessionLimits: SessionLimits;
  private readonly writable: Record<string, Record<string, ParamType>>;
  private readonly enums: Record<string, string[]>;
  private lifecycle!: Lifecycle;
  private closing = false;

  constructor(
    private readonly opts: ApiOptions,
    db = new Database(),
  ) {
    this.db = db;
    this.sessionLimits = { ...DEFAULT_SESSION_LIMITS, ...opts.sessions };
    const profile = opts.profile;
    const vmWritable = Object.fromEntries(Object.entries(VM_WRITABLE).filter(([f]) => !profile.vmFieldsAbsent.includes(f)));
    this.writable = { VM: vmWritable, pool: POOL_WRITABLE, host: HOST_WRITABLE, SR: {}, task: TASK_WRITABLE };
    this.enums = { ...VM_ENUMS, domain_type: profile.domainTypes };
    this.hostRef = db.newRef();
    const dom0Ref = db.newRef();
    // As an XCP-ng install leaves it: the local SR is the pool's default and suspend-image SR and the host's suspend-image SR.
    const sr = db.add('SR', localStorageSr());
    db.add('host', { ...defaultHost(profile), control_domain: dom0Ref, suspend_image_sr: sr }, this.hostRef);
    this.poolRef = db.add('pool', { ...defaultPool(this.hostRef), default_SR: sr, suspend_image_SR: sr });
    db.add('VM', vmForProfile(profile, controlDomain(this.hostRef)), dom0Ref);
    db.add('VM', vmForProfile(profile, otherInstallMediaTemplate()));
    this.register();
  }

  /** The lifecycle is made after the API because it needs the host ref. */
  attach(lifecycle: Lifecycle): void {
    this.lifecycle = lifecycle;
  }

  /** Answers waiting event.from calls at once (with what there is) so that connections can close. */
  shutdown(): void {
    this.closing = true;
    this.db.wakeAll();
  }

  /** Every method name, as system.listMethods gives them. */
  listMethods(): string[] {
    const names = [...this.methods.keys()];
    for (const cls of CLASSES) {
      const sample = this.db.all(cls)[0]?.[1] ?? (cls === 'task' ? newTask('', NULL_REF) : cls === 'VM' ? this.blankVm() : {});
      for (const f of Object.keys(sample)) names.push(`${cls}.get_${f}`);
    }
    return [...new Set(names)].sort();
  }

  /** Runs one call; never throws anything but ApiError. */
  async call(method: string, params: unknown[]): Promise<XapiValue> {
    try {
      return await this.dispatch(method, params);
    } catch (err) {
      throw toApiError(err);
    }
  }

  private async dispatch(method: string, params: unknown[]): Promise<XapiValue> {
    let name = method;
    let isAsync = false;
    if (method.startsWith('Async.')) {
      name = method.slice('Async.'.length);
      isAsync = true;
    }
    const def = this.methods.get(name) ?? this.getterFor(name);
    if (!def || (isAsync && !def.async)) throw errors.methodUnknown(method);
    // gen_server.ml: [the name without Async., the parameters it requires, those received], the
    // session counted in neither; login's version and originator are optional. system.listMethods
    // is answered before any count.
    const received = params.length - (def.session ? 1 : 0);
    const countOk = name === 'system.listMethods' || (name === 'session.login_with_password' ? received >= 2 && received <= 4 : received === def.params.length);
    if (!countOk) throw errors.paramCount(name, def.params.length, received);
    let session: string | null = null;
    let rest = params;
    if (def.session) {
      session = typeof params[0] === 'string' ? params[0] : '';
      if (!this.liveSession(session)) throw errors.sessionInvalid(String(params[0]));
      rest = params.slice(1);
    }
    const args = def.params.map((t, i) => coerce(method, i + (def.session ? 1 : 0), t, rest[i]));
    const s = session === null ? undefined : this.sessions.get(session);
    const release = () => {
      if (!s) return;
      s.inUse--;
      s.lastActive = Date.now();
    };
    if (s) s.inUse++;
    if (!isAsync) {
      try {
        return await def.fn({ session, task: null }, args);
      } finally {
        release();
      }
    }
    const task = this.db.add('task', newTask(method, this.hostRef));
    void (async () => {
      try {
        const v = await def.fn({ session, task }, args);
        if (this.db.has('task', task)) {
          this.db.update('task', task, { status: 'success', progress: 1, finished: new XapiDate(new Date()), result: v === '' ? '' : formatXmlValue(v) });
        }
      } catch (err) {
        const e = toApiError(err);
        if (this.db.has('task', task)) {
          // A failed task keeps its error; a cancelled one is `cancelled` (ocaml/xapi/taskHelper.ml failed).
          const status = e.code === 'TASK_CANCELLED' ? 'cancelled' : 'failure';
          this.db.update('task', task, { status, progress: 1, finished: new XapiDate(new Date()), error_info: [e.code, ...e.params] });
        }
      } finally {
        release();
      }
    })();
    return task;
  }

  /** Idle (no call or task in it) for longer than sessionIdleMs. */
  private expired(s: { inUse: number; lastActive: number }, now: number): boolean {
    return s.inUse === 0 && now - s.lastActive > this.sessionLimits.sessionIdleMs;
  }

  /** Whether the session is live; one idle for too long is dropped here (SessionLimits). */
  private liveSession(ref: string): boolean {
    const s = this.sessions.get(ref);
    if (!s) return false;
    if (this.expired(s, Date.now())) {
      this.sessions.delete(ref);
      return false;
    }
    return true;
  }

  /** Before a login: drops idle sessions, then the least recently used until there is room (SessionLimits). */
  private makeRoomForSession(): void {
    const now = Date.now();
    for (const [ref, s] of this.sessions) if (this.expired(s, now)) this.sessions.delete(ref);
    if (this.sessions.size < this.sessionLimits.maxSessions) return;
    // db_gc_util.ml keeps sessions with pending tasks; here they go last, so that the count stays bounded.
    const byAge = [...this.sessions].sort(([, a], [, b]) => Number(a.inUse > 0) - Number(b.inUse > 0) || a.lastActive - b.lastActive);
    for (const [ref] of byAge.slice(0, this.sessions.size - this.sessionLimits.maxSessions + 1)) this.sessions.delete(ref);
  }

  /** Live sessions now (for tests and logs). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** <class>.get_<field> for every field of the class's records. */
  private getterFor(name: string): MethodDef | undefined {
    const m = /^(pool|host|SR|VM|task)\.get_(\w+)$/.exec(name);
    if (!m) return undefined;
    const cls = m[1] as XapiClass;
    const field = m[2]!;
    const sample = cls === 'task' ? newTask('', NULL_REF) : cls === 'VM' ? this.blankVm() : this.db.all(cls)[0]![1];
    if (!(field in sample)) return undefined;
    return {
      params: ['ref'],
      session: true,
      async: false,
      fn: async (_c, [ref]) => {
        if (cls === 'VM') await this.lifecycle.current();
        return this.db.snapshot(cls, ref as string)[field]!;
      },
    };
  }

  private def(name: string, params: ParamType[], fn: MethodDef['fn'], opts: { session?: boolean; async?: boolean } = {}): void {
    this.methods.set(name, { params, fn, session: opts.session ?? true, async: opts.async ?? false });
  }

  /** A VM record of this line with the defaults. */
  private blankVm(): Record_ {
    return vmForProfile(this.opts.profile, defaultVm());
  }

  private vm(ref: unknown): string {
    const r = String(ref);
    this.db.get('VM', r); // HANDLE_INVALID
    return r;
  }

  private register(): void {
    // ---- session and introspection --------------------------------------
    this.def(
      'session.login_with_password',
      ['string', 'string'],
      (_c, [user, password]) => {
        if (!this.checkPassword(String(user), String(password))) throw errors.authFailed(String(user));
        const ref = `OpaqueRef:${randomBytes(16)
          .toString('hex')
          .replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5')}`;
        this.makeRoomForSession();
        const now = Date.now();
        this.sessions.set(ref, { user: String(user), lastActive: now, inUse: 0 });
        return ref;
      },
      { session: false },
    );
    this.def('session.logout', [], (c) => {
      this.sessions.delete(c.session!);
      return '';
    });
    this.def('session.get_this_host', ['ref'], () => this.hostRef);
    this.def('system.listMethods', [], () => this.listMethods(), { session: false });

    // ---- records of every class -------------------------------------------
    for (const cls of CLASSES) {
      const refresh = async () => {
        if (cls === 'VM') await this.lifecycle.current();
      };
      this.def(`${cls}.get_all_records`, [], async () => {
        await refresh();
        return Object.fromEntries(this.db.all(cls).map(([r]) => [r, this.db.snapshot(cls, r)]));
      });
      this.def(`${cls}.get_all`, [], async () => {
        await refresh();
        return this.db.all(cls).map(([r]) => r);
      });
      this.def(`${cls}.get_record`, ['ref'], async (_c, [ref]) => {
        await refresh();
        return this.db.snapshot(cls, ref as string);
      });
      this.def(`${cls}.get_by_uuid`, ['string'], (_c, [uuid]) => this.db.byUuidOf(cls, uuid));
      if (cls !== 'pool') {
        this.def(`${cls}.get_by_name_label`, ['string'], (_c, [label]) =>
          this.db
            .all(cls)
            .filter(([, v]) => v.name_label === label)
            .map(([r]) => r),
        );
      }
      const setter = (name: string, params: ParamType[], fn: MethodDef['fn']) => this.def(name, params, fn, { async: ASYNC_SETTERS.has(name) });
      for (const [field, type] of Object.entries(this.writable[cls]!)) {
        setter(`${cls}.set_${field}`, ['ref', type], async (_c, [ref, value]) => this.setField(cls, ref as string, field, value as XapiValue));
        if (type === 'map') {
          setter(`${cls}.add_to_${field}`, ['ref', 'string', 'string'], async (_c, [ref, k, v]) => {
            const cur = this.db.get(cls, ref)[field] as Record<string, string>;
            if (Object.hasOwn(cur, k as string)) throw errors.mapDuplicateKey(cls, field, ref as string, k as string);
            this.db.update(cls, ref as string, { [field]: { ...cur, [k as string]: v as string } });
            return '';
          });
          setter(`${cls}.remove_from_${field}`, ['ref', 'string'], async (_c, [ref, k]) => {
            const cur = { ...(this.db.get(cls, ref)[field] as Record<string, string>) };
            delete cur[k as string];
            this.db.update(cls, ref as string, { [field]: cur });
            return '';
          });
        }
        if (type === 'strings') {
          setter(`${cls}.add_${field}`, ['ref', 'string'], (_c, [ref, v]) => {
            const cur = this.db.get(cls, ref)[field] as string[];
            if (!cur.includes(v as string)) this.db.update(cls, ref as string, { [field]: [...cur, v as string] });
            return '';
          });
          setter(`${cls}.remove_${field}`, ['ref', 'string'], (_c, [ref, v]) => {
            const cur = this.db.get(cls, ref)[field] as string[];
            this.db.update(cls, ref as string, { [field]: cur.filter((x) => x !== v) });
            return '';
          });
        }
      }
    }

    // ---- events --------------------------------------------------------------
    this.def('event.inject', ['string', 'ref'], (_c, [cls, ref]) => {
      const c = CLASSES.find((k) => k.toLowerCase() === String(cls).toLowerCase() && k !== 'session');
      if (!c) throw errors.handleInvalid(String(cls), String(ref));
      return this.db.inject(c, ref as string);
    });
    this.def('event.from', ['strings', 'string', 'float'], async (_c, [classes, token, timeout]) => {
      const cls = classes as string[];
      const maxWait = this.opts.maxEventWaitSec ?? 600;
      const deadline = Date.now() + Math.max(0, Math.min(timeout as number, maxWait)) * 1000;
      let tok = token as string;
      for (;;) {
        const r = this.db.eventsSince(cls, tok);
        if (r.events.length > 0 || Date.now() >= deadline || this.closing) {
          return { events: r.events as unknown as XapiValue, valid_ref_counts: this.db.refCounts(cls), token: r.token };
        }
        tok = r.token;
        await this.db.waitForChange(deadline - Date.now());
      }
    });

    // ---- tasks ------------------------------------------------------------------
    this.def('task.create', ['string', 'string'], (_c, [label, desc]) =>
      this.db.add('task', { ...newTask(label as string, this.hostRef), name_description: desc as string }),
    );
    this.def('task.destroy', ['ref'], (_c, [ref]) => {
      this.db.get('task', ref);
      this.db.remove('task', ref as string);
      return '';
    });
    this.def(
      'task.cancel',
      ['ref'],
      (_c, [ref]) => {
        // A power operation still waiting on its guest gives up with TASK_CANCELLED; anything else runs to its end.
        const t = this.db.get('task', ref);
        if (t.status === 'pending') {
          this.db.update('task', ref as string, { status: 'cancelling' });
          this.lifecycle.cancelTask(ref as string);
        }
        return '';
      },
      { async: true },
    );

    // ---- VM: create, clone, destroy ---------------------------------------------
    this.def('VM.create', ['record'], (_c, [rec]) => this.createVm(rec as Record<string, unknown>), { async: true });
    const clone = async (ref: unknown, name: unknown, op: VmOperation) => {
      await this.lifecycle.checkOperation(this.vm(ref), op);
      const src = this.db.snapshot('VM', ref as string);
      const rest: Record_ = { ...src };
      delete rest.uuid; // the clone gets its own
      return this.db.add('VM', {
        ...rest,
        name_label: name as string,
        is_default_template: false,
        power_state: 'Halted',
        domid: -1,
        resident_on: NULL_REF,
        current_operations: {},
      });
    };
    this.def('VM.clone', ['ref', 'string'], (_c, [ref, name]) => clone(ref, name, 'clone'), { async: true });
    this.def('VM.copy', ['ref', 'string', 'ref'], (_c, [ref, name]) => clone(ref, name, 'copy'), { async: true });
    this.def(
      'VM.provision',
      ['ref'],
      async (_c, [ref]) => {
        await this.lifecycle.checkOperation(this.vm(ref), 'provision');
        return '';
      },
      { async: true },
    );
    this.def(
      'VM.destroy',
      ['ref'],
      async (_c, [ref]) => {
        const r = this.vm(ref);
        await this.lifecycle.checkOperation(r, 'destroy');
        await this.lifecycle.forget(r);
        this.db.remove('VM', r);
        return '';
      },
      { async: true },
    );
    this.def(
      'VM.set_memory_limits',
      ['ref', 'int', 'int', 'int', 'int'],
      (_c, [ref, smin, smax, dmin, dmax]) => {
        const r = this.vm(ref);
        this.requireHalted(r);
        const [a, b, c2, d] = [smin, dmin, dmax, smax] as number[];
        if (!(a! <= b! && b! <= c2! && c2! <= d!))
          throw new ApiError('MEMORY_CONSTRAINT_VIOLATION', ['Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max']);
        this.db.update('VM', r, { memory_static_min: a!, memory_dynamic_min: b!, memory_dynamic_max: c2!, memory_static_max: d! });
        return '';
      },
      { async: true },
    );
    this.def(
      'VM.set_memory',
      ['ref', 'int'],
      (_c, [ref, bytes]) => {
        const r = this.vm(ref);
        this.requireHalted(r);
        const n = bytes as number;
        const min = Math.min(n, Number(this.db.get('VM', r).memory_static_min));
        this.db.update('VM', r, { memory_static_min: min, memory_dynamic_min: n, memory_dynamic_max: n, memory_static_max: n });
        return '';
      },
      { async: true },
    );
    this.def(
      'VM.set_memory_dynamic_range',
      ['ref', 'int', 'int'],
      async (_c, [ref, min, max]) => {
        await this.lifecycle.checkOperation(this.vm(ref), 'changing_dynamic_range');
        this.db.update('VM', ref as string, { memory_dynamic_min: min as number, memory_dynamic_max: max as number });
        return '';
      },
      { async: true },
    );

    // ---- host: what Xen says about the machine ----------------------------------------
    this.def(
      'host.compute_free_memory',
      ['ref'],
      async (_c, [host]) => {
        if (host !== this.hostRef) throw errors.handleInvalid('host', String(host));
        return (await this.lifecycle.hv.hostInfo()).freeMemoryBytes;
      },
      { async: true },
    );

    // ---- VM power operations (lifecycle.ts) ---------------------------------------
    const op = (name: string, params: ParamType[], fn: (ref: string, task: string | null, args: unknown[]) => Promise<void>) =>
      this.def(
        `VM.${name}`,
        ['ref', ...params],
        async (c, [ref, ...args]) => {
          await fn(this.vm(ref), c.task, args);
          return '';
        },
        { async: true },
      );
    op('start', ['bool', 'bool'], (r, task, [paused]) => this.lifecycle.start(r, paused as boolean, task));
    op('start_on', ['ref', 'bool', 'bool'], (r, task, [host, paused]) => {
      if (host !== this.hostRef) throw errors.handleInvalid('host', String(host));
      return this.lifecycle.start(r, paused as boolean, task, 'start_on');
    });
    op('clean_shutdown', [], (r, task) => this.lifecycle.cleanShutdown(r, task));
    op('hard_shutdown', [], (r, task) => this.lifecycle.hardShutdown(r, task));
    op('shutdown', [], (r, task) => this.lifecycle.shutdown(r, task));
    op('clean_reboot', [], (r, task) => this.lifecycle.cleanReboot(r, task));
    op('hard_reboot', [], (r, task) => this.lifecycle.hardReboot(r, task));
    op('suspend', [], (r, task) => this.lifecycle.suspend(r, task));
    op('resume', ['bool', 'bool'], (r, task, [paused]) => this.lifecycle.resume(r, paused as boolean, task));
    op('resume_on', ['ref', 'bool', 'bool'], (r, task, [host, paused]) => {
      if (host !== this.hostRef) throw errors.handleInvalid('host', String(host));
      return this.lifecycle.resume(r, paused as boolean, task, 'resume_on');
    });
    // To this host only: the double is a pool of one (xapi_vm_migrate.ml pool_migrate allows a localhost migration).
    op('pool_migrate', ['ref', 'map'], (r, task, [host]) => {
      if (host !== this.hostRef) throw errors.handleInvalid('host', String(host));
      return this.lifecycle.poolMigrate(r, task);
    });
    op('pause', [], (r, task) => this.lifecycle.pause(r, task));
    op('unpause', [], (r, task) => this.lifecycle.unpause(r, task));
  }

  private requireHalted(ref: string): void {
    const state = String(this.db.get('VM', ref).power_state);
    if (state !== 'Halted') throw errors.badPowerState(ref, 'halted', state.toLowerCase());
  }

  private async setField(cls: XapiClass, ref: string, field: string, value: XapiValue): Promise<XapiValue> {
    if (cls === 'VM' && this.enums[field]) value = parseEnum(this.enums[field]!, value as string);
    this.db.get(cls, ref);
    if (cls === 'VM') {
      if (VM_HALTED_ONLY.has(field)) {
        await this.lifecycle.refresh();
        this.requireHalted(ref);
      }
      if (this.db.get('VM', ref).is_control_domain === true && field !== 'other_config' && field !== 'name_label' && field !== 'name_description') {
        throw new ApiError('OPERATION_NOT_ALLOWED', ['the control domain cannot be changed']);
      }
    }
    if (cls === 'VM' && field === 'domain_type') {
      // xapi_vm.ml set_domain_type: any power state; not `unspecified`; HVM_boot_policy follows
      // (xapi_vm_helpers.ml derive_hvm_boot_policy: "BIOS order" for hvm, else "").
      if (value === 'unspecified') throw errors.invalidValue('domain_type', 'unspecified');
      this.db.update('VM', ref, { domain_type: value, HVM_boot_policy: value === 'hvm' ? 'BIOS order' : '' });
      return '';
    }
    if (cls === 'VM' && field === 'HVM_boot_policy') {
      // xapi_vm.ml set_HVM_boot_policy: domain_type follows (derive_domain_type: "" is pv, anything else hvm).
      this.db.update('VM', ref, { domain_type: value === '' ? 'pv' : 'hvm', HVM_boot_policy: value });
      return '';
    }
    this.db.update(cls, ref, { [field]: value });
    if (cls === 'VM' && field === 'xenstore_data') await this.lifecycle.xenstoreDataChanged(ref);
    return '';
  }

  private createVm(rec: Record<string, unknown>): string {
    const base = this.blankVm();
    const out: Record_ = { ...base };
    for (const [k, v] of Object.entries(rec)) {
      if (!(k in base) || k === 'uuid' || k === 'power_state' || k === 'domid') continue;
      const type = this.writable.VM![k];
      if (type) out[k] = coerce('VM.create', 1, type, v) as XapiValue;
    }
    if (typeof rec.name_label !== 'string') throw errors.fieldType('name_label');
    for (const [field, allowed] of Object.entries(this.enums)) {
      if (field in out) out[field] = parseEnum(allowed, String(out[field]));
    }
    return this.db.add('VM', out);
  }

  private checkPassword(user: string, password: string): boolean {
    const a = Buffer.from(`${user}\0${password}`);
    const b = Buffer.from(`${this.opts.user}\0${this.opts.password}`);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

export { EVENT_CLASSES };

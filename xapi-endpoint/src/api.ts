// The XenAPI methods this test double serves, as a table, and the dispatcher
// that checks sessions, parameter counts and types before any method runs, so
// that bad input changes nothing. `Async.X` runs X in a task, as XAPI does.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Database, EVENT_CLASSES, type Record_, type XapiClass } from './database.ts';
import { ApiError, errors, toApiError } from './errors.ts';
import type { Lifecycle } from './lifecycle.ts';
import { controlDomain, defaultHost, defaultPool, defaultVm, newTask, otherInstallMediaTemplate } from './records.ts';
import { NULL_REF, XapiDate, type XapiValue } from './values.ts';
import { formatXmlValue } from './xmlrpc.ts';

export const ENDPOINT_VERSION = '0.1.0';

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
  /** Longest event.from wait (seconds); longer requests are cut to this. */
  maxEventWaitSec?: number;
}

/** Fields callers may set with set_<field> (and add_to_/remove_from_ for maps). */
const VM_WRITABLE: Record<string, ParamType> = {
  name_label: 'string', name_description: 'string', user_version: 'int', is_a_template: 'bool', affinity: 'ref',
  VCPUs_params: 'map', actions_after_shutdown: 'string', actions_after_reboot: 'string', actions_after_crash: 'string',
  actions_after_softreboot: 'string', PV_bootloader: 'string', PV_kernel: 'string', PV_ramdisk: 'string', PV_args: 'string',
  PV_bootloader_args: 'string', PV_legacy_args: 'string', HVM_boot_policy: 'string', HVM_boot_params: 'map',
  platform: 'map', PCI_bus: 'string', other_config: 'map', recommendations: 'string', xenstore_data: 'map',
  tags: 'strings', blocked_operations: 'map', domain_type: 'string', NVRAM: 'map', ha_restart_priority: 'string',
  HVM_shadow_multiplier: 'float', VCPUs_max: 'int', VCPUs_at_startup: 'int',
  memory_static_max: 'int', memory_static_min: 'int', memory_dynamic_max: 'int', memory_dynamic_min: 'int',
};
/** Setters that XAPI allows only on a halted VM. */
const VM_HALTED_ONLY = new Set(['memory_static_max', 'memory_static_min', 'domain_type', 'VCPUs_max']);
const ENUMS: Record<string, string[]> = {
  actions_after_shutdown: ['destroy', 'restart'],
  actions_after_reboot: ['destroy', 'restart'],
  actions_after_crash: ['destroy', 'coredump_and_destroy', 'restart', 'coredump_and_restart', 'preserve', 'rename_restart'],
  actions_after_softreboot: ['soft_reboot', 'destroy', 'restart', 'preserve'],
  domain_type: ['hvm', 'pv', 'pv_in_pvh', 'pvh', 'unspecified'],
};
const POOL_WRITABLE: Record<string, ParamType> = { name_label: 'string', name_description: 'string', other_config: 'map', tags: 'strings' };
const HOST_WRITABLE: Record<string, ParamType> = { name_label: 'string', name_description: 'string', other_config: 'map', tags: 'strings' };
const TASK_WRITABLE: Record<string, ParamType> = { other_config: 'map' };
const WRITABLE: Record<string, Record<string, ParamType>> = { VM: VM_WRITABLE, pool: POOL_WRITABLE, host: HOST_WRITABLE, task: TASK_WRITABLE };
const CLASSES: XapiClass[] = ['pool', 'host', 'VM', 'task'];

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
  private readonly sessions = new Map<string, { user: string; created: number }>();
  private lifecycle!: Lifecycle;
  private closing = false;

  constructor(private readonly opts: ApiOptions, db = new Database()) {
    this.db = db;
    this.hostRef = db.newRef();
    const dom0Ref = db.newRef();
    db.add('host', { ...defaultHost(ENDPOINT_VERSION), control_domain: dom0Ref }, this.hostRef);
    this.poolRef = db.add('pool', defaultPool(this.hostRef));
    db.add('VM', controlDomain(this.hostRef), dom0Ref);
    db.add('VM', otherInstallMediaTemplate());
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
      const sample = this.db.all(cls)[0]?.[1] ?? (cls === 'task' ? newTask('', NULL_REF) : {});
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
    const expected = def.params.length + (def.session ? 1 : 0);
    if (name === 'session.login_with_password') {
      if (params.length < 2 || params.length > 4) throw errors.paramCount(method, 4, params.length);
    } else if (params.length !== expected) {
      throw errors.paramCount(method, expected, params.length);
    }
    let session: string | null = null;
    let rest = params;
    if (def.session) {
      session = typeof params[0] === 'string' ? params[0] : '';
      if (!this.sessions.has(session)) throw errors.sessionInvalid(String(params[0]));
      rest = params.slice(1);
    }
    const args = def.params.map((t, i) => coerce(method, i + (def.session ? 1 : 0), t, rest[i]));
    if (name === 'session.login_with_password') args.push(...rest.slice(2));
    if (!isAsync) return def.fn({ session, task: null }, args);
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
          this.db.update('task', task, { status: 'failure', progress: 1, finished: new XapiDate(new Date()), error_info: [e.code, ...e.params] });
        }
      }
    })();
    return task;
  }

  /** <class>.get_<field> for every field of the class's records. */
  private getterFor(name: string): MethodDef | undefined {
    const m = /^(pool|host|VM|task)\.get_(\w+)$/.exec(name);
    if (!m) return undefined;
    const cls = m[1] as XapiClass;
    const field = m[2]!;
    const sample = cls === 'task' ? newTask('', NULL_REF) : cls === 'VM' ? defaultVm() : this.db.all(cls)[0]![1];
    if (!(field in sample)) return undefined;
    return {
      params: ['ref'], session: true, async: false,
      fn: async (_c, [ref]) => {
        if (cls === 'VM') await this.lifecycle.current();
        return this.db.snapshot(cls, ref as string)[field]!;
      },
    };
  }

  private def(name: string, params: ParamType[], fn: MethodDef['fn'], opts: { session?: boolean; async?: boolean } = {}): void {
    this.methods.set(name, { params, fn, session: opts.session ?? true, async: opts.async ?? false });
  }

  private vm(ref: unknown): string {
    const r = String(ref);
    this.db.get('VM', r); // HANDLE_INVALID
    return r;
  }

  private register(): void {
    // ---- session and introspection --------------------------------------
    this.def('session.login_with_password', ['string', 'string'], (_c, [user, password]) => {
      if (!this.checkPassword(String(user), String(password))) throw errors.authFailed(String(user));
      const ref = `OpaqueRef:${randomBytes(16).toString('hex').replace(/(.{8})(.{4})(.{4})(.{4})(.{12})/, '$1-$2-$3-$4-$5')}`;
      this.sessions.set(ref, { user: String(user), created: Date.now() });
      return ref;
    }, { session: false });
    this.def('session.logout', [], (c) => {
      this.sessions.delete(c.session!);
      return '';
    });
    this.def('session.get_this_host', ['ref'], () => this.hostRef);
    this.def('system.listMethods', [], () => this.listMethods(), { session: false });

    // ---- records of every class -------------------------------------------
    for (const cls of CLASSES) {
      const refresh = async () => { if (cls === 'VM') await this.lifecycle.current(); };
      this.def(`${cls}.get_all_records`, [], async () => {
        await refresh();
        return Object.fromEntries(this.db.all(cls).map(([r]) => [r, this.db.snapshot(cls, r)]));
      });
      this.def(`${cls}.get_all`, [], async () => { await refresh(); return this.db.all(cls).map(([r]) => r); });
      this.def(`${cls}.get_record`, ['ref'], async (_c, [ref]) => { await refresh(); return this.db.snapshot(cls, ref as string); });
      this.def(`${cls}.get_by_uuid`, ['string'], (_c, [uuid]) => this.db.byUuidOf(cls, uuid));
      if (cls !== 'pool') {
        this.def(`${cls}.get_by_name_label`, ['string'], (_c, [label]) => this.db.all(cls).filter(([, v]) => v.name_label === label).map(([r]) => r));
      }
      for (const [field, type] of Object.entries(WRITABLE[cls]!)) {
        this.def(`${cls}.set_${field}`, ['ref', type], async (_c, [ref, value]) => this.setField(cls, ref as string, field, value as XapiValue), { async: true });
        if (type === 'map') {
          this.def(`${cls}.add_to_${field}`, ['ref', 'string', 'string'], async (_c, [ref, k, v]) => {
            const cur = this.db.get(cls, ref) [field] as Record<string, string>;
            if (Object.hasOwn(cur, k as string)) throw errors.mapDuplicateKey(cls, field, ref as string, k as string);
            this.db.update(cls, ref as string, { [field]: { ...cur, [k as string]: v as string } });
            return '';
          }, { async: true });
          this.def(`${cls}.remove_from_${field}`, ['ref', 'string'], async (_c, [ref, k]) => {
            const cur = { ...(this.db.get(cls, ref)[field] as Record<string, string>) };
            delete cur[k as string];
            this.db.update(cls, ref as string, { [field]: cur });
            return '';
          }, { async: true });
        }
        if (type === 'strings') {
          const single = field === 'tags' ? 'tags' : field;
          this.def(`${cls}.add_${single}`, ['ref', 'string'], (_c, [ref, v]) => {
            const cur = this.db.get(cls, ref)[field] as string[];
            if (!cur.includes(v as string)) this.db.update(cls, ref as string, { [field]: [...cur, v as string] });
            return '';
          }, { async: true });
          this.def(`${cls}.remove_${single}`, ['ref', 'string'], (_c, [ref, v]) => {
            const cur = this.db.get(cls, ref)[field] as string[];
            this.db.update(cls, ref as string, { [field]: cur.filter((x) => x !== v) });
            return '';
          }, { async: true });
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
    this.def('task.create', ['string', 'string'], (_c, [label, desc]) => this.db.add('task', { ...newTask(label as string, this.hostRef), name_description: desc as string }));
    this.def('task.destroy', ['ref'], (_c, [ref]) => { this.db.get('task', ref); this.db.remove('task', ref as string); return ''; });
    this.def('task.cancel', ['ref'], (_c, [ref]) => {
      // Operations here cannot be interrupted halfway; a pending task is only marked.
      const t = this.db.get('task', ref);
      if (t.status === 'pending') this.db.update('task', ref as string, { status: 'cancelling' });
      return '';
    });

    // ---- VM: create, clone, destroy ---------------------------------------------
    this.def('VM.create', ['record'], (_c, [rec]) => this.createVm(rec as Record<string, unknown>), { async: true });
    this.def('VM.clone', ['ref', 'string'], (_c, [ref, name]) => {
      const src = this.db.snapshot('VM', this.vm(ref));
      if (src.is_control_domain === true) throw new ApiError('OPERATION_NOT_ALLOWED', ['the control domain cannot be cloned']);
      if (src.power_state !== 'Halted') throw errors.badPowerState(ref as string, 'halted', String(src.power_state).toLowerCase());
      const rest: Record_ = { ...src };
      delete rest.uuid; // the clone gets its own
      return this.db.add('VM', { ...rest, name_label: name as string, is_default_template: false, power_state: 'Halted', domid: -1, resident_on: NULL_REF, current_operations: {} });
    }, { async: true });
    this.def('VM.copy', ['ref', 'string', 'ref'], (c, [ref, name]) => this.methods.get('VM.clone')!.fn(c, [ref, name]), { async: true });
    this.def('VM.provision', ['ref'], (_c, [ref]) => { this.vm(ref); return ''; }, { async: true });
    this.def('VM.destroy', ['ref'], async (_c, [ref]) => {
      const r = this.vm(ref);
      const v = this.db.get('VM', r);
      if (v.is_control_domain === true) throw new ApiError('OPERATION_NOT_ALLOWED', ['the control domain cannot be destroyed']);
      await this.lifecycle.refresh();
      const state = String(this.db.get('VM', r).power_state);
      if (state !== 'Halted' && state !== 'Suspended') throw errors.badPowerState(r, 'halted, suspended', state.toLowerCase());
      await this.lifecycle.forget(r);
      this.db.remove('VM', r);
      return '';
    }, { async: true });
    this.def('VM.set_memory_limits', ['ref', 'int', 'int', 'int', 'int'], (_c, [ref, smin, smax, dmin, dmax]) => {
      const r = this.vm(ref);
      this.requireHalted(r);
      const [a, b, c2, d] = [smin, dmin, dmax, smax] as number[];
      if (!(a! <= b! && b! <= c2! && c2! <= d!)) throw new ApiError('MEMORY_CONSTRAINT_VIOLATION', ['Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max <= static_max']);
      this.db.update('VM', r, { memory_static_min: a!, memory_dynamic_min: b!, memory_dynamic_max: c2!, memory_static_max: d! });
      return '';
    }, { async: true });
    this.def('VM.set_memory', ['ref', 'int'], (_c, [ref, bytes]) => {
      const r = this.vm(ref);
      this.requireHalted(r);
      const n = bytes as number;
      const min = Math.min(n, Number(this.db.get('VM', r).memory_static_min));
      this.db.update('VM', r, { memory_static_min: min, memory_dynamic_min: n, memory_dynamic_max: n, memory_static_max: n });
      return '';
    }, { async: true });
    this.def('VM.set_memory_dynamic_range', ['ref', 'int', 'int'], (_c, [ref, min, max]) => {
      this.db.update('VM', this.vm(ref), { memory_dynamic_min: min as number, memory_dynamic_max: max as number });
      return '';
    }, { async: true });

    // ---- VM power operations (lifecycle.ts) ---------------------------------------
    const op = (name: string, params: ParamType[], fn: (ref: string, args: unknown[]) => Promise<void>) =>
      this.def(`VM.${name}`, ['ref', ...params], async (_c, [ref, ...args]) => { await fn(this.vm(ref), args); return ''; }, { async: true });
    op('start', ['bool', 'bool'], (r, [paused]) => this.lifecycle.start(r, paused as boolean));
    op('start_on', ['ref', 'bool', 'bool'], (r, [host, paused]) => {
      if (host !== this.hostRef) throw errors.handleInvalid('host', String(host));
      return this.lifecycle.start(r, paused as boolean);
    });
    op('clean_shutdown', [], (r) => this.lifecycle.cleanShutdown(r));
    op('hard_shutdown', [], (r) => this.lifecycle.hardShutdown(r));
    op('shutdown', [], (r) => this.lifecycle.shutdown(r));
    op('clean_reboot', [], (r) => this.lifecycle.cleanReboot(r));
    op('hard_reboot', [], (r) => this.lifecycle.hardReboot(r));
    op('suspend', [], (r) => this.lifecycle.suspend(r));
    op('resume', ['bool', 'bool'], (r, [paused]) => this.lifecycle.resume(r, paused as boolean));
    op('resume_on', ['ref', 'bool', 'bool'], (r, [host, paused]) => {
      if (host !== this.hostRef) throw errors.handleInvalid('host', String(host));
      return this.lifecycle.resume(r, paused as boolean);
    });
    op('pause', [], (r) => this.lifecycle.pause(r));
    op('unpause', [], (r) => this.lifecycle.unpause(r));
  }

  private requireHalted(ref: string): void {
    const state = String(this.db.get('VM', ref).power_state);
    if (state !== 'Halted') throw errors.badPowerState(ref, 'halted', state.toLowerCase());
  }

  private async setField(cls: XapiClass, ref: string, field: string, value: XapiValue): Promise<XapiValue> {
    this.db.get(cls, ref);
    if (ENUMS[field] && cls === 'VM' && !ENUMS[field]!.includes(value as string)) throw errors.invalidValue(field, String(value));
    if (cls === 'VM') {
      if (VM_HALTED_ONLY.has(field)) {
        await this.lifecycle.refresh();
        this.requireHalted(ref);
      }
      if (this.db.get('VM', ref).is_control_domain === true && field !== 'other_config' && field !== 'name_label' && field !== 'name_description') {
        throw new ApiError('OPERATION_NOT_ALLOWED', ['the control domain cannot be changed']);
      }
    }
    this.db.update(cls, ref, { [field]: value });
    if (cls === 'VM' && field === 'xenstore_data') await this.lifecycle.xenstoreDataChanged(ref);
    return '';
  }

  private createVm(rec: Record<string, unknown>): string {
    const base = defaultVm();
    const out: Record_ = { ...base };
    for (const [k, v] of Object.entries(rec)) {
      if (!(k in base) || k === 'uuid' || k === 'power_state' || k === 'domid') continue;
      const type = VM_WRITABLE[k];
      if (type) out[k] = coerce('VM.create', 1, type, v) as XapiValue;
    }
    if (typeof rec.name_label !== 'string') throw errors.fieldType('name_label');
    for (const [field, allowed] of Object.entries(ENUMS)) {
      if (!allowed.includes(out[field] as string)) throw errors.invalidValue(field, String(out[field]));
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

// Shared by the xl end-to-end files: the e2e host (e2e-host.ts: npm test's
// shared one, or one a developer keeps up to iterate quickly, named by
// XTV_E2E_STATE_DIR; else one of the file's own), the xl driver on it, the
// real test image, and a small scheduler that runs the file's cases in
// parallel (bounded) while tape reports them in order.
//
//   const suite = xlSuite({ parallel: 4 });
//   const boot = suite.scenario('boot', async (x) => { ...; return observed; });
//   test('guest boots', async (t) => { const o = await suite.result(t, boot); ... });
//   suite.finish();   // after the last scenario: tears the host down when all are done
//
// Every VM a case installs is destroyed and uninstalled when the case ends,
// whatever happened; the host goes down when every case has ended.
import test from 'tape';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EmbeddedHost } from '../../harness/embedded/embedded-host.ts';
import { E2E_START_TIMEOUT_MS, onE2eHost, sharedE2eStateDir } from './e2e-host.ts';
import { REPO_ROOT } from '../../harness/embedded/paths.ts';
import { embeddedDom0 } from '../../harness/embedded/embedded-address.ts';
import { SessionLimit } from '../../harness/remote/target.ts';
import { REPORT_DIR, TESTING_NODE } from '../../protocol/control.ts';
import { REPORT_KEYS } from '../../protocol/report-keys.ts';
import {
  lastAgentLine,
  parseConsole,
  shutdownEventFromConsole,
  shutdownEventFromReport,
  type GuestShutdownEvent,
  type ReportSnapshot,
} from '../../harness/matrix/guest-report.ts';
import { xlModel } from '../../harness/matrix/model-xl.ts';
import { findCase } from '../../harness/matrix/scenarios.ts';
import type { Expectation } from '../../harness/matrix/model.ts';
import {
  compare,
  domidChange,
  durationClassOf,
  guestInvariant,
  renderDiff,
  stateInvariant,
  type Observation,
  type ObservedResult,
} from '../../harness/matrix/verdict.ts';
import { poll } from '../../harness/matrix/wait.ts';
import { ConnectionError, ToolstackError, type DomainInfo, type DomainType, type HostRequest, type VmRef } from '../../harness/toolstack/driver.ts';
import { XlDriver } from '../../harness/toolstack/xl/xl-driver.ts';

export interface TestImage {
  kernelPath: string;
  initrdPath: string;
  kernelArgs: string;
  memoryMiB: number;
}

export function testImage(dir = join(REPO_ROOT, 'dist', 'image')): TestImage {
  const kernelPath = join(dir, 'xtv-kernel');
  const initrdPath = join(dir, 'xtv-initrd');
  for (const p of [kernelPath, initrdPath]) if (!existsSync(p)) throw new Error(`${p} is missing: build the test image (npm run build:image)`);
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { kernelArgs?: string; minMemoryMiB?: number };
  return { kernelPath, initrdPath, kernelArgs: m.kernelArgs ?? 'console=hvc0 xen_shutdown_node=data/xtv/kernel-shutdown', memoryMiB: m.minMemoryMiB ?? 32 };
}

/** Bounds (ms). Generous for TCG on a shared 2-core machine; each is a bound, never a sleep. */
export const T = {
  install: 180_000,
  boot: 150_000,
  ack: 30_000,
  /** xl's ack timeout is 60 s; the call's bound is above it. */
  request: 100_000,
  /**
   * xl migrate NAME localhost copies the guest through dom0's own ssh (about 10 s idle, all of it
   * encryption in the emulated dom0; over 100 s while the other e2e files boot their guests).
   */
  migrate: 300_000,
  /** xl rebuilds a restarted domain paused; under load it stayed paused for over a minute. */
  settle: 150_000,
  /** A settled state must still hold after this (xl restarts a rebooted domain after ~2 s). */
  confirm: 6_000,
  cleanup: 60_000,
};

export interface Ctx {
  host: EmbeddedHost;
  driver: XlDriver;
  image: TestImage;
  /** Installs a VM for this case (cleaned up when the case ends). */
  install(name: string, opts?: { domainType?: DomainType; actions?: { afterShutdown?: string; afterReboot?: string; afterCrash?: string } }): Promise<VmRef>;
  /** Installs and starts a VM and waits until its agent reports state=ready; returns its domid. */
  boot(name: string, opts?: { domainType?: DomainType }): Promise<{ vm: VmRef; domid: number; bootMs: number }>;
  /** Notes a step's time for the per-case table. */
  lap(what: string): void;
  /** A VM this case makes some other way (e.g. `xtv install`): cleaned up and checked like its own. */
  adopt(name: string): VmRef;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface Scenario<T> {
  name: string;
  settled: Promise<Settled<T>>;
}

export interface XlSuite {
  /** Starts a case now (at most `cases` at once; `long` ones, which mostly wait, e.g. 60 s ack timeouts, always); its boots queue for the boot pool. */
  scenario<T>(name: string, fn: (x: Ctx) => Promise<T>, opts?: { long?: boolean }): Scenario<T>;
  /** The case's value, or a failed assertion naming its error (then undefined). */
  result<T>(t: test.Test, s: Scenario<T>): Promise<T | undefined>;
  /** Call once after the last scenario: registers the test that waits for every case and stops the host. */
  finish(): void;
}

export function xlSuite(opts: { parallel: number; cases?: number; file: string }): XlSuite {
  const t0 = Date.now();
  // Boots are CPU-bound on one emulated CPU: a few at a time. Once booted, a
  // guest idles and a case mostly waits, so more cases than boots run at once.
  const bootPool = new SessionLimit(opts.parallel); // at most n boots at once
  const casePool = new SessionLimit(opts.cases ?? 8);
  const cases: Array<Promise<unknown>> = [];
  const timings: Array<{ name: string; ms: number; ok: boolean; laps: string[] }> = [];
  let release!: () => void;
  const allRegistered = new Promise<void>((r) => {
    release = r;
  });
  let hostReady!: (v: { host: EmbeddedHost; driver: XlDriver; bootMs: number }) => void;
  let hostFailed!: (e: unknown) => void;
  const ready = new Promise<{ host: EmbeddedHost; driver: XlDriver; bootMs: number }>((res, rej) => {
    hostReady = res;
    hostFailed = rej;
  });
  ready.catch(() => undefined);

  // The VMs this file's cases made: what it cleans up and checks (other files may share the host).
  const made = new Set<string>();
  const useHost = async (host: EmbeddedHost): Promise<void> => {
    const driver = new XlDriver(embeddedDom0(host));
    // Leftovers of an interrupted run on a host a developer keeps up. npm test's shared host is
    // fresh, and its other files' VMs are not leftovers (XTV_E2E_FRESH_HOST=1).
    if (!process.env.XTV_E2E_FRESH_HOST) for (const vm of await driver.listOwned()) if (vm.name.startsWith('xtv-e2e-')) await cleanupVm(driver, vm);
    hostReady({ host, driver, bootMs: Date.now() - t0 });
    await allRegistered;
    await Promise.allSettled(cases);
  };
  const reuse = sharedE2eStateDir();
  const hostDone = onE2eHost(useHost).catch((e: unknown) => {
    hostFailed(e);
    throw e;
  });
  hostDone.catch(() => undefined);
  let image: TestImage | null = null;

  return {
    scenario<T>(name: string, fn: (x: Ctx) => Promise<T>, o: { long?: boolean } = {}): Scenario<T> {
      const body = async (): Promise<T> => {
        const { host, driver } = await ready;
        image ??= testImage();
        const img = image;
        const started = Date.now();
        const laps: string[] = [];
        const mine: VmRef[] = [];
        const ctx: Ctx = {
          host,
          driver,
          image: img,
          lap: (what) => laps.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)} s`),
          adopt: (vmName) => {
            const vm = { name: vmName, id: vmName };
            mine.push(vm);
            made.add(vmName);
            return vm;
          },
          install: async (vmName, io = {}) => {
            const vm = await driver.install({
              name: vmName,
              domainType: io.domainType ?? 'pv',
              memoryMiB: img.memoryMiB,
              kernelPath: img.kernelPath,
              initrdPath: img.initrdPath,
              kernelArgs: img.kernelArgs,
              ...(io.actions ? { actions: io.actions } : {}),
            });
            mine.push(vm);
            made.add(vm.name);
            return vm;
          },
          boot: (vmName, io = {}) =>
            bootPool.run(async () => {
              const vm = await ctx.install(vmName, io);
              const b0 = Date.now();
              await driver.start(vm, { timeoutMs: E2E_START_TIMEOUT_MS });
              const r = await waitReady(driver, vm, null);
              ctx.lap(`${vmName} ready`);
              return { vm, domid: r.domid, bootMs: Date.now() - b0 };
            }),
        };
        let ok = false;
        try {
          const v = await fn(ctx);
          ok = true;
          return v;
        } finally {
          for (const vm of mine) await cleanupVm(driver, vm).catch(() => undefined);
          timings.push({ name, ms: Date.now() - started, ok, laps });
        }
      };
      const run = o.long ? body() : casePool.run(body);
      const settled: Promise<Settled<T>> = run.then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      cases.push(settled);
      return { name, settled };
    },

    async result<T>(t: test.Test, s: Scenario<T>): Promise<T | undefined> {
      const r = await s.settled;
      if (r.ok) return r.value;
      const e = r.error;
      t.fail(`${s.name}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      return undefined;
    },

    finish(): void {
      release();
      test(`${opts.file}: every VM removed, host down; times`, async (t) => {
        const { driver, bootMs } = await ready.catch(() => ({ driver: null, bootMs: 0 }));
        await Promise.allSettled(cases);
        if (driver) {
          const left = (await driver.listOwned()).filter((v) => made.has(v.name));
          t.deepEqual(
            left.map((v) => v.name),
            [],
            `none of the ${made.size} VMs this file made is left on the host`,
          );
        }
        await hostDone.then(
          () => t.pass('host stopped'),
          (e: unknown) => t.fail(`host: ${e instanceof Error ? e.message : String(e)}`),
        );
        t.comment(`host boot-to-ready ${(bootMs / 1000).toFixed(1)} s${reuse ? ' (reused host)' : ''}; whole file ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        for (const x of timings.sort((a, b) => a.name.localeCompare(b.name))) {
          t.comment(`${x.ok ? 'ok  ' : 'FAIL'} ${x.name.padEnd(44)} ${(x.ms / 1000).toFixed(1).padStart(6)} s   ${x.laps.join(', ')}`);
        }
      });
    },
  };
}

export async function cleanupVm(driver: XlDriver, vm: VmRef): Promise<void> {
  const s = await driver.state(vm).catch(() => null);
  if (s && (s.domid !== null || s.powerState === 'Suspended')) {
    await driver.request(vm, 'hard_shutdown', { timeoutMs: T.cleanup }).catch(() => undefined);
  }
  await driver.uninstall(vm);
}

const REPORT_PATHS = REPORT_KEYS.map((k) => `${REPORT_DIR}/${k}`);

/** The agent's whole report (keys without the data/xtv/ prefix; null: absent), plus control/testing and control/shutdown. */
export async function report(driver: XlDriver, vm: VmRef): Promise<Record<string, string | null>> {
  const r = await driver.readGuestMany(vm, [...REPORT_PATHS, TESTING_NODE, 'control/shutdown']);
  const out: Record<string, string | null> = {};
  for (const [k, v] of Object.entries(r)) out[k.startsWith(`${REPORT_DIR}/`) ? k.slice(REPORT_DIR.length + 1) : k] = v;
  return out;
}

/** The guest's console as xenconsoled logged it ('' when there is none: the embedded host keeps one for xl's guests). */
export async function consoleText(driver: XlDriver, vm: VmRef, maxBytes?: number): Promise<string> {
  return (await driver.consoleLog(vm, maxBytes !== undefined ? { maxBytes } : {}))?.text ?? '';
}

/**
 * Waits until the agent reports state=ready (or `want`) in a domain other than
 * `notDomid`; returns that domid. The report in xenstore is what counts; its
 * console line "ready ... domid=N" is accepted too (source 'console'), so that
 * a report write the agent lost does not fail every later case: the cases
 * that are about the report check it themselves.
 */
export async function waitReady(
  driver: XlDriver,
  vm: VmRef,
  notDomid: number | null,
  want = 'ready',
): Promise<{ domid: number; report: Record<string, string | null>; source: 'report' | 'console' }> {
  let last: DomainInfo | null = null;
  let looks = 0;
  // One dom0 command per look while the guest boots (its report names its domid); xl list only to
  // confirm, and the console only every few looks: with many guests booting, dom0's CPU is what is short.
  const r = await poll(
    async () => {
      const rep = await report(driver, vm);
      const reported = rep.domid ? Number(rep.domid) : null;
      if (rep.state === want && reported !== null && reported !== notDomid) {
        last = await driver.state(vm);
        if (last.powerState === 'Running' && last.domid === reported) return { domid: reported, report: rep, source: 'report' as const };
      }
      if (++looks % 4 !== 0) return null;
      last = await driver.state(vm);
      if (last.domid === null || last.domid === notDomid || last.powerState !== 'Running') return null;
      const kind = want === 'resumed' ? 'resumed' : 'ready';
      const seen = parseConsole(await consoleText(driver, vm, 16384)).some((l) => l.kind === kind && l.fields['domid'] === String(last!.domid));
      return seen ? { domid: last.domid, report: rep, source: 'console' as const } : null;
    },
    (v) => v !== null,
    { timeoutMs: T.boot, minMs: 250, maxMs: 1500, what: `${vm.name} agent state=${want}` },
  );
  if (!r.done || !r.value) {
    const log = await consoleText(driver, vm, 2000).catch(() => '');
    throw new Error(`${vm.name}: the agent did not report state=${want} within ${T.boot / 1000} s (last: ${JSON.stringify(last)}); console tail:\n${log}`);
  }
  return r.value;
}

/**
 * Writes a testing message the way `xtv send` does and waits until the agent
 * has dealt with it: control/testing acknowledged ("") and a new event for it
 * in the report. Returns the report then.
 */
export async function sendTesting(driver: XlDriver, vm: VmRef, message: string): Promise<Record<string, string | null>> {
  const before = Number((await driver.readGuest(vm, `${REPORT_DIR}/event-seq`)) ?? '0');
  await driver.writeGuest(vm, TESTING_NODE, message, { guestWritable: true });
  const r = await poll(
    () => report(driver, vm),
    (rep) => Number(rep['event-seq'] ?? '0') > before && rep['event-node'] === TESTING_NODE && rep[TESTING_NODE] === '',
    { timeoutMs: T.ack, minMs: 100, maxMs: 1000, what: `${vm.name} agent's ack of ${message}` },
  );
  if (!r.done || !r.value)
    throw new Error(`${vm.name}: the agent did not acknowledge ${JSON.stringify(message)} within ${T.ack / 1000} s; report ${JSON.stringify(r.value ?? null)}`);
  return r.value;
}

/** Waits for a state satisfying `done` that still holds `T.confirm` later; returns the last state seen. */
export async function settle(driver: XlDriver, vm: VmRef, done: (s: DomainInfo) => boolean, timeoutMs = T.settle): Promise<DomainInfo> {
  const deadline = Date.now() + timeoutMs;
  let last: DomainInfo = await driver.state(vm);
  while (Date.now() < deadline) {
    const r = await poll(() => driver.state(vm), done, { timeoutMs: Math.max(1, deadline - Date.now()), minMs: 200, maxMs: 1000, what: `${vm.name} state` });
    last = r.value ?? last;
    if (!r.done) return last;
    await new Promise((res) => setTimeout(res, T.confirm));
    last = await driver.state(vm);
    if (done(last)) return last;
  }
  return last;
}

/** Calls a host request and records its answer and duration instead of throwing on a ToolstackError. */
export async function callRequest(driver: XlDriver, vm: VmRef, request: HostRequest): Promise<{ result: ObservedResult; durationMs: number }> {
  const c0 = Date.now();
  try {
    await driver.request(vm, request, { timeoutMs: request === 'migrate' ? T.migrate : T.request });
    return { result: { kind: 'ok' }, durationMs: Date.now() - c0 };
  } catch (e) {
    if (e instanceof ToolstackError) return { result: { kind: 'error', code: e.code, message: e.message }, durationMs: Date.now() - c0 };
    if (e instanceof ConnectionError) return { result: { kind: 'timeout', message: e.message }, durationMs: Date.now() - c0 };
    throw e;
  }
}

/** The xl model's expectation for a matrix case (must be modelled). */
export function expectationOf(caseName: string): Expectation {
  const c = findCase(caseName);
  if (!c) throw new Error(`no matrix case ${caseName}`);
  const a = xlModel.expect(c.scenario);
  if (a.kind !== 'expect') throw new Error(`${caseName} is unmodelled for xl: ${a.reason}`);
  return a.expect;
}

export interface ModelCheck {
  expect: Expectation;
  observation: Observation;
  diffs: string;
  invariants: string[];
  guestEvent: GuestShutdownEvent | null | undefined;
  /** When the check failed: the console since the request and xl's log, to print with the failure. */
  evidence?: string;
}

/** The text after the last occurrence of `line` (all of it when absent or null). */
function textAfterLine(text: string, line: string | null): string {
  if (!line) return text;
  const at = text.lastIndexOf(line);
  return at < 0 ? text : text.slice(at + line.length);
}

/**
 * Runs one matrix-shaped case on a running, primed VM: the request (or the
 * guest's own trigger, e.g. writing now:X), then the
 * state until it matches the model (or the bound), then control/shutdown and
 * the guest's account of the request (its report while the domain lives,
 * else its console line), compared with the model.
 */
export async function requestAndCompare(
  driver: XlDriver,
  vm: VmRef,
  caseName: string,
  act: HostRequest | (() => Promise<void>),
  initialDomid: number,
): Promise<ModelCheck> {
  const expect = expectationOf(caseName);
  const anchor = lastAgentLine(await consoleText(driver, vm));
  const request = typeof act === 'string' ? act : null;
  let called: { result: ObservedResult; durationMs: number };
  if (typeof act === 'string') called = await callRequest(driver, vm, act);
  else {
    await act();
    called = { result: { kind: 'ok' }, durationMs: 0 };
  }
  const { result, durationMs } = called;
  const matches = (s: DomainInfo): boolean => s.powerState === expect.finalState && domidChange(initialDomid, s.domid) === expect.domid;
  const final = await settle(driver, vm, matches);
  let controlShutdown: string | null | undefined;
  let guestEvent: GuestShutdownEvent | null | undefined;
  if (final.domid === initialDomid) {
    const rep = await report(driver, vm);
    controlShutdown = rep['control/shutdown'];
    guestEvent = shutdownEventFromReport(rep as ReportSnapshot);
  }
  if (guestEvent === undefined || guestEvent === null) {
    const fromConsole = shutdownEventFromConsole(await consoleText(driver, vm), anchor);
    if (fromConsole || guestEvent === undefined) guestEvent = fromConsole;
  }
  const observation: Observation = {
    result,
    durationMs,
    durationClass: durationClassOf(durationMs, { fastMaxMs: 54_000, totalMinMs: 600_000 }),
    initialDomid,
    final,
    domid: domidChange(initialDomid, final.domid),
    ...(controlShutdown !== undefined ? { controlShutdown } : {}),
    guestEvent,
  };
  const invariants = [...stateInvariant(final), ...guestInvariant(expect.guest, request ? guestEvent : undefined)];
  const diffs = compare(expect, observation).length ? renderDiff(compare(expect, observation)) : '';
  // Evidence for a failure: the guest's console since the request, and xl's log for the domain.
  const evidence =
    diffs || invariants.length > 0
      ? `console since the request:\n${textAfterLine(await consoleText(driver, vm).catch(() => ''), anchor).slice(-3000)}\nxl log:\n${await driver.toolstackLog(vm).catch(() => '')}`
      : undefined;
  return { expect, observation, diffs, invariants, guestEvent, ...(evidence !== undefined ? { evidence } : {}) };
}

/** The agent's console events (parsed) of a VM, for evidence in failures. */
export async function consoleEvents(driver: XlDriver, vm: VmRef): Promise<Array<{ kind: string; fields: Record<string, string> }>> {
  return parseConsole(await consoleText(driver, vm)).map((l) => ({ kind: l.kind, fields: l.fields }));
}

// The continuity check's reads and writes (#17): the guest's report before an
// operation it should live through, then dom0's clock sent to it and its report
// after, judged by continuity.ts. One sequence for a matrix case (case-run.ts,
// after a resume or unpause) and for `xtv soak` (after every loop's operation).
import { controlProtocolVersion, PROTOCOL_WITH_CONTINUITY } from '../../protocol/control.ts';
import type { ToolstackDriver, VmRef } from '../toolstack/driver.ts';
import { CONTINUITY_KEYS, continuityProblems, type ContinuitySnapshot } from './continuity.ts';
import { readReport } from './guest-report.ts';
import { bounded, fmtMs, poll } from './wait.ts';

export interface ContinuityIo {
  /** Bound on one report read. */
  evidenceMs: number;
  /** Bound on the clock write and on the guest taking it. */
  primeMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  signal?: AbortSignal;
}

/** The report before the operation, or why continuity cannot be checked (an agent older than xtv-control/3). */
export async function readContinuity(driver: ToolstackDriver, vm: VmRef, io: ContinuityIo): Promise<{ snapshot: ContinuitySnapshot } | { unchecked: string }> {
  const r = await bounded(readReport(driver, vm, ['protocols', ...CONTINUITY_KEYS]), io.evidenceMs, 'reading the guest report', io.signal);
  const v = controlProtocolVersion(r.protocols);
  if (v === null || v < PROTOCOL_WITH_CONTINUITY)
    return { unchecked: `the guest's agent speaks ${JSON.stringify(r.protocols ?? 'nothing')}, continuity needs xtv-control/${PROTOCOL_WITH_CONTINUITY}` };
  return { snapshot: r };
}

export interface ContinuityOutcome {
  after: ContinuitySnapshot;
  /** The clock message's round trip (ms); absent when dom0's clock could not be sent. */
  clockRoundTripMs?: number;
  /** What broke, one line each (continuity.ts's, and a clock message the guest did not take). */
  problems: string[];
  /** One line for a report's steps or a soak's output. */
  line: string;
}

/**
 * The guest after the operation against its report before it: dom0's clock
 * first, where the driver can write it, so that the skew is measured after
 * the operation too. `resumes`: how many suspends it lived through meanwhile.
 */
export async function checkContinuity(
  driver: ToolstackDriver,
  vm: VmRef,
  before: ContinuitySnapshot,
  resumes: number,
  io: ContinuityIo,
): Promise<ContinuityOutcome> {
  const problems: string[] = [];
  let clockRoundTripMs: number | undefined;
  if (driver.writeClock) {
    const seq = (await bounded(readReport(driver, vm, ['event-seq']), io.evidenceMs, 'reading the guest report', io.signal))['event-seq'];
    const t0 = Date.now();
    const dom0Ms = await bounded(driver.writeClock(vm), io.primeMs, "writing dom0's clock", io.signal);
    if (dom0Ms !== null) {
      const seen = await poll(
        () => readReport(driver, vm, ['event-seq']),
        (r) => r['event-seq'] !== seq,
        { timeoutMs: io.primeMs, minMs: io.pollMinMs, maxMs: io.pollMaxMs, signal: io.signal, what: 'guest reading the clock message' },
      );
      if (!seen.done) problems.push(`the guest did not take the clock message within ${fmtMs(io.primeMs)}`);
      else clockRoundTripMs = Date.now() - t0;
    }
  }
  const after = await bounded(readReport(driver, vm, CONTINUITY_KEYS), io.evidenceMs, 'reading the guest report', io.signal);
  problems.push(...continuityProblems(before, after, { resumes, ...(clockRoundTripMs !== undefined ? { clockRoundTripMs } : {}) }));
  const line =
    `boot id ${after['boot-id']}, resumes ${before.resumes} -> ${after.resumes}, run ${before['run-ms']} -> ${after['run-ms']} ms, domids ${after.domids}` +
    (clockRoundTripMs !== undefined
      ? `, clock skew ${after['clock-skew-ms']} ms (message round trip ${clockRoundTripMs} ms)`
      : ', clock not measured (no dom0)') +
    (problems.length ? '' : ': the same guest');
  return { after, ...(clockRoundTripMs !== undefined ? { clockRoundTripMs } : {}), problems, line };
}

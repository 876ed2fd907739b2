// Continuity (#17): a guest that lives through an operation (a suspend and
// resume, a save and restore, a migration, a pause) is the same guest after
// it, and says so in its report (protocol/report-keys.ts; docs/guest-protocol.md):
// the same boot id, one more resume for each suspend, a run time that only
// goes forward, a domid history that only grows, and a clock that agrees with
// dom0's. Pure: two report snapshots in, what broke out, each as one line.
import { DOMIDS_KEPT, type ReportKey } from '../../protocol/report-keys.ts';

/** The report keys continuity reads. */
export const CONTINUITY_KEYS = [
  'boot-id',
  'resumes',
  'run-ms',
  'domid',
  'domids',
  'suspended-at',
  'resumed-at',
  'clock-skew-ms',
] as const satisfies readonly ReportKey[];
export type ContinuitySnapshot = Record<(typeof CONTINUITY_KEYS)[number], string | null>;

/**
 * How far the guest's clock may be from dom0's once the clock message's
 * transit is allowed for (ms): a guest whose clock lags by the time it spent
 * saved or suspended (what XenRT measured across suspend/resume loops) fails.
 */
export const CLOCK_SKEW_BOUND_MS = 2_000;

export interface ContinuityExpectation {
  /** How many suspends the guest lived through in between (a save and restore, a suspend and resume: 1). */
  resumes: number;
  /**
   * The clock message's round trip in ms (written in dom0 to the guest's report of it), when one was
   * sent after the operation: the skew the guest reports is its true skew plus the transit, at most this.
   */
  clockRoundTripMs?: number;
}

const num = (v: string | null): number | null => (v === null || v === '' || !/^-?\d+$/.test(v) ? null : Number(v));
const list = (v: string | null): string[] => (v ?? '').split(' ').filter((w) => w !== '');

/** What broke, comparing the report before the operation with the one after it. */
export function continuityProblems(before: ContinuitySnapshot, after: ContinuitySnapshot, e: ContinuityExpectation): string[] {
  const p: string[] = [];
  if (after['boot-id'] === null || after['boot-id'] !== before['boot-id'])
    p.push(`boot id ${JSON.stringify(before['boot-id'])} became ${JSON.stringify(after['boot-id'])}: the guest booted again`);
  const r0 = num(before.resumes);
  const r1 = num(after.resumes);
  if (r0 !== null && r1 !== r0 + e.resumes) p.push(`resumes went from ${r0} to ${after.resumes ?? '(none)'}, not ${r0 + e.resumes}`);
  const t0 = num(before['run-ms']);
  const t1 = num(after['run-ms']);
  if (t0 !== null && (t1 === null || t1 < t0)) p.push(`run time went back, from ${t0} ms to ${after['run-ms'] ?? '(none)'}`);
  const d0 = list(before.domids);
  const d1 = list(after.domids);
  if (d0.length > 0 && d1.slice(0, d0.length).join(' ') !== d0.join(' ') && d1.length < DOMIDS_KEPT)
    p.push(`domid history ${JSON.stringify(before.domids)} is not the start of ${JSON.stringify(after.domids)}`);
  if (after.domid !== null && d1.length > 0 && d1.at(-1) !== after.domid) p.push(`domid history ends ${d1.at(-1)}, the guest says it is in ${after.domid}`);
  if (e.resumes > 0) {
    if (!after['resumed-at'] || after['resumed-at'] === before['resumed-at']) p.push('the guest reports no new resume time');
    else if (after['suspended-at'] && after['resumed-at'] < after['suspended-at'])
      p.push(`it says it resumed (${after['resumed-at']}) before it suspended (${after['suspended-at']})`);
  }
  if (e.clockRoundTripMs !== undefined) {
    const skew = num(after['clock-skew-ms']);
    if (skew === null) p.push('the guest reports no clock skew after the clock message');
    else if (skew - e.clockRoundTripMs > CLOCK_SKEW_BOUND_MS || skew < -CLOCK_SKEW_BOUND_MS)
      p.push(`its clock is ${skew} ms from dom0's (the message took up to ${e.clockRoundTripMs} ms): more than ${CLOCK_SKEW_BOUND_MS} ms off`);
  }
  return p;
}

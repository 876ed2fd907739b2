// `xtv watch VM`: a live stream of the VM's power state (from the toolstack:
// xl list / XAPI) and of its guest agent's report, one line per change, until
// Ctrl-C (or --timeout). It looks when the driver says something changed
// (xenstore watches in dom0 on the domain and the report; XAPI's events), and
// also on a timer: xl has no event for pause/unpause, and a driver without
// events, or whose watch ended, still gets looked at.
import type { Command } from './command.ts';
import { REPORT_KEYS } from '../../protocol/report-keys.ts';
import { delay } from '../matrix/wait.ts';
import { CONNECT_HELP, EXIT_OK, parseCli, positiveInt, resolveVm, seconds, withDriver } from './common.ts';
import { ConnectionError, type ChangeWatch, type DomainInfo } from '../toolstack/driver.ts';
import { readReport } from '../matrix/guest-report.ts';
import { jsonForTerminal } from '../report/escape.ts';

export const WATCH_USAGE = `usage: xtv watch VM [--interval MS] [--timeout SEC] [--host H] [--toolstack xl|xapi] [--json]

Prints the VM's power state (Running, Paused, Suspended, Halted, with domid and
shutdown reason) and the guest agent's report (data/xtv/*) each time either
changes, until Ctrl-C or --timeout. With --json: one JSON object per line
({"time","kind":"power"|"report",...}).

  --interval MS   also look this often, for what has no event (xl pause and
                  unpause): default 2000; 500 when the host gives no events
  --timeout SEC   stop after this long (default: never)

Exit 0 when stopped; 2 when the host stops answering (3 looks in a row).

${CONNECT_HELP}`;

/** The report keys shown: the changing ones (not version, protocols). */
const SHOWN = REPORT_KEYS.filter((k) => k !== 'version' && k !== 'protocols' && k !== 'event-time');

export const watchCommand: Command = {
  name: 'watch',
  summary: "stream a VM's power state and guest report changes until Ctrl-C",
  usage: WATCH_USAGE,
  async run(argv) {
    const { values, positionals } = parseCli(argv, { interval: { type: 'string' }, timeout: { type: 'string' } }, { min: 1, max: 1, names: 'VM' });
    const givenIntervalMs = positiveInt('interval', values.interval);
    const untilMs = values.timeout !== undefined ? seconds('timeout', values.timeout, 0) : Infinity;
    const stop = new AbortController();
    const onSignal = (): void => stop.abort(new Error('stopped'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      return await withDriver('watch', values, async (driver) => {
        const vm = await resolveVm(driver, positionals[0]!);
        const t0 = Date.now();
        const emit = (kind: string, obj: Record<string, unknown>, text: string): void => {
          const time = new Date().toISOString();
          if (values.json) process.stdout.write(`${jsonForTerminal({ time, kind, vm: vm.name, ...obj })}\n`);
          else process.stdout.write(`${time.slice(11, 23)} ${kind.padEnd(6)} ${text}\n`);
        };
        // Events: a look when the driver says something changed; the timer covers the rest.
        let events = typeof driver.watchChanges === 'function';
        let watch: ChangeWatch | null = null;
        let watchedDomid: number | null | undefined;
        let changed = false;
        let wake: (() => void) | null = null;
        const onChange = (): void => {
          changed = true;
          wake?.();
        };
        const intervalOf = (): number => givenIntervalMs ?? (events ? 2000 : 500);
        if (!values.json)
          process.stderr.write(`watching ${vm.name}${events ? ' by xenstore/XAPI events and' : ''} every ${intervalOf()} ms (Ctrl-C to stop)\n`);
        let last: DomainInfo | null = null;
        let lastReport: Record<string, string | null> = {};
        let failures = 0;
        try {
          while (!stop.signal.aborted && Date.now() - t0 < untilMs) {
            changed = false;
            try {
              const s = await driver.state(vm);
              if (events && s.domid !== watchedDomid) {
                // A new domain (reboot, restore) has its report elsewhere: watch that one.
                watch?.close();
                watchedDomid = s.domid;
                const w = driver.watchChanges!(vm, s.domid, onChange);
                watch = w;
                void w.ended.then((why) => {
                  if (why === 'closed' || watch !== w) return;
                  events = false;
                  emit(
                    'error',
                    { error: `events stopped (${why}); looking every ${intervalOf()} ms` },
                    `events stopped (${why}); looking every ${intervalOf()} ms`,
                  );
                  wake?.();
                });
              }
              if (!last || s.powerState !== last.powerState || s.domid !== last.domid || s.shutdownReason !== last.shutdownReason) {
                emit(
                  'power',
                  { state: s },
                  `${s.powerState}${s.domid !== null ? ` domid ${s.domid}` : ''}${s.shutdownReason ? ` (shut down: ${s.shutdownReason})` : ''}`,
                );
                last = s;
              }
              const report: Record<string, string | null> = s.domid !== null ? await readReport(driver, vm, REPORT_KEYS) : {};
              const moved = SHOWN.filter((k) => (report[k] ?? null) !== (lastReport[k] ?? null) && report[k] !== undefined);
              if (moved.length > 0) {
                emit(
                  'report',
                  { changed: Object.fromEntries(moved.map((k) => [k, report[k] ?? null])) },
                  moved.map((k) => `${k}=${report[k] === null ? '(absent)' : jsonForTerminal(report[k])}`).join(' '),
                );
              }
              if (s.domid !== null) lastReport = report;
              failures = 0;
            } catch (err) {
              // Ctrl-C reaches the ssh children too: a look cut short by it is no error.
              if (stop.signal.aborted) break;
              // A look that did not reach the host is tried again; the third in a row ends
              // the watch, thrown on for main to say (exit 2).
              if (!(err instanceof ConnectionError) || ++failures >= 3) throw err;
              emit('error', { error: err.message }, err.message);
            }
            // Something changed while we looked: look again at once.
            if (changed) continue;
            // Until an event, the interval, --timeout or Ctrl-C, whichever comes first.
            const waitMs = Math.min(intervalOf(), Math.max(0, untilMs - (Date.now() - t0)));
            const woken = new Promise<void>((r) => {
              wake = r;
            });
            await Promise.race([delay(waitMs, stop.signal).catch(() => undefined), woken]);
            wake = null;
          }
        } finally {
          watch?.close();
        }
        return EXIT_OK;
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

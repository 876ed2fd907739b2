// `xtv watch VM`: a live stream of the VM's power state (from the toolstack:
// xl list / XAPI) and of its guest agent's report, one line per change, until
// Ctrl-C (or --timeout). Polls with a bounded interval: xl has no event for
// pause/unpause, and one loop serves every toolstack.
import type { Command } from './command.ts';
import { REPORT_KEYS } from '../../guest/agent/report.ts';
import { delay } from '../matrix/wait.ts';
import { CONNECT_HELP, EXIT_OK, EXIT_USAGE, parseCli, positiveInt, resolveVm, seconds, withDriver } from '../target/cli-common.ts';
import { ConnectionError, type DomainInfo } from '../toolstack/driver.ts';
import { readFullReport } from './send-command.ts';

export const WATCH_USAGE = `usage: xtv watch VM [--interval MS] [--timeout SEC] [--host H] [--toolstack xl|xapi] [--json]

Prints the VM's power state (Running, Paused, Suspended, Halted, with domid and
shutdown reason) and the guest agent's report (data/xtv/*) each time either
changes, until Ctrl-C or --timeout. With --json: one JSON object per line
({"time","kind":"power"|"report",...}).

  --interval MS   how often to look (default 500)
  --timeout SEC   stop after this long (default: never)

Exit 0 when stopped; 2 when the host stops answering (3 looks in a row).

${CONNECT_HELP}`;

/** The report keys shown: the changing ones (not version, protocols). */
const SHOWN = REPORT_KEYS.filter((k) => k !== 'version' && k !== 'protocols' && k !== 'event-time');

export const watchCommand: Command = {
  name: 'watch',
  summary: 'stream a VM\'s power state and guest report changes until Ctrl-C',
  usage: WATCH_USAGE,
  async run(argv) {
    const { values, positionals } = parseCli(argv, { interval: { type: 'string' }, timeout: { type: 'string' } }, { min: 1, max: 1, names: 'VM' });
    const intervalMs = positiveInt('interval', values.interval) ?? 500;
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
          if (values.json) process.stdout.write(`${JSON.stringify({ time, kind, vm: vm.name, ...obj })}\n`);
          else process.stdout.write(`${time.slice(11, 23)} ${kind.padEnd(6)} ${text}\n`);
        };
        if (!values.json) process.stderr.write(`watching ${vm.name} every ${intervalMs} ms (Ctrl-C to stop)\n`);
        let last: DomainInfo | null = null;
        let lastReport: Record<string, string | null> = {};
        let failures = 0;
        while (!stop.signal.aborted && Date.now() - t0 < untilMs) {
          try {
            const s = await driver.state(vm);
            if (!last || s.powerState !== last.powerState || s.domid !== last.domid || s.shutdownReason !== last.shutdownReason) {
              emit('power', { state: s }, `${s.powerState}${s.domid !== null ? ` domid ${s.domid}` : ''}${s.shutdownReason ? ` (shut down: ${s.shutdownReason})` : ''}`);
              last = s;
            }
            const report = s.domid !== null ? await readFullReport(driver, vm) : {};
            const changed = SHOWN.filter((k) => (report[k] ?? null) !== (lastReport[k] ?? null) && report[k] !== undefined);
            if (changed.length > 0) {
              emit('report', { changed: Object.fromEntries(changed.map((k) => [k, report[k] ?? null])) },
                changed.map((k) => `${k}=${report[k] === null ? '(absent)' : JSON.stringify(report[k])}`).join(' '));
            }
            if (s.domid !== null) lastReport = report;
            failures = 0;
          } catch (err) {
            // Ctrl-C reaches the ssh children too: a look cut short by it is no error.
            if (stop.signal.aborted) break;
            if (!(err instanceof ConnectionError)) throw err;
            failures++;
            emit('error', { error: err.message }, err.message);
            if (failures >= 3) return EXIT_USAGE;
          }
          await delay(Math.min(intervalMs, Math.max(0, untilMs - (Date.now() - t0))), stop.signal).catch(() => undefined);
        }
        return EXIT_OK;
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

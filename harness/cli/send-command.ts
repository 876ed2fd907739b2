// `xtv send VM MESSAGE`: a test instruction for the guest agent. The message
// is checked with the same decoder the agent runs (protocol/control.ts), so a
// typo is refused here with the agent's own sentence instead of being
// discovered in the guest; --raw sends it anyway (to test the rejection).
import { randomBytes } from 'node:crypto';
import { MessageRefused, UsageError, type Command } from './command.ts';
import { REPORT_DIR, SHUTDOWN_NODE, TESTING_NODE, VMDATA_TESTING_NODE, describeMessage, encodeVmData, validateTesting } from '../../protocol/control.ts';
import { REPORT_KEYS } from '../../protocol/report-keys.ts';
import { lastAgentLine, parseConsole, readReport } from '../matrix/guest-report.ts';
import { poll } from '../matrix/wait.ts';
import { CONNECT_HELP, CheckFailed, EXIT_OK, oneOf, output, parseCli, resolveVm, seconds, withDriver } from './common.ts';
import type { ToolstackDriver, VmRef } from '../toolstack/driver.ts';
import { jsonForTerminal } from '../report/escape.ts';

export const SEND_USAGE = `usage: xtv send VM MESSAGE [--via xenstore|xapi] [--raw] [--wait-ack] [--timeout SEC]
                [--host H] [--toolstack xl|xapi]

Sends a test instruction to the guest agent. MESSAGE is one of
  now:X | next:X | X          X: suspend, poweroff, reboot, halt, crash
  {"when":"now"|"onshutdown","ack":"ok"|"none"|"delete"|STRING,
   "action":"suspend"|"poweroff"|"reboot"|"halt"|"crash"|"ignore"}
next:X (or when=onshutdown) makes the guest answer the toolstack's next
shutdown request with that ack and do X instead of what was asked.

  --via xenstore  (default) write control/testing from dom0 (xenstore-write over
                  SSH), created empty and owned by the guest first so that the
                  agent can acknowledge
  --via xapi      write vm-data/xtv/testing as "ID MESSAGE" through XAPI's
                  VM.set_xenstore_data (XAPI toolstack only; no SSH)
  --raw           send MESSAGE even if it is malformed (to test the agent's rejection)
  --wait-ack      wait for the agent's acknowledgement and print its report
  --timeout SEC   bound on --wait-ack (default 30)

A malformed MESSAGE without --raw is refused with the decoder's sentence, exit 2.

${CONNECT_HELP}`;

function formatReport(r: Record<string, string | null>): string {
  return REPORT_KEYS.filter((k) => r[k] !== null && r[k] !== undefined)
    .map((k) => `  ${k.padEnd(16)} ${jsonForTerminal(r[k])}`)
    .join('\n');
}

export const sendCommand: Command = {
  name: 'send',
  summary: 'send a test instruction to the guest agent (control/testing or vm-data)',
  usage: SEND_USAGE,
  async run(argv) {
    const { values, positionals } = parseCli(
      argv,
      {
        via: { type: 'string' },
        raw: { type: 'boolean' },
        'wait-ack': { type: 'boolean' },
        timeout: { type: 'string' },
      },
      { min: 2, max: 2, names: 'VM and MESSAGE' },
    );
    const [vmName, message] = positionals as [string, string];
    const via = oneOf('via', values.via, ['xenstore', 'xapi'] as const) ?? 'xenstore';
    const timeoutMs = seconds('timeout', values.timeout, 30);
    const check = validateTesting(message);
    if (!check.ok && !values.raw) throw new MessageRefused(check.error.message, check.error.code);
    return withDriver('send', values, async (driver) => {
      if (via === 'xapi' && driver.kind !== 'xapi') {
        throw new UsageError(
          `--via xapi writes ${VMDATA_TESTING_NODE} through XAPI's VM.set_xenstore_data; the ${driver.kind} toolstack has no such call (use --via xenstore, the default, or --toolstack xapi)`,
        );
      }
      const vm = await resolveVm(driver, vmName);
      const before = await driver.readGuest(vm, `${REPORT_DIR}/event-seq`).catch(() => null);
      const beforeSeq = Number(before ?? '0') || 0;
      // The console's last agent line before sending: events after it are this message's.
      const anchor = values['wait-ack'] ? lastAgentLine(await consoleText(driver, vm)) : null;
      let node: string = TESTING_NODE;
      let id = '';
      if (via === 'xapi') {
        node = VMDATA_TESTING_NODE;
        id = `xtv-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
        await driver.writeGuest(vm, VMDATA_TESTING_NODE, encodeVmData(id, message));
      } else {
        await driver.writeGuest(vm, TESTING_NODE, message, { guestWritable: true });
      }
      const sent = {
        vm,
        node,
        message,
        ...(id ? { id } : {}),
        valid: check.ok,
        ...(check.ok ? { meaning: describeMessage(check.value) } : { error: check.error.message }),
      };
      if (!values['wait-ack']) {
        output(
          values.json,
          { ok: true, ...sent },
          `sent ${JSON.stringify(message)} to ${vm.name} (${node})${check.ok ? `: ${describeMessage(check.value)}` : ' (malformed, --raw)'}`,
        );
        return EXIT_OK;
      }
      // Acknowledged = the agent reported an event for this node past the one before (its report
      // when the domain is still there; else its console line, e.g. after now:poweroff).
      const r = await poll(
        async () => {
          const report = await readReport(driver, vm, REPORT_KEYS);
          if (Number(report['event-seq'] ?? '0') > beforeSeq && report['event-node'] === node) return { from: 'report' as const, report };
          const state = await driver.state(vm);
          if (state.domid === null || report.state === null) {
            const lines = parseConsole(await consoleText(driver, vm));
            const from = anchor === null ? 0 : lines.map((l) => l.line).lastIndexOf(anchor) + 1;
            const events = lines.slice(from).filter((e) => e.kind === 'event' && e.fields.node === node);
            const e = events.at(-1);
            if (e) return { from: 'console' as const, report: { ...e.fields, 'event-time': e.time } as Record<string, string | null> };
          }
          return null;
        },
        (v) => v !== null,
        { timeoutMs, minMs: 100, maxMs: 1000, what: `the agent's acknowledgement of ${node}` },
      );
      if (!r.done || !r.value) {
        throw new CheckFailed(
          `sent ${JSON.stringify(message)} to ${vm.name}, but the agent reported no event for ${node} within ${Math.round(timeoutMs / 1000)} s`,
          { vm, node },
        );
      }
      const { from, report } = r.value;
      const shutdown = from === 'report' ? await driver.readGuest(vm, SHUTDOWN_NODE).catch(() => null) : null;
      output(
        values.json,
        { ok: true, ...sent, acknowledged: true, source: from, report },
        `${vm.name} acknowledged ${JSON.stringify(message)} (from its ${from === 'report' ? `report under ${REPORT_DIR}` : 'console log: the domain is gone'}):\n${
          from === 'report'
            ? formatReport(report)
            : Object.entries(report)
                .map(([k, v]) => `  ${k.padEnd(16)} ${jsonForTerminal(v)}`)
                .join('\n')
        }${shutdown !== null ? `\n  (control/shutdown now ${jsonForTerminal(shutdown)})` : ''}`,
      );
      return EXIT_OK;
    });
  },
};

async function consoleText(driver: ToolstackDriver, vm: VmRef): Promise<string> {
  const c = (driver as ToolstackDriver & { consoleLog?: (vm: VmRef) => Promise<string | { text: string } | null> }).consoleLog;
  if (!c) return '';
  const v = await c.call(driver, vm).catch(() => null);
  return v === null ? '' : typeof v === 'string' ? v : v.text;
}

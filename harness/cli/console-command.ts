// `xtv console`: the end of a VM's guest console as dom0 logged it
// (xenconsoled's guest log: harness/toolstack/console-log.ts). Hosts that keep
// no console logs (XenServer and XCP-ng by default) say so: there is nothing
// to read there, and the guest's report (xtv watch, xtv send --wait-ack) is
// the evidence instead.
import { CheckFailed, type Command } from './command.ts';
import { CONNECT_HELP, EXIT_OK, output, parseCli, positiveInt, resolveVm, withDriver } from './common.ts';
import { textForTerminal } from '../report/escape.ts';

export const CONSOLE_USAGE = `usage: xtv console [VM] [--bytes N] [--host H] [--toolstack xl|xapi] [--json]

Prints the last part of the VM's guest console, as xenconsoled logged it in
dom0 (the agent writes one line per event there). Where dom0 keeps no guest
console logs (xenconsoled without --log=guest, as on XenServer and XCP-ng),
it says so and exits 1: xtv doctor tells what the host keeps. VM defaults to
xtv-test.

  --bytes N   how much of the end to print (default 65536)

exit codes: 0 printed, 1 no console log for this VM, 2 usage or connection error

${CONNECT_HELP}`;

export const consoleCommand: Command = {
  name: 'console',
  summary: "print the end of a VM's guest console, as dom0 logged it",
  usage: CONSOLE_USAGE,
  async run(argv) {
    const { values, positionals } = parseCli(argv, { bytes: { type: 'string' } }, { min: 0, max: 1, names: 'VM' });
    const bytes = positiveInt('bytes', values.bytes) ?? 65536;
    const name = positionals[0] ?? 'xtv-test';
    return withDriver('console', values, async (driver) => {
      const vm = await resolveVm(driver, name);
      const log = driver.consoleLog ? await driver.consoleLog(vm, { maxBytes: bytes }) : null;
      if (!log) {
        const facts = await driver.hostFacts();
        const why = facts.consoleLogDir ? `no log for ${vm.name} in ${facts.consoleLogDir} yet` : 'this host keeps no guest console logs';
        throw new CheckFailed(`${vm.name}: no console to show (${why})`, { vm: vm.name, consoleLogDir: facts.consoleLogDir });
      }
      // The guest's own text: its controls (escape sequences included) shown, not acted on.
      const text = textForTerminal(log.text);
      output(values.json, { ok: true, vm, path: log.path, text: log.text }, text.endsWith('\n') ? text.slice(0, -1) : text);
      return EXIT_OK;
    });
  },
};

// XTV_TRACE_DOM0=FILE: one JSON line per command the harness sends to an
// embedded host's dom0 ({t, ms, pid, kind, cmd}: start time, how long it took,
// the local process, how it was sent, its first 160 characters). For tuning:
// dom0's emulated CPUs bound the e2e suite, and this tells which commands it
// ran, how often, from which process. Off (nothing written) without the variable.
// A dom0 script (harness/toolstack/dom0-script.ts) is named by its file, its
// arguments after it: lib.sh's text would fill the 160 characters otherwise.
import { appendFileSync } from 'node:fs';

export function traceDom0(kind: 'exec' | 'spawn' | 'copy' | 'host-exec', command: string, startedAt: number): void {
  const file = process.env['XTV_TRACE_DOM0'];
  if (!file) return;
  // Every script's own text starts with a line "# NAME.sh ..."; lib.sh has none.
  const script = /^# ([\w-]+\.sh)\b/m.exec(command)?.[1];
  const shown = script ? `${script} ${/^set -- (.*)$/m.exec(command)?.[1] ?? ''}` : command;
  const line = { t: startedAt, ms: Date.now() - startedAt, pid: process.pid, kind, cmd: shown.replace(/\n/g, ' ; ').slice(0, 160) };
  try {
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  } catch {
    // A trace must never fail a command.
  }
}

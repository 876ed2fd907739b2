// The drivers' dom0 scripts: POSIX sh files in dom0-scripts/, each run after
// dom0-scripts/lib.sh, with its data as positional parameters only. A script
// is sent as `set -- ARGS` (each word quoted) followed by the constant text of
// lib.sh and the script, which is what `sh -s -- ARGS` would run, without the
// extra process: the remote shell session already runs each command in a
// subshell of its own (harness/remote/shell-session.ts), and a process costs
// in an emulated dom0. No value is ever pasted into script text, so none can
// change what runs; shellcheck reads the files as they run (scripts/lint-sh.mjs).
//
// Results come back one way: the lines "<marker> WORD [TEXT]" (xtv_frame in
// lib.sh), with a marker random per command, so that nothing a guest wrote
// (a xenstore value, a console line) can pass for one.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { shq } from '../remote/target.ts';

/** Exit codes of the conditions the scripts name; lib.sh's XTV_EXIT_* have the same numbers (a unit test compares them). */
export enum Dom0Exit {
  NoDomain = 90,
  NotOurs = 91,
  NoConfig = 92,
  NoSaveImage = 93,
  Suspended = 94,
  NameInUse = 95,
  LockHeld = 96,
  ImageGone = 97,
  NoFile = 98,
}

export type Dom0ScriptName =
  // both drivers
  | 'read-many'
  | 'write-guest'
  | 'write-clock'
  | 'missing-files'
  | 'put-file'
  | 'console-tail'
  | 'xenconsoled-args'
  | 'xenstore-watch'
  | 'writable-dirs'
  | 'xenstored-domains'
  | 'xl-info'
  // the xl driver
  | 'ssh-localhost'
  | 'xl-install-check'
  | 'xl-list'
  | 'xl-list-owned'
  | 'xl-log'
  | 'xl-request'
  | 'xl-start'
  | 'xl-uninstall'
  | 'xl-write-config'
  // the XAPI driver
  | 'toolstack-conf'
  | 'remove-files';

export const SCRIPT_DIR = new URL('./dom0-scripts/', import.meta.url);

const texts = new Map<string, string>();

function fileText(file: string): string {
  let t = texts.get(file);
  if (t === undefined) {
    t = readFileSync(new URL(file, SCRIPT_DIR), 'utf8');
    texts.set(file, t);
  }
  return t;
}

/** lib.sh and the script, as they run. */
export function scriptText(name: Dom0ScriptName): string {
  return `${fileText('lib.sh')}\n${fileText(`${name}.sh`)}`;
}

/** A fresh result marker: "XTV-" and 12 random hex digits. */
export function newMarker(): string {
  return `XTV-${randomBytes(6).toString('hex')}`;
}

/**
 * The command that runs script `name` with `args`. `boundSec` bounds each xl
 * call inside it (timeout(1) in dom0).
 */
export function scriptCommand(name: Dom0ScriptName, marker: string, boundSec: number, args: readonly string[]): string {
  return `set -- ${[marker, String(boundSec), ...args].map(shq).join(' ')}\n${scriptText(name)}`;
}

/** One framed part of a script's output: its "<marker> WORD TEXT" line and the lines after it up to the next. */
export interface Frame {
  word: string;
  text: string;
  lines: string[];
}

/** Splits `stdout` at the framing lines of `marker`; what comes before the first is frame ''. */
export function frames(stdout: string, marker: string): Frame[] {
  const out: Frame[] = [{ word: '', text: '', lines: [] }];
  const prefix = `${marker} `;
  const lines = stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    if (line.startsWith(prefix)) {
      const rest = line.slice(prefix.length);
      const sp = rest.indexOf(' ');
      out.push({ word: sp < 0 ? rest : rest.slice(0, sp), text: sp < 0 ? '' : rest.slice(sp + 1), lines: [] });
    } else {
      out.at(-1)!.lines.push(line);
    }
  }
  return out;
}

/** The text of the last frame `word`, or undefined. */
export function lastFrame(stdout: string, marker: string, word: string): string | undefined {
  return frames(stdout, marker)
    .filter((f) => f.word === word)
    .at(-1)?.text;
}

// The CLI's one translation point: what each kind of error means to the
// person at the terminal (its exit code and its sentence) and to a script
// (with --json, one error object on stdout). Errors are told apart by their
// class, or for Node's own system errors by their `syscall` field, never by
// their message text. An error of no kind listed here is a bug in xtv: it
// gets its own exit code, and --debug shows where it came from.
import { inspect } from 'node:util';
import { CheckFailed, EXIT_FAILED, EXIT_INTERNAL, EXIT_USAGE, MessageRefused, SetupError, UsageError } from './command.ts';
import { HostAlreadyRunningError, HostNotRunningError } from '../embedded/state.ts';
import { HostBootError, HostCommandError, HostUnreachableError } from '../embedded/embedded-host.ts';
import { EmbeddedHostError } from '../embedded/host-error.ts';
import { WaitTimeout } from '../matrix/wait.ts';
import { ConnectionError, ToolstackError } from '../toolstack/driver.ts';

/** How one kind of error is shown. */
export interface Translation {
  exit: number;
  /** error.kind in the --json object. */
  kind: string;
  /** More fields for the --json object (e.g. XAPI's error code). */
  details?: Record<string, unknown>;
  /** What follows "xtv COMMAND: " (default: the error's message). */
  text?: string;
  /** A line after it: where to look next. */
  hint?: string;
}

interface Row {
  matches: (err: unknown) => boolean;
  translate: (err: never, command: string) => Translation;
}

/**
 * True when `err` is of class `type` (subclasses included). By identity, or
 * by the class's name along the prototype chain: a module loaded twice (a
 * test runner's require() beside the commands' lazy import()) makes two
 * copies of each class, and an error from one copy must still be known.
 */
function isKind(err: unknown, type: abstract new (...args: never[]) => Error): boolean {
  if (err instanceof type) return true;
  for (let p: unknown = err !== null && typeof err === 'object' ? Object.getPrototypeOf(err) : null; p; p = Object.getPrototypeOf(p)) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === type.name) return true;
  }
  return false;
}

/** A row for every error of class `type` (subclasses included). */
function row<E extends Error>(type: abstract new (...args: never[]) => E, translate: (err: E, command: string) => Translation): Row {
  return { matches: (err) => isKind(err, type), translate };
}

/** Node's errors from the operating system (a file not there, a program not installed, no permission). */
interface SystemError extends Error {
  code: string;
  syscall: string;
  path?: string;
}

function isSystemError(err: unknown): err is SystemError {
  return err instanceof Error && typeof (err as Partial<SystemError>).syscall === 'string' && typeof (err as Partial<SystemError>).code === 'string';
}

const hostTrouble = (): Translation => ({ exit: EXIT_USAGE, kind: 'host' });

/** Every kind of error the CLI expects, first match wins (so a subclass goes above its parent). */
const TABLE: readonly Row[] = [
  // The command line: exit 2, with where to read the usage.
  row(UsageError, (_e, command) => ({ exit: EXIT_USAGE, kind: 'usage', hint: `(see: xtv ${command} --help)` })),
  row(MessageRefused, (e) => ({
    exit: EXIT_USAGE,
    kind: 'invalid-message',
    details: { code: e.code },
    text: `refused: ${e.message}`,
    hint: '(the agent would reject it the same way; --raw sends it anyway)',
  })),
  // The host, or what xtv needs on this machine, is not there: exit 2.
  row(ConnectionError, () => ({ exit: EXIT_USAGE, kind: 'connection' })),
  row(HostAlreadyRunningError, hostTrouble),
  row(HostNotRunningError, hostTrouble),
  row(HostBootError, hostTrouble),
  row(HostUnreachableError, hostTrouble),
  row(HostCommandError, hostTrouble),
  row(EmbeddedHostError, hostTrouble),
  row(SetupError, () => ({ exit: EXIT_USAGE, kind: 'setup' })),
  {
    matches: isSystemError,
    translate: (e: SystemError) => ({
      exit: EXIT_USAGE,
      kind: 'system',
      details: { code: e.code, syscall: e.syscall, ...(e.path !== undefined ? { path: e.path } : {}) },
    }),
  },
  // The host answered, and the answer was not what was asked or checked: exit 1.
  row(ToolstackError, (e) => ({ exit: EXIT_FAILED, kind: 'toolstack', details: { code: e.code, params: e.params, call: e.call } })),
  row(CheckFailed, (e) => ({ exit: EXIT_FAILED, kind: 'check', details: e.details })),
  row(WaitTimeout, () => ({ exit: EXIT_FAILED, kind: 'timeout' })),
];

const INTERNAL: Translation = { exit: EXIT_INTERNAL, kind: 'internal' };

/** The exit code and wording for `err` (INTERNAL when it is of no known kind: a bug). */
export function translate(err: unknown, command: string): Translation {
  const r = TABLE.find((x) => x.matches(err));
  return r ? r.translate(err as never, command) : INTERNAL;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Where and how reportError writes. */
export interface ErrorOutput {
  /** The subcommand, for "xtv COMMAND: ..." and the usage hint. */
  command: string;
  /** --json: the error as one object on stdout instead of the sentence on stderr. */
  json: boolean;
  /** --debug: the stack and the chain of causes on stderr as well. */
  debug: boolean;
  /** stdout: text as given. */
  out: (text: string) => void;
  /** stderr: one line, without its newline. */
  err: (line: string) => void;
}

/** Says what went wrong, the way TABLE says it, and returns the exit code. */
export function reportError(err: unknown, o: ErrorOutput): number {
  const t = translate(err, o.command);
  if (t === INTERNAL) return reportInternal(err, o);
  const message = messageOf(err);
  if (o.json) o.out(`${JSON.stringify({ ok: false, error: { kind: t.kind, ...t.details, message } })}\n`);
  else {
    o.err(`xtv ${o.command}: ${t.text ?? message}`);
    if (t.hint) o.err(t.hint);
  }
  if (o.debug) o.err(stackWithCauses(err));
  return t.exit;
}

/** Says that `err` is a bug in xtv (whatever its class) and returns EXIT_INTERNAL. */
export function reportInternal(err: unknown, o: ErrorOutput): number {
  const message = messageOf(err);
  if (o.json) o.out(`${JSON.stringify({ ok: false, error: { kind: INTERNAL.kind, message } })}\n`);
  // On stderr even with --json: a bug should reach a person, not only a script.
  o.err(`xtv: internal error: ${message}${o.debug ? '' : ' (run with --debug for the stack)'}`);
  if (o.debug) o.err(stackWithCauses(err));
  return INTERNAL.exit;
}

/** The error's stack, then each `cause` with its own ("caused by: ..."), for --debug. */
export function stackWithCauses(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let e: unknown = err;
  // Bounded, and a cycle (a.cause = b, b.cause = a) ends the chain.
  while (e !== undefined && !seen.has(e) && parts.length < 20) {
    seen.add(e);
    parts.push(`${parts.length === 0 ? '' : 'caused by: '}${describeOne(e)}`);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join('\n');
}

function describeOne(e: unknown): string {
  if (!(e instanceof Error)) return typeof e === 'string' ? e : inspect(e);
  // The header is rebuilt from name and message: a stack may have been captured before a subclass set its name.
  const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  return [`${e.name}: ${e.message}`, ...frames].join('\n');
}

/** --json among the options (the words after `--` belong to another program). */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

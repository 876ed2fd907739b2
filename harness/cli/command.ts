// One CLI subcommand, the exit codes, and the errors a command throws. Each
// command lives in its own module and is listed in registry.ts; main.ts only
// dispatches, and errors.ts says what each error means to the user.
export interface Command {
  name: string;
  /** One line for `xtv --help`. */
  summary: string;
  /** Full text for `xtv NAME --help`. */
  usage: string;
  /**
   * Returns the exit code of a run that went as planned (0, or 1 when what it
   * checked did not hold). Anything else it throws, as one of the errors below
   * or a driver's; errors.ts turns each kind into its exit code and message.
   */
  run(argv: string[], context: CommandContext): Promise<number>;
}

/** What main tells every command besides its arguments. */
export interface CommandContext {
  /** --debug (or XTV_DEBUG=1): errors are printed with their stack and causes. */
  debug: boolean;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** An error of no known kind: a bug in xtv, not in the host or the command line (sysexits.h EX_SOFTWARE). */
export const EXIT_INTERNAL = 70;

/** A mistake in the command line: printed with the usage hint, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A --wait / --wait-ack check that did not hold: exit 1. `details` go into the --json error. */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * Something xtv needs on this machine is not there or could not be made
 * (the test image, the host build): exit 2, like a host that cannot be reached.
 */
export class SetupError extends Error {
  override name = 'SetupError';
}

/**
 * `xtv send`: a message the guest agent's decoder rejects, refused before
 * anything is sent. `code` is the decoder's (e.g. unknown-field); exit 2.
 */
export class MessageRefused extends Error {
  override name = 'MessageRefused';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

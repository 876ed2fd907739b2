// One CLI subcommand. Each lives in its own module and is listed in
// registry.ts; main.ts only dispatches.
export interface Command {
  name: string;
  /** One line for `xtv --help`. */
  summary: string;
  /** Full text for `xtv NAME --help`. */
  usage: string;
  /** Returns the exit code: 0 ok, 1 a check failed, 2 usage or connection error. */
  run(argv: string[]): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A mistake in the command line: printed with the usage hint, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

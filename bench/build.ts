// `npm run bench` builds what it needs before it boots anything, with the same
// steps, in the same order, as `npm start` (scripts/main-job.mjs) and `npm test`
// (scripts/test.mjs): the Debian packages, the test image, the embedded host.
// Each is cached by its inputs (seconds when nothing changed). The steps are the
// npm scripts and shell scripts those run, spawned the same way, except that
// their output goes to stderr: the bench's stdout is the result JSON alone.
import { spawn } from 'node:child_process';

export interface BuildStep {
  /** What it does, for the progress lines (main-job.mjs's words). */
  title: string;
  command: string;
  args: readonly string[];
}

/** scripts/main-job.mjs's and scripts/test.mjs's build steps (test/unit/bench-build.test.ts holds them to it). */
export const BUILD_STEPS: readonly BuildStep[] = [
  { title: 'installing Debian packages (if missing)', command: 'bash', args: ['scripts/deps.sh'] },
  { title: 'building the test image (cached: a few minutes the first time)', command: 'npm', args: ['run', '--silent', 'build:image'] },
  { title: 'building the embedded Xen host (cached)', command: 'npm', args: ['run', '--silent', 'build:host'] },
];

/** What to build before the run: nothing for --help or --no-build, else every step. */
export function buildPlan(a: { help: boolean; build: boolean }): readonly BuildStep[] {
  return a.help || !a.build ? [] : BUILD_STEPS;
}

export function commandText(step: BuildStep): string {
  return [step.command, ...step.args].join(' ');
}

/** A build step that failed (its own output, on stderr just above, says why) or could not start. */
export class BuildError extends Error {
  override name = 'BuildError';
  constructor(
    readonly step: BuildStep,
    /** Its exit code or the signal that ended it; null: it did not start. */
    readonly exit: number | string | null,
    detail?: string,
  ) {
    super(`${step.title}: ${detail ?? `${commandText(step)} exited with ${exit} (its own error is above)`}`);
  }
}

/** Runs one command in `cwd`; resolves with its exit code, or the signal that ended it. */
export type StepRunner = (command: string, args: readonly string[], cwd: string) => Promise<number | string>;

/** The real one: no stdin, stdout and stderr both to our stderr. */
export const spawnStep: StepRunner = (command, args, cwd) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 2, 2] });
    child.on('error', (e) => reject(new Error(`could not start ${[command, ...args].join(' ')}: ${e.message}`)));
    child.on('close', (code, signal) => resolve(code ?? signal ?? 1));
  });

/** Runs the steps one after another; the first that fails stops the rest with a BuildError. */
export async function runBuild(
  steps: readonly BuildStep[],
  o: { cwd: string; say: (message: string) => void; run?: StepRunner; now?: () => number },
): Promise<void> {
  const run = o.run ?? spawnStep;
  const now = o.now ?? Date.now;
  for (const step of steps) {
    o.say(`${step.title}: ${commandText(step)}`);
    const t = now();
    let exit: number | string;
    try {
      exit = await run(step.command, step.args, o.cwd);
    } catch (e) {
      throw new BuildError(step, null, e instanceof Error ? e.message : String(e));
    }
    if (exit !== 0) throw new BuildError(step, exit);
    o.say(`${step.title}: done in ${((now() - t) / 1000).toFixed(0)} s`);
  }
}

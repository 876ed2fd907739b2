// The CLI run in-process, for the unit files that check what it prints and
// which exit code it returns (xl-cli, cli-errors).
import { main } from '../../harness/cli/main.ts';

/** Runs the CLI in-process, capturing what it prints. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  const log = console.log;
  const error = console.error;
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  console.log = (...a: unknown[]) => {
    out += `${a.join(' ')}\n`;
  };
  console.error = (...a: unknown[]) => {
    err += `${a.join(' ')}\n`;
  };
  try {
    const code = await main(argv, env);
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
    console.log = log;
    console.error = error;
  }
}

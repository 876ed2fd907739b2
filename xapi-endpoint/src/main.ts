// The endpoint's entry point in dom0 (bundled to one file by build.mjs):
//   node xapi-endpoint.mjs --config /etc/xtv/xapi/config.json
// config.json: { user, passwordFile, httpPort, httpsPort, tlsKey, tlsCert,
//   logFile?, lifecycle?: {...LifecycleConfig overrides} }
// It logs one line per call (method and outcome, never parameters) and per
// lifecycle decision, to stderr.
import { readFileSync } from 'node:fs';
import { startEndpoint } from './endpoint.ts';
import type { LifecycleConfig } from './lifecycle.ts';
import { XlHypervisor } from './xl-hypervisor.ts';

interface Config {
  user: string;
  passwordFile: string;
  httpPort?: number;
  httpsPort?: number;
  tlsKey?: string;
  tlsCert?: string;
  runDir?: string;
  lifecycle?: Partial<LifecycleConfig>;
}

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--config');
  if (i < 0 || !process.argv[i + 1]) {
    process.stderr.write('usage: xapi-endpoint --config FILE\n');
    process.exit(2);
  }
  const cfg = JSON.parse(readFileSync(process.argv[i + 1]!, 'utf8')) as Config;
  const password = readFileSync(cfg.passwordFile, 'utf8').trim();
  const hypervisor = await XlHypervisor.open({ runDir: cfg.runDir ?? '/run/xtv-xapi', log });
  const ep = await startEndpoint({
    user: cfg.user, password, hypervisor, log,
    ...(cfg.lifecycle ? { lifecycle: cfg.lifecycle } : {}),
    ...(cfg.httpPort !== undefined ? { http: { port: cfg.httpPort } } : {}),
    ...(cfg.httpsPort !== undefined && cfg.tlsKey && cfg.tlsCert
      ? { https: { port: cfg.httpsPort, key: readFileSync(cfg.tlsKey), cert: readFileSync(cfg.tlsCert) } }
      : {}),
  });
  log(`xtv XAPI test double listening: http ${ep.httpPort ?? '-'}, https ${ep.httpsPort ?? '-'}`);
  const stop = () => {
    ep.close().then(() => hypervisor.close()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The server must never die on input; anything that escapes is logged, not fatal.
  process.on('uncaughtException', (err) => log(`uncaught: ${err.stack ?? String(err)}`));
  process.on('unhandledRejection', (err) => log(`unhandled rejection: ${String(err)}`));
}

main().catch((err) => {
  log(`failed to start: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exit(1);
});

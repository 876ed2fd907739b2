// The endpoint's entry point in dom0 (bundled to one file by build.mjs):
//   node xapi-endpoint.cjs --config /etc/xtv/xapi/config.json
//   node xapi-endpoint.cjs --config /etc/xtv/xapi/config-NAME.json --name NAME
// (config.ts says what the file holds). Before it listens it reads the
// toolstack's config files (/etc/xenopsd.conf, /etc/xapi.conf) for XAPI's
// timeouts, as xenopsd and xapi do, and logs what it uses. It then logs one
// line per call (method and outcome, never parameters) and per lifecycle
// decision, to stderr (the start hook sends that to the endpoint's log file).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { lifecycleFor, parseConfig, type EndpointConfig } from './config.ts';
import { DEFAULT_LIMITS, describeLimits, startEndpoint } from './endpoint.ts';
import type { LifecycleConfig } from './lifecycle.ts';
import { PROFILES } from './profiles.ts';
import { ConfigError, timeoutsFromConf, type ConfFile } from './toolstack-conf.ts';
import { XlHypervisor } from './xl-hypervisor.ts';

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

function arg(name: string): string | null {
  const i = process.argv.indexOf(name);
  return i < 0 ? null : (process.argv[i + 1] ?? '');
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

/** A toolstack config file: absent at its default path means the daemon's defaults; named explicitly, it must exist. */
function confFile(c: { path: string; explicit: boolean }, key: string): ConfFile {
  if (!c.explicit && !existsSync(c.path)) return { path: c.path, text: null };
  return { path: c.path, text: readText(c.path, `${key} (config.json)`) };
}

/** The lifecycle settings, the toolstack's files read as its daemons read them; logged. */
function lifecycleOf(cfg: EndpointConfig): LifecycleConfig {
  const xenopsd = confFile(cfg.xenopsdConf, 'xenopsdConf');
  const xapi = confFile(cfg.xapiConf, 'xapiConf');
  const { timeouts, notes } = timeoutsFromConf(PROFILES[cfg.profile], { xenopsd, xapi });
  for (const f of [xenopsd, xapi]) if (f.text === null) log(`${f.path}: absent; its daemon's defaults apply`);
  for (const n of notes) log(n);
  const { lifecycle, summary } = lifecycleFor(cfg, timeouts);
  log(summary);
  return lifecycle;
}

async function main(): Promise<void> {
  const file = arg('--config');
  const name = arg('--name');
  if (!file) {
    process.stderr.write('usage: xapi-endpoint --config FILE [--name NAME]\n');
    process.exit(2);
  }
  const cfg = parseConfig(readText(file, 'the configuration'), file, name);
  const profile = PROFILES[cfg.profile];
  log(
    `xtv XAPI test double${cfg.name === null ? '' : ` ${cfg.name}`}: profile ${profile.name} (${profile.softwareVersion.product_brand} ${profile.softwareVersion.product_version}, xapi ${profile.softwareVersion.xapi}); PV kernels from ${profile.bootDirs.join(', ')}`,
  );
  const lifecycle = lifecycleOf(cfg);
  log(describeLimits(DEFAULT_LIMITS));
  const password = readText(cfg.passwordFile, 'passwordFile').trim();
  const tls = cfg.https ? { key: readText(cfg.https.key, 'tlsKey'), cert: readText(cfg.https.cert, 'tlsCert') } : null;
  mkdirSync(cfg.suspendDir, { recursive: true });
  const hypervisor = await XlHypervisor.open({ runDir: cfg.runDir, log });
  const ep = await startEndpoint({
    user: cfg.user,
    password,
    hypervisor,
    profile,
    lifecycle,
    log,
    ...(cfg.httpPort !== null ? { http: { port: cfg.httpPort } } : {}),
    ...(cfg.https && tls ? { https: { port: cfg.https.port, ...tls } } : {}),
  });
  log(`listening: http ${ep.httpPort ?? '-'}, https ${ep.httpsPort ?? '-'}; domain configs in ${cfg.runDir}, suspend images in ${cfg.suspendDir}`);
  const stop = () => {
    ep.close()
      .then(() => hypervisor.close())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The server must never die on input; anything that escapes is logged, not fatal.
  process.on('uncaughtException', (err) => log(`uncaught: ${err.stack ?? String(err)}`));
  process.on('unhandledRejection', (err) => log(`unhandled rejection: ${String(err)}`));
}

main().catch((err) => {
  log(`failed to start: ${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});

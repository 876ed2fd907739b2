// What the VM subcommands (install, start, shutdown, send, watch, gc, …)
// share: the connection options, turning them into a driver, naming a VM,
// printing a result as text or JSON. What their errors mean (exit codes,
// messages) is said in one place, errors.ts.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CheckFailed, UsageError, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './command.ts';
import { connectToolstack, type ConnectOptions } from '../toolstack/connect.ts';
import { ConnectionError, type ToolstackDriver, type ToolstackKind, type VmRef } from '../toolstack/driver.ts';
import { embeddedConnect } from '../embedded/embedded-address.ts';
import { resolveStateDir } from '../embedded/paths.ts';
import { jsonForTerminal } from '../report/escape.ts';

export const CONNECT_OPTIONS = {
  host: { type: 'string' },
  toolstack: { type: 'string' },
  dom0: { type: 'string' },
  'state-dir': { type: 'string' },
  identity: { type: 'string' },
  user: { type: 'string' },
  'password-file': { type: 'string' },
  ca: { type: 'string' },
  'allow-unauthorized': { type: 'boolean' },
  'no-console-log': { type: 'boolean' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export const CONNECT_HELP = `connection options (default: $XTV_HOST, else embedded):
  --host H            ssh://[USER@]HOST[:PORT]: an xl host, dom0 over SSH
                      https://HOST[:PORT]: a XAPI host (XenServer, XCP-ng)
                      embedded: the host of 'xtv host up', reached exactly as
                      a real one (it fills in the options below)
  --toolstack T       xl or xapi (default: xapi for https:// hosts, else xl)
  --dom0 URL          XAPI hosts: dom0's shell, ssh://[USER@]HOST[:PORT]
                      (default: $XTV_DOM0, else ssh://root@HOST); none: XenAPI
                      only (no kernel copy, no xenstore, no console log)
  --identity FILE     SSH private key for dom0 (default: $XTV_SSH_IDENTITY,
                      else ssh's own); known_hosts: $XTV_SSH_KNOWN_HOSTS
  --user USER         XAPI user (default: $XTV_XAPI_USER, else root)
  --password-file F   XAPI password from file F (else $XTV_PASSWORD, or the file
                      in $XTV_PASSWORD_FILE; never from argv)
  --ca FILE           XAPI: verify TLS against this CA certificate (PEM; default
                      $XTV_CA_FILE, else the system's CAs)
  --allow-unauthorized  XAPI: accept a TLS certificate that does not verify
  --no-console-log    do not use dom0's guest console logs, even where it keeps
                      them (evidence then comes as on hosts that keep none)
  --state-dir DIR     --host embedded: the host's state directory
                      (default: $XTV_STATE_DIR, else ./.xtv/host)
  --json              one JSON object on stdout instead of text

exit codes: 0 ok, 1 the toolstack refused or a check (--wait) failed,
2 usage error or the host could not be reached, 70 a bug in xtv (--debug)`;

type ConnectValues = { [K in keyof typeof CONNECT_OPTIONS]?: (typeof CONNECT_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** parseArgs with the connection options added; its complaints become UsageErrors. */
export function parseCli<O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
  positionals: { min: number; max: number; names: string },
) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...CONNECT_OPTIONS, ...options }, strict: true, allowPositionals: true });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const n = parsed.positionals.length;
  if (n < positionals.min) throw new UsageError(`missing ${positionals.names}`);
  if (n > positionals.max) throw new UsageError(`unexpected argument '${parsed.positionals[positionals.max]}'`);
  return parsed as unknown as { values: ConnectValues & Record<string, string | boolean | undefined>; positionals: string[] };
}

/**
 * --host for the commands that make their own VMs (run, soak): embedded, fake (the in-memory
 * toolstack, no host at all), ssh:// or http(s)://; default $XTV_HOST, else embedded.
 */
export function ownVmHost(v: string | boolean | undefined, env: NodeJS.ProcessEnv): string {
  const host = typeof v === 'string' ? v : env.XTV_HOST || 'embedded';
  if (!/^(embedded|fake|ssh:\/\/.+|https?:\/\/.+)$/.test(host))
    throw new UsageError(`--host must be embedded, ssh://[USER@]HOST[:PORT], https://HOST or fake, got '${host}'`);
  return host;
}

export function oneOf<T extends string>(name: string, v: string | boolean | undefined, list: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(list as readonly string[]).includes(v))
    throw new UsageError(`--${name} must be one of ${list.join(', ')}, got '${String(v)}'`);
  return v as T;
}

export function positiveInt(name: string, v: string | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} wants a positive whole number, got '${String(v)}'`);
  return Number(v);
}

/** --timeout SEC as milliseconds. */
/** The longest delay setTimeout keeps (Node: a 32-bit signed count of ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function seconds(name: string, v: string | boolean | undefined, defaultSec: number): number {
  if (v === undefined) return defaultSec * 1000;
  if (typeof v !== 'string' || !/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new UsageError(`--${name} wants a number of seconds, got '${String(v)}'`);
  // Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer one fires at once.
  if (Number(v) * 1000 > MAX_TIMER_MS) throw new UsageError(`--${name}: at most ${Math.floor(MAX_TIMER_MS / 1000)} seconds (about 24 days), got '${v}'`);
  return Math.round(Number(v) * 1000);
}

/** What the flags say about the host: ConnectOptions, with --host possibly still `embedded` (see connectCli). */
export interface CliConnect extends ConnectOptions {
  /** --host embedded: the host's state directory. */
  stateDir?: string;
}

/** The connection the flags and environment say (nothing is contacted). */
export function connectOptions(values: ConnectValues, env: NodeJS.ProcessEnv = process.env): CliConnect {
  const host = values.host ?? (env.XTV_HOST || 'embedded');
  if (!/^(embedded|ssh:\/\/.+|https?:\/\/.+)$/.test(host))
    throw new UsageError(`--host must be embedded, ssh://[USER@]HOST[:PORT] or https://HOST, got '${host}'`);
  const toolstack: ToolstackKind = oneOf('toolstack', values.toolstack, ['xl', 'xapi'] as const) ?? (/^https?:\/\//.test(host) ? 'xapi' : 'xl');
  if (values.dom0 !== undefined && toolstack !== 'xapi') throw new UsageError('--dom0 is for XAPI hosts; with xl, --host is dom0 (ssh://root@HOST)');
  const str = (k: 'user' | 'password-file' | 'state-dir' | 'identity' | 'dom0' | 'ca', to: keyof CliConnect) =>
    values[k] !== undefined ? { [to]: values[k] } : {};
  return {
    host,
    toolstack,
    allowUnauthorized: values['allow-unauthorized'] ?? false,
    ...(values['no-console-log'] ? { noConsoleLog: true } : {}),
    ...str('user', 'user'),
    ...str('password-file', 'passwordFile'),
    ...str('state-dir', 'stateDir'),
    ...str('identity', 'identity'),
    ...str('dom0', 'dom0'),
    ...str('ca', 'caFile'),
    onProgress: (line) => process.stderr.write(`${line}\n`),
    env,
  };
}

/**
 * `--host embedded` becomes the embedded host's addresses (an https:// URL or
 * ssh:// dom0, key, known_hosts, CA and password files, from its state
 * directory); what the user gave explicitly stays. Any other host is as given.
 */
export function resolveEmbedded(o: CliConnect): ConnectOptions {
  const { stateDir, ...rest } = o;
  if (o.host !== 'embedded') return rest;
  let e;
  try {
    e = embeddedConnect(resolveStateDir(stateDir, o.env), o.toolstack);
  } catch (err) {
    throw new ConnectionError((err as Error).message, { cause: err });
  }
  return {
    ...rest,
    host: e.host,
    identity: o.identity ?? e.identity,
    knownHosts: o.knownHosts ?? e.knownHosts,
    ...(e.dom0 !== undefined && o.dom0 === undefined ? { dom0: e.dom0 } : {}),
    ...(e.caFile !== undefined && o.caFile === undefined ? { caFile: e.caFile } : {}),
    ...(e.passwordFile !== undefined && o.passwordFile === undefined ? { passwordFile: e.passwordFile } : {}),
    ...(e.user !== undefined && o.user === undefined ? { user: e.user } : {}),
  };
}

/** Reaches the host the flags name (ConnectionError when it cannot). */
export function connectCli(o: CliConnect): Promise<ToolstackDriver> {
  return connectToolstack(resolveEmbedded(o));
}

/** Prints a result: the object as one JSON line with --json, else the text. */
export function output(json: boolean | undefined, obj: Record<string, unknown>, text: string): void {
  // JSON that is also safe on a terminal: values may be the guest's (its report, its console).
  if (json) process.stdout.write(`${jsonForTerminal(obj)}\n`);
  else if (text !== '') process.stdout.write(`${text}\n`);
}

/**
 * Connects, runs `fn` and closes, whatever happens. What goes wrong is
 * thrown on to main, which says it (errors.ts). `_command` is no longer
 * needed here (main knows the command's name); it stays until the callers drop it.
 */
export async function withDriver(
  _command: string,
  values: ConnectValues,
  fn: (driver: ToolstackDriver, opts: ConnectOptions) => Promise<number>,
): Promise<number> {
  const opts = connectOptions(values);
  const driver = await connectCli(opts);
  try {
    return await fn(driver, opts);
  } finally {
    await driver.close().catch(() => undefined);
  }
}

/** The VM named on the command line, among those xtv made on this host (names or toolstack ids). */
export async function resolveVm(driver: ToolstackDriver, nameOrId: string): Promise<VmRef> {
  const owned = await driver.listOwned();
  const vm = owned.find((v) => v.name === nameOrId) ?? owned.find((v) => v.id === nameOrId);
  if (!vm) {
    const known = owned.map((v) => v.name).join(', ');
    throw new UsageError(`no VM named '${nameOrId}' made by xtv on this host (${known ? `known: ${known}` : 'none installed'}; see xtv install)`);
  }
  return vm;
}

export { CheckFailed, EXIT_OK, EXIT_FAILED, EXIT_USAGE };

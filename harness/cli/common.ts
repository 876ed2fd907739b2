// What the VM subcommands (install, start, shutdown, send, watch, gc, …)
// share: the connection options, turning them into a driver, naming a VM,
// printing a result as text or JSON, and the exit codes:
//   0 ok · 1 the toolstack said no, or a --wait/--wait-ack check failed ·
//   2 usage error, or the host/toolstack could not be reached.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../cli/command.ts';
import { WaitTimeout } from '../matrix/wait.ts';
import { connectToolstack, type ConnectOptions } from '../toolstack/connect.ts';
import { ConnectionError, ToolstackError, type ToolstackDriver, type ToolstackKind, type VmRef } from '../toolstack/driver.ts';

export const CONNECT_OPTIONS = {
  host: { type: 'string' },
  toolstack: { type: 'string' },
  'state-dir': { type: 'string' },
  identity: { type: 'string' },
  user: { type: 'string' },
  'password-file': { type: 'string' },
  'allow-unauthorized': { type: 'boolean' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export const CONNECT_HELP = `connection options:
  --host H            embedded (default: $XTV_HOST, else embedded: the host of
                      'xtv host up'), ssh://[USER@]HOST[:PORT] (a real Xen host,
                      xl over SSH as root), https://HOST (XAPI)
  --toolstack T       xl or xapi (default: xapi for http(s):// hosts, else xl)
  --state-dir DIR     the embedded host's state directory
                      (default: $XTV_STATE_DIR, else ./.xtv/host)
  --identity FILE     SSH private key for ssh:// hosts (default: $XTV_SSH_IDENTITY,
                      else ssh's own defaults)
  --user USER         XAPI user (default: $XTV_XAPI_USER, else root; the embedded
                      host's endpoint needs none of these)
  --password-file F   XAPI password from file F (else $XTV_PASSWORD, or the file
                      in $XTV_PASSWORD_FILE; never from argv)
  --allow-unauthorized  XAPI: accept a TLS certificate that does not verify
  --json              one JSON object on stdout instead of text

exit codes: 0 ok, 1 the toolstack refused or a check (--wait) failed,
2 usage error or the host could not be reached`;

type ConnectValues = { [K in keyof typeof CONNECT_OPTIONS]?: (typeof CONNECT_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** parseArgs with the connection options added; its complaints become UsageErrors. */
export function parseCli<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, positionals: { min: number; max: number; names: string }) {
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

export function oneOf<T extends string>(name: string, v: string | boolean | undefined, list: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(list as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${list.join(', ')}, got '${String(v)}'`);
  return v as T;
}

export function positiveInt(name: string, v: string | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} wants a positive whole number, got '${String(v)}'`);
  return Number(v);
}

/** --timeout SEC as milliseconds. */
export function seconds(name: string, v: string | boolean | undefined, defaultSec: number): number {
  if (v === undefined) return defaultSec * 1000;
  if (typeof v !== 'string' || !/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new UsageError(`--${name} wants a number of seconds, got '${String(v)}'`);
  return Math.round(Number(v) * 1000);
}

/** The ConnectOptions the flags and environment say. */
export function connectOptions(values: ConnectValues, env: NodeJS.ProcessEnv = process.env): ConnectOptions {
  const host = values.host ?? (env.XTV_HOST || 'embedded');
  if (!/^(embedded|ssh:\/\/.+|https?:\/\/.+)$/.test(host)) throw new UsageError(`--host must be embedded, ssh://[USER@]HOST[:PORT] or https://HOST, got '${host}'`);
  const toolstack: ToolstackKind = oneOf('toolstack', values.toolstack, ['xl', 'xapi'] as const) ?? (/^https?:\/\//.test(host) ? 'xapi' : 'xl');
  return {
    host,
    toolstack,
    allowUnauthorized: values['allow-unauthorized'] ?? false,
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(values['password-file'] !== undefined ? { passwordFile: values['password-file'] } : {}),
    ...(values['state-dir'] !== undefined ? { stateDir: values['state-dir'] } : {}),
    ...(values.identity !== undefined ? { identity: values.identity } : {}),
    onProgress: (line) => process.stderr.write(`${line}\n`),
    env,
  };
}

/** Prints a result: the object as one JSON line with --json, else the text. */
export function output(json: boolean | undefined, obj: Record<string, unknown>, text: string): void {
  if (json) process.stdout.write(`${JSON.stringify(obj)}\n`);
  else if (text !== '') process.stdout.write(`${text}\n`);
}

/** A --wait / --wait-ack check that did not hold: exit 1. */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
  constructor(message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
  }
}

/**
 * Connects, runs `fn`, closes, and maps what went wrong onto an exit code
 * and one clear message (stderr, or a JSON object on stdout with --json).
 * Usage errors go up to main, which prints the usage hint.
 */
export async function withDriver(command: string, values: ConnectValues, fn: (driver: ToolstackDriver, opts: ConnectOptions) => Promise<number>): Promise<number> {
  const opts = connectOptions(values);
  let driver: ToolstackDriver | null = null;
  try {
    driver = await connectToolstack(opts);
    return await fn(driver, opts);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const fail = (code: number, error: Record<string, unknown>, message: string): number => {
      if (values.json) process.stdout.write(`${JSON.stringify({ ok: false, error: { ...error, message } })}\n`);
      else process.stderr.write(`xtv ${command}: ${message}\n`);
      return code;
    };
    if (err instanceof ToolstackError) return fail(EXIT_FAILED, { kind: 'toolstack', code: err.code, params: err.params, call: err.call }, err.message);
    if (err instanceof CheckFailed) return fail(EXIT_FAILED, { kind: 'check', ...err.details }, err.message);
    if (err instanceof WaitTimeout) return fail(EXIT_FAILED, { kind: 'timeout' }, err.message);
    if (err instanceof ConnectionError) return fail(EXIT_USAGE, { kind: 'connection' }, err.message);
    throw err;
  } finally {
    await driver?.close().catch(() => undefined);
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

export { EXIT_OK, EXIT_FAILED, EXIT_USAGE };

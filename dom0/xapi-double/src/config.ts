// An endpoint's configuration: /etc/xtv/xapi/config.json (the default
// endpoint) or /etc/xtv/xapi/config-NAME.json (one more endpoint, NAME), read
// and checked at start; anything malformed stops the endpoint with a message
// that names the file and the key. Pure: main.ts reads the files.
import { DEFAULT_LIFECYCLE, type LifecycleConfig } from './lifecycle.ts';
import { DEFAULT_PROFILE, isProfileName, PROFILE_NAMES, type ProfileName } from './profiles.ts';
import { ConfigError } from './toolstack-conf.ts';

/** The lifecycle settings config.json may override (milliseconds); they win over the toolstack's files. */
export const LIFECYCLE_KEYS = [
  'shutdownAckTimeoutMs',
  'suspendAckTimeoutMs',
  'shutdownTotalTimeoutMs',
  'suspendTotalTimeoutMs',
  'restartDelayMs',
  'shortRunMs',
  'pollMs',
] as const;
type LifecycleKey = (typeof LIFECYCLE_KEYS)[number];

export interface EndpointConfig {
  /** null for the default endpoint (config.json); NAME for config-NAME.json. */
  name: string | null;
  user: string;
  passwordFile: string;
  profile: ProfileName;
  httpPort: number | null;
  https: { port: number; key: string; cert: string } | null;
  runDir: string;
  suspendDir: string;
  /** The toolstack's config files; `explicit`: named in config.json, so it must exist. */
  xenopsdConf: { path: string; explicit: boolean };
  xapiConf: { path: string; explicit: boolean };
  lifecycle: Partial<Pick<LifecycleConfig, LifecycleKey>>;
}

const KEYS = ['user', 'passwordFile', 'profile', 'httpPort', 'httpsPort', 'tlsKey', 'tlsCert', 'runDir', 'suspendDir', 'xenopsdConf', 'xapiConf', 'lifecycle'];

/** What an endpoint's NAME may be (it goes into file and directory names). */
export const NAME_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/** Where an endpoint keeps its domain configs and suspend images unless config.json says otherwise. */
export function defaultDirs(name: string | null): { runDir: string; suspendDir: string } {
  const suffix = name === null ? '' : `-${name}`;
  return { runDir: `/run/xtv-xapi${suffix}`, suspendDir: name === null ? DEFAULT_LIFECYCLE.suspendDir : `/var/lib/xtv-xapi${suffix}/suspend` };
}

type TimeoutKey = 'shutdownAckTimeoutMs' | 'suspendAckTimeoutMs' | 'shutdownTotalTimeoutMs' | 'suspendTotalTimeoutMs';

/**
 * The lifecycle settings: XAPI's defaults, then what the toolstack's files set (`fromFiles`,
 * toolstack-conf.ts), then config.json's `lifecycle`; and a line for the log saying which won.
 */
export function lifecycleFor(cfg: EndpointConfig, fromFiles: Partial<Pick<LifecycleConfig, TimeoutKey>>): { lifecycle: LifecycleConfig; summary: string } {
  const lifecycle: LifecycleConfig = { ...DEFAULT_LIFECYCLE, suspendDir: cfg.suspendDir, ...fromFiles, ...cfg.lifecycle };
  const t = (k: TimeoutKey) => `${lifecycle[k] / 1000} s (${k in cfg.lifecycle ? 'config.json lifecycle' : k in fromFiles ? 'toolstack config' : 'default'})`;
  const summary = `timeouts: shutdown ack ${t('shutdownAckTimeoutMs')}, shutdown total ${t('shutdownTotalTimeoutMs')}, suspend ack ${t('suspendAckTimeoutMs')}, suspend after the ack ${t('suspendTotalTimeoutMs')}`;
  return { lifecycle, summary };
}

export function parseConfig(text: string, file: string, name: string | null): EndpointConfig {
  const bad = (what: string) => new ConfigError(`${file}: ${what}`);
  if (name !== null && !NAME_PATTERN.test(name)) throw bad(`endpoint name ${JSON.stringify(name)}: letters, digits, '_', '-' and '.' only`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not a JSON object');
  const c = raw as Record<string, unknown>;
  for (const k of Object.keys(c)) if (!KEYS.includes(k)) throw bad(`unknown key ${JSON.stringify(k)} (known: ${KEYS.join(', ')})`);
  const str = (k: string, required: boolean): string | null => {
    const v = c[k];
    if (v === undefined && !required) return null;
    if (typeof v !== 'string' || v === '') throw bad(`${k} must be a non-empty string`);
    return v;
  };
  const port = (k: string): number | null => {
    const v = c[k];
    if (v === undefined) return null;
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) throw bad(`${k} must be a port number (0-65535)`);
    return v as number;
  };
  const profile = c.profile ?? DEFAULT_PROFILE;
  if (!isProfileName(profile)) throw bad(`profile ${JSON.stringify(profile)} is not one of ${PROFILE_NAMES.join(', ')}`);
  const httpPort = port('httpPort');
  const httpsPort = port('httpsPort');
  const tlsKey = str('tlsKey', false);
  const tlsCert = str('tlsCert', false);
  if (httpsPort !== null && (tlsKey === null || tlsCert === null)) throw bad('httpsPort needs tlsKey and tlsCert');
  if (httpPort === null && httpsPort === null) throw bad('neither httpPort nor httpsPort: the endpoint would listen nowhere');
  const lifecycle: Partial<Pick<LifecycleConfig, LifecycleKey>> = {};
  if (c.lifecycle !== undefined) {
    if (typeof c.lifecycle !== 'object' || c.lifecycle === null || Array.isArray(c.lifecycle)) throw bad('lifecycle must be an object');
    for (const [k, v] of Object.entries(c.lifecycle)) {
      if (!(LIFECYCLE_KEYS as readonly string[]).includes(k)) throw bad(`lifecycle.${k} is not a setting (known: ${LIFECYCLE_KEYS.join(', ')})`);
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(`lifecycle.${k} must be a number of milliseconds >= 0`);
      lifecycle[k as LifecycleKey] = v;
    }
  }
  const dirs = defaultDirs(name);
  const conf = (k: string, dflt: string) => {
    const v = str(k, false);
    return { path: v ?? dflt, explicit: v !== null };
  };
  return {
    name,
    user: str('user', true)!,
    passwordFile: str('passwordFile', true)!,
    profile,
    httpPort,
    https: httpsPort === null ? null : { port: httpsPort, key: tlsKey!, cert: tlsCert! },
    runDir: str('runDir', false) ?? dirs.runDir,
    suspendDir: str('suspendDir', false) ?? dirs.suspendDir,
    xenopsdConf: conf('xenopsdConf', '/etc/xenopsd.conf'),
    xapiConf: conf('xapiConf', '/etc/xapi.conf'),
    lifecycle,
  };
}

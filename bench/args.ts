// `npm run bench -- [options]`: the command line, parsed. Pure.

export interface BenchArgs {
  trials: number;
  warmup: number;
  boots: number;
  /** xl save + xl restore rounds after the reaction trials (0: none). */
  saves: number;
  /** xl migrate NAME localhost rounds after those (0: none). */
  migrations: number;
  domainType: 'pv' | 'pvh';
  /** Guest memory; null: the image's checked minimum (manifest minMemoryMiB), else 32. */
  memoryMiB: number | null;
  /** vCPUs of the emulated host; null: the embedded host's default. */
  hostCpus: number | null;
  outDir: string;
  ackTimeoutMs: number;
  bootTimeoutMs: number;
  /** Build (cached) the Debian packages, the test image and the embedded host first, as npm start does; false: --no-build. */
  build: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [options]

Boots the embedded Xen host, boots the test image on it, and times in dom0:
the agent's reaction to control/shutdown and control/testing next to the raw
xenstore round trip (the floor), guest boot-to-ready, xl save and xl restore
and xl migrate to the same host (to the agent's state=resumed) and host
boot-to-ready.
Prints JSON on stdout and writes it to bench/results/<timestamp>.json.
First builds what it needs, as npm start does (cached by their inputs):
scripts/deps.sh, npm run build:image, npm run build:host.

  --trials N           timed rounds; each has one shutdown, one testing and two floor trials (default 50)
  --warmup N           untimed rounds first (default 5)
  --boots N            guest boots timed, xl create → state=ready (default 3)
  --saves N            then xl save + xl restore rounds timed, to state=resumed (default 3; 0: none)
  --migrations N       then xl migrate NAME localhost rounds timed, to state=resumed (default 3; 0: none);
                       of a PVH guest of their own when the host cannot live-migrate the guest's type
  --type pv|pvh        guest type (default pv)
  --memory MIB         guest memory (default: the image's minMemoryMiB, else 32)
  --host-cpus N        vCPUs of the emulated host (default: the embedded host's)
  --out DIR            where the JSON goes (default bench/results)
  --ack-timeout-ms N   bound on each answer from the guest (default 10000)
  --boot-timeout-ms N  bound on each boot to state=ready (default 60000; a boot past it is retried, 3 times at most)
  --no-build           use dist/image and dist/host as they are (no build step)
  -h, --help`;

export const DEFAULT_ARGS: BenchArgs = {
  trials: 50,
  warmup: 5,
  boots: 3,
  saves: 3,
  migrations: 3,
  domainType: 'pv',
  memoryMiB: null,
  hostCpus: null,
  outDir: 'bench/results',
  ackTimeoutMs: 10_000,
  bootTimeoutMs: 60_000,
  build: true,
  help: false,
};

export class UsageError extends Error {
  override name = 'UsageError';
}

function whole(flag: string, raw: string | undefined, min: number): number {
  if (raw === undefined || !/^\d+$/.test(raw)) throw new UsageError(`${flag} needs a whole number, got ${JSON.stringify(raw ?? '')}`);
  const n = Number(raw);
  if (n < min) throw new UsageError(`${flag} must be at least ${min}, got ${n}`);
  return n;
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  const a: BenchArgs = { ...DEFAULT_ARGS };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case '--trials':
        a.trials = whole(flag, value(), 1);
        break;
      case '--warmup':
        a.warmup = whole(flag, value(), 0);
        break;
      case '--boots':
        a.boots = whole(flag, value(), 1);
        break;
      case '--saves':
        a.saves = whole(flag, value(), 0);
        break;
      case '--migrations':
        a.migrations = whole(flag, value(), 0);
        break;
      case '--type': {
        const v = value();
        if (v !== 'pv' && v !== 'pvh') throw new UsageError(`--type must be pv or pvh, got ${JSON.stringify(v ?? '')}`);
        a.domainType = v;
        break;
      }
      case '--memory':
        a.memoryMiB = whole(flag, value(), 1);
        break;
      case '--host-cpus':
        a.hostCpus = whole(flag, value(), 1);
        break;
      case '--out': {
        const v = value();
        if (!v) throw new UsageError('--out needs a directory');
        a.outDir = v;
        break;
      }
      case '--ack-timeout-ms':
        a.ackTimeoutMs = whole(flag, value(), 1);
        break;
      case '--boot-timeout-ms':
        a.bootTimeoutMs = whole(flag, value(), 1);
        break;
      case '--no-build':
        if (arg !== flag) throw new UsageError('--no-build takes no value');
        a.build = false;
        break;
      case '-h':
      case '--help':
        a.help = true;
        break;
      default:
        throw new UsageError(`unknown option ${JSON.stringify(arg)}\n\n${USAGE}`);
    }
  }
  return a;
}

/** bench/results/2026-11-23T09-30-00.123Z.json: sortable, no characters a file system dislikes. */
export function resultFileName(startedAt: Date): string {
  return `${startedAt.toISOString().replaceAll(':', '-')}.json`;
}

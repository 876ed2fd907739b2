// The benchmark's probe, run by Node IN dom0 (bundled into one file by
// bench/bundle.ts; bench/run.ts copies it in and starts it), so that every
// time is taken next to xenstored and not across SSH.
//
//   node probe.js <base64url JSON ProbeConfig>
//
// Boots the guest `boots` times (xl create → state=ready), keeps the last one,
// runs `warmup` untimed and `trials` timed reaction rounds (reaction.ts), then
// `saves` rounds of xl save + xl restore and `migrate.rounds` of xl migrate
// NAME localhost (save-restore.ts; of a guest of their own when the config
// names one), and prints one JSON ProbeOutput on stdout. Progress lines go to
// stderr. The guests are destroyed at the end, on error and on
// SIGINT/SIGTERM/SIGHUP.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { XenstoreClient } from '../../xenstore/client.ts';
import { connectUnixSocket } from '../../xenstore/transport-node.ts';
import { REPORT_DIR } from '../../protocol/control.ts';
import { bootOnce, destroyIfRunning, type BootSample } from './boot.ts';
import { WatchTimeoutError } from './node-watch.ts';
import { ReactionProbe, ReportGlitchError, type Sample } from './reaction.ts';
import { decodeProbeConfig, type ProbeConfig, type ProbeOutput } from './probe-protocol.ts';
import { migrateOnce, saveRestoreOnce, type MigrateSample, type SaveRestoreSample } from './save-restore.ts';

const now = (): number => performance.now();
const say = (m: string): void => {
  process.stderr.write(`probe: ${m}\n`);
};

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return '';
  }
}

async function main(): Promise<void> {
  const cfg = decodeProbeConfig(process.argv[2]);
  const t0 = now();
  let cleaning: Promise<void> | null = null;
  const names = [...new Set([cfg.name, ...(cfg.migrate ? [cfg.migrate.name] : [])])];
  const cleanup = (): Promise<void> => {
    if (!cfg.destroy) return Promise.resolve();
    cleaning ??= Promise.all(names.map((n) => destroyIfRunning(n, 30_000).catch((e) => say(`destroying ${n}: ${(e as Error).message}`)))).then(() => undefined);
    return cleaning;
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      say(`${sig}: destroying ${names.join(', ')}`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  // stdout may be a pipe whose reader (ssh) is gone: never die of EPIPE before cleaning up.
  process.stdout.on('error', () => undefined);

  const xs = new XenstoreClient(await connectUnixSocket(cfg.socket), { requestTimeoutMs: 15_000 });
  try {
    for (const n of names) await destroyIfRunning(n, 30_000); // a leftover from an interrupted run
    const boots: BootSample[] = [];
    const failedBoots: string[] = [];
    for (let i = 1; i <= cfg.boots;) {
      let b: BootSample;
      try {
        b = await bootOnce(xs, { configPath: cfg.configPath, name: cfg.name, timeoutMs: cfg.bootTimeoutMs, now });
      } catch (e) {
        // A boot that never shows state=ready is recorded and tried again, 3 times at most.
        if (!(e instanceof WatchTimeoutError) || failedBoots.length >= 3) throw e;
        failedBoots.push(e.message);
        say(`boot failed, trying again: ${e.message}`);
        await destroyIfRunning(cfg.name, 30_000);
        continue;
      }
      boots.push(b);
      say(`boot ${i}/${cfg.boots}: xl create ${b.createMs.toFixed(0)} ms, state=ready after ${b.readyMs.toFixed(0)} ms (domid ${b.domid})`);
      if (i < cfg.boots) await destroyIfRunning(cfg.name, 30_000);
      i++;
    }
    const domid = boots[boots.length - 1]!.domid;
    const home = `/local/domain/${domid}/${REPORT_DIR}`;
    const probe = await ReactionProbe.open(xs, domid, { ackTimeoutMs: cfg.ackTimeoutMs, now, runId: randomBytes(4).toString('hex') });
    const samples: Sample[] = [];
    const discarded: ProbeOutput['discarded'] = [];
    // A round whose report glitched is discarded and run again, within a bound.
    const maxDiscards = Math.max(10, cfg.trials);
    const round = async (): Promise<Sample[] | null> => {
      try {
        return await probe.round();
      } catch (e) {
        if (!(e instanceof ReportGlitchError)) throw e;
        discarded.push({ afterGoodRounds: samples.length / 4, reason: e.message });
        say(`round discarded: ${e.message}`);
        if (discarded.length > maxDiscards) throw new Error(`${discarded.length} rounds discarded (the agent's report keeps failing); last: ${e.message}`);
        await probe.resync();
        return null;
      }
    };
    let before = '';
    try {
      for (let i = 0; i < cfg.warmup; i++) await round();
      say(`${cfg.warmup} warm-up round(s) done; timing ${cfg.trials} round(s) of floor, testing, floor, shutdown`);
      before = loadavg();
      for (let i = 1; i <= cfg.trials;) {
        const r = await round();
        if (!r) continue;
        samples.push(...r.map((s) => ({ ...s, round: i })));
        if (i % 10 === 0 || i === cfg.trials) say(`round ${i}/${cfg.trials}: ${r.map((s) => `${s.kind} ${s.ms.toFixed(2)}`).join(', ')} ms`);
        i++;
      }
    } finally {
      await probe.close();
    }
    // The agent's report as the reaction rounds left it: the restores below move the guest to new domains.
    const read = (k: string) => xs.tryRead(`${home}/${k}`);
    const agent = {
      version: await read('version'),
      bootId: await read('boot-id'),
      state: await read('state'),
      errors: await read('errors'),
      lastError: await read('last-error'),
    };
    // Nothing is pending after a round (its shutdown request took the testing message's ignore),
    // so the agent acknowledges xl save's "suspend" and suspends.
    const saveRestore: SaveRestoreSample[] = [];
    for (let i = 1; i <= cfg.saves; i++) {
      const s = await saveRestoreOnce(xs, { name: cfg.name, saveFile: join(tmpdir(), `${cfg.name}.bench-save`), timeoutMs: cfg.bootTimeoutMs, now });
      saveRestore.push(s);
      say(
        `save/restore ${i}/${cfg.saves}: xl save ${s.saveMs.toFixed(0)} ms, xl restore ${s.restoreMs.toFixed(0)} ms, state=resumed after ${s.resumedMs.toFixed(0)} ms (domid ${s.domid})`,
      );
    }
    const migrate = cfg.migrate ? await migrations(xs, cfg, cfg.migrate) : null;
    const out: ProbeOutput = {
      node: process.version,
      socket: cfg.socket,
      boots,
      domid,
      agent,
      warmupRounds: cfg.warmup,
      samples,
      discarded,
      failedBoots,
      saveRestore,
      migrate,
      loadavg: { before, after: loadavg() },
      elapsedMs: now() - t0,
    };
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    xs.close();
    await cleanup();
  }
}

/** The migration rounds, of the guest above or of one booted for them (a type the host can live-migrate). */
async function migrations(xs: XenstoreClient, cfg: ProbeConfig, m: NonNullable<ProbeConfig['migrate']>): Promise<{ name: string; samples: MigrateSample[] }> {
  if (m.name !== cfg.name) {
    const b = await bootOnce(xs, { configPath: m.configPath, name: m.name, timeoutMs: cfg.bootTimeoutMs, now });
    say(`${m.name} booted for the migrations: state=ready after ${b.readyMs.toFixed(0)} ms (domid ${b.domid})`);
  }
  const samples: MigrateSample[] = [];
  for (let i = 1; i <= m.rounds; i++) {
    const s = await migrateOnce(xs, { name: m.name, timeoutMs: cfg.bootTimeoutMs, now });
    samples.push(s);
    say(`migration ${i}/${m.rounds}: xl migrate ${s.migrateMs.toFixed(0)} ms, state=resumed after ${s.resumedMs.toFixed(0)} ms (domid ${s.domid})`);
  }
  return { name: m.name, samples };
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    say(`failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);

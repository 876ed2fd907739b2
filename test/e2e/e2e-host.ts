// The embedded host an e2e file runs on: the one npm test boots for all of
// them (test/e2e/shared-host.ts; XTV_E2E_STATE_DIR names it), or, for a file
// run alone, one of its own booted the same way, down when the file is done.
// No side effects on import: test files import it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedHost, withEmbeddedHost } from '../../harness/embedded/embedded-host.ts';
import { prepareEmbeddedXapi, type XapiProfile } from '../../harness/embedded/xapi-double.ts';

/**
 * dom0's /etc/xenopsd.conf for the e2e run, as an administrator would tune a real host: XAPI's 60 s
 * shutdown ack timeout would only make the no-ack cases slower. The harness reads it back from there.
 */
export const E2E_XAPI_ACK_TIMEOUT_MS = 15_000;
/**
 * The bound on a start (xl create, VM.start) in the e2e files: every file boots its VMs at once on
 * the one emulated host, and a start has taken over 120 s there, the drivers' default (the XenAPI
 * test double gives its own xl create 300 s).
 */
export const E2E_START_TIMEOUT_MS = 300_000;
/** The XAPI versions the double serves on the e2e host, each on its own endpoint: today's, and 8.2 LTS. */
export const E2E_XAPI_PROFILES: readonly XapiProfile[] = ['xenserver-8', 'xcp-ng-8.2'];
/** Enough for every file's guests at once (32-40 MiB each) beside dom0. */
const E2E_HOST_MEMORY_MIB = 2048;
/** QEMU runs a thread per vCPU: with many guests at once 2 beat 1 (dom0/image/README.md). */
const E2E_HOST_CPUS = Number(process.env.XTV_E2E_HOST_CPUS ?? 2);

/** The shared host's state directory, when npm test booted one. */
export function sharedE2eStateDir(): string | undefined {
  return process.env.XTV_E2E_STATE_DIR || undefined;
}

/**
 * Boots a host the way the e2e files expect (a XenAPI endpoint per profile,
 * the e2e ack timeout in xenopsd.conf, 2 vCPUs, 2048 MiB) in `stateDir` (a temporary one, removed after,
 * when not given), runs `fn`, and stops it whatever happens.
 */
export async function bootE2eHost<T>(
  fn: (host: EmbeddedHost) => Promise<T>,
  opts: { stateDir?: string; onProgress?: (line: string) => void } = {},
): Promise<T> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'xtv-e2e-host-'));
  const onProgress = opts.onProgress ?? (() => undefined);
  try {
    const x = await prepareEmbeddedXapi(stateDir, {
      onProgress,
      profiles: E2E_XAPI_PROFILES,
      xenopsdConf: { domain_shutdown_ack_timeout: E2E_XAPI_ACK_TIMEOUT_MS / 1000 },
    });
    return await withEmbeddedHost(
      async (host) => {
        await x.finish(host);
        return fn(host);
      },
      { stateDir, memoryMiB: E2E_HOST_MEMORY_MIB, cpus: E2E_HOST_CPUS, ...x.upOptions, onProgress },
    );
  } finally {
    if (opts.stateDir === undefined) rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Runs `fn` on the shared host, or on one of this file's own (bootE2eHost). */
export async function onE2eHost<T>(fn: (host: EmbeddedHost) => Promise<T>, opts: { onProgress?: (line: string) => void } = {}): Promise<T> {
  const shared = sharedE2eStateDir();
  return shared ? fn(EmbeddedHost.attach(shared)) : bootE2eHost(fn, opts);
}

// Bundles the dom0 probe (dom0/bench-probe/probe.ts with the project's xenstore
// client) into ONE ES module for Node, dist/bench/probe.mjs, so that dom0
// needs nothing but a node binary. Written aside and renamed.
import { build } from 'esbuild';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function bundleProbe(outFile = join(REPO_ROOT, 'dist/bench/probe.mjs')): Promise<string> {
  mkdirSync(dirname(outFile), { recursive: true });
  const tmp = `${outFile}.tmp-${process.pid}`;
  try {
    await build({
      absWorkingDir: REPO_ROOT,
      entryPoints: ['dom0/bench-probe/probe.ts'],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node18',
      outfile: tmp,
      legalComments: 'none',
      logLevel: 'warning',
    });
    renameSync(tmp, outFile);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`bundling dom0/bench-probe/probe.ts: ${e instanceof Error ? e.message : String(e)}`);
  }
  return outFile;
}

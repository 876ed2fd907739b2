#!/usr/bin/env node
// `npm start`: the main job, end to end on real Xen, with the same commands a
// person would type. Installs what it needs, builds the test image and the
// embedded host (both cached by their inputs), boots the host, runs the
// smoke matrix through each toolstack, prints the result table and where the
// reports are, and shuts the host down, on success, failure or Ctrl-C.
//
// Environment: XTV_MATRIX (smoke|full, default smoke), XTV_PARALLEL (default 2),
// XTV_TOOLSTACKS (default "xl,xapi"), XTV_REPORT_DIR (default ./xtv-report).
import { spawn } from 'node:child_process';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stateDir = resolve(root, '.xtv', 'main-job');
const reportRoot = resolve(process.env.XTV_REPORT_DIR ?? join(root, 'xtv-report'));
const matrix = process.env.XTV_MATRIX ?? 'smoke';
const parallel = process.env.XTV_PARALLEL ?? '2';
const toolstacks = (process.env.XTV_TOOLSTACKS ?? 'xl,xapi')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const xtv = join(root, 'bin', 'xtv.js');
const env = { ...process.env, XTV_STATE_DIR: stateDir };

let current = null;
function run(title, cmd, args) {
  console.error(`\n==> ${title}`);
  const started = Date.now();
  return new Promise((resolvePromise) => {
    current = spawn(cmd, args, { cwd: root, env, stdio: 'inherit' });
    current.on('close', (code, signal) => {
      current = null;
      console.error(`==> ${title}: ${code === 0 ? 'done' : `exit ${code ?? signal}`} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      resolvePromise(code ?? 1);
    });
  });
}

let hostUp = false;
let stopping = false;
async function hostDown() {
  if (!hostUp) return;
  hostUp = false;
  await run('shutting the embedded host down', process.execPath, [xtv, 'host', 'down', '--state-dir', stateDir]);
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    console.error(`\nxtv: ${sig}: stopping, and shutting the host down`);
    current?.kill('SIGINT');
    await hostDown();
    process.exit(130);
  });
}

async function main() {
  const steps = [
    ['installing Debian packages (if missing)', 'bash', ['scripts/deps.sh']],
    ['building the test image (cached: a few minutes the first time)', 'npm', ['run', '--silent', 'build:image']],
    ['building the embedded Xen host (cached)', 'npm', ['run', '--silent', 'build:host']],
  ];
  for (const [title, cmd, args] of steps) {
    if ((await run(title, cmd, args)) !== 0) return 2;
  }
  // A host left over from an interrupted run in this state directory is stopped first.
  await run('stopping a leftover host, if any', process.execPath, [xtv, 'host', 'down', '--state-dir', stateDir]);
  hostUp = true;
  if ((await run('booting real Xen + dom0 under QEMU', process.execPath, [xtv, 'host', 'up', '--state-dir', stateDir])) !== 0) {
    await hostDown();
    return 2;
  }
  let worst = 0;
  for (const toolstack of toolstacks) {
    const reportDir = join(reportRoot, toolstack);
    const rc = await run(`${matrix} matrix through ${toolstack}`, process.execPath, [
      xtv,
      'run',
      '--host',
      'embedded',
      '--toolstack',
      toolstack,
      '--matrix',
      matrix,
      '--parallel',
      parallel,
      '--report-dir',
      reportDir,
    ]);
    console.error(`    report: ${join(reportDir, `xtv-${toolstack}-${matrix}.html`)}`);
    // xtv run: 1 a case failed, 3 undecided (errors only), 2 usage; a failure outranks the rest.
    worst = worst === 1 || rc === 1 ? 1 : Math.max(worst, rc);
  }
  await hostDown();
  console.error(`\nxtv: main job ${worst === 0 ? 'passed' : 'finished with failures'}; reports under ${reportRoot}`);
  return worst;
}

process.exitCode = await main();

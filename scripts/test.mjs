#!/usr/bin/env node
// The README's test command. Runs the tape suites and ends with the one line
// CI reads: "N passed, N failed". tape prints TAP per assertion; we relay it
// unchanged and count the `ok` / `not ok` lines. A test file that dies
// without reporting a failure still counts as one failure, so a crash can
// never pass as "0 failed".
//
//   node scripts/test.mjs unit   fast tests, no Xen
//   node scripts/test.mjs e2e    builds (cached) image and embedded host, then the suites on real Xen
//   node scripts/test.mjs all    both (npm test)
import { spawn } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const which = process.argv[2] ?? 'all';
if (!['unit', 'e2e', 'all'].includes(which)) {
  console.error(`usage: node scripts/test.mjs unit|e2e|all (got ${which})`);
  process.exit(2);
}

const totals = { passed: 0, failed: 0 };

function testFiles(dir) {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join(dir, f));
}

/** Runs a command, relaying its output; returns its exit code. */
function run(cmd, args, { countTap = false, env = {} } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let pending = '';
    let failedHere = 0;
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      if (!countTap) return;
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (/^ok \d+/.test(line)) totals.passed++;
        else if (/^not ok \d+/.test(line)) { totals.failed++; failedHere++; }
      }
    });
    const stop = () => child.kill('SIGINT');
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    child.on('close', (code, signal) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      const rc = code ?? (signal ? 1 : 0);
      if (countTap && rc !== 0 && failedHere === 0) {
        console.log(`not ok - ${args.at(-1)} exited with ${code ?? signal} without reporting a failure`);
        totals.failed++;
      }
      resolve(rc);
    });
  });
}

async function runSuite(dir) {
  const files = testFiles(dir);
  for (const file of files) {
    console.log(`# file: ${file}`);
    await run(process.execPath, ['--import', 'tsx', 'node_modules/tape/bin/tape', file], { countTap: true });
  }
}

async function prepareE2e() {
  // Everything the end-to-end suite needs, cached by inputs: Debian packages,
  // the test image, the embedded host. A failure here is reported as a failed
  // test, not hidden.
  for (const [name, cmd, args] of [
    ['Debian packages', 'bash', ['scripts/deps.sh']],
    ['test image', 'npm', ['run', '--silent', 'build:image']],
    ['embedded host', 'npm', ['run', '--silent', 'build:host']],
  ]) {
    console.log(`# preparing ${name}`);
    const rc = await run(cmd, args);
    if (rc !== 0) {
      console.log(`not ok - preparing ${name} failed (exit ${rc})`);
      totals.failed++;
      return false;
    }
  }
  return true;
}

if (which === 'unit' || which === 'all') await runSuite('test/unit');
if (which === 'e2e' || which === 'all') {
  if (await prepareE2e()) await runSuite('test/e2e');
}
console.log(`${totals.passed} passed, ${totals.failed} failed`);
process.exit(totals.failed === 0 && totals.passed > 0 ? 0 : 1);

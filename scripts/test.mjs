#!/usr/bin/env node
// The README's test command. Runs the tape suites and ends with the one line
// CI reads: "N passed, N failed". tape prints TAP per assertion; we relay it
// unchanged and count the `ok` / `not ok` lines. A test file that dies
// without reporting a failure still counts as one failure, so a crash can
// never pass as "0 failed".
//
// The whole run is also JUnit XML (scripts/tap-junit.mjs): one <testsuite>
// per test file, one <testcase> per assertion, ours in the suite
// "scripts/test.mjs". It goes to $XTV_TEST_REPORT_DIR/npm-test.junit.xml
// (default xtv-report/npm-test/), a directory emptied at the start and
// passed on to the test files: the e2e files' `xtv run` reports go under it.
//
//   node scripts/test.mjs unit   fast tests, no Xen
//   node scripts/test.mjs e2e    builds (cached) image and embedded host, then the suites on real Xen
//   node scripts/test.mjs all    both (npm test)
import { spawn } from 'node:child_process';
import { readdirSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, dirname, resolve, relative, isAbsolute, parse } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tapJunit } from './tap-junit.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const which = process.argv[2] ?? 'all';
if (!['unit', 'e2e', 'all'].includes(which)) {
  console.error(`usage: node scripts/test.mjs unit|e2e|all (got ${which})`);
  process.exit(2);
}

const reportDir = resolve(process.env.XTV_TEST_REPORT_DIR || join(root, 'xtv-report', 'npm-test'));
// Emptied below: never the file system's root, the home directory, the checkout or a directory above it.
const above = relative(reportDir, root);
if (reportDir === parse(reportDir).root || reportDir === resolve(homedir()) || above === '' || (!above.startsWith('..') && !isAbsolute(above))) {
  console.error(`XTV_TEST_REPORT_DIR=${reportDir}: npm test empties its report directory, so not this one: choose a directory of its own`);
  process.exit(2);
}
rmSync(reportDir, { recursive: true, force: true });
mkdirSync(reportDir, { recursive: true });

const totals = { passed: 0, failed: 0 };
/**
 * Every failure, with the file it came from and the diagnostic lines tape
 * put under it: listed again just above the last line, because a CI log is
 * often read from its end, and 5,000 lines above it one `not ok` is lost.
 */
const failures = [];
const t0run = Date.now();
/** The JUnit suites: ours (`assertion`), and one per test file. */
const ours = { name: 'scripts/test.mjs', cases: [] };
const suites = [];

function testFiles(dir) {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(dir, f));
}

/** Counts a TAP line of a test file into the totals; returns whether it was a failure. */
function count(line) {
  if (/^ok \d+/.test(line)) {
    totals.passed++;
    return false;
  }
  if (/^not ok \d+/.test(line)) {
    totals.failed++;
    return true;
  }
  return false;
}

/** Our own assertion, for what no test file checks (the shared host's boot and shutdown). */
function assertion(ok, what) {
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}`);
  ours.cases.push({ name: what, ok });
  if (ok) totals.passed++;
  else {
    totals.failed++;
    failures.push({ file: 'scripts/test.mjs', lines: [`not ok - ${what}`] });
  }
}

/** The `not ok` lines of a file's TAP, each with the YAML block under it up to its stack (at most 12 lines). */
function failuresOf(file, tap) {
  const lines = tap.split('\n');
  const found = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^not ok \d+/.test(lines[i])) continue;
    const block = [lines[i]];
    for (let j = i + 1; j < lines.length && /^\s+\S/.test(lines[j]) && !/^\s+stack:/.test(lines[j]) && block.length < 13; j++) block.push(lines[j]);
    found.push({ file, lines: block });
  }
  return found;
}

// Children get SIGINT/SIGTERM when we do (Ctrl-C reaches them through the
// terminal too; a CI runner's SIGTERM does not).
const children = new Set();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal);
    setTimeout(() => process.exit(130), 20_000).unref();
  });
}

/**
 * Runs a command. `tap`: it is a test file: its TAP lines count, and its
 * output is held and printed whole when it ends (files run side by side, and
 * interleaved TAP would be unreadable), under a header with its duration.
 * Otherwise its output is relayed as it comes. Resolves with the exit code.
 */
function run(cmd, args, { tap = false, env = {} } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, XTV_TEST_REPORT_DIR: reportDir, ...env },
      stdio: ['ignore', 'pipe', tap ? 'pipe' : 'inherit'],
    });
    children.add(child);
    let held = '';
    let pending = '';
    let failedHere = 0;
    child.stdout.on('data', (chunk) => {
      if (!tap) {
        process.stdout.write(chunk);
        return;
      }
      held += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (count(line)) failedHere++;
    });
    // A test file's stderr is kept with its TAP, as comments.
    child.stderr?.on('data', (chunk) => {
      held += chunk.toString().replace(/^(?!$)/gm, '# stderr: ');
    });
    child.on('close', (code, signal) => {
      children.delete(child);
      if (pending && count(pending)) failedHere++;
      const rc = code ?? (signal ? 1 : 0);
      if (tap) {
        const file = args.at(-1);
        const suite = { name: file, tap: held, cases: [], time: (Date.now() - t0) / 1000 };
        suites.push(suite);
        process.stdout.write(`# file: ${file} (${suite.time.toFixed(1)} s)\n${held}${held.endsWith('\n') ? '' : '\n'}`);
        failures.push(...failuresOf(file, held));
        if (rc !== 0 && failedHere === 0) {
          const what = `${file} exited with ${code ?? signal} without reporting a failure`;
          console.log(`not ok - ${what}`);
          suite.cases.push({ name: what, ok: false, diagnostic: `the end of its output:\n${held.split('\n').slice(-60).join('\n')}` });
          totals.failed++;
          failures.push({
            file,
            lines: [
              `not ok - ${what}`,
              ...held
                .trimEnd()
                .split('\n')
                .slice(-10)
                .map((l) => `  ${l}`),
            ],
          });
        }
      }
      resolve(rc);
    });
  });
}

const tape = (file, env = {}) => run(process.execPath, ['--import', 'tsx', 'node_modules/tape/bin/tape', file], { tap: true, env });

/** The unit files, one after another (they are short, and some measure time). */
async function unitSuite() {
  for (const file of testFiles('test/unit')) await tape(file);
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
      assertion(false, `preparing ${name} (exit ${rc})`);
      return false;
    }
  }
  return true;
}

/** Resolves with the shared host's first stdout line, parsed (or a failure). */
function firstLine(child) {
  return new Promise((resolve) => {
    let out = '';
    const onData = (b) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      child.stdout.off('data', onData);
      try {
        resolve(JSON.parse(out.slice(0, nl)));
      } catch {
        resolve({ ready: false, error: `unexpected output: ${out.slice(0, nl)}` });
      }
    };
    child.stdout.on('data', onData);
    child.on('close', (code) => resolve({ ready: false, error: `exited with ${code} before the host was ready` }));
  });
}

/**
 * The end-to-end files, all at once, on one embedded host (with the XenAPI
 * test double) that test/e2e/shared-host.ts boots and keeps until its stdin
 * closes. Each file's VMs have names of their own.
 */
async function e2eSuite() {
  const files = testFiles('test/e2e');
  const t0 = Date.now();
  const host = spawn(process.execPath, ['--import', 'tsx', 'test/e2e/shared-host.ts'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(host);
  const closed = new Promise((resolve) => host.on('close', (code, signal) => resolve(code ?? signal)));
  const ready = await firstLine(host);
  assertion(
    ready.ready === true,
    `the shared embedded host (Xen, dom0, XenAPI test double) is up for the e2e files (${((Date.now() - t0) / 1000).toFixed(1)} s)${ready.ready ? '' : `: ${ready.error}`}`,
  );
  if (ready.ready) {
    const env = { XTV_E2E_STATE_DIR: ready.stateDir, XTV_E2E_FRESH_HOST: '1' };
    await Promise.all(files.map((file) => tape(file, env)));
  }
  host.stdin.end();
  const code = await closed;
  children.delete(host);
  if (ready.ready) {
    let qemuGone = false;
    for (let i = 0; i < 50 && !qemuGone; i++) {
      try {
        process.kill(ready.pid, 0);
        await new Promise((r) => setTimeout(r, 200));
      } catch {
        qemuGone = true;
      }
    }
    assertion(
      code === 0 && qemuGone && !existsSync(ready.stateDir),
      `the shared host went down: exit ${code}, QEMU ${qemuGone ? 'gone' : `pid ${ready.pid} still there`}, state dir ${existsSync(ready.stateDir) ? 'left' : 'removed'} (e2e files ${((Date.now() - t0) / 1000).toFixed(0)} s in all)`,
    );
  }
}

// npm test: the e2e preparation first, so the unit files that use its
// products (the image's qjs, linux-source) run instead of skipping; then
// the unit files beside the e2e files (the unit ones use this machine's
// CPU, the e2e ones mostly wait on the emulated host).
if (which === 'unit') await unitSuite();
if (which === 'e2e' && (await prepareE2e())) await e2eSuite();
if (which === 'all') {
  const prepared = await prepareE2e();
  await Promise.all([unitSuite(), prepared ? e2eSuite() : Promise.resolve()]);
}
// The JUnit XML, whatever the result; a report that cannot be written is a failure too.
const junit = join(reportDir, 'npm-test.junit.xml');
try {
  const files = suites.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  writeFileSync(junit, tapJunit([...(ours.cases.length ? [ours] : []), ...files], { time: (Date.now() - t0run) / 1000 }));
  console.log(`# JUnit XML: ${relative(root, junit) || junit}`);
} catch (e) {
  assertion(false, `writing ${junit}: ${e.message}`);
}
if (failures.length) {
  console.log(`# the ${failures.length === 1 ? 'failure' : `${failures.length} failures`} again:`);
  for (const f of failures) for (const [i, line] of f.lines.entries()) console.log(`# ${i === 0 ? `${f.file}: ` : '  '}${line}`);
}
console.log(`${totals.passed} passed, ${totals.failed} failed`);
process.exit(totals.failed === 0 && totals.passed > 0 ? 0 : 1);

// `npm run bench` builds what it needs first (bench/build.ts), with the steps of
// `npm start` and `npm test`. Nothing is built here: the steps run through a fake.
import test from 'tape';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BUILD_STEPS, BuildError, buildPlan, commandText, runBuild, spawnStep, type StepRunner } from '../../bench/build.ts';
import { DEFAULT_ARGS, parseBenchArgs, UsageError } from '../../bench/args.ts';
import { REPO_ROOT } from '../../bench/bundle.ts';

test('the build steps are the ones npm start and npm test run, in their order', (t) => {
  t.deepEqual(
    BUILD_STEPS.map(commandText),
    ['bash scripts/deps.sh', 'npm run --silent build:image', 'npm run --silent build:host'],
    'packages, then the image, then the host',
  );
  for (const script of ['scripts/main-job.mjs', 'scripts/test.mjs']) {
    const text = readFileSync(`${REPO_ROOT}/${script}`, 'utf8');
    const at = BUILD_STEPS.map((s) => text.indexOf(`'${s.command}', [${s.args.map((a) => `'${a}'`).join(', ')}]`));
    t.ok(
      at.every((i) => i >= 0),
      `${script} runs each of them`,
    );
    t.deepEqual(
      [...at].sort((a, b) => a - b),
      at,
      `${script}: in the same order`,
    );
  }
  t.end();
});

test('what to build: everything by default; nothing for --no-build or --help', (t) => {
  t.equal(DEFAULT_ARGS.build, true);
  t.deepEqual(buildPlan(parseBenchArgs([])), BUILD_STEPS);
  t.deepEqual(buildPlan(parseBenchArgs(['--trials', '3'])), BUILD_STEPS);
  t.equal(parseBenchArgs(['--no-build']).build, false);
  t.deepEqual(buildPlan(parseBenchArgs(['--no-build', '--trials', '3'])), []);
  t.deepEqual(buildPlan(parseBenchArgs(['--help'])), [], '--help builds nothing');
  t.throws(() => parseBenchArgs(['--no-build=yes']), UsageError, '--no-build takes no value');
  t.end();
});

function fake(exits: Record<string, number | string> = {}) {
  const calls: string[] = [];
  const run: StepRunner = async (command, args, cwd) => {
    const line = [command, ...args].join(' ');
    calls.push(`${line} @${cwd}`);
    return exits[line] ?? 0;
  };
  return { calls, run };
}

test('runBuild: each step in turn, in the checkout, with a line before and after', async (t) => {
  const f = fake();
  const said: string[] = [];
  let clock = 0;
  await runBuild(BUILD_STEPS, {
    cwd: '/repo',
    say: (m) => said.push(m),
    run: f.run,
    now: () => (clock += 1500),
  });
  t.deepEqual(f.calls, ['bash scripts/deps.sh @/repo', 'npm run --silent build:image @/repo', 'npm run --silent build:host @/repo']);
  t.deepEqual(said, [
    'installing Debian packages (if missing): bash scripts/deps.sh',
    'installing Debian packages (if missing): done in 2 s',
    'building the test image (cached: a few minutes the first time): npm run --silent build:image',
    'building the test image (cached: a few minutes the first time): done in 2 s',
    'building the embedded Xen host (cached): npm run --silent build:host',
    'building the embedded Xen host (cached): done in 2 s',
  ]);

  const none = fake();
  await runBuild(buildPlan({ help: false, build: false }), { cwd: '/repo', say: () => undefined, run: none.run });
  t.deepEqual(none.calls, [], '--no-build: nothing runs');
  t.end();
});

test('runBuild: the first step that fails stops the rest, naming its command and exit', async (t) => {
  const f = fake({ 'npm run --silent build:image': 1 });
  const said: string[] = [];
  try {
    await runBuild(BUILD_STEPS, { cwd: '/repo', say: (m) => said.push(m), run: f.run });
    t.fail('should have thrown');
  } catch (e) {
    t.ok(e instanceof BuildError, 'a BuildError (npm run bench exits 2)');
    t.equal((e as BuildError).exit, 1);
    t.equal(
      (e as Error).message,
      'building the test image (cached: a few minutes the first time): npm run --silent build:image exited with 1 (its own error is above)',
    );
  }
  t.equal(f.calls.length, 2, 'the host is not built after the image failed');
  t.notOk(
    said.some((m) => m.startsWith('building the test image') && m.endsWith(' s')),
    'no "done" for the failed step',
  );

  const killed = fake({ 'bash scripts/deps.sh': 'SIGTERM' });
  try {
    await runBuild(BUILD_STEPS, { cwd: '/repo', say: () => undefined, run: killed.run });
    t.fail('should have thrown');
  } catch (e) {
    t.match((e as Error).message, /^installing Debian packages \(if missing\): bash scripts\/deps\.sh exited with SIGTERM/, 'a signal is named');
  }
  t.equal(killed.calls.length, 1);

  const missing: StepRunner = (command) => Promise.reject(new Error(`could not start ${command}: spawn ${command} ENOENT`));
  try {
    await runBuild(BUILD_STEPS, { cwd: '/repo', say: () => undefined, run: missing });
    t.fail('should have thrown');
  } catch (e) {
    t.ok(e instanceof BuildError && e.exit === null, 'a step that cannot start is a BuildError too');
    t.equal((e as Error).message, 'installing Debian packages (if missing): could not start bash: spawn bash ENOENT');
  }
  t.end();
});

test('spawnStep: exit codes come back as they are; the output goes to stderr, never stdout; a command that cannot start is an error', async (t) => {
  t.equal(await spawnStep('sh', ['-c', 'exit 0'], REPO_ROOT), 0);
  t.equal(await spawnStep('sh', ['-c', 'exit 3'], REPO_ROOT), 3);
  // In a process of its own, to see where the step's output lands.
  const child = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      "const { spawnStep } = await import('./bench/build.ts'); process.exitCode = await spawnStep('sh', ['-c', 'echo out; echo err >&2; exit 4'], '.');",
    ],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  t.equal(child.status, 4, 'the exit code');
  t.equal(child.stdout, '', 'nothing on stdout (the bench prints its JSON there)');
  t.equal(child.stderr, 'out\nerr\n', 'stdout and stderr of the step on stderr');
  try {
    await spawnStep('/nonexistent/xtv-build', [], REPO_ROOT);
    t.fail('should have thrown');
  } catch (e) {
    t.match((e as Error).message, /could not start \/nonexistent\/xtv-build: .*ENOENT/);
  }
  t.end();
});

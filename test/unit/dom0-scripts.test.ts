// The drivers' dom0 scripts (harness/toolstack/dom0-scripts/): their exit
// codes are the enum the drivers read, data reaches them only as arguments,
// results come back in the one framing, and shellcheck finds nothing.
import test from 'tape';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dom0Exit, SCRIPT_DIR, frames, lastFrame, scriptCommand, scriptText, type Dom0ScriptName } from '../../harness/toolstack/dom0-script.ts';
import { consoleTailCommand, parseConsoleTail } from '../../harness/toolstack/console-log.ts';
// @ts-expect-error: a plain .mjs script, no types
import { lintDom0Scripts } from '../../scripts/lint-sh.mjs';

test("dom0 scripts: lib.sh's XTV_EXIT_* are enum Dom0Exit, name for name", (t) => {
  const lib = readFileSync(new URL('lib.sh', SCRIPT_DIR), 'utf8');
  const inShell = Object.fromEntries(
    [...lib.matchAll(/XTV_EXIT_([A-Z_]+)=(\d+)/g)].map((m) => [m[1]!.toLowerCase().replace(/_(.)/g, (_, c: string) => c.toUpperCase()), Number(m[2])]),
  );
  const inEnum = Object.fromEntries(
    Object.entries(Dom0Exit)
      .filter(([, v]) => typeof v === 'number')
      .map(([k, v]) => [k[0]!.toLowerCase() + k.slice(1), v]),
  );
  t.deepEqual(inShell, inEnum);
  t.end();
});

test('dom0 scripts: every file is a name the drivers can run, and every name a file', (t) => {
  const files = readdirSync(SCRIPT_DIR)
    .filter((f) => f.endsWith('.sh') && f !== 'lib.sh')
    .map((f) => f.slice(0, -3))
    .sort();
  for (const f of files) t.doesNotThrow(() => scriptCommand(f as Dom0ScriptName, 'XTV-M', 1, []), f);
  t.ok(files.length >= 10, `${files.length} scripts`);
  t.end();
});

test('dom0 scripts: data only as quoted arguments; the result framing', (t) => {
  const evil = `x'; reboot; echo '\n$(halt)`;
  const cmd = scriptCommand('xl-log', 'XTV-0a1b', 5, [evil]);
  const setLine = cmd.slice(0, cmd.length - scriptText('xl-log').length);
  t.ok(cmd.endsWith(scriptText('xl-log')), "the script text is the files' text, whatever the data");
  const r = spawnSync('sh', ['-c', `${setLine}printf '%s|' "$@"`], { encoding: 'utf8' });
  t.equal(r.stdout, `XTV-0a1b|5|${evil}|`, 'the arguments arrive as they were, whatever they hold');
  const out = 'Name ID\nxtv-a 3\nXTV-0a1b saved\nxtv-b.chk\nXTV-0a1b domid 7\nXTV-0a1c domid 9\n';
  const f = frames(out, 'XTV-0a1b');
  t.deepEqual(
    f.map((x) => [x.word, x.text, x.lines]),
    [
      ['', '', ['Name ID', 'xtv-a 3']],
      ['saved', '', ['xtv-b.chk']],
      ['domid', '7', ['XTV-0a1c domid 9']],
    ],
    "only the command's own marker frames",
  );
  t.equal(lastFrame(out, 'XTV-0a1b', 'domid'), '7');
  t.end();
});

test('dom0 scripts: shellcheck finds nothing in them as they run', (t) => {
  if (spawnSync('shellcheck', ['--version']).error) {
    t.skip('shellcheck is not installed (apt-get install shellcheck; npm test installs it)');
    t.end();
    return;
  }
  t.equal(lintDom0Scripts(), '', 'no finding');
  t.end();
});

test('dom0 scripts: xl-list-owned reads every config, even when one vanishes under it (busybox awk stops at a file it cannot open)', (t) => {
  const busybox = spawnSync('busybox', ['true']);
  if (busybox.error || busybox.status !== 0) {
    t.skip('no busybox here (dom0 runs it; scripts/deps.sh installs busybox-static)');
    t.end();
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'xtv-list-owned-'));
  try {
    const bin = join(dir, 'bin');
    const cfgs = join(dir, 'cfg');
    mkdirSync(bin);
    mkdirSync(cfgs);
    symlinkSync(spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim(), join(bin, 'awk'));
    writeFileSync(join(cfgs, 'xtv-a.cfg'), '# made by xtv owner=1\nname = "xtv-a"\n');
    symlinkSync(join(dir, 'gone'), join(cfgs, 'xtv-b.cfg')); // removed between the glob and the read
    writeFileSync(join(cfgs, 'xtv-c.cfg'), '# made by xtv owner=2\n');
    writeFileSync(join(cfgs, 'other.cfg'), 'name = "not ours"\n');
    const cmd = scriptCommand('xl-list-owned', 'XTV-0a1b', 5, [cfgs, '# made by xtv']);
    const r = spawnSync('busybox', ['sh', '-c', cmd], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    t.deepEqual(
      r.stdout.split('\n').filter((l) => l.includes('\t')),
      ['xtv-a\t# made by xtv owner=1', 'xtv-c\t# made by xtv owner=2'],
      'the configs after the missing one are listed too',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

test('console-tail.sh: the candidate logs oldest first, the newest named on the first line (a migrated domain logs under NAME--incoming)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xtv-console-tail-'));
  try {
    const own = join(dir, 'guest-xtv-a.log');
    const incoming = join(dir, 'guest-xtv-a--incoming.log');
    writeFileSync(own, 'before the migration\n');
    const run = (files: string[], max = 100) => spawnSync('sh', ['-c', consoleTailCommand(files, max)], { encoding: 'utf8' });
    t.deepEqual(parseConsoleTail(run([own, incoming]).stdout), { path: own, text: 'before the migration\n' }, 'only the own log');
    writeFileSync(incoming, 'after it\n');
    utimesSync(own, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    t.deepEqual(parseConsoleTail(run([own, incoming]).stdout), { path: incoming, text: 'before the migration\nafter it\n' }, 'both, in the order written');
    t.deepEqual(
      parseConsoleTail(run([incoming, own], 12).stdout),
      { path: incoming, text: 'on\nafter it\n' },
      'the last MAX_BYTES of them, whatever the order given',
    );
    t.equal(run([join(dir, 'none.log')]).status, Dom0Exit.NoFile, 'none there: NO_FILE');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.end();
});

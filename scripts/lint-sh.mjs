#!/usr/bin/env node
// shellcheck over the project's shell: each dom0 script as it runs (lib.sh
// and the script, in one POSIX sh: harness/toolstack/dom0-script.ts), with
// every check on but SC2317 (a library's functions one script does not call
// look unreachable to it); the build scripts at severity error. Exits 1 on a
// finding, 2 when shellcheck is missing (Debian: apt-get install shellcheck).
import { spawnSync, execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const DOM0 = join(root, 'harness', 'toolstack', 'dom0-scripts');

/** Findings for every dom0 script as it runs; '' when clean. */
export function lintDom0Scripts() {
  const lib = readFileSync(join(DOM0, 'lib.sh'), 'utf8');
  let out = '';
  for (const f of readdirSync(DOM0)
    .filter((n) => n.endsWith('.sh') && n !== 'lib.sh')
    .sort()) {
    const r = spawnSync('shellcheck', ['-s', 'sh', '-e', 'SC2317', '-f', 'gcc', '-'], {
      input: `${lib}\n${readFileSync(join(DOM0, f), 'utf8')}`,
      encoding: 'utf8',
    });
    if (r.error) throw r.error;
    // Lines past lib.sh's are the script's own: say where they are in its file.
    const libLines = lib.split('\n').length;
    out += r.stdout.replace(/^-:(\d+):/gm, (_, n) => (Number(n) > libLines ? `${f}:${Number(n) - libLines}:` : `lib.sh:${n}:`));
  }
  return out;
}

/** Errors (not warnings) in the other tracked shell files. */
export function lintOtherScripts() {
  const files = execFileSync('git', ['ls-files', '*.sh'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && !f.startsWith('harness/toolstack/dom0-scripts/'));
  const r = spawnSync('shellcheck', ['-S', 'error', '-s', 'bash', '-f', 'gcc', ...files], { cwd: root, encoding: 'utf8' });
  if (r.error) throw r.error;
  return r.stdout;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (spawnSync('shellcheck', ['--version']).error) {
    console.error('lint-sh: shellcheck is not installed; run as root: apt-get install shellcheck (or: bash scripts/deps.sh)');
    process.exit(2);
  }
  const found = lintDom0Scripts() + lintOtherScripts();
  if (found) {
    process.stdout.write(found);
    process.exit(1);
  }
  console.log('lint-sh: the dom0 scripts and the build scripts are clean');
}

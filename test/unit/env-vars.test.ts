// Every XTV_* environment variable the code reads is in the README's
// "Environment variables" table, and the table lists none that no code reads.
// XTV_* words that are not environment variables (XAPI-style error codes such
// as XTV_NOT_OURS, the XTV_TAG constant, shell constants such as the dom0
// scripts' XTV_EXIT_*) are not reads: only an environment read counts
// (process.env.X, env.X, env['X'], std.getenv('X') in TypeScript and
// JavaScript; $X, ${X}, ${X:-...} in shell scripts and workflow steps, unless
// a shell script sets X itself to a value that does not come from X).
import test from 'tape';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SELF = 'test/unit/env-vars.test.ts';

const NAME = 'XTV_[A-Z0-9_]+';
/** JS/TS: process.env.X, env.X, env?.X, env['X'], getenv('X'); not an assignment, not a delete. */
const JS_READS = [
  new RegExp(`(?<!\\bdelete\\s+(?:[\\w$]+\\??\\.)*)\\benv\\s*(?:\\?\\.|\\.)\\s*(${NAME})\\b(?!\\s*=(?!=))`, 'g'),
  new RegExp(`(?<!\\bdelete\\s+(?:[\\w$]+\\??\\.)*)\\benv\\s*(?:\\?\\.)?\\[\\s*(['"\`])(${NAME})\\1\\s*\\](?!\\s*=(?!=))`, 'g'),
  new RegExp(`\\bgetenv\\s*\\(\\s*(['"\`])(${NAME})\\1`, 'g'),
];
/** JS/TS: const { XTV_A, XTV_B: b } = process.env. */
const JS_DESTRUCTURE = /\{([^{}]*)\}\s*=\s*(?:process\.)?env\b/g;
/** Shell: $X, ${X}, ${X:-default}, ${#X} (not GitHub's ${{ secrets.X }}, which is no environment read). */
const SH_READ = new RegExp(`\\$\\{?#?(${NAME})\\b`, 'g');

function kindOf(path: string): 'js' | 'sh' | null {
  if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(path)) return 'js';
  if (/\.(sh|ya?ml)$/.test(path)) return 'sh';
  return null;
}

/**
 * The XTV_* environment variables that `text` (the contents of `path`; its
 * extension picks the rules) reads, sorted, each once. Whole-line comments
 * are skipped, so a comment that names a variable is not a read.
 */
export function envVarReads(path: string, text: string): string[] {
  const kind = kindOf(path);
  if (kind === null) return [];
  const comment = kind === 'js' ? /^\s*(\/\/|\/?\*)/ : /^\s*#/;
  const code = text
    .split('\n')
    .filter((l) => !comment.test(l))
    .join('\n');
  const found = new Set<string>();
  if (kind === 'sh') {
    for (const m of code.matchAll(SH_READ)) found.add(m[1]!);
  } else {
    for (const re of JS_READS) for (const m of code.matchAll(re)) found.add(m[m.length - 1]!);
    for (const m of code.matchAll(JS_DESTRUCTURE)) {
      for (const n of m[1]!.matchAll(new RegExp(`(?:^|,)\\s*(${NAME})\\b`, 'g'))) found.add(n[1]!);
    }
  }
  return [...found].sort();
}

/** Shell: assignments at the start of a line (after export/local/readonly too, several in a row). */
const SH_ASSIGN_PREFIX = /^\s*(?:(?:export|local|readonly)\s+)?/;
const SH_ASSIGN = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)\s*/;

/**
 * The XTV_* names a shell script (or workflow) sets to a value of its own:
 * shell variables, not environment variables. `X=${X:-default}` is not one
 * (the value comes from the environment).
 */
export function shellConstants(path: string, text: string): string[] {
  if (kindOf(path) !== 'sh') return [];
  const found = new Set<string>();
  for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
    if (/^\s*#/.test(line)) continue;
    let rest = line.replace(SH_ASSIGN_PREFIX, '');
    let m: RegExpExecArray | null;
    while ((m = SH_ASSIGN.exec(rest)) !== null) {
      if (m[1]!.startsWith('XTV_') && !m[2]!.includes(m[1]!)) found.add(m[1]!);
      rest = rest.slice(m[0].length);
    }
  }
  return [...found].sort();
}

/**
 * Every XTV_* environment variable that `files` ([path, contents]) read, with
 * the files that read it, in name order: envVarReads of each file, less the
 * names the shell files among them set themselves (shellConstants).
 */
export function envVarsOf(files: ReadonlyArray<readonly [string, string]>): Map<string, string[]> {
  const constants = new Set(files.flatMap(([p, text]) => shellConstants(p, text)));
  const readers = new Map<string, string[]>();
  for (const [p, text] of files) {
    for (const v of envVarReads(p, text)) {
      if (kindOf(p) === 'sh' && constants.has(v)) continue;
      readers.set(v, [...(readers.get(v) ?? []), p]);
    }
  }
  return new Map([...readers].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** The variables of the README's "Environment variables" table (the first cell of each row), in order. */
export function readmeEnvVars(readme: string): string[] {
  const start = readme.search(/^## Environment variables\s*$/m);
  if (start < 0) return [];
  const rest = readme.slice(start + 1);
  const end = rest.search(/^## /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(new RegExp(`^\\|\\s*\`(${NAME})\`\\s*\\|`, 'gm'))].map((m) => m[1]!);
}

test('env vars: what counts as a read, on a synthetic input', (t) => {
  const ts = [
    "const a = process.env.XTV_A ?? 'x';",
    "const b = process.env['XTV_B'];",
    'const c = env.XTV_C || undefined; const c2 = opts.env?.XTV_C2;',
    "const d = std.getenv('XTV_D');",
    'const { XTV_E, XTV_F: f } = process.env;',
    "throw new ToolstackError('XTV_NOT_OURS', [], call);",
    "export const XTV_TAG = 'xtv';",
    "const child = { ...process.env, XTV_SET: '1' };",
    "process.env.XTV_WRITTEN = 'x'; delete process.env['XTV_DELETED'];",
    '// process.env.XTV_IN_A_COMMENT',
    ' * env.XTV_IN_JSDOC',
    "const help = 'default: $XTV_IN_HELP_TEXT';",
    'if (process.env.XTV_G === "1") {}',
  ].join('\n');
  t.deepEqual(envVarReads('a.ts', ts), ['XTV_A', 'XTV_B', 'XTV_C', 'XTV_C2', 'XTV_D', 'XTV_E', 'XTV_F', 'XTV_G'], 'TypeScript: reads only');
  t.deepEqual(envVarReads('a.mjs', 'const r = process.env.XTV_R;'), ['XTV_R'], '.mjs as JavaScript');

  const sh = [
    '# XTV_IN_A_COMMENT: ${XTV_ALSO_IN_A_COMMENT:-x}',
    'CACHE=${XTV_H:-$HOME/.cache/xtv}/image',
    'JOBS=${XTV_I-2}; [ -n "$XTV_J" ] && echo "${#XTV_K}"',
    'export XTV_NOT_READ=1',
    'echo "XTV_SET_ONLY=$d/key" >> "$GITHUB_ENV"',
  ].join('\n');
  t.deepEqual(envVarReads('b.sh', sh), ['XTV_H', 'XTV_I', 'XTV_J', 'XTV_K'], 'shell: $X, ${X}, ${X:-d}, ${X-d}, ${#X}');
  const yml = ['# Secrets: XTV_COMMENTED', 'env:', '  XTV_L: ${{ secrets.XTV_L }}', 'run: |', '  [ -n "$XTV_M" ] || exit 2'].join('\n');
  t.deepEqual(envVarReads('w.yml', yml), ['XTV_M'], 'workflow: a step that reads it, not the secret it comes from');
  t.deepEqual(envVarReads('README.md', '`$XTV_N`'), [], 'other files are not code');

  const lib =
    'XTV_EXIT_A=90 XTV_EXIT_B=91 \\\n  XTV_EXIT_C=92\nXTV_START=${XTV_START:-$(date +%s)}\nexport XTV_O=1\ndie "no lists (try XTV_P=1, or set XTV_Q=2)"\n';
  t.deepEqual(shellConstants('lib.sh', lib), ['XTV_EXIT_A', 'XTV_EXIT_B', 'XTV_EXIT_C', 'XTV_O'], 'shell constants; X=${X:-d} is not one');
  const script = '. ./lib.sh\n[ -e "$f" ] || exit "$XTV_EXIT_A"\nsay "$(( $(date +%s) - $XTV_START ))"\n';
  const ts2 = 'const b = process.env.XTV_EXIT_B;\n';
  t.deepEqual(
    [
      ...envVarsOf([
        ['lib.sh', lib],
        ['run.sh', script],
        ['a.ts', ts2],
      ]),
    ],
    [
      ['XTV_EXIT_B', ['a.ts']],
      ['XTV_START', ['lib.sh', 'run.sh']],
    ],
    'a shell constant read in shell is no environment read; in TypeScript it is',
  );

  const readme =
    '# x\n\n## Environment variables\n\n| variable | what |\n|---|---|\n| `XTV_A` | a |\n| `XTV_B` | b, see `XTV_A` |\n\n## Layout\n\n| `XTV_OTHER_TABLE` | no |\n';
  t.deepEqual(readmeEnvVars(readme), ['XTV_A', 'XTV_B'], 'the README table: first cells of its section only');
  t.deepEqual(readmeEnvVars('# x\n'), [], 'no section, no variables');
  t.end();
});

test('env vars: the README table lists exactly the XTV_* variables the code reads', (t) => {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && f !== SELF && !f.startsWith('node_modules/') && kindOf(f) !== null);
  const texts: Array<[string, string]> = [];
  for (const f of files) {
    try {
      texts.push([f, readFileSync(join(root, f), 'utf8')]);
    } catch {
      // listed by git but deleted in the work tree
    }
  }
  const readers = envVarsOf(texts);
  const table = readmeEnvVars(readFileSync(join(root, 'README.md'), 'utf8'));
  t.ok(table.length > 0, 'README.md has an "## Environment variables" section with a table');
  t.deepEqual(
    table.filter((v, i) => table.indexOf(v) !== i),
    [],
    'no variable listed twice',
  );
  const missing = [...readers.keys()]
    .filter((v) => !table.includes(v))
    .sort()
    .map((v) => `${v} (read in ${readers.get(v)!.join(', ')})`);
  t.deepEqual(missing, [], 'every variable the code reads is in the table');
  t.deepEqual(
    table.filter((v) => !readers.has(v)),
    [],
    'every variable in the table is read somewhere',
  );
  t.comment(`${readers.size} variables read in ${files.length} files`);
  t.end();
});

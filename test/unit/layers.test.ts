// The layout's rule: each folder imports only from the layers below it (the
// README's "Layout" picture). Code that runs in the guest or in dom0 is
// bundled and shipped there alone, so it must not reach into the harness; the
// harness's parts stack cli → matrix/report → toolstack → remote. A new
// import that crosses the other way fails here, naming the file and the line.
import test from 'tape';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What each layer may import besides itself. Folders not named here (test/, scripts/) may import anything. */
const ALLOWED: Record<string, readonly string[]> = {
  protocol: [],
  xenstore: ['protocol'],
  guest: ['protocol', 'xenstore'],
  'dom0/xapi-double': ['protocol', 'xenstore'],
  'dom0/bench-probe': ['protocol', 'xenstore'],
  'dom0/image': [],
  'harness/remote': ['protocol'],
  'harness/toolstack': ['protocol', 'harness/remote'],
  'harness/matrix': ['protocol', 'harness/toolstack'],
  'harness/report': ['protocol', 'harness/matrix', 'harness/toolstack'],
  // `xtv soak`: the continuity check and the waits are the matrix's, the escaping the reports'.
  'harness/soak': ['protocol', 'harness/toolstack', 'harness/matrix', 'harness/report'],
  // The embedded host deploys the XenAPI double: it names the double's version profiles.
  'harness/embedded': ['protocol', 'harness/remote', 'dom0/xapi-double'],
  // `xtv run --host fake` runs the matrix against the in-memory driver in testing/.
  'harness/cli': ['protocol', 'harness/remote', 'harness/toolstack', 'harness/matrix', 'harness/report', 'harness/soak', 'harness/embedded', 'testing'],
  testing: ['protocol', 'xenstore', 'dom0/xapi-double', 'harness/toolstack'],
  bench: ['protocol', 'xenstore', 'dom0/bench-probe', 'harness/remote', 'harness/toolstack', 'harness/embedded'],
  bin: ['harness/cli'],
};

/** The layer a repository path belongs to: its top folder, or two levels under harness/ and dom0/. */
export function layerOf(path: string): string {
  const parts = path.split('/');
  return parts[0] === 'harness' || parts[0] === 'dom0' ? parts.slice(0, 2).join('/') : parts[0]!;
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.\.?\/[^'"]+)\1/gm;

/** Every import of `text` (at repository path `file`) that its layer may not make. */
export function wrongImports(file: string, text: string): string[] {
  const from = layerOf(file);
  const allowed = ALLOWED[from];
  if (!allowed) return [];
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const target = normalize(join(dirname(file), m[2]!));
    const to = layerOf(target);
    if (to !== from && !allowed.includes(to)) {
      const line = text.slice(0, m.index).split('\n').length;
      out.push(`${file}:${line} (${from}) imports ${target} (${to})`);
    }
  }
  return out;
}

test('layers: the rule catches an import the wrong way', (t) => {
  t.deepEqual(wrongImports('dom0/xapi-double/src/x.ts', "import { a } from '../../../harness/toolstack/xl/xl-driver.ts';\n"), [
    'dom0/xapi-double/src/x.ts:1 (dom0/xapi-double) imports harness/toolstack/xl/xl-driver.ts (harness/toolstack)',
  ]);
  t.deepEqual(wrongImports('protocol/x.ts', "export type { T } from '../guest/agent/report.ts';\n"), [
    'protocol/x.ts:1 (protocol) imports guest/agent/report.ts (guest)',
  ]);
  t.deepEqual(wrongImports('harness/toolstack/a.ts', "const m = await import('../matrix/runner.ts');\n"), [
    'harness/toolstack/a.ts:1 (harness/toolstack) imports harness/matrix/runner.ts (harness/matrix)',
  ]);
  t.deepEqual(wrongImports('harness/cli/a.ts', "import { b } from '../matrix/runner.ts';\nimport x from './x.ts';\n"), [], 'downward and within a layer: fine');
  t.deepEqual(wrongImports('test/unit/a.test.ts', "import { b } from '../../harness/cli/main.ts';\n"), [], 'tests may import anything');
  t.end();
});

test('layers: no file in the repository imports across a layer the wrong way', (t) => {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => /\.(ts|mts|mjs|js)$/.test(f));
  const wrong = files.flatMap((f) => {
    try {
      return wrongImports(f, readFileSync(join(root, f), 'utf8'));
    } catch {
      return []; // listed by git but deleted in the work tree
    }
  });
  t.deepEqual(wrong, [], `${files.length} files checked`);
  t.end();
});

test('layers: protocol/ is pure and portable (no node: module, no Buffer): guest and dom0 both import it', (t) => {
  const files = execFileSync('git', ['ls-files', 'protocol'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f.endsWith('.ts'));
  for (const f of files) {
    const src = readFileSync(join(root, f), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/(^|[^:'"])\/\/.*$/gm, '$1');
    t.notOk(/from\s+['"]node:|\bBuffer\b|\bprocess\./.test(src), `${f} uses no Node-only API`);
  }
  t.end();
});

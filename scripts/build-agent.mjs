#!/usr/bin/env node
// Bundles the guest agent (guest/agent/main.ts and what it imports) into ONE
// ES module, dist/agent/xtv-agent.js, for QuickJS: `qjs --std -m xtv-agent.js`.
// The only imports left in the bundle are QuickJS's built-in 'os' and 'std'
// (written 'qjs:os' / 'qjs:std' in the sources); anything else, a Node module
// above all, fails the build. Same sources, same bytes (esbuild is
// deterministic; no timestamps); the file is written to a temp name and
// renamed, so a failed build never leaves half a bundle.
import { build } from 'esbuild';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/agent/xtv-agent.js');
const tmp = `${out}.tmp-${process.pid}`;

/** 'qjs:os' -> external 'os'; a bare import of anything else is an error. */
const quickjsModules = {
  name: 'quickjs-modules',
  setup(b) {
    b.onResolve({ filter: /^qjs:(os|std)$/ }, (args) => ({ path: args.path.slice(4), external: true }));
    b.onResolve({ filter: /^(node:|[a-z@])/ }, (args) => ({
      errors: [{ text: `the guest agent cannot import ${JSON.stringify(args.path)} (QuickJS has only 'os' and 'std'; imported from ${args.importer})` }],
    }));
  },
};

mkdirSync(dirname(out), { recursive: true });
try {
  await build({
    absWorkingDir: root,
    entryPoints: ['guest/agent/main.ts'],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2020',
    outfile: tmp,
    plugins: [quickjsModules],
    legalComments: 'none',
    charset: 'utf8',
    sourcemap: false,
    minify: false,
    logLevel: 'warning',
  });
  renameSync(tmp, out);
} catch (e) {
  rmSync(tmp, { force: true });
  console.error(`build-agent: ${e.message}`);
  process.exit(1);
}
const bytes = statSync(out).size;
const sha256 = createHash('sha256').update(readFileSync(out)).digest('hex');
console.log(`dist/agent/xtv-agent.js: ${bytes} bytes, sha256 ${sha256}`);

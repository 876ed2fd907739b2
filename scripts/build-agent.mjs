#!/usr/bin/env node
// Bundles the guest agent (guest/agent/main.ts and what it imports) into ONE
// ES module, dist/agent/xtv-agent.js, for QuickJS: `qjs --std -m xtv-agent.js`.
// The only imports left in the bundle are QuickJS's built-in 'os' and 'std'
// (written 'qjs:os' / 'qjs:std' in the sources); anything else, a Node module
// above all, fails the build. Same sources, same bytes (esbuild is
// deterministic; no timestamps); the file is written to a temp name and
// renamed, so a failed build never leaves half a bundle. A sidecar,
// dist/agent/xtv-agent.json, records version, bytes and sha256 (the image
// manifest reads the version from it).
import { build } from 'esbuild';
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
const version = /AGENT_VERSION = '([^']+)'/.exec(readFileSync(join(root, 'guest/agent/version.ts'), 'utf8'))?.[1];
if (!version) {
  console.error('build-agent: no AGENT_VERSION in guest/agent/version.ts');
  process.exit(1);
}
const side = out.replace(/\.js$/, '.json');
writeFileSync(`${side}.tmp-${process.pid}`, JSON.stringify({ version, bytes, sha256 }, null, 2) + '\n');
renameSync(`${side}.tmp-${process.pid}`, side);
console.log(`dist/agent/xtv-agent.js: ${bytes} bytes, sha256 ${sha256}, version ${version}`);

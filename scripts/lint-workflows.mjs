#!/usr/bin/env node
// Validates every GitHub Actions workflow (.github/workflows/*.yml, *.yaml)
// against the workflow schema, with action-validator (npm
// @action-validator/cli: WebAssembly, works offline), and checks that every
// `uses:` names a ref (owner/action@ref). Prints one line per finding,
// FILE: PATH: PROBLEM; exits 1 on a finding, 0 when every workflow is clean.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIR = join(root, '.github', 'workflows');
const CLI = createRequire(import.meta.url).resolve('@action-validator/cli/cli.mjs');

/** The schema's errors, flattened to their leaves (a oneOf's alternatives each bring theirs). */
function leaves(errors) {
  return errors.flatMap((e) => (e.states ? e.states.flatMap((s) => leaves(s.errors ?? [])) : [e]));
}

/** Findings for one workflow file (relative to the repository), as lines; [] when clean. */
export function lintWorkflow(rel) {
  const r = spawnSync(process.execPath, [CLI, join(root, rel)], { encoding: 'utf8' });
  if (r.error) throw r.error;
  const out = [];
  if (r.status !== 0) {
    let parsed;
    try {
      parsed = JSON.parse(r.stderr);
    } catch {
      parsed = null;
    }
    if (parsed && Array.isArray(parsed.errors)) {
      // A oneOf's alternatives repeat the same leaf: each finding once.
      const seen = new Set(leaves(parsed.errors).map((e) => `${rel}: ${e.path ?? '/'}: ${e.detail ?? e.title ?? e.code}`));
      out.push(...seen);
    } else {
      out.push(`${rel}: action-validator exited ${r.status}: ${(r.stderr || r.stdout).trim()}`);
    }
  }
  readFileSync(join(root, rel), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const m = /^\s*(?:-\s+)?uses:\s*['"]?([^'"\s#]+)/.exec(line);
      if (m && !m[1].startsWith('./') && !m[1].startsWith('docker://') && !/^[\w.-]+\/[\w./-]+@[\w.-]+$/.test(m[1])) {
        out.push(`${rel}:${i + 1}: uses: ${m[1]} names no ref (owner/action@ref)`);
      }
    });
  return out;
}

/** The workflow files, relative to the repository, sorted. */
export function workflowFiles() {
  if (!existsSync(DIR)) return [];
  return readdirSync(DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join('.github', 'workflows', f));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = workflowFiles();
  const findings = files.flatMap(lintWorkflow);
  for (const f of findings) console.error(f);
  if (findings.length > 0) process.exit(1);
  console.log(`workflows: ${files.length} valid (${files.map((f) => f.split('/').pop()).join(', ')})`);
}

// Node for dom0, as an archive appended to dom0's initramfs at boot
// (EmbeddedHost.up({ extraInitrds: [await buildNodeRuntime()] })): Debian's
// own `nodejs` for the release dom0 is built from (bookworm: Node 18), with
// every package it depends on, fetched with `apt-get download` and unpacked,
// never installed. dom0's own initramfs stays small; only the runs that need
// Node in dom0 (the XenAPI double, the bench's probe) pay for it.
//
// Why packages and not this machine's `node`: how the harness got its Node
// (NodeSource, nvm, Debian) says nothing about what runs in dom0. Debian's
// nodejs is split: the binary links libnode.so.NNN, and its builtins load
// acorn, cjs-module-lexer and undici from /usr/share/nodejs (node-acorn, ...);
// copying /usr/bin/node with the libraries `ldd` names leaves those out and
// Node aborts at start. Resolving the package dependencies brings them all,
// whatever Node the harness itself runs on. dom0 already has libc6 and
// libgcc-s1 (dom0/image/build.sh copies them for Xen's tools), so those are
// left out.
//
// Cached by the resolved package versions in
// ${XTV_CACHE_DIR:-~/.cache/xtv}/host/node-runtime/<hash>/node-runtime.cpio,
// built in a temp dir renamed into place; the resolution itself is kept until
// apt's lists change (apt-cache costs seconds). Reproducible (sorted, mtime
// 0). Not compressed: dom0 boots ~10 s sooner when its kernel need not gunzip
// it under software emulation (23 s against 35 s to ready, measured).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EmbeddedHostError } from './host-error.ts';

const run = promisify(execFile);

export interface NodeRuntimeOptions {
  onProgress?: (message: string) => void;
  /** Default: ${XTV_CACHE_DIR:-~/.cache/xtv}/host/node-runtime. */
  cacheDir?: string;
}

/** A package at the version to fetch. */
export interface DebPackage {
  name: string;
  version: string;
}

/** One paragraph of `apt-cache show`: its fields, by name. */
export type AptParagraph = Record<string, string>;

/** `apt-cache show` output as paragraphs (continuation lines joined to their field). */
export function parseAptShow(output: string): AptParagraph[] {
  const paragraphs: AptParagraph[] = [];
  for (const block of output.split(/\n\s*\n/)) {
    const p: AptParagraph = {};
    let last: string | undefined;
    for (const line of block.split('\n')) {
      if (/^\s/.test(line) && last) p[last] += `\n${line.trim()}`;
      else {
        const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
        if (m) p[(last = m[1]!)] = m[2]!;
      }
    }
    if (p.Package) paragraphs.push(p);
  }
  return paragraphs;
}

/**
 * The package names a Depends (or Pre-Depends) field needs: the first of each
 * set of alternatives, without version constraints or architecture qualifiers
 * (`nodejs:any`), as deb-control(5) writes them.
 */
export function parseDepends(field: string | undefined): string[] {
  if (!field) return [];
  return field
    .split(',')
    .map((dep) =>
      dep
        .split('|')[0]!
        .replace(/\(.*?\)/g, '')
        .replace(/\[.*?\]/g, '')
        .trim()
        .replace(/:\w+$/, ''),
    )
    .filter((name) => name.length > 0);
}

/**
 * Debian's own nodejs among the versions apt knows: the one whose Depends
 * names libnodeNNN (Debian builds Node as a shared library; NodeSource's
 * nodejs is one static binary and depends on no libnode). The highest such
 * version by `compare`, or undefined when apt knows none.
 */
export function pickDebianNode(paragraphs: AptParagraph[], compare: (a: string, b: string) => number): DebPackage | undefined {
  const debian = paragraphs.filter((p) => p.Package === 'nodejs' && p.Version && parseDepends(p.Depends).some((d) => /^libnode\d+$/.test(d)));
  const best = debian
    .map((p) => p.Version!)
    .sort(compare)
    .at(-1);
  return best === undefined ? undefined : { name: 'nodejs', version: best };
}

/** What dom0 already has (dom0/image/build.sh copies them), or what Node never loads. */
const PROVIDED = new Set(['libc6', 'libgcc-s1', 'libgcc1', 'gcc-12-base', 'debconf', 'python3', 'ca-certificates']);

/**
 * The dependency closure of `root`: each package's Depends and Pre-Depends, at
 * the version `show(name)` gives (apt's candidate; packages pinned with `=` by
 * an exact constraint on the root, as nodejs pins libnodeNNN, are shown at
 * that version), minus what dom0 already has. Sorted by name.
 */
export async function resolveClosure(root: DebPackage, show: (spec: string) => Promise<AptParagraph | undefined>): Promise<DebPackage[]> {
  const found = new Map<string, DebPackage>();
  const queue: string[] = [`${root.name}=${root.version}`];
  const seen = new Set<string>([root.name]);
  while (queue.length > 0) {
    const spec = queue.shift()!;
    const p = await show(spec);
    if (!p?.Package || !p.Version) throw new EmbeddedHostError(`apt knows no package ${spec} (run: apt-get update)`);
    found.set(p.Package, { name: p.Package, version: p.Version });
    const pins = new Map<string, string>();
    for (const dep of `${p['Pre-Depends'] ?? ''},${p.Depends ?? ''}`.split(',')) {
      const m = /^\s*([a-z0-9][a-z0-9+.-]*)\s*\(\s*=\s*([^)\s]+)\s*\)/.exec(dep);
      if (m) pins.set(m[1]!, m[2]!);
    }
    for (const name of [...parseDepends(p['Pre-Depends']), ...parseDepends(p.Depends)]) {
      if (seen.has(name) || PROVIDED.has(name)) continue;
      seen.add(name);
      queue.push(pins.has(name) ? `${name}=${pins.get(name)}` : name);
    }
  }
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Written empty into the archive (see buildNodeRuntime). */
const EMPTY_CA_BUNDLE = 'etc/ssl/certs/ca-certificates.crt';

/**
 * Libraries the archive may need without carrying: libc6's and libgcc-s1's,
 * which dom0/image/build.sh puts in dom0 (one libc for every program there).
 */
export const DOM0_LIBRARIES = ['ld-linux-x86-64.so.2', 'libc.so.6', 'libm.so.6', 'libgcc_s.so.1'];

/** The NEEDED entries of `readelf -d` output (shared library names). */
export function parseNeeded(readelfOutput: string): string[] {
  return [...readelfOutput.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
}

/**
 * The libraries the archive's programs and libraries need that neither the
 * archive nor dom0 has: a Debian release whose Node needs more of libc6 than
 * dom0 carries would otherwise fail only at boot, in dom0's log.
 */
async function missingLibraries(root: string): Promise<string[]> {
  const files: string[] = [];
  // Sonames are mostly symbolic links to the versioned file: both count as had.
  const have = new Set(DOM0_LIBRARIES);
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.so(\.\d+)*$/.test(e.name) || p.endsWith('/usr/bin/node')) {
        have.add(e.name);
        if (e.isFile()) files.push(p);
      }
    }
  };
  walk(root);
  const missing = new Set<string>();
  for (const f of files) {
    const { stdout } = await run('readelf', ['-d', f], { maxBuffer: 4 << 20 }).catch(() => ({ stdout: '' }));
    for (const lib of parseNeeded(stdout)) if (!have.has(lib)) missing.add(lib);
  }
  return [...missing].sort();
}

/** Parts of the packages dom0 never reads: documentation, type declarations, headers. */
const PRUNE = ['usr/share/doc', 'usr/share/man', 'usr/share/lintian', 'usr/share/bash-completion', 'usr/share/nodejs/@types', 'usr/include'];

async function aptShow(spec: string): Promise<AptParagraph | undefined> {
  try {
    const { stdout } = await run('apt-cache', ['show', '--no-all-versions', spec], { maxBuffer: 16 << 20 });
    return parseAptShow(stdout)[0];
  } catch {
    return undefined;
  }
}

async function compareDebVersions(versions: string[]): Promise<(a: string, b: string) => number> {
  // dpkg's order (epochs, ~), asked once per pair we sort: a handful of versions.
  const order = new Map<string, number>();
  for (const a of versions)
    for (const b of versions) {
      if (a === b || order.has(`${a} ${b}`)) continue;
      const lt = await run('dpkg', ['--compare-versions', a, 'lt', b]).then(
        () => true,
        () => false,
      );
      order.set(`${a} ${b}`, lt ? -1 : 1);
      order.set(`${b} ${a}`, lt ? 1 : -1);
    }
  return (a, b) => (a === b ? 0 : order.get(`${a} ${b}`)!);
}

/** A stamp of apt's lists: the resolution is kept until `apt-get update` changes them. */
function aptListsStamp(): string {
  const dir = '/var/lib/apt/lists';
  const h = createHash('sha256');
  try {
    for (const f of readdirSync(dir).sort()) {
      const s = statSync(join(dir, f));
      h.update(`${f} ${s.size} ${s.mtimeMs}\n`);
    }
  } catch {
    h.update('no lists');
  }
  return h.digest('hex').slice(0, 16);
}

async function resolvePackages(cacheDir: string, say: (m: string) => void): Promise<DebPackage[]> {
  const memo = join(cacheDir, 'resolved.json');
  const stamp = aptListsStamp();
  try {
    const kept = JSON.parse(readFileSync(memo, 'utf8')) as { stamp: string; packages: DebPackage[] };
    if (kept.stamp === stamp && kept.packages.length > 0) return kept.packages;
  } catch {
    // none kept, or unreadable: resolve again
  }
  say("resolving Debian's nodejs and its dependencies with apt-cache");
  const all = await run('apt-cache', ['show', 'nodejs'], { maxBuffer: 16 << 20 }).then(
    (r) => parseAptShow(r.stdout),
    () => [],
  );
  const versions = all.filter((p) => p.Package === 'nodejs' && p.Version).map((p) => p.Version!);
  const root = pickDebianNode(all, await compareDebVersions(versions));
  if (!root)
    throw new EmbeddedHostError(
      "apt knows no Debian nodejs package for dom0 (one that depends on libnodeNNN); run: apt-get update (Debian's main archive must be in apt's sources)",
    );
  const packages = await resolveClosure(root, aptShow);
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(memo, `${JSON.stringify({ stamp, packages }, null, 1)}\n`);
  return packages;
}

async function download(debs: string, packages: DebPackage[], say: (m: string) => void): Promise<string[]> {
  mkdirSync(debs, { recursive: true });
  const file = (p: DebPackage) => join(debs, `${p.name}_${p.version.replace(/:/g, '%3a')}.deb`);
  const missing = packages.filter((p) => !existsSync(file(p)));
  if (missing.length > 0) {
    say(`downloading ${missing.length} Debian package(s) for dom0's Node: ${missing.map((p) => p.name).join(' ')}`);
    const tmp = mkdtempSync(join(debs, '.dl-'));
    try {
      // apt drops privileges to _apt for downloads; let it write there.
      chmodSync(tmp, 0o755);
      try {
        const { stdout } = await run('id', ['-u', '_apt']);
        chownSync(tmp, Number(stdout.trim()), -1);
      } catch {
        // no _apt user, or not root: apt downloads as us
      }
      await run('apt-get', ['download', ...missing.map((p) => `${p.name}=${p.version}`)], { cwd: tmp, maxBuffer: 16 << 20 }).catch((e: { stderr?: string }) => {
        throw new EmbeddedHostError(`apt-get download failed for dom0's Node packages: ${(e.stderr ?? String(e)).trim().split('\n').slice(-3).join(' | ')}`);
      });
      for (const p of missing) {
        const got = readdirSync(tmp).find((f) => f.startsWith(`${p.name}_`) && f.endsWith('.deb'));
        if (!got) throw new EmbeddedHostError(`apt-get download did not fetch ${p.name}=${p.version}`);
        renameSync(join(tmp, got), file(p));
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return packages.map(file);
}

/** Returns the path of the archive (building it when the resolved packages changed). */
export async function buildNodeRuntime(opts: NodeRuntimeOptions = {}): Promise<string> {
  const say = opts.onProgress ?? (() => {});
  const cacheDir = opts.cacheDir ?? join(process.env.XTV_CACHE_DIR || join(homedir(), '.cache', 'xtv'), 'host', 'node-runtime');
  const packages = await resolvePackages(cacheDir, say);
  const inputs = ['node-runtime v3 debian', `prune ${PRUNE.join(' ')}`, `empty ${EMPTY_CA_BUNDLE}`, ...packages.map((p) => `${p.name} ${p.version}`)].join(
    '\n',
  );
  const hash = createHash('sha256').update(inputs).digest('hex').slice(0, 16);
  const out = join(cacheDir, hash);
  const archive = join(out, 'node-runtime.cpio');
  if (existsSync(archive)) {
    say(`Node runtime for dom0 up to date (${archive})`);
    return archive;
  }
  const node = packages.find((p) => p.name === 'nodejs')!;
  say(`building the Node runtime archive for dom0 (Debian nodejs ${node.version}, ${packages.length} packages)`);
  const debs = await download(join(cacheDir, 'debs'), packages, say);
  const work = mkdtempSync(join(cacheDir, `.build-${hash}-`));
  try {
    const root = join(work, 'root');
    mkdirSync(root);
    for (const deb of debs) await run('dpkg-deb', ['-x', deb, root]);
    for (const p of PRUNE) rmSync(join(root, p), { recursive: true, force: true });
    // Debian's Node loads the system CA bundle as extra certificates at start
    // and warns on every start when it is missing. dom0 trusts no public CA
    // (the double only serves TLS): an empty bundle says so.
    mkdirSync(join(root, 'etc/ssl/certs'), { recursive: true });
    writeFileSync(join(root, EMPTY_CA_BUNDLE), '');
    const missing = await missingLibraries(root);
    if (missing.length > 0)
      throw new EmbeddedHostError(
        `dom0's Node (Debian nodejs ${node.version}) needs ${missing.join(', ')}, which neither its packages nor dom0 provide: add them to dom0/image/build.sh and DOM0_LIBRARIES`,
      );
    const dest = join(work, 'out');
    mkdirSync(dest);
    await run(
      'sh',
      [
        '-c',
        // Paths as arguments, never in the script text: a directory name may hold a quote.
        [
          'set -e',
          'cd "$1"',
          'find . -exec touch -h -d @0 {} +',
          'find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible > "$2"',
        ].join('\n'),
        'sh',
        root,
        join(dest, 'node-runtime.cpio'),
      ],
      { maxBuffer: 1 << 20 },
    );
    writeFileSync(join(dest, 'inputs.txt'), `${inputs}\n`);
    rmSync(out, { recursive: true, force: true });
    renameSync(dest, out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  // Other builds and packages only cost disk (~100 MB a build): the inputs moved on.
  for (const old of readdirSync(cacheDir).filter((d) => /^[0-9a-f]{16}$/.test(d) && d !== hash)) rmSync(join(cacheDir, old), { recursive: true, force: true });
  const keep = new Set(debs);
  for (const f of readdirSync(join(cacheDir, 'debs')).filter((f) => f.endsWith('.deb')))
    if (!keep.has(join(cacheDir, 'debs', f))) rmSync(join(cacheDir, 'debs', f), { force: true });
  say(`Node runtime archive ready: ${archive}`);
  return archive;
}

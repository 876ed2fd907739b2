// Node for dom0, as an archive appended to dom0's initramfs at boot
// (EmbeddedHost.up({ extraInitrds: [await buildNodeRuntime()] })): this
// machine's Node binary, stripped, with the libraries ldd names. dom0's own
// initramfs stays small; only the runs that need Node in dom0 pay for it.
//
// Cached by the binary's and libraries' contents in
// ${XTV_CACHE_DIR:-~/.cache/xtv}/host/node-runtime/<hash>/node-runtime.cpio,
// built in a temp dir renamed into place. Reproducible (sorted, mtime 0).
// Not compressed: dom0 boots ~10 s sooner when its kernel need not gunzip
// ~100 MB under software emulation (23 s against 35 s to ready, measured).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NodeRuntimeOptions {
  onProgress?: (message: string) => void;
  /** Default: ${XTV_CACHE_DIR:-~/.cache/xtv}/host/node-runtime. */
  cacheDir?: string;
  /** Default: the Node running this code. */
  nodePath?: string;
}

/** The shared libraries `ldd` names for a binary (the loader included), from ldd's output. */
export function parseLdd(output: string): string[] {
  const libs = new Set<string>();
  for (const line of output.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S*ld-linux\S*)/.exec(line);
    if (m) libs.add(m[1]!);
  }
  return [...libs].sort();
}

function fileDigest(p: string): string {
  return `${p} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
}

/** Returns the path of the archive (building it when its inputs changed). */
export async function buildNodeRuntime(opts: NodeRuntimeOptions = {}): Promise<string> {
  const say = opts.onProgress ?? (() => {});
  const node = opts.nodePath ?? process.execPath;
  const cacheDir = opts.cacheDir ?? join(process.env.XTV_CACHE_DIR || join(homedir(), '.cache', 'xtv'), 'host', 'node-runtime');
  // glibc dlopens libgcc_s for thread cancellation; ldd cannot see that.
  const libs = [...new Set([...parseLdd((await run('ldd', [node])).stdout), '/lib/x86_64-linux-gnu/libgcc_s.so.1'])].filter((p) => existsSync(p)).sort();
  const inputs = ['node-runtime v2', fileDigest(node), ...libs.map(fileDigest)].join('\n');
  const hash = createHash('sha256').update(inputs).digest('hex').slice(0, 16);
  const out = join(cacheDir, hash);
  const archive = join(out, 'node-runtime.cpio');
  if (existsSync(archive)) {
    say(`Node runtime for dom0 up to date (${archive})`);
    return archive;
  }
  say(`building the Node runtime archive for dom0 (${node}, ${libs.length} libraries)`);
  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(cacheDir, `.build-${hash}-`));
  try {
    const root = join(work, 'root');
    const put = (src: string, dest: string) => {
      const d = join(root, dest);
      mkdirSync(dirname(d), { recursive: true });
      copyFileSync(src, d);
      chmodSync(d, 0o755);
    };
    put(node, 'usr/bin/node');
    await run('strip', [join(root, 'usr/bin/node')]);
    // At the paths ldd names: dom0 has the same (real) /lib and /lib64 directories.
    for (const lib of libs) put(lib, lib.slice(1));
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
    rmSync(out, { recursive: true, force: true });
    renameSync(dest, out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  say(`Node runtime archive ready: ${archive}`);
  return archive;
}

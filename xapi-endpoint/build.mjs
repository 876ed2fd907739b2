#!/usr/bin/env node
// Builds the XenAPI test double for dom0 of the embedded host:
//
//   dist/xapi-endpoint/xapi-endpoint.cjs   the server, one file (esbuild; xml2js and the xenstore client inside)
//   dist/xapi-endpoint/tls.crt             its self-signed certificate (CN xtv-xapi-test-double, SAN 127.0.0.1)
//   dist/xapi-endpoint/xapi-endpoint.cpio.gz
//       an archive appended to dom0's initramfs at boot (EmbeddedHost.up({ extraInitrds })):
//       /usr/bin/node (this machine's Node, stripped) and the libraries ldd names,
//       /opt/xtv-xapi/xapi-endpoint.cjs, /etc/xtv/xapi/tls.{key,crt}, and the start hook
//       /etc/xtv/start.d/50-xapi-endpoint.sh (dom0's rcS runs start.d hooks before SSH is up).
//
// The per-host part (password, ports, timeouts) is a second tiny archive made at
// `up` time (harness/toolstack/xapi-embedded.ts). The big archive is cached in
// ${XTV_CACHE_DIR:-~/.cache/xtv}/xapi-endpoint/<hash of inputs>/ and built in a
// temporary directory renamed into place, so a half-written one never replaces a good one.
//
//   node xapi-endpoint/build.mjs [--quiet]     prints the cpio's path on stdout
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..');
const DIST = join(REPO, 'dist', 'xapi-endpoint');
const CACHE_ROOT = join(process.env.XTV_CACHE_DIR || join(homedir(), '.cache', 'xtv'), 'xapi-endpoint');
const quiet = process.argv.includes('--quiet');
const t0 = Date.now();
const say = (m) => { if (!quiet) process.stderr.write(`[xapi-endpoint ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`); };

export const START_HOOK = `#!/bin/sh
# Starts the XenAPI test double (xtv) when the host was booted with its
# per-host configuration (/etc/xtv/xapi/config.json); otherwise does nothing.
[ -f /etc/xtv/xapi/config.json ] || exit 0
mkdir -p /var/lib/xcp/guest /var/lib/xtv-xapi/suspend /run/xtv-xapi
setsid /usr/bin/node /opt/xtv-xapi/xapi-endpoint.cjs --config /etc/xtv/xapi/config.json \\
  </dev/null >>/var/log/xtv-xapi.log 2>&1 &
echo "xtv-dom0: XenAPI test double starting (log /var/log/xtv-xapi.log)"
`;

function sha256(data) {
  return createHash('sha256').update(data).digest('hex');
}

async function bundle() {
  const r = await build({
    entryPoints: [join(HERE, 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    // CommonJS output: xml2js and sax use require() of Node built-ins.
    format: 'cjs',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return Buffer.from(r.outputFiles[0].contents);
}

/** The certificate, made once and kept with the cache (it is an input of the archive). */
function tlsPair() {
  const dir = join(CACHE_ROOT, 'tls');
  const key = join(dir, 'tls.key');
  const crt = join(dir, 'tls.crt');
  if (!existsSync(key) || !existsSync(crt)) {
    say('generating a self-signed certificate with openssl');
    mkdirSync(CACHE_ROOT, { recursive: true });
    const tmp = mkdtempSync(join(CACHE_ROOT, '.tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650',
      '-subj', '/CN=xtv-xapi-test-double', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', join(tmp, 'tls.key'), '-out', join(tmp, 'tls.crt'),
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  return { key, crt };
}

/** Node's binary and the libraries it loads (absolute paths, as ldd names them). */
function nodeFiles() {
  const node = process.execPath;
  const libs = execFileSync('ldd', [node], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /=>\s+(\/\S+)/.exec(l)?.[1] ?? /^\s*(\/\S+ld-linux\S*)/.exec(l)?.[1])
    .filter(Boolean);
  return { node, libs: [...new Set(libs)].sort() };
}

function fileHash(p) {
  const s = statSync(p);
  return `${p} ${s.size} ${sha256(readFileSync(p))}`;
}

async function main() {
  mkdirSync(DIST, { recursive: true });
  say('bundling the server with esbuild');
  const code = await bundle();
  const tls = tlsPair();
  const { node, libs } = nodeFiles();
  const inputs = [
    `bundle ${sha256(code)}`,
    `hook ${sha256(START_HOOK)}`,
    fileHash(node),
    ...libs.map(fileHash),
    fileHash(tls.key),
    fileHash(tls.crt),
  ].join('\n');
  const hash = sha256(inputs).slice(0, 16);
  const out = join(CACHE_ROOT, hash);
  const cpio = join(out, 'xapi-endpoint.cpio.gz');
  if (!existsSync(cpio)) {
    say(`building the dom0 archive ${hash} (Node ${process.version}, stripped, with ${libs.length} libraries)`);
    mkdirSync(CACHE_ROOT, { recursive: true });
    const work = mkdtempSync(join(CACHE_ROOT, `.build-${hash}-`));
    try {
      const root = join(work, 'root');
      const put = (src, dest, mode) => {
        const d = join(root, dest);
        mkdirSync(dirname(d), { recursive: true });
        if (Buffer.isBuffer(src) || typeof src === 'string' && !src.startsWith('/')) writeFileSync(d, src);
        else copyFileSync(src, d);
        if (mode) chmodSync(d, mode);
      };
      put(node, 'usr/bin/node', 0o755);
      execFileSync('strip', [join(root, 'usr/bin/node')]);
      for (const lib of libs) put(lib, lib.slice(1), 0o755);
      put(code, 'opt/xtv-xapi/xapi-endpoint.cjs', 0o644);
      put(readFileSync(tls.key), 'etc/xtv/xapi/tls.key', 0o600);
      put(readFileSync(tls.crt), 'etc/xtv/xapi/tls.crt', 0o644);
      put(Buffer.from(START_HOOK), 'etc/xtv/start.d/50-xapi-endpoint.sh', 0o755);
      const dest = join(work, 'out');
      mkdirSync(dest);
      execFileSync('sh', ['-c', [
        'set -e',
        `cd '${root}'`,
        'find . -exec touch -h -d @0 {} +',
        `find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible | gzip -n -6 > '${join(dest, 'xapi-endpoint.cpio.gz')}'`,
      ].join('\n')]);
      writeFileSync(join(dest, 'inputs.txt'), `${inputs}\n`);
      rmSync(out, { recursive: true, force: true });
      renameSync(dest, out);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  } else {
    say(`up to date (cache ${out})`);
  }
  // dist mirrors the cache: bundle and certificate for users, a link to the archive.
  writeFileSync(join(DIST, 'xapi-endpoint.cjs'), code);
  copyFileSync(tls.crt, join(DIST, 'tls.crt'));
  const distCpio = join(DIST, 'xapi-endpoint.cpio.gz');
  rmSync(distCpio, { force: true });
  try { linkSync(cpio, distCpio); } catch { copyFileSync(cpio, distCpio); }
  say(`ready: ${distCpio} (${(statSync(distCpio).size / 1e6).toFixed(1)} MB)`);
  process.stdout.write(`${distCpio}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`xapi-endpoint/build.mjs: ${err.stack ?? err}\n`);
    process.exit(1);
  });
}

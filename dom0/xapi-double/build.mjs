#!/usr/bin/env node
// Builds the XenAPI test double for dom0 of the embedded host:
//
//   dist/xapi-endpoint/xapi-endpoint.cjs   the server, one file (esbuild; xml2js and the xenstore client inside)
//   dist/xapi-endpoint/tls.crt             its self-signed certificate (CN xtv-xapi-test-double, SAN 127.0.0.1)
//   dist/xapi-endpoint/xapi-endpoint.cpio.gz
//       an archive appended to dom0's initramfs at boot (EmbeddedHost.up({ extraInitrds })):
//       /opt/xtv-xapi/xapi-endpoint.cjs, /etc/xtv/xapi/tls.{key,crt}, and the start hook
//       /etc/xtv/start.d/50-xapi-endpoint.sh (dom0's rcS runs start.d hooks before SSH is up).
//
// Node itself reaches dom0 in its own archive, made by
// harness/embedded/node-runtime.ts from Debian's nodejs packages (the same
// archive the bench's probe uses).
//
// The per-host part (the endpoints' config.json / config-NAME.json, the password,
// /etc/xenopsd.conf and /etc/xapi.conf) is a second tiny archive the harness makes
// at `up` time. The big archive is cached in
// ${XTV_CACHE_DIR:-~/.cache/xtv}/xapi-endpoint/<hash of inputs>/ and built in a
// temporary directory renamed into place, so a half-written one never replaces a good one.
//
//   node dom0/xapi-double/build.mjs [--quiet]
//       prints the archive's path on stdout
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Buffer } from 'node:buffer';
import { build } from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const DIST = join(REPO, 'dist', 'xapi-endpoint');
const CACHE_ROOT = join(process.env.XTV_CACHE_DIR || join(homedir(), '.cache', 'xtv'), 'xapi-endpoint');
const quiet = process.argv.includes('--quiet');
const t0 = Date.now();
const say = (m) => {
  if (!quiet) process.stderr.write(`[xapi-endpoint ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
};

export const START_HOOK = `#!/bin/sh
# Starts the XenAPI test double (xtv): one endpoint, its own node process, per
# configuration in /etc/xtv/xapi/: config.json (log /var/log/xtv-xapi.log) and
# each config-NAME.json (--name NAME; log /var/log/xtv-xapi-NAME.log). With
# none, does nothing. The kernel directories of every profile are made here:
# /boot/guest (the 1.249 line) and /var/lib/xcp/guest (the current line).
cd /etc/xtv/xapi 2>/dev/null || exit 0
ls config.json config-*.json 2>/dev/null | grep -q . || exit 0
mkdir -p /boot/guest /var/lib/xcp/guest
start_endpoint() { # CONFIG LOG [NAME]
  setsid /usr/bin/node /opt/xtv-xapi/xapi-endpoint.cjs --config "/etc/xtv/xapi/$1" \${3:+--name "$3"} \\
    </dev/null >>"$2" 2>&1 &
  echo "xtv-dom0: XenAPI test double \${3:-default} starting (log $2)"
}
[ -f config.json ] && start_endpoint config.json /var/log/xtv-xapi.log
for f in config-*.json; do
  [ -f "$f" ] || continue
  name=\${f#config-}
  name=\${name%.json}
  case $name in
    ''|.*|*[!A-Za-z0-9_.-]*) echo "xtv-dom0: /etc/xtv/xapi/$f skipped: NAME must be letters, digits, '_', '-' or '.'"; continue ;;
  esac
  start_endpoint "$f" "/var/log/xtv-xapi-$name.log" "$name"
done
exit 0
`;

function sha256(data) {
  return createHash('sha256').update(data).digest('hex');
}

async function bundle() {
  const r = await build({
    entryPoints: [join(HERE, 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    // dom0 runs Debian's Node for its release (bookworm: 18; harness/embedded/node-runtime.ts).
    target: 'node18',
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
  // ECDSA P-256: its signature costs an emulated dom0 a fraction of RSA-2048's in each TLS handshake.
  const dir = join(CACHE_ROOT, 'tls-ec');
  const key = join(dir, 'tls.key');
  const crt = join(dir, 'tls.crt');
  if (!existsSync(key) || !existsSync(crt)) {
    say('generating a self-signed certificate with openssl');
    mkdirSync(CACHE_ROOT, { recursive: true });
    const tmp = mkdtempSync(join(CACHE_ROOT, '.tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        '/CN=xtv-xapi-test-double',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        join(tmp, 'tls.key'),
        '-out',
        join(tmp, 'tls.crt'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  }
  return { key, crt };
}

function fileHash(p) {
  const s = statSync(p);
  return `${p} ${s.size} ${sha256(readFileSync(p))}`;
}

/** Builds `name` from `files` into the cache unless an archive of the same inputs is there. */
function cachedArchive(name, inputs, files, compress) {
  const hash = sha256(inputs).slice(0, 16);
  const out = join(CACHE_ROOT, `${name}-${hash}`);
  const archive = join(out, compress ? `${name}.cpio.gz` : `${name}.cpio`);
  if (existsSync(archive)) {
    say(`${name}: up to date (${out})`);
    return archive;
  }
  say(`${name}: building ${hash}`);
  mkdirSync(CACHE_ROOT, { recursive: true });
  const work = mkdtempSync(join(CACHE_ROOT, `.build-${name}-${hash}-`));
  try {
    const root = join(work, 'root');
    for (const f of files) {
      const d = join(root, f.dest);
      mkdirSync(dirname(d), { recursive: true });
      if (f.data !== undefined) writeFileSync(d, f.data);
      else copyFileSync(f.src, d);
      chmodSync(d, f.mode);
    }
    const dest = join(work, 'out');
    mkdirSync(dest);
    execFileSync('sh', [
      '-c',
      // Paths as arguments, never in the script text: a directory name may hold a quote.
      [
        'set -e',
        'cd "$1"',
        'find . -exec touch -h -d @0 {} +',
        `find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible ${compress ? '| gzip -n -6 ' : ''}> "$2"`,
      ].join('\n'),
      'sh',
      root,
      join(dest, basename(archive)),
    ]);
    writeFileSync(join(dest, 'inputs.txt'), `${inputs}\n`);
    rmSync(out, { recursive: true, force: true });
    renameSync(dest, out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return archive;
}

/** dist mirrors the cache: a hard link (or a copy across file systems). */
function intoDist(archive) {
  const d = join(DIST, basename(archive));
  rmSync(d, { force: true });
  try {
    linkSync(archive, d);
  } catch {
    copyFileSync(archive, d);
  }
  return d;
}

async function main() {
  mkdirSync(DIST, { recursive: true });
  say('bundling the server with esbuild');
  const code = await bundle();
  const tls = tlsPair();
  const endpointInputs = [`bundle ${sha256(code)}`, `hook ${sha256(START_HOOK)}`, fileHash(tls.key), fileHash(tls.crt)].join('\n');
  const endpoint = cachedArchive(
    'xapi-endpoint',
    endpointInputs,
    [
      { dest: 'opt/xtv-xapi/xapi-endpoint.cjs', data: code, mode: 0o644 },
      { dest: 'etc/xtv/xapi/tls.key', data: readFileSync(tls.key), mode: 0o600 },
      { dest: 'etc/xtv/xapi/tls.crt', data: readFileSync(tls.crt), mode: 0o644 },
      { dest: 'etc/xtv/start.d/50-xapi-endpoint.sh', data: START_HOOK, mode: 0o755 },
    ],
    true,
  );
  const outputs = [intoDist(endpoint)];
  writeFileSync(join(DIST, 'xapi-endpoint.cjs'), code);
  copyFileSync(tls.crt, join(DIST, 'tls.crt'));
  for (const o of outputs) say(`ready: ${o} (${(statSync(o).size / 1e6).toFixed(1)} MB)`);
  process.stdout.write(`${outputs.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    process.stderr.write(`dom0/xapi-double/build.mjs: ${err.stack ?? err}\n`);
    process.exit(1);
  });
}

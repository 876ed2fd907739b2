#!/usr/bin/env bash
# Builds the test image's initramfs from explicit inputs, reproducibly: the
# same inputs give the same bytes (sorted file list, fixed mtimes, owner 0:0,
# inode numbers renumbered, gzip -n: no name or time in its header).
# Callable on its own (the unit test test/unit/image-reproducible.test.ts
# does so); build.sh calls it too.
#
#   build-initramfs.sh --out FILE --busybox PATH --qjs PATH --agent PATH
#                      [--init PATH] [--applets PATH] [--epoch SECONDS]
#
# Layout:  /init  /bin/busybox  /bin/<applet> -> busybox  /bin/qjs
#          /xtv/agent.js  /dev/console  /proc /sys /dev (mount points)
# Compression: gzip -9 -n (CONFIG_RD_GZIP in kernel.config; faster for the
# guest to unpack at every boot than xz, see there).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

out= busybox= qjs= agent= init=$HERE/init applets=$HERE/applets
# Fixed default: 2024-01-01T00:00:00Z. Not the build time (that would change
# the bytes on every build), not the git commit time (that would change the
# cache key on every commit).
epoch=${SOURCE_DATE_EPOCH:-1704067200}
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --busybox) busybox=$2; shift 2 ;;
    --qjs) qjs=$2; shift 2 ;;
    --agent) agent=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --applets) applets=$2; shift 2 ;;
    --epoch) epoch=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "build-initramfs.sh: unknown argument: $1" >&2; usage ;;
  esac
done
for v in out busybox qjs agent; do
  [ -n "${!v}" ] || { echo "build-initramfs.sh: --$v is required" >&2; usage; }
done
for f in "$busybox" "$qjs" "$agent" "$init" "$applets"; do
  [ -f "$f" ] || { echo "build-initramfs.sh: input not found: $f" >&2; exit 1; }
done
for tool in cpio gzip fakeroot; do
  command -v "$tool" >/dev/null || { echo "build-initramfs.sh: $tool not found (run: bash scripts/deps.sh)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/xtv-initramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# Everything that records ownership or device nodes runs under one fakeroot
# session: owner 0:0 and /dev/console without needing root.
fakeroot -- bash -euo pipefail -c '
  root=$1 busybox=$2 qjs=$3 agent=$4 init=$5 applets=$6 epoch=$7 cpio_out=$8
  umask 022
  mkdir -p "$root"/{bin,dev,proc,sys,xtv}
  install -m 0755 "$init" "$root/init"
  install -m 0755 "$busybox" "$root/bin/busybox"
  install -m 0755 "$qjs" "$root/bin/qjs"
  install -m 0644 "$agent" "$root/xtv/agent.js"
  grep -v "^[[:space:]]*\(#\|$\)" "$applets" | while read -r applet; do
    ln -s busybox "$root/bin/$applet"
  done
  # The kernel opens /dev/console for init before devtmpfs is mounted.
  mknod -m 0600 "$root/dev/console" c 5 1
  chown -hR 0:0 "$root"
  find "$root" -exec touch -h -d "@$epoch" {} +
  cd "$root"
  find . -mindepth 1 -printf "%P\n" | LC_ALL=C sort |
    cpio --quiet -o -H newc --reproducible -R 0:0 >"$cpio_out"
' fakeroot-initramfs "$root" "$busybox" "$qjs" "$agent" "$init" "$applets" "$epoch" "$work/initramfs.cpio"

gzip -9 -n --stdout "$work/initramfs.cpio" >"$work/initramfs.cpio.gz"
mkdir -p "$(dirname "$out")"
mv -f "$work/initramfs.cpio.gz" "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"

#!/usr/bin/env bash
# Builds the xtv test image (npm run build:image runs the agent's bundler,
# then this):
#
#   dist/image/xtv-kernel     Linux 6.1 from Debian's linux-source-6.1,
#                             tinyconfig + kernel.config + patches/: the ELF
#                             vmlinux out of the bzImage, gzip -9 -n
#   dist/image/xtv-initrd     gzip-compressed newc cpio: /init, busybox, a static
#                             qjs (QuickJS, trixie's source package), the agent
#   dist/image/manifest.json  bytes and sha256 of each file, versions, hashes of
#                             the inputs, minMemoryMiB (see boot-check.env)
#
# Each part is cached under ${XTV_CACHE_DIR:-$HOME/.cache/xtv}/image/ keyed
# by its inputs; an unchanged input rebuilds nothing. Parts are built in a
# temp dir and renamed into place, so a half-written build never replaces a
# good one. Every step logs to its own file; a failing step names itself and
# its log.
#
# Environment: XTV_AGENT_BUNDLE (default dist/agent/xtv-agent.js),
# XTV_CACHE_DIR, XTV_JOBS (make -j, default 2), XTV_APT_REFRESH=1 (refetch
# trixie's source lists), XTV_IMAGE_OUT (default dist/image).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"

CACHE=${XTV_CACHE_DIR:-$HOME/.cache/xtv}/image
OUT=${XTV_IMAGE_OUT:-$REPO/dist/image}
AGENT=${XTV_AGENT_BUNDLE:-$REPO/dist/agent/xtv-agent.js}
BUSYBOX=/bin/busybox
# The kernel command line the image needs; the toolstack passes it (xl
# extra=, XAPI PV_args). See README.md.
KERNEL_ARGS="console=hvc0 xen_shutdown_node=data/xtv/kernel-shutdown quiet"
mkdir -p "$CACHE"

# --- Debian packages: installed when root, else the apt-get line and stop ---
bash "$REPO/scripts/deps.sh" || die "missing Debian packages (see the apt-get line above)"

pkg_version() { dpkg-query -W -f='${Version}' "$1"; }
LINUX_SOURCE_VERSION=$(pkg_version linux-source-6.1)
BUSYBOX_VERSION=$(pkg_version busybox-static)

# busybox-static and busybox both ship /bin/busybox (they conflict); only
# the static one runs in the initramfs, which has no libc.
if readelf -lW "$BUSYBOX" | grep -q 'program interpreter'; then
  die "$BUSYBOX is dynamically linked: install busybox-static (bash scripts/deps.sh)"
fi
[ -f "$AGENT" ] || die "agent bundle $AGENT not found: run npm run build:agent (or set XTV_AGENT_BUNDLE)"

# --- kernel ----------------------------------------------------------------
# recipe_of SCRIPT: the RECIPE=N line of a build script (its output version).
recipe_of() { grep -m1 '^RECIPE=' "$1" | cut -d= -f2; }

KERNEL_INPUTS=$(hash_strings "linux-source-6.1=$LINUX_SOURCE_VERSION" \
  "recipe=$(recipe_of "$HERE/build-kernel.sh")" \
  "$(hash_files "$HERE/kernel.config" "$HERE"/patches/*.patch)")
KERNEL_DIR=$CACHE/kernel/${KERNEL_INPUTS:0:16}
if [ -s "$KERNEL_DIR/bzImage" ]; then
  say "kernel: cached ($KERNEL_DIR)"
else
  say "kernel: building Linux from linux-source-6.1 $LINUX_SOURCE_VERSION (inputs ${KERNEL_INPUTS:0:16})"
  tmp=$(mktemp -d "$CACHE/kernel.tmp.XXXXXX")
  logs=$CACHE/logs/kernel-${KERNEL_INPUTS:0:16}
  rm -rf "$logs"; mkdir -p "$logs"
  # the source tree (1.5 GB) goes, whether the build worked or not
  trap 'rm -rf "$tmp/work"' EXIT
  bash "$HERE/build-kernel.sh" "$tmp/out" "$tmp/work" "$logs"
  rm -rf "$tmp/work"
  cp "$logs"/*.log "$tmp/out/"
  mkdir -p "$CACHE/kernel"
  publish_dir "$tmp/out" "$KERNEL_DIR"
  rm -rf "$tmp"
  trap - EXIT
fi
KERNEL_RELEASE=$(cat "$KERNEL_DIR/kernelrelease")

# --- the kernel as the toolstack loads it: gzip'd ELF ------------------------
# The domain builder in dom0 (libxenguest) unpacks whatever kernel it is given
# before it builds the domain: a bzImage's xz payload cost dom0 about 1.2 s of
# CPU per guest start under QEMU's emulation, a gzip'd ELF about 0.4 s, for
# 1.1 MB instead of 0.9 (measured: guest/image/README.md). Same vmlinux, same
# Xen ELF notes (PV and PVH entry points).
KERNEL_ELF_DIR=$CACHE/kernel-elf/${KERNEL_INPUTS:0:16}-r1
if [ -s "$KERNEL_ELF_DIR/xtv-kernel" ]; then
  say "kernel ELF: cached ($KERNEL_ELF_DIR)"
else
  tmp=$(mktemp -d "$CACHE/kernel-elf.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/out"
  bz=$KERNEL_DIR/bzImage
  # Boot protocol setup header: the compressed payload starts payload_offset
  # (0x248) bytes into the protected-mode code, which follows the
  # (setup_sects (0x1f1) + 1) 512-byte sectors of setup; payload_length at 0x24c.
  hdr() { od -An -t"u$2" -j "$1" -N"$2" "$bz" | tr -d ' '; }
  setup_sects=$(hdr $((0x1f1)) 1); [ "$setup_sects" != 0 ] || setup_sects=4
  start=$(( (setup_sects + 1) * 512 + $(hdr $((0x248)) 4) ))
  # xz --single-stream: the payload ends with the 4-byte uncompressed size.
  tail -c +$((start + 1)) "$bz" | head -c "$(hdr $((0x24c)) 4)" | xz -dc --single-stream >"$tmp/vmlinux" \
    || die "kernel ELF: could not unpack the xz payload of $bz"
  # Xen's ELF notes (readelf does not name them): 1 = ENTRY (PV), 0x12 = PHYS32_ENTRY (PVH).
  notes=$(readelf -nW "$tmp/vmlinux" 2>/dev/null | grep '^ *Xen ') || true
  grep -q 'NT_VERSION\|(0x00000001)' <<<"$notes" && grep -q '(0x00000012)' <<<"$notes" \
    || die "kernel ELF: unpacked $bz, but the result has not Xen's PV and PVH entry notes"
  gzip -9 -n -c "$tmp/vmlinux" >"$tmp/out/xtv-kernel"
  mkdir -p "$CACHE/kernel-elf"
  publish_dir "$tmp/out" "$KERNEL_ELF_DIR"
  rm -rf "$tmp"
  trap - EXIT
  say "kernel ELF: $(stat -c %s "$KERNEL_ELF_DIR/xtv-kernel") B ($KERNEL_ELF_DIR)"
fi

# --- qjs -------------------------------------------------------------------
APTDIR=$CACHE/apt
QJS_SOURCE_VERSION=$(bash "$HERE/build-qjs.sh" version "$APTDIR")
QJS_DIR=$CACHE/qjs/$QJS_SOURCE_VERSION-r$(recipe_of "$HERE/build-qjs.sh")
if [ -x "$QJS_DIR/qjs" ]; then
  say "qjs: cached ($QJS_DIR)"
else
  say "qjs: building quickjs $QJS_SOURCE_VERSION from trixie's source package"
  tmp=$(mktemp -d "$CACHE/qjs.tmp.XXXXXX")
  logs=$CACHE/logs/qjs-$QJS_SOURCE_VERSION
  rm -rf "$logs"; mkdir -p "$logs"
  trap 'rm -rf "$tmp"' EXIT
  bash "$HERE/build-qjs.sh" build "$APTDIR" "$QJS_SOURCE_VERSION" "$tmp/out" "$tmp/work" "$logs"
  mkdir -p "$CACHE/qjs"
  publish_dir "$tmp/out" "$QJS_DIR"
  rm -rf "$tmp"
  trap - EXIT
fi
QJS_VERSION=$(cat "$QJS_DIR/version")

# --- initramfs -------------------------------------------------------------
INITRD_INPUTS=$(hash_strings "busybox-static=$BUSYBOX_VERSION" \
  "$(hash_files "$BUSYBOX" "$QJS_DIR/qjs" "$AGENT" "$HERE/init" "$HERE/applets" "$HERE/build-initramfs.sh")")
INITRD_DIR=$CACHE/initrd/${INITRD_INPUTS:0:16}
if [ -s "$INITRD_DIR/xtv-initrd" ]; then
  say "initramfs: cached ($INITRD_DIR)"
else
  tmp=$(mktemp -d "$CACHE/initrd.tmp.XXXXXX")
  logs=$CACHE/logs/initrd-${INITRD_INPUTS:0:16}
  rm -rf "$logs"; mkdir -p "$logs"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/out"
  step "initramfs: busybox + qjs + agent + init, cpio | gzip" "$logs/initramfs.log" \
    bash "$HERE/build-initramfs.sh" --out "$tmp/out/xtv-initrd" \
      --busybox "$BUSYBOX" --qjs "$QJS_DIR/qjs" --agent "$AGENT"
  mkdir -p "$CACHE/initrd"
  publish_dir "$tmp/out" "$INITRD_DIR"
  rm -rf "$tmp"
  trap - EXIT
fi

# --- agent version: what the bundle says it is ------------------------------
# The bundler may write a sidecar (xtv-agent.json with "version"); otherwise
# the bundle's own AGENT_VERSION / agentVersion constant; otherwise the
# package's version. The bundle's sha256 is recorded either way.
agent_version() {
  local side="${AGENT%.js}.json" v=
  if [ -f "$side" ]; then
    v=$(sed -n 's/.*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$side" | head -n 1)
  fi
  [ -n "$v" ] || v=$(grep -o '\(AGENT_VERSION\|agentVersion\)[[:space:]]*[=:][[:space:]]*"[^"]*"' "$AGENT" | head -n 1 | sed 's/.*"\([^"]*\)"/\1/')
  [ -n "$v" ] || v=$(sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$REPO/package.json" | head -n 1)
  echo "$v"
}

# --- publish dist/image ----------------------------------------------------
. "$HERE/boot-check.env"
if [ "$KERNEL_INPUTS_SHA256" != "$KERNEL_INPUTS" ]; then
  say "note: boot-check.env was measured with other kernel inputs ($KERNEL_INPUTS_SHA256); minMemoryMiB is unverified for this kernel"
fi
mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp -d "$OUT.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$KERNEL_ELF_DIR/xtv-kernel" "$tmp/xtv-kernel"
cp "$INITRD_DIR/xtv-initrd" "$tmp/xtv-initrd"
kbytes=$(stat -c %s "$tmp/xtv-kernel") ibytes=$(stat -c %s "$tmp/xtv-initrd")
cat >"$tmp/manifest.json" <<JSON
{
  "files": {
    "xtv-kernel": { "bytes": $kbytes, "sha256": "$(sha256_of "$tmp/xtv-kernel")" },
    "xtv-initrd": { "bytes": $ibytes, "sha256": "$(sha256_of "$tmp/xtv-initrd")" }
  },
  "totalBytes": $((kbytes + ibytes)),
  "kernelVersion": "$KERNEL_RELEASE",
  "kernelFormat": "ELF vmlinux, gzip -9 -n (unpacked from the bzImage)",
  "kernelSource": "linux-source-6.1 $LINUX_SOURCE_VERSION",
  "kernelConfigSha256": "$KERNEL_INPUTS",
  "kernelArgs": "$KERNEL_ARGS",
  "qjsVersion": "$QJS_VERSION",
  "qjsSource": "quickjs $QJS_SOURCE_VERSION (Debian trixie source package, static build)",
  "busyboxVersion": "busybox-static $BUSYBOX_VERSION",
  "agentVersion": "$(agent_version)",
  "agentSha256": "$(sha256_of "$AGENT")",
  "initrdInputsSha256": "$INITRD_INPUTS",
  "minMemoryMiB": $MIN_MEMORY_MIB,
  "bootChecked": { "pv": "$CHECKED_PV", "pvh": "$CHECKED_PVH", "on": "$CHECKED_ON", "kernelConfigSha256": "$KERNEL_INPUTS_SHA256" }
}
JSON
publish_dir "$tmp" "$OUT"
trap - EXIT
limit=$((4 * 1024 * 1024))
say "done: $OUT: xtv-kernel $kbytes B + xtv-initrd $ibytes B = $((kbytes + ibytes)) B (limit $limit)"
[ $((kbytes + ibytes)) -le $limit ] || die "kernel + initrd exceed 4 MiB ($((kbytes + ibytes)) B)"

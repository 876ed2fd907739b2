#!/usr/bin/env bash
# Builds the guest kernel (bzImage) from Debian's linux-source-6.1 into OUTDIR:
#
#   build-kernel.sh OUTDIR WORKDIR LOGDIR
#
# WORKDIR gets the unpacked source tree (about 1.5 GB; the caller removes it).
# Steps, each with its own log in LOGDIR: unpack, patch (guest/image/patches,
# in order), config (make tinyconfig, then kernel.config merged with
# allnoconfig semantics), verify-config (every line of kernel.config must hold
# in the final .config, or the build fails naming the options), make bzImage.
#
# Reproducible as far as Linux allows: fixed KBUILD_BUILD_TIMESTAMP, _USER,
# _HOST and _VERSION; paths inside the tree are relative (6.1 maps them).
set -euo pipefail
# Part of the kernel's cache key (with the source version, kernel.config and
# patches/): bump it when a change here changes the bzImage, so that mere
# comments or messages do not cost a 4-minute rebuild.
RECIPE=1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

[ $# -eq 3 ] || die "usage: build-kernel.sh OUTDIR WORKDIR LOGDIR"
OUT=$1 WORK=$2 LOGS=$3
TARBALL=${XTV_LINUX_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
FRAGMENT=$HERE/kernel.config
JOBS=${XTV_JOBS:-2}
mkdir -p "$OUT" "$WORK" "$LOGS"
[ -f "$TARBALL" ] || die "$TARBALL not found (Debian package linux-source-6.1; run: bash scripts/deps.sh)"

export ARCH=x86_64
export KBUILD_BUILD_TIMESTAMP='2024-01-01 00:00:00 UTC'
export KBUILD_BUILD_USER=xtv KBUILD_BUILD_HOST=xtv KBUILD_BUILD_VERSION=1
export LC_ALL=C TZ=UTC

step "kernel: unpack $(basename "$TARBALL")" "$LOGS/kernel-1-unpack.log" \
  tar -C "$WORK" -xf "$TARBALL"
SRC=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -n 1)
[ -n "$SRC" ] || die "no linux-source-* directory in $TARBALL"

apply_patches() {
  local p
  for p in "$HERE"/patches/*.patch; do
    [ -e "$p" ] || continue
    echo "applying $(basename "$p")"
    patch -d "$SRC" -p1 --forward --no-backup-if-mismatch <"$p"
  done
}
step "kernel: apply patches" "$LOGS/kernel-2-patch.log" apply_patches

configure() {
  make -C "$SRC" tinyconfig
  # -n: allnoconfig with tinyconfig's result and the fragment as the only
  # "yes" answers, so options the fragment brings in keep their other
  # sub-options off instead of taking their defaults.
  (cd "$SRC" && scripts/kconfig/merge_config.sh -n .config "$FRAGMENT")
}
step "kernel: configure (tinyconfig + kernel.config)" "$LOGS/kernel-3-config.log" configure

if ! bash "$HERE/verify-kernel-config.sh" "$FRAGMENT" "$SRC/.config" >"$LOGS/kernel-4-verify-config.log" 2>&1; then
  say "kernel: these kernel.config options did not end up as asked (missing dependencies?):"
  sed 's/^/  /' "$LOGS/kernel-4-verify-config.log" >&2
  step_failed "kernel: verify config" "$LOGS/kernel-4-verify-config.log"
fi
say "kernel: $(cat "$LOGS/kernel-4-verify-config.log")"

# about 1310 lines of make output for this config (measured)
step_progress "kernel: make -j$JOBS bzImage (about 3 to 4 min on 2 idle cores)" "$LOGS/kernel-5-make.log" 1310 \
  make -C "$SRC" -j"$JOBS" bzImage

cp "$SRC/arch/x86/boot/bzImage" "$OUT/bzImage"
cp "$SRC/.config" "$OUT/config"
make -s -C "$SRC" kernelrelease >"$OUT/kernelrelease"

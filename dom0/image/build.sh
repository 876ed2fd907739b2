#!/usr/bin/env bash
# Builds the embedded Xen host from Debian packages (npm run build:host):
#
#   dist/host/xen            the hypervisor, gunzipped (QEMU loads it through multiboot)
#   dist/host/vmlinuz        dom0's kernel (Debian's linux-image-6.1 amd64)
#   dist/host/dom0.cpio   dom0's initramfs: busybox, Xen's daemons and xl, dropbear
#   dist/host/id_ed25519     the SSH key that logs in as root in dom0 (and .pub)
#   dist/host/manifest.json  versions, hash of the inputs, sizes and sha256 of each file
#
# Cached by its inputs (package versions, the recipe files under dom0/image/, the
# keys) in ${XTV_CACHE_DIR:-$HOME/.cache/xtv}/host/<hash>/: an unchanged input
# rebuilds nothing. Each step logs to its own file (logs/<hash>/ in the
# cache); a failing step names itself and its log. The result is built in a temp dir and renamed into place, so a
# half-written build never replaces a good one.
#
# Extending dom0 (e.g. Node for the XenAPI endpoint): drop an executable
# dom0/image/rootfs.d/NN-name.sh; it runs with $ROOT (the initramfs tree being built)
# and $CACHE (a directory it may keep downloads in) in its environment, and is
# part of the cache key. Files can also be added at boot without rebuilding:
# EmbeddedHost.up({ extraInitrds }) appends cpio archives to this one.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RECIPE=$REPO/dom0/image
DIST=$REPO/dist/host
CACHE_ROOT=${XTV_CACHE_DIR:-$HOME/.cache/xtv}/host
XEN_LIB=/usr/lib/xen-4.17/bin
START=$(date +%s)

say() { printf '[host %3ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }
die() { printf 'dom0/image/build.sh: %s\n' "$*" >&2; exit 1; }

# step NAME COMMAND...: runs COMMAND with its output in $LOGS/NAME.log; on
# failure names the step and its log, and shows the log's tail.
step() {
  local name=$1; shift
  local log=$LOGS/$name.log
  say "$name"
  if ! "$@" >"$log" 2>&1; then
    printf 'dom0/image/build.sh: step "%s" failed; its log: %s\n--- last lines:\n' "$name" "$log" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
}

# --- Debian packages -------------------------------------------------------
bash "$REPO/scripts/deps.sh" || die "missing Debian packages (see above)"

pkg_version() { dpkg-query -W -f='${Version}' "$1"; }

# dom0's kernel: whatever Debian's linux-image-amd64 currently points at, or
# XTV_HOST_KERNEL_PKG to pin one. Fetched with apt-get download, never installed.
# apt-cache is slow (seconds); its answer is kept until apt's lists change.
resolve_kernel() {
  local pkg=${XTV_HOST_KERNEL_PKG:-$( (apt-cache depends linux-image-amd64 2>/dev/null || true) | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')}
  [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (run: apt-get update)"
  local ver
  ver=$( (apt-cache show --no-all-versions "$pkg" 2>/dev/null || true) | awk '/^Version:/ { print $2; exit }')
  [ -n "$ver" ] || die "package $pkg not found in apt's lists (run: apt-get update)"
  echo "$pkg $ver"
}
mkdir -p "$CACHE_ROOT"
APT_STAMP="$(ls -l --time-style=+%s /var/lib/apt/lists 2>/dev/null | sha256sum | cut -c1-16) ${XTV_HOST_KERNEL_PKG:-}"
RESOLVED=$CACHE_ROOT/kernel-resolved
if [ -s "$RESOLVED" ] && [ "$(head -n1 "$RESOLVED")" = "$APT_STAMP" ]; then
  read -r KERNEL_PKG KERNEL_VERSION < <(tail -n1 "$RESOLVED")
else
  resolved=$(resolve_kernel) || exit 1
  read -r KERNEL_PKG KERNEL_VERSION <<<"$resolved"
  printf '%s\n%s %s\n' "$APT_STAMP" "$KERNEL_PKG" "$KERNEL_VERSION" >"$RESOLVED"
fi

# --- keys: made once, kept in the cache, part of the cache key --------------
KEYS=$CACHE_ROOT/keys
if [ ! -s "$KEYS/id_ed25519" ] || [ ! -s "$KEYS/dropbear_ed25519_host_key" ]; then
  say "generating SSH keys in $KEYS"
  mkdir -p "$CACHE_ROOT"
  tmpkeys=$(mktemp -d "$CACHE_ROOT/.keys.XXXXXX")
  ssh-keygen -q -t ed25519 -N '' -C xtv-embedded-host -f "$tmpkeys/id_ed25519"
  dropbearkey -t ed25519 -f "$tmpkeys/dropbear_ed25519_host_key" >/dev/null 2>&1
  rm -rf "$KEYS"
  mv "$tmpkeys" "$KEYS"
fi
# dom0's own client key (dbclient's format): root in dom0 reaches itself over
# SSH, as `xl migrate NAME localhost` does on a real host set up for it.
if [ ! -s "$KEYS/dom0_id_dropbear" ]; then
  rm -f "$KEYS/dom0_id_dropbear.tmp" # an interrupted build's: dropbearkey will not overwrite it
  dropbearkey -t ed25519 -f "$KEYS/dom0_id_dropbear.tmp" >/dev/null
  mv "$KEYS/dom0_id_dropbear.tmp" "$KEYS/dom0_id_dropbear"
fi

# --- the cache key ------------------------------------------------------------
inputs() {
  echo "arch $(dpkg --print-architecture)"
  for p in xen-hypervisor-4.17-amd64 xen-utils-4.17 xenstore-utils busybox-static dropbear-bin libc6; do
    echo "pkg $p $(pkg_version "$p")"
  done
  echo "kernel $KERNEL_PKG $KERNEL_VERSION"
  (cd "$RECIPE" && find . -type f ! -name '*.md' | LC_ALL=C sort | xargs sha256sum)
  (cd "$KEYS" && sha256sum id_ed25519.pub dropbear_ed25519_host_key dom0_id_dropbear)
}
HASH=$(inputs | sha256sum | cut -c1-16)
OUT=$CACHE_ROOT/$HASH

install_dist() {
  # dist/host mirrors the cached build: hard links when on the same file
  # system, copies otherwise; swapped in whole.
  mkdir -p "$REPO/dist"
  local tmp
  tmp=$(mktemp -d "$REPO/dist/.host.XXXXXX")
  chmod 755 "$tmp"
  cp -l "$OUT"/* "$tmp"/ 2>/dev/null || cp -p "$OUT"/* "$tmp"/
  chmod 600 "$tmp/id_ed25519"
  rm -rf "$DIST.old"
  [ -e "$DIST" ] && mv "$DIST" "$DIST.old"
  mv "$tmp" "$DIST"
  rm -rf "$DIST.old"
}

if [ -s "$OUT/manifest.json" ]; then
  install_dist
  say "up to date (cache $OUT) -> dist/host"
  exit 0
fi

say "building $HASH (kernel $KERNEL_PKG $KERNEL_VERSION) in $CACHE_ROOT"
mkdir -p "$CACHE_ROOT/debs"
WORK=$(mktemp -d "$CACHE_ROOT/.build-$HASH.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Logs live outside the temp dir so that a failed step's log survives it.
LOGS=$CACHE_ROOT/logs/$HASH
rm -rf "$LOGS"
mkdir -p "$LOGS" "$WORK/out"
ROOT=$WORK/root
KX=$WORK/kernel

# --- the hypervisor -----------------------------------------------------------
step hypervisor sh -c "gunzip -c /boot/xen-4.17-amd64.gz > '$WORK/out/xen'"

# --- dom0's kernel and modules --------------------------------------------------
DEB=$CACHE_ROOT/debs/${KERNEL_PKG}_${KERNEL_VERSION}_amd64.deb
fetch_kernel() {
  [ -s "$DEB" ] && return 0
  local d
  d=$(mktemp -d "$CACHE_ROOT/debs/.dl.XXXXXX")
  # apt drops privileges to _apt for downloads; let it write there.
  chmod 755 "$d"; chown _apt "$d" 2>/dev/null || true
  (cd "$d" && apt-get download "$KERNEL_PKG=$KERNEL_VERSION")
  mv "$d"/*.deb "$DEB"
  rm -rf "$d"
}
step kernel-download fetch_kernel
# Only the kernel and the module directories dom0 loads from (the whole
# package unpacks to ~400 MB); depmod then sees that subset.
extract_kernel() {
  mkdir -p "$KX"
  dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$KX" --wildcards \
    './boot/vmlinuz-*' './lib/modules/*/modules.order' './lib/modules/*/modules.builtin*' \
    './lib/modules/*/kernel/drivers/xen/*' './lib/modules/*/kernel/drivers/net/ethernet/intel/e1000/*'
}
step kernel-extract extract_kernel
KVER=$(ls "$KX/lib/modules" | head -n1)
cp "$KX/boot/vmlinuz-$KVER" "$WORK/out/vmlinuz"
step kernel-depmod depmod -b "$KX" "$KVER"

# --- dom0's root file system -----------------------------------------------------
# Every tool is in /usr/bin, which is on any PATH dropbear or a script may use.
# /bin, /sbin, /lib and /lib64 are real directories, not links into /usr:
# archives appended at boot may carry directory entries of those names, and
# the kernel's unpacker replaces a symlink by such a directory.
make_tree() {
  mkdir -p "$ROOT"/{bin,sbin,lib/x86_64-linux-gnu,lib64,usr/bin,usr/sbin,usr/lib,dev,proc,sys,run,tmp,root/.ssh,mnt}
  mkdir -p "$ROOT"/var/{lib/xen,lib/xenstored,log/xen/console} "$ROOT/etc/dropbear"
  ln -s ../run "$ROOT/var/run"
  chmod 1777 "$ROOT/tmp"
  # The kernel opens /dev/console for init before anything is mounted.
  mknod -m 600 "$ROOT/dev/console" c 5 1
  mknod -m 666 "$ROOT/dev/null" c 1 3
  chmod 700 "$ROOT/root" "$ROOT/root/.ssh"
  # busybox for everything basic; init is busybox init (so poweroff works)
  cp /bin/busybox "$ROOT/usr/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do
    [ -e "$ROOT/usr/bin/$a" ] || ln -s busybox "$ROOT/usr/bin/$a"
  done
  ln -s usr/bin/busybox "$ROOT/init"
  ln -s ../usr/bin/busybox "$ROOT/bin/sh"
  for a in poweroff reboot halt; do ln -s ../usr/bin/busybox "$ROOT/sbin/$a"; done
  cp -a "$RECIPE/rootfs/." "$ROOT/"
}
step rootfs make_tree

# Binaries with the libraries ldd names, at the paths they have on Debian.
copy_binaries() {
  local bins=() b lib
  for b in xenstored xenconsoled xl xen-init-dom0 libxl-save-helper; do
    mkdir -p "$ROOT$XEN_LIB"
    cp "$XEN_LIB/$b" "$ROOT$XEN_LIB/$b"
    ln -sf "../lib/xen-4.17/bin/$b" "$ROOT/usr/bin/$b"
    bins+=("$XEN_LIB/$b")
  done
  for b in /usr/bin/xenstore /usr/bin/xenstore-{read,write,rm,ls,list,chmod,watch,exists}; do
    cp "$b" "$ROOT$b"
    bins+=("$b")
  done
  cp /usr/sbin/dropbear "$ROOT/usr/bin/dropbear"
  bins+=(/usr/sbin/dropbear)
  # dropbear's client, as `ssh` too: `xl migrate NAME localhost` runs
  # `ssh localhost xl migrate-receive` (tools/xl/xl_migrate.c main_migrate).
  cp /usr/bin/dbclient "$ROOT/usr/bin/dbclient"
  ln -s dbclient "$ROOT/usr/bin/ssh"
  bins+=(/usr/bin/dbclient)
  # glibc dlopens libgcc_s for pthread_cancel (xl create needs it); ldd cannot see that.
  # libm: Node in dom0 (harness/embedded/node-runtime.ts) takes libc6's libraries
  # from here, so that one libc serves every program in dom0.
  for lib in /lib/x86_64-linux-gnu/libgcc_s.so.1 /lib/x86_64-linux-gnu/libm.so.6 $(for b in "${bins[@]}"; do ldd "$b"; done | awk '/=> \// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | LC_ALL=C sort -u); do
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
  done
}
step binaries copy_binaries

# The Xen device modules and the NIC driver, with what they depend on, loaded
# by init in this order.
copy_modules() {
  local m line
  : >"$ROOT/etc/xtv/modules"
  for m in xen-evtchn xen-privcmd xen-gntdev xen-gntalloc xenfs e1000; do
    modprobe -d "$KX" -S "$KVER" --show-depends "$m" | while read -r line; do
      set -- $line
      [ "$1" = insmod ] || continue
      local rel=${2#"$KX"}
      grep -qxF "$rel" "$ROOT/etc/xtv/modules" && continue
      mkdir -p "$ROOT$(dirname "$rel")"
      cp "$2" "$ROOT$rel"
      echo "$rel" >>"$ROOT/etc/xtv/modules"
    done
  done
  cat "$ROOT/etc/xtv/modules"
}
step modules copy_modules

install_keys() {
  cp "$KEYS/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"
  # root in dom0 may log in to dom0 with its own key, and knows dom0's host key
  # as localhost's: `ssh localhost` asks nothing.
  cp "$KEYS/dom0_id_dropbear" "$ROOT/root/.ssh/id_dropbear"
  chmod 600 "$ROOT/root/.ssh/id_dropbear"
  dropbearkey -y -f "$KEYS/dom0_id_dropbear" | grep '^ssh-' >>"$ROOT/root/.ssh/authorized_keys"
  local hostpub
  hostpub=$(dropbearkey -y -f "$KEYS/dropbear_ed25519_host_key" | grep '^ssh-' | cut -d' ' -f1-2)
  printf 'localhost %s\n127.0.0.1 %s\n' "$hostpub" "$hostpub" >"$ROOT/root/.ssh/known_hosts"
  chmod 600 "$ROOT/root/.ssh/authorized_keys"
  cp "$KEYS/dropbear_ed25519_host_key" "$ROOT/etc/dropbear/dropbear_ed25519_host_key"
  chmod 600 "$ROOT/etc/dropbear/dropbear_ed25519_host_key"
  cp "$KEYS/id_ed25519" "$KEYS/id_ed25519.pub" "$WORK/out/"
}
step keys install_keys

# Extensions (dom0/image/rootfs.d/*.sh), in name order.
run_hooks() {
  local h
  for h in "$RECIPE"/rootfs.d/*.sh; do
    [ -e "$h" ] || continue
    echo "== $h"
    mkdir -p "$CACHE_ROOT/hooks"
    ROOT=$ROOT CACHE=$CACHE_ROOT/hooks bash "$h"
  done
}
step hooks run_hooks

# Reproducible archive: sorted names, fixed mtimes and owners. Not compressed:
# gunzip under software emulation costs dom0 more time at every boot than
# reading ~10 MB more costs QEMU.
make_cpio() {
  find "$ROOT" -exec touch -h -d @0 {} +
  (cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) >"$WORK/out/dom0.cpio"
}
step initramfs make_cpio

write_manifest() {
  local f first=1
  {
    printf '{\n  "hash": "%s",\n  "kernelPackage": "%s",\n  "kernelVersion": "%s",\n  "kernelRelease": "%s",\n' \
      "$HASH" "$KERNEL_PKG" "$KERNEL_VERSION" "$KVER"
    printf '  "xenVersion": "%s",\n  "files": {\n' "$(pkg_version xen-hypervisor-4.17-amd64)"
    for f in xen vmlinuz dom0.cpio; do
      [ $first = 1 ] || printf ',\n'
      first=0
      printf '    "%s": { "bytes": %s, "sha256": "%s" }' "$f" "$(stat -c %s "$WORK/out/$f")" "$(sha256sum "$WORK/out/$f" | cut -d' ' -f1)"
    done
    printf '\n  }\n}\n'
  } >"$WORK/out/manifest.json"
}
step manifest write_manifest

rm -rf "$OUT"
mv "$WORK/out" "$OUT"
install_dist
# Keep the three newest builds (a build is ~15 MB); older ones only cost disk.
for old in $(ls -1dt "$CACHE_ROOT"/*/ | grep -E '/[0-9a-f]{16}/$' | tail -n +4); do
  rm -rf "$old" "$CACHE_ROOT/logs/$(basename "$old")"
done
say "built $HASH: $(du -h "$OUT/dom0.cpio" | cut -f1) initramfs -> dist/host"

#!/usr/bin/env bash
# Installs the Debian packages xtv needs to build its images and boot the
# embedded Xen host. Idempotent: does nothing when everything is present.
# Not root: prints the exact apt-get line to run instead, and exits 2.
set -euo pipefail

PACKAGES=(
  # the embedded host: hypervisor, toolstack, dom0 kernel, emulator
  xen-hypervisor-4.17-amd64 xen-utils-4.17 xenstore-utils
  qemu-system-x86 busybox-static cpio xz-utils zstd kmod
  dropbear-bin openssh-client
  # the guest kernel and QuickJS, built from Debian sources
  linux-source-6.1 build-essential bc flex bison libelf-dev libssl-dev
  dpkg-dev fakeroot
  # headless browser for the HTML report test (test/e2e/report-html.test.ts)
  chromium
  # the shell linter for the dom0 scripts (npm run lint, test/unit/dom0-scripts.test.ts)
  shellcheck
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "xtv: missing Debian packages: ${missing[*]}" >&2
  echo "xtv: run as root:  $line" >&2
  exit 2
fi
echo "xtv: installing Debian packages: ${missing[*]}" >&2
apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2

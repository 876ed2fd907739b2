#!/usr/bin/env bash
# QuickJS's qjs for the guest, built statically from Debian 13 (trixie)'s
# source package with Debian 12's compiler. Debian 12 has no quickjs; trixie's
# binary package needs glibc 2.38. The trixie source entry lives in a private
# apt configuration under APTDIR (its own sources, lists and cache), so
# nothing on the system sees trixie and nothing else upgrades.
#
#   build-qjs.sh version APTDIR                    prints the source version
#   build-qjs.sh build APTDIR VERSION OUTDIR WORKDIR LOGDIR
#
# `version` reads the private package lists, and fetches them first (about
# 10 MB) only when there are none or XTV_APT_REFRESH=1: a warm build needs no
# network. `build` writes OUTDIR/qjs (static, stripped) and OUTDIR/version
# (what `qjs -h` prints).
set -euo pipefail
# Part of qjs's cache key (with the source version): bump it when a change
# here changes the binary.
RECIPE=1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"

MIRROR=${XTV_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# apt_private APTDIR apt-get|apt-cache ARGS...: runs the apt tool with only
# the private sources, lists and cache.
apt_private() {
  local aptdir=$1 tool=$2; shift 2
  "$tool" -q \
    -o Dir::Etc::SourceList=/dev/null \
    -o Dir::Etc::SourceParts="$aptdir/sources.list.d" \
    -o Dir::State::Lists="$aptdir/lists" \
    -o Dir::Cache="$aptdir/cache" \
    -o APT::Sandbox::User="$(id -un)" \
    -o APT::Get::List-Cleanup=0 \
    "$@"
}

cmd=${1:-}
case $cmd in
  version)
    aptdir=$2
    mkdir -p "$aptdir/sources.list.d" "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
    cat >"$aptdir/sources.list.d/xtv-trixie-src.sources" <<SRC
Types: deb-src
URIs: $MIRROR
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    if [ "${XTV_APT_REFRESH:-0}" = 1 ] || ! ls "$aptdir"/lists/*_trixie_main_source_Sources* >/dev/null 2>&1; then
      apt_private "$aptdir" apt-get update >&2 ||
        die "cannot fetch trixie's source lists from $MIRROR (network? set XTV_DEBIAN_MIRROR)"
    fi
    v=$(apt_private "$aptdir" apt-cache showsrc --only-source quickjs 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -V | tail -n 1)
    [ -n "$v" ] || die "no quickjs source package in trixie's lists under $aptdir (try XTV_APT_REFRESH=1)"
    echo "$v"
    ;;
  build)
    [ $# -eq 6 ] || die "usage: build-qjs.sh build APTDIR VERSION OUTDIR WORKDIR LOGDIR"
    aptdir=$2 version=$3 out=$4 work=$5 logs=$6
    mkdir -p "$out" "$work/src" "$logs"
    fetch_source() { cd "$work/src" && apt_private "$aptdir" apt-get source --download-only "quickjs=$version"; }
    step "qjs: apt-get source --download-only quickjs=$version (trixie)" "$logs/qjs-1-source.log" fetch_source
    unpack() { dpkg-source --no-check -x "$(ls "$work"/src/quickjs_*.dsc | head -n 1)" "$work/quickjs"; }
    step "qjs: unpack the source package (with Debian's patches)" "$logs/qjs-2-unpack.log" unpack
    # LDFLAGS on the command line replaces the Makefile's own (which adds
    # -s): -static gives a qjs that needs no shared library in the guest.
    # The dlopen() warning is harmless: the guest loads no native modules.
    compile() { make -C "$work/quickjs" -j"${XTV_JOBS:-2}" qjs LDFLAGS="-static -s"; }
    step "qjs: make qjs LDFLAGS=-static" "$logs/qjs-3-make.log" compile
    # static: no program interpreter and no dynamic section (readelf is in binutils)
    if readelf -lW "$work/quickjs/qjs" | grep -q 'program interpreter\|DYNAMIC'; then
      die "qjs is not statically linked (readelf -l shows an interpreter or a dynamic section)"
    fi
    install -m 0755 "$work/quickjs/qjs" "$out/qjs"
    # qjs -h exits 1 after printing its usage
    { "$out/qjs" -h 2>&1 || true; } | awk '/QuickJS version/ { print $3; exit }' >"$out/version"
    [ -s "$out/version" ] || die "qjs -h printed no version"
    ;;
  *) die "usage: build-qjs.sh version APTDIR | build APTDIR VERSION OUTDIR WORKDIR LOGDIR" ;;
esac

# shellcheck shell=sh
# The start of every xtv dom0 script: dom0-script.ts runs this file, then the
# script's own, in one POSIX sh (dash, busybox sh), with the data only as
# positional parameters (`set -- ARGS`, each quoted): no value is ever pasted
# into script text. The first two parameters are this part's:
#   $1  the command's result marker, random per command: every line the
#       harness parses is "<marker> WORD [TEXT]" (xtv_frame), so that no
#       value a guest wrote can pass for one
#   $2  the bound on each xl call, in seconds (timeout(1) in dom0)

# Exit codes for the conditions the scripts name; enum Dom0Exit in
# dom0-script.ts has the same numbers (a unit test compares them).
# shellcheck disable=SC2034
XTV_EXIT_NO_DOMAIN=90 XTV_EXIT_NOT_OURS=91 XTV_EXIT_NO_CONFIG=92 XTV_EXIT_NO_SAVE_IMAGE=93 \
  XTV_EXIT_SUSPENDED=94 XTV_EXIT_NAME_IN_USE=95 XTV_EXIT_LOCK_HELD=96 XTV_EXIT_IMAGE_GONE=97 \
  XTV_EXIT_NO_FILE=98

xtv_mark=$1 xtv_bound=$2
shift 2

# xtv_frame WORD [TEXT]: one line of the result framing.
xtv_frame() { printf '%s %s\n' "$xtv_mark" "$*"; }

# xtv_xl ARGS: xl, stopped after the bound (TERM, then KILL 5 s later), so that
# nothing lingers in dom0: `xl shutdown -w` of a guest that acks and ignores
# never returns.
xtv_xl() { timeout -k 5 "$xtv_bound" xl "$@"; }

# xtv_domid NAME [CACHED]: sets d to NAME's domid and frames it ("domid N"),
# or exits NO_DOMAIN. `xl domid` is the slowest thing here (half a second in
# an emulated dom0), so the last domid the harness saw is tried first and
# kept only if xenstore still gives that domain NAME (a reboot or a restore
# makes a new domain and fails the check). With NAME empty, CACHED is taken
# as it is (the XAPI driver has the domid from XAPI).
xtv_domid() {
  if [ -n "${2:-}" ] && { [ -z "$1" ] || [ "$(xenstore-read "/local/domain/$2/name" 2>/dev/null)" = "$1" ]; }; then
    d=$2
  else
    [ -n "$1" ] || exit "$XTV_EXIT_NO_DOMAIN"
    d=$(xl domid "$1" 2>/dev/null) || exit "$XTV_EXIT_NO_DOMAIN"
  fi
  xtv_frame domid "$d"
}

# xtv_guest_node PATH DOMID: PATH exists, empty, and is the guest's (owner the
# domain, nobody else): a node dom0 creates takes its parent's permissions,
# and under control/ those let the guest read but not acknowledge.
xtv_guest_node() {
  xenstore-write -R -- "$1" '' || exit $?
  xenstore-chmod "$1" "n$2" || exit $?
}

# xtv_owned_config CFG MARKER: exits NO_CONFIG or NOT_OURS unless CFG is xtv's.
xtv_owned_config() {
  [ -e "$1" ] || exit "$XTV_EXIT_NO_CONFIG"
  head -n 1 "$1" | grep -qF -- "$2" || exit "$XTV_EXIT_NOT_OURS"
}

# xtv_create ARGS: `xl create ARGS`, tried once more when libxl gave up waiting
# for xenconsoled to set up the console (libxl_create.c
# console_xswait_callback, LIBXL_INIT_TIMEOUT 10 s, which an overloaded dom0
# can miss; libxl has destroyed the half-made domain by then). Any other
# failure is returned as it is. Two bounded xl calls: the harness counts it
# as two steps.
xtv_create() {
  xtv_out=$(xtv_xl create "$@" 2>&1) && return 0
  xtv_rc=$?
  case $xtv_out in
    *'console tty: timed out'*) xtv_xl create "$@" ;;
    *) printf '%s\n' "$xtv_out" >&2; return "$xtv_rc" ;;
  esac
}

# xtv_lock TOP WAIT_SEC: takes the install lock, a directory TOP/.lock holding
# its owner's pid. Installs and uninstalls share image files and directories,
# and other xtv processes (parallel runs, other users) may work on the same
# host at once. A lock whose owner is gone (killed with its SSH session) is
# taken over, so it can never stay held, and so is one that still has no pid
# 5 s on (its owner died between the mkdir and writing it); past WAIT_SEC,
# exits LOCK_HELD. The lock goes with the script, and TOP too once empty
# (the last uninstall).
xtv_lock() {
  xtv_top=$1 xtv_lock="$1/.lock" xtv_n=0 xtv_nopid=0
  # The holder may remove TOP on its way out: make it again.
  until mkdir -p "$xtv_top" && mkdir "$xtv_lock" 2>/dev/null; do
    xtv_o=$(cat "$xtv_lock/pid" 2>/dev/null)
    if [ -n "$xtv_o" ] && ! kill -0 "$xtv_o" 2>/dev/null; then rm -rf "$xtv_lock"; continue; fi
    if [ -z "$xtv_o" ]; then xtv_nopid=$((xtv_nopid + 1)); else xtv_nopid=0; fi
    if [ "$xtv_nopid" -gt 25 ]; then rm -rf "$xtv_lock"; xtv_nopid=0; continue; fi
    xtv_n=$((xtv_n + 1))
    if [ "$xtv_n" -gt $(($2 * 5)) ]; then echo "xtv: $xtv_lock is held by pid $xtv_o" >&2; exit "$XTV_EXIT_LOCK_HELD"; fi
    sleep 0.2
  done
  echo $$ > "$xtv_lock/pid"
  trap 'rm -rf "$xtv_lock"; rmdir "$xtv_top" 2>/dev/null' EXIT
  trap 'exit 1' INT TERM HUP
}

# xtv_creators CFG [xl]: the pids of the processes making the VM of CFG: xl's
# per-domain daemon keeps the argv it was started with (xl create [-p] CFG),
# and so does an xl create in progress, or the timeout(1) running it (not
# with "xl": xl's own only). The daemon of a domain that came by `xl migrate`
# is `xl migrate-receive`, with no config in its argv: it is told by the log
# it daemonised onto (tools/xl/xl_vmcontrol.c create_domain: xl-NAME.log
# under the name the domain had then, NAME--incoming; CFG is
# CONFIG_DIR/NAME.cfg). Only processes whose executable is xl or
# timeout count (a shell's argv, ours too, may hold the same words), and
# only theirs are read with a process of its own: `read` of comm is the
# shell's, and a process per /proc entry costs seconds in an emulated dom0.
xtv_creators() {
  xtv_n=${1##*/}
  xtv_n=${xtv_n%.cfg}
  for xtv_p in /proc/[0-9]*; do
    read -r xtv_comm < "$xtv_p/comm" 2>/dev/null || continue
    case $xtv_comm in xl) ;; timeout) [ "${2:-}" = xl ] && continue ;; *) continue ;; esac
    xtv_c=$(tr '\0' ' ' 2>/dev/null < "$xtv_p/cmdline") || continue
    case "$xtv_c" in
      *" create "*"$1 "*) echo "${xtv_p#/proc/}" ;;
      *" migrate-receive"*) [ "$(readlink "$xtv_p/fd/2" 2>/dev/null)" = "/var/log/xen/xl-$xtv_n--incoming.log" ] && echo "${xtv_p#/proc/}" ;;
    esac
  done
}

# xtv_oldest_first FILE...: those of the FILEs that exist, one per line, the
# least recently written first; nothing when none does. A domain's log is in
# two files after `xl migrate` (the receiver's domain is made as
# NAME--incoming: tools/xl/xl_vmcontrol.c create_domain), and read in the
# order it was written. Paths have no blanks (log directories, checked VM
# names).
xtv_oldest_first() {
  xtv_e=
  for xtv_f in "$@"; do [ -f "$xtv_f" ] && xtv_e="$xtv_e $xtv_f"; done
  [ -n "$xtv_e" ] || return 0
  # shellcheck disable=SC2086 # no blanks (above)
  ls -1tr -- $xtv_e
}

# xtv_xl_logs NAME: the logs xl's daemon for the VM writes: under its name,
# and under NAME--incoming when the domain came by `xl migrate`.
xtv_xl_logs() { printf '%s\n' "/var/log/xen/xl-$1.log" "/var/log/xen/xl-$1--incoming.log"; }

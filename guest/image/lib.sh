# Shared by guest/image/*.sh (sourced, not run): progress lines, named steps
# with their own logs, content hashes, and the temp-dir-then-rename rule for
# everything that lands in the cache.

# Any command that fails outside a named step still says where, instead of
# set -e ending the build without a word.
set -E
trap 'printf "guest/image: failed at %s:%s: %s\n" "${BASH_SOURCE[0]}" "$LINENO" "$BASH_COMMAND" >&2' ERR

XTV_IMAGE_START=${XTV_IMAGE_START:-$(date +%s)}
export XTV_IMAGE_START

say() { printf '[image %4ss] %s\n' "$(( $(date +%s) - XTV_IMAGE_START ))" "$*" >&2; }
die() { printf 'guest/image: %s\n' "$*" >&2; exit 1; }

# step NAME LOG COMMAND...: runs COMMAND with stdout and stderr in LOG. On
# failure: names the step and its log, shows the log's last lines, exits 1.
step() {
  local name=$1 log=$2; shift 2
  say "$name (log: $log)"
  if ! "$@" >"$log" 2>&1; then
    step_failed "$name" "$log"
  fi
}

step_failed() {
  printf 'guest/image: step "%s" failed; its log: %s\n--- last lines:\n' "$1" "$2" >&2
  tail -n 25 "$2" >&2
  exit 1
}

# step_progress NAME LOG EXPECTED_LINES COMMAND...: like step, for long
# commands (the kernel build): every 15 s prints how far the log has got
# (lines against EXPECTED_LINES, as a rough percentage) and its last line, so
# a user sees that minutes of silence are work, not a hang.
step_progress() {
  local name=$1 log=$2 expected=$3; shift 3
  say "$name (log: $log)"
  "$@" >"$log" 2>&1 &
  local pid=$! rc=0 last
  while kill -0 "$pid" 2>/dev/null; do
    # sleep in short slices so a fast command is not held up by the interval
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
      kill -0 "$pid" 2>/dev/null || break 2
      sleep 1
    done
    last=$(tail -n 1 "$log" 2>/dev/null | cut -c1-70)
    local n; n=$(wc -l <"$log")
    say "  $name: ~$(( n * 100 / expected > 99 ? 99 : n * 100 / expected ))% ($n/$expected lines); $last"
  done
  wait "$pid" || rc=$?
  [ "$rc" -eq 0 ] || step_failed "$name" "$log"
}

# hash_files FILE...: one sha256 over the names (basenames) and contents of
# FILEs, in the order given, so a renamed patch changes the hash too.
hash_files() {
  local f
  for f in "$@"; do
    printf '%s\0' "$(basename "$f")"
    sha256sum <"$f" | cut -d' ' -f1
  done | sha256sum | cut -d' ' -f1
}

# hash_strings STRING...: sha256 of the strings, NUL-separated.
hash_strings() { printf '%s\0' "$@" | sha256sum | cut -d' ' -f1; }

sha256_of() { sha256sum <"$1" | cut -d' ' -f1; }

# publish_dir TMP FINAL: moves a finished TMP into place as FINAL. A reader
# never sees a half-written FINAL: either the old complete one or the new
# complete one (rename is atomic; the swap window only ever holds complete
# directories).
publish_dir() {
  local tmp=$1 final=$2
  if [ -e "$final" ]; then
    local old
    old=$(mktemp -d "$final.old.XXXXXX")
    mv -T "$final" "$old/prev"
    mv -T "$tmp" "$final"
    rm -rf "$old"
  else
    mv -T "$tmp" "$final"
  fi
}

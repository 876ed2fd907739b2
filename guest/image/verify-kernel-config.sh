#!/usr/bin/env bash
# verify-kernel-config.sh FRAGMENT CONFIG
#
# Checks that every line of the config fragment holds in the final .config:
# `CONFIG_X=y` must be there exactly, `# CONFIG_X is not set` must not be set.
# Kconfig drops an option silently when a dependency is missing; this turns
# that into a failed build. Prints one line per option that did not hold and
# exits 1 if there is one; prints the number checked and exits 0 otherwise.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: verify-kernel-config.sh FRAGMENT CONFIG" >&2; exit 2; }
frag=$1 cfg=$2
bad=0 checked=0
while IFS= read -r line; do
  case $line in
    CONFIG_*=*)
      checked=$((checked + 1))
      if ! grep -qxF -- "$line" "$cfg"; then
        sym=${line%%=*}
        got=$(grep -E "^$sym=|^# $sym is not set" "$cfg" || true)
        echo "wanted $line, got: ${got:-$sym absent}"
        bad=1
      fi ;;
    "# CONFIG_"*" is not set")
      checked=$((checked + 1))
      sym=${line#\# }; sym=${sym%% *}
      if grep -q "^$sym=" "$cfg"; then
        echo "wanted $sym off, got: $(grep "^$sym=" "$cfg")"
        bad=1
      fi ;;
  esac
done <"$frag"
[ "$bad" -eq 0 ] && echo "all $checked options of $(basename "$frag") hold in $(basename "$cfg")"
exit "$bad"

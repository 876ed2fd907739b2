# xl-install-check.sh NAME CFG MARKER
# Before an install: an existing config must be xtv's (then nothing to check);
# without one, no domain may already use the name.
name=$1 cfg=$2 marker=$3
if [ -e "$cfg" ]; then
  head -n 1 "$cfg" | grep -qF -- "$marker" || exit "$XTV_EXIT_NOT_OURS"
  exit 0
fi
if xl domid "$name" >/dev/null 2>&1; then exit "$XTV_EXIT_NAME_IN_USE"; fi
exit 0

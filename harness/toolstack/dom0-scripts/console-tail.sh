# console-tail.sh MAX_BYTES FILE...
# A guest's console log: the name of the most recently written of the FILEs
# that exist on a first line, then the last MAX_BYTES of them all, oldest
# first (xtv_oldest_first), so that the text reads in the order it was
# written; exits NO_FILE when none exists. Several because xenconsoled names
# the file after the domain's name when it first sees the domain
# (tools/console/daemon/io.c create_console_log): a domain that came by
# `xl migrate` was first named NAME--incoming, and the guest's lines before
# the migration are in NAME's.
max=$1
shift
ordered=$(xtv_oldest_first "$@")
[ -n "$ordered" ] || exit "$XTV_EXIT_NO_FILE"
printf '%s\n' "$ordered" | tail -n 1
# shellcheck disable=SC2086 # no blanks in the paths (xtv_oldest_first)
cat -- $ordered | tail -c "$max"

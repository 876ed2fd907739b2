# xl-list-owned.sh CONFIG_DIR MARKER
# The VMs whose config's first line has the marker: one line each, the name,
# a tab, then that first line (it carries the owner record). One awk for
# every config (a head, a grep and a basename per file cost dom0 a fork
# each). No config at all: the glob stays as it is and awk says nothing.
awk -v m="$2" 'FNR == 1 && index($0, m) { f = FILENAME; sub(/^.*\//, "", f); sub(/\.cfg$/, "", f); print f "\t" $0 }' "$1"/*.cfg 2>/dev/null
exit 0

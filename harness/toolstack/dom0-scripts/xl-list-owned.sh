# xl-list-owned.sh CONFIG_DIR MARKER
# The VMs whose config's first line has the marker: one line each, the name,
# a tab, then that first line (it carries the owner record). One awk for
# every config (a head, a grep and a basename per file cost dom0 a fork
# each). No config at all: the glob stays as it is and awk says nothing.
# Each file is read with getline, not as awk's input: busybox awk stops at the
# first input file it cannot open, so a config removed between the glob and
# the read (another run uninstalling its VM) hid every config after it.
awk -v m="$2" 'BEGIN {
  for (i = 1; i < ARGC; i++) {
    f = ARGV[i]
    if ((getline first < f) > 0 && index(first, m)) { n = f; sub(/^.*\//, "", n); sub(/\.cfg$/, "", n); print n "\t" first }
    close(f)
  }
  exit
}' "$1"/*.cfg
exit 0

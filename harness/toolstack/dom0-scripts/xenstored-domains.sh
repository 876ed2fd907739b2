# xenstored-domains.sh
# xenstored's own list of domains: the homes under /local/domain and the
# name in each, read with xenstore-list and xenstore-read only (neither xl
# nor the toolstack's API), so that the harness can hold a toolstack's
# account of a VM against it. Frames "list D..." (every domid), then, per
# xenstore-read run, "names D..." followed by one escaped name per line
# (xenstore-read escapes newlines: no name can break the framing), and
# "end", or "noname D" where the run stopped (a home without a name, or one
# removed meanwhile); the next run starts after D.
ds=$(xenstore-list /local/domain) || exit 1
# shellcheck disable=SC2086 # one word per domid
set -- $ds
xtv_frame list "$@"
while [ $# -gt 0 ]; do
  p=
  for d in "$@"; do p="$p /local/domain/$d/name"; done
  xtv_frame names "$@"
  # xenstore-read stops at the first path it cannot read and names it on stderr.
  # shellcheck disable=SC2086 # one word per path
  { err=$(xenstore-read $p 2>&1 >&3); } 3>&1 && { xtv_frame end; break; }
  bad=${err##*/local/domain/}
  bad=${bad%%/*}
  xtv_frame noname "$bad"
  while [ $# -gt 0 ]; do k=$1; shift; [ "$k" = "$bad" ] && break; done
done
exit 0

# read-many.sh NAME DOMID KEY...
# Reads KEYs (relative to the domain's home) in as few xenstore-read runs as
# the absent keys allow (processes are what costs in an emulated dom0). Each
# run frames "values", then prints one escaped value per line (xenstore-read
# escapes newlines: no value can break the framing), and frames "end", or
# "absent KEY" where it stopped; the next run starts after KEY. The domain is
# given by DOMID, else looked up by NAME. When both are given (a domid the
# harness cached) and the first key is "name", that read checks the domid
# without a process of its own: absent, the cached domain is gone, so NAME is
# looked up again and the read starts over, once. Frames "domid D" for the
# domain read.
name=$1 d=$2 xtv_retry=
shift 2
if [ -z "$d" ]; then
  d=$(xl domid "$name" 2>/dev/null) || exit "$XTV_EXIT_NO_DOMAIN"
elif [ -n "$name" ] && [ "${1:-}" = name ]; then
  xtv_retry=1
fi
xtv_frame domid "$d"
while [ $# -gt 0 ]; do
  p=
  for k in "$@"; do p="$p /local/domain/$d/$k"; done
  xtv_frame values
  # xenstore-read stops at the first key it cannot read and names it on stderr.
  # shellcheck disable=SC2086 # one word per key
  { err=$(xenstore-read $p 2>&1 >&3); } 3>&1 && { xtv_frame end; break; }
  bad=${err##*/local/domain/"$d"/}
  if [ -n "$xtv_retry" ] && [ "$bad" = name ]; then
    xtv_retry=
    d=$(xl domid "$name" 2>/dev/null) || exit "$XTV_EXIT_NO_DOMAIN"
    xtv_frame domid "$d"
    continue
  fi
  xtv_frame absent "$bad"
  while [ $# -gt 0 ]; do k=$1; shift; [ "$k" = "$bad" ] && break; done
done
exit 0

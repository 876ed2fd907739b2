# xl-missing-images.sh FILE...
# Frames "missing I" for each FILE (by its index) dom0 does not have yet.
# Image files are named by content and only ever put in place by a rename
# once their sha256 checked out, so one that exists is right.
i=0
for f in "$@"; do
  [ -s "$f" ] || xtv_frame missing "$i"
  i=$((i + 1))
done
exit 0

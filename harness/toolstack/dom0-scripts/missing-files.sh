# missing-files.sh FILE...
# Frames "missing I" for each FILE (by its index) dom0 does not have yet.
# The drivers name the files they copy by content and only ever put them in
# place by a rename once their sha256 checked out (put-file.sh), so one that
# exists is right.
i=0
for f in "$@"; do
  [ -s "$f" ] || xtv_frame missing "$i"
  i=$((i + 1))
done
exit 0

# xenstore-watch.sh PATH...
# One xenstore-watch per PATH, each event framed "event PATH" (the path that
# fired), then "ready" once all are started. Nothing lingers in dom0: the
# watches stop when stdin ends, which is what happens when the SSH session
# closes, however the harness's side ends (close(), Ctrl-C, a killed process).
for p in "$@"; do
  xenstore-watch "$p" | while IFS= read -r l; do xtv_frame event "$l"; done &
done
xtv_frame ready
cat > /dev/null
kill 0

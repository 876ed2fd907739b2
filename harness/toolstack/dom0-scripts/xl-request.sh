# xl-request.sh REQUEST NAME CFG SAVE SAVE_DIR MARKER RESTART_WAIT_SEC
# One power request, as the xl model (harness/matrix/model-xl.ts) assumes:
#   clean_shutdown  xl shutdown NAME   (no -w: returns after the guest's ack)
#   clean_reboot    xl reboot NAME
#   hard_shutdown   xl destroy NAME    (of a saved VM: discards the save image)
#   hard_reboot     xl destroy NAME; xl create CFG
#   suspend         xl save NAME SAVE  (saved aside and renamed: complete or absent)
#   resume          xl restore SAVE; rm SAVE
#   pause/unpause   xl pause/unpause NAME
#   migrate         xl migrate NAME localhost  (over `ssh localhost`, as osstest does)
request=$1 name=$2 cfg=$3 save=$4 savedir=$5 marker=$6 restart_wait=$7

xtv_request() {
  case $request in
    clean_shutdown) xtv_xl shutdown "$name" ;;
    clean_reboot) xtv_xl reboot "$name" ;;
    pause) xtv_xl pause "$name" ;;
    unpause) xtv_xl unpause "$name" ;;
    migrate) xtv_xl migrate "$name" localhost ;;
    hard_shutdown)
      # A saved VM has no domain: its "hard shutdown" discards the save image.
      if ! xl domid "$name" >/dev/null 2>&1 && [ -e "$save" ]; then rm -f "$save"; exit 0; fi
      xtv_xl destroy "$name" ;;
    hard_reboot)
      xtv_owned_config "$cfg" "$marker"
      xtv_xl destroy "$name" || exit $?
      xtv_create "$cfg" ;;
    suspend)
      mkdir -p "$savedir" || exit 1
      xtv_xl save "$name" "$save.part" || { rc=$?; rm -f "$save.part"; exit $rc; }
      mv "$save.part" "$save" ;;
    resume)
      [ -e "$save" ] || exit "$XTV_EXIT_NO_SAVE_IMAGE"
      xtv_xl restore "$save" || exit $?
      rm -f "$save" ;;
    *) echo "xtv: no such request: $request" >&2; exit 2 ;;
  esac
}

# resume works on a save image, not a domain: nothing to wait for.
if [ "$request" = resume ]; then (xtv_request); exit $?; fi

# When xl found no domain while xl is re-creating the VM (the guest rebooted
# itself, or on_poweroff / on_crash say restart: xl's daemon destroys the
# domain and creates the new one about 2 s later, longer under load), wait
# for the new domain and run the request once more, so that `xtv reboot`
# right after a guest's own reboot asks the new domain instead of failing.
# What counts is xl's "invalid domain identifier", not whether a domain
# exists afterwards. A VM that is simply off has no xl process for its
# config, and fails at once.
#
# xl's per-domain daemon, or an xl create in progress (xtv_creators).
xtv_restarting() { [ -n "$(xtv_creators "$cfg")" ]; }
xtv_err=/tmp/xtv-request-err.$$
(xtv_request) 2>"$xtv_err"; rc=$?
if [ $rc -ne 0 ]; then
  cat "$xtv_err" >&2
  if grep -q "invalid domain identifier" "$xtv_err" && xtv_restarting; then
    echo "xtv: $name had no domain while xl re-creates it; waiting for the new one" >&2
    i=0
    until xl domid "$name" >/dev/null 2>&1; do
      i=$((i + 1))
      [ $i -gt $((restart_wait * 2)) ] && break
      xtv_restarting || break
      sleep 0.5
    done
    (xtv_request); rc=$?
  fi
fi
rm -f "$xtv_err"
exit $rc

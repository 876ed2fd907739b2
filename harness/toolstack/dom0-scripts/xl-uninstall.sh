# xl-uninstall.sh TOP LOCK_WAIT_SEC NAME CFG SAVE IMAGE_DIR CONFIG_DIR SAVE_DIR MARKER
# Removes what install made, under the install lock: destroys the VM's domain
# if one runs, then its config, its save image, and every image directory no
# other xtv config names. A config that is not xtv's is left alone.
top=$1 wait=$2 name=$3 cfg=$4 save=$5 imagedir=$6 configdir=$7 savedir=$8 marker=$9
xtv_lock "$top" "$wait"
if [ -e "$cfg" ]; then head -n 1 "$cfg" | grep -qF -- "$marker" || exit "$XTV_EXIT_NOT_OURS"; fi
if [ -e "$cfg" ] && xl domid "$name" >/dev/null 2>&1; then xtv_xl destroy "$name" || exit $?; fi
rm -f "$cfg" "$save"
# Image directories end in "/": a config names <dir>/<file>, so the prefix match is exact.
for d in "$imagedir"/*/; do
  [ -d "$d" ] || continue
  grep -qsF -- "$d" "$configdir"/*.cfg || rm -rf "$d"
done
# The directories go only with the last config: while any VM is installed, its
# xl save may be about to write into the save directory.
rmdir "$configdir" 2>/dev/null && rmdir "$savedir" "$imagedir" 2>/dev/null
exit 0

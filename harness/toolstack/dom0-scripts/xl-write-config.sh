# xl-write-config.sh TOP LOCK_WAIT_SEC KERNEL RAMDISK CONFIG_DIR CFG  < config text
# Writes the VM's config under the install lock, and only while both images
# are there: another process's uninstall removes images no config names, and
# ours names them only once this config exists. Same bytes: nothing to do.
# Otherwise written aside and renamed, so a half-written config never counts.
top=$1 wait=$2 kernel=$3 ramdisk=$4 dir=$5 cfg=$6
xtv_lock "$top" "$wait"
{ [ -s "$kernel" ] && [ -s "$ramdisk" ]; } || exit "$XTV_EXIT_IMAGE_GONE"
mkdir -p "$dir" || exit 1
tmp="$cfg.tmp.$$"
cat > "$tmp" || exit 1
if cmp -s "$tmp" "$cfg"; then rm -f "$tmp"; else mv "$tmp" "$cfg"; fi

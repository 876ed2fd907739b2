# xl-start.sh NAME CFG SAVE MARKER PAUSED(0|1)
# `xl create [-p] CFG` of an xtv config, refused while the VM is suspended to a save image.
name=$1 cfg=$2 save=$3 marker=$4 paused=$5
xtv_owned_config "$cfg" "$marker"
if [ -e "$save" ] && ! xl domid "$name" >/dev/null 2>&1; then exit "$XTV_EXIT_SUSPENDED"; fi
if [ "$paused" = 1 ]; then xtv_create -p "$cfg"; else xtv_create "$cfg"; fi

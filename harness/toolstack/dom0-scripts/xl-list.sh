# xl-list.sh SAVE_DIR
# `xl list`, then (framed "saved") the save directory's files: a VM with a
# save image and no domain is suspended.
xtv_xl list || exit $?
xtv_frame saved
ls "$1" 2>/dev/null
exit 0

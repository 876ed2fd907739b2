# xl-log.sh NAME
# The last lines of xl's own log for the VM (its per-domain daemon writes
# /var/log/xen/xl-NAME.log: restarts, shutdown reasons; after `xl migrate`,
# xl-NAME--incoming.log too: xtv_xl_logs), oldest first; nothing when there
# is none.
# shellcheck disable=SC2046 # no blanks: checked VM names
ordered=$(xtv_oldest_first $(xtv_xl_logs "$1"))
[ -n "$ordered" ] || exit 0
# shellcheck disable=SC2086
cat -- $ordered | tail -n 60
exit 0

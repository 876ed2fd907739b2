# xl-log.sh NAME
# The last lines of xl's own log for the VM (its per-domain daemon writes
# /var/log/xen/xl-NAME.log: restarts, shutdown reasons), oldest first with the
# log of a daemon that took the domain over by `xl migrate` (the receiver
# daemonises as NAME--incoming: tools/xl/xl_vmcontrol.c create_domain names
# its log after the domain's name then); nothing when there is none.
logs=
for f in "/var/log/xen/xl-$1.log" "/var/log/xen/xl-$1--incoming.log"; do [ -f "$f" ] && logs="$logs $f"; done
[ -n "$logs" ] || exit 0
# shellcheck disable=SC2046,SC2086 # no blanks: checked VM names
cat -- $(ls -1tr -- $logs) | tail -n 60
exit 0

# xl-log.sh NAME
# The last lines of xl's own log for the VM (its per-domain daemon writes
# /var/log/xen/xl-NAME.log: restarts, shutdown reasons); nothing when there is none.
tail -n 60 "/var/log/xen/xl-$1.log" 2>/dev/null
exit 0

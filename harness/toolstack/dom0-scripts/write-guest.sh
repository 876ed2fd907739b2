# write-guest.sh NAME DOMID REL_PATH VALUE GUEST_WRITABLE(0|1)
# Writes a node under the domain's home, raw (-R: no escape processing; --: a
# value may start with "-"). GUEST_WRITABLE: the node is first made the
# guest's (xtv_guest_node) and only then given its value. The domain is found
# as xtv_domid does.
xtv_domid "$1" "$2"
p=/local/domain/$d/$3
[ "$5" = 1 ] && xtv_guest_node "$p" "$d"
xenstore-write -R -- "$p" "$4"

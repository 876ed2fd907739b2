# write-guest.sh NAME DOMID REL_PATH VALUE GUEST_WRITABLE(0|1)
# Writes a node under the domain's home, raw (-R: no escape processing; --: a
# value may start with "-"). GUEST_WRITABLE: the node is first created empty
# and handed to the guest (`xenstore-chmod p n<domid>`: owner the guest,
# nobody else) and only then given its value; a new node under control/ would
# otherwise inherit a perm that lets the guest read but not acknowledge. The
# domain is found as xtv_domid does.
xtv_domid "$1" "$2"
p=/local/domain/$d/$3
if [ "$5" = 1 ]; then
  xenstore-write -R -- "$p" '' || exit $?
  xenstore-chmod "$p" "n$d" || exit $?
fi
xenstore-write -R -- "$p" "$4"

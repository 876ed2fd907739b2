# console-tail.sh FILE MAX_BYTES
# The last MAX_BYTES of a guest's console log; exits NO_FILE when there is none.
[ -f "$1" ] || exit "$XTV_EXIT_NO_FILE"
tail -c "$2" "$1"

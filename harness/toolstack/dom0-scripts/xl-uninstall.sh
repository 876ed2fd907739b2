# xl-uninstall.sh TOP LOCK_WAIT_SEC NAME CFG SAVE IMAGE_DIR CONFIG_DIR SAVE_DIR MARKER [CONSOLE_LOG...]
# Removes what install made, under the install lock: destroys the VM's domain
# if one runs, and the ones xl kept of it, then its config, its save image,
# its core dump, its console and xl logs, and every image directory no other xtv
# config names. A config that is not xtv's is left alone.
top=$1 wait=$2 name=$3 cfg=$4 save=$5 imagedir=$6 configdir=$7 savedir=$8 marker=$9
shift 9
xtv_lock "$top" "$wait"
if [ -e "$cfg" ]; then head -n 1 "$cfg" | grep -qF -- "$marker" || exit "$XTV_EXIT_NOT_OURS"; fi
if [ -e "$cfg" ]; then
  # xl's daemon for this config first: between destroying a domain and making
  # it again (on_reboot=restart: "Done. Rebooting now", sleep(2), create; long
  # under load) it holds the config in memory and would make the domain again
  # after the config is gone. Killed, it makes nothing more.
  for pid in $(xtv_creators "$cfg" xl); do kill -9 "$pid" 2>/dev/null; done
  # The domain, and the old ones on_*=rename-restart kept: xl_vmcontrol.c
  # preserve_domain renames each to NAME-YYYYMMDDTHHMMZ (strftime
  # "-%Y%m%dT%H%MZ", libxl_domain_preserve) and leaves it shut down.
  # And the two names a live migration gives it while it runs (NAME--incoming
  # at the receiver, xl_vmcontrol.c create_domain; NAME--migratedaway at the
  # sender, xl_migrate.c migrate_domain), which a migration that failed in its
  # final handshake leaves.
  doms=$(xtv_xl list | awk -v n="$name" 'NR > 1 && ($1 == n || $1 == n "--incoming" || $1 == n "--migratedaway" || (index($1, n "-") == 1 && substr($1, length(n) + 2) ~ /^[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9]Z$/)) { print $1 }') || exit $?
  for dom in $doms; do xtv_xl destroy "$dom" || exit $?; done
  # Its core dump (on_*=coredump-*): xl_vmcontrol.c handle_domain_death writes
  # XEN_DUMP_DIR/NAME, Xen's default --with-xen-dumpdir /var/lib/xen/dump.
  rm -f "/var/lib/xen/dump/$name"
  # Its console logs and xl's (xl-log.sh): a VM made later under this name
  # starts with none (both append, and after a migration write NAME--incoming's).
  [ $# -gt 0 ] && rm -f -- "$@"
  # shellcheck disable=SC2046 # no blanks: checked VM names
  rm -f -- $(xtv_xl_logs "$name")
fi
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

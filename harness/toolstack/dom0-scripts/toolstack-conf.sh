# toolstack-conf.sh
# The configuration files of xenopsd and xapi whose timeouts the XAPI driver
# reads (xapi-timeouts.ts): each present file framed "file DAEMON PATH", then
# its text. xenopsd reads /etc/xenopsd.conf and the files in
# /etc/xenopsd-xc.conf.d/; xapi /etc/xapi.conf and /etc/xapi.conf.d/
# (docs/xapi-behaviour.md says where each is read upstream).
for f in /etc/xenopsd.conf /etc/xenopsd-xc.conf.d/*; do
  [ -f "$f" ] || continue
  xtv_frame file xenopsd "$f"
  cat "$f"
  echo
done
for f in /etc/xapi.conf /etc/xapi.conf.d/*; do
  [ -f "$f" ] || continue
  xtv_frame file xapi "$f"
  cat "$f"
  echo
done
exit 0

# writable-dirs.sh DIR...
# Whether root can create files in each DIR (made if missing), for xtv
# doctor: a file is made and removed in each; the first that fails stops it.
for dir in "$@"; do
  mkdir -p "$dir" || exit 1
  f=$(mktemp "$dir/.xtv-doctor.XXXXXX") || exit 1
  rm -f "$f"
done

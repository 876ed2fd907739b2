# put-file.sh TMP FILE SHA256
# Renames a copied file into place once its sha256 checks out; removes it otherwise.
tmp=$1 file=$2 sha=$3
sum=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$sum" = "$sha" ]; then
  mv "$tmp" "$file"
else
  rm -f "$tmp"
  echo "sha256 $sum, expected $sha" >&2
  exit 1
fi

#!/usr/bin/env bash
# Fetches the Boston housing table (506 rows, 13 features, the median value MEDV as the target; Harrison and
# Rubinfeld 1978, the UCI copy) from Debian's python3-sklearn package with `apt-get download`, checks it against
# data/boston.sha256, and installs it into DEST (default: data/cache/boston) as boston.csv: a header row, then the
# features and the target of each row. Nothing is installed unless the checksum matches.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/cache/boston}"
source "$here/sklearn-package.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sklearn_unpack "$work"
sklearn_check "$work" "$here/boston.sha256"
# The first line gives the counts (506,13); the second is the header.
tail -n +2 "$work/root/$sklearn_tables/boston_house_prices.csv" | tr -d '"\r' > "$work/boston.csv"
mkdir -p "$dest"
mv "$work/boston.csv" "$dest/boston.csv"
echo "fetch-boston: the Boston housing table ($(($(wc -l < "$dest/boston.csv") - 1)) rows) is in $dest"

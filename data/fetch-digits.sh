#!/usr/bin/env bash
# Fetches the UCI optical-recognition digits (1 797 images of 8×8 cells, each cell a count from 0 to 16 of the
# pixels set in a 4×4 block of the 32×32 bitmap) from Debian's python3-sklearn package with `apt-get download`,
# checks the table against data/digits.sha256, and installs it into DEST (default: data/cache/digits) as
# counts.csv (one image per line, the 64 counts, no label or header: a 1797 × 64 count matrix, what
# `ilgpu-vae double-def` reads) and labels.csv (the digit of each line). Nothing is installed unless the checksum
# matches.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/cache/digits}"
source "$here/sklearn-package.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sklearn_unpack "$work"
sklearn_check "$work" "$here/digits.sha256"
table="$work/root/$sklearn_tables/digits.csv.gz"
# Each line: 64 counts, then the label.
zcat "$table" | cut -d, -f1-64 > "$work/counts.csv"
zcat "$table" | cut -d, -f65 > "$work/labels.csv"
mkdir -p "$dest"
mv "$work/counts.csv" "$dest/counts.csv"
mv "$work/labels.csv" "$dest/labels.csv"
echo "fetch-digits: the digits count matrix ($(wc -l < "$dest/counts.csv") rows) is in $dest"

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
package="python3-sklearn"
table="usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

for tool in apt-get dpkg-deb; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "fetch-digits: $tool is needed to fetch $package's digits table (a Debian or Ubuntu machine), or put counts.csv into $dest yourself" >&2
    exit 1
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-digits: apt-get download $package"
(cd "$work" && apt-get download -q "$package" >/dev/null 2>"$work/apt.log") || {
  cat "$work/apt.log" >&2
  echo "fetch-digits: apt-get download $package failed (is the package index current? try apt-get update)" >&2
  exit 1
}
dpkg-deb -x "$work"/python3-sklearn_*.deb "$work/root"
(cd "$work/root/$(dirname "$table")" && sha256sum --check --quiet "$here/digits.sha256") || {
  echo "fetch-digits: checksum mismatch: $package's digits table is not the one this project expects" >&2
  exit 1
}
mkdir -p "$dest"
# Each line: 64 counts, then the label.
zcat "$work/root/$table" | cut -d, -f1-64 > "$work/counts.csv"
zcat "$work/root/$table" | cut -d, -f65 > "$work/labels.csv"
mv "$work/counts.csv" "$dest/counts.csv"
mv "$work/labels.csv" "$dest/labels.csv"
echo "fetch-digits: the digits count matrix ($(wc -l < "$dest/counts.csv") rows) is in $dest"

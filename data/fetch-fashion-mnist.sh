#!/usr/bin/env bash
# Fetches Fashion-MNIST from the Debian package dataset-fashion-mnist with `apt-get download` (no install, no
# root needed for the download itself), unpacks the four .gz IDX files, checks them against
# data/fashion-mnist.sha256 and installs them into DEST (default: data/cache/fashion-mnist).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/cache/fashion-mnist}"

source "$here/apt-package.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
apt_unpack dataset-fashion-mnist "$work" || {
  echo "fetch-fashion-mnist: could not fetch the package; the four IDX files put into $dest by hand do as well" >&2
  exit 1
}
source="$work/root/usr/share/datasets/fashion-mnist"
(cd "$source" && sha256sum --check --quiet "$here/fashion-mnist.sha256") || {
  echo "fetch-fashion-mnist: checksum mismatch: the package's files are not the Fashion-MNIST files this project expects" >&2
  exit 1
}
mkdir -p "$dest"
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  mv "$source/$name.gz" "$dest/$name.gz"
done
echo "fetch-fashion-mnist: Fashion-MNIST is in $dest"

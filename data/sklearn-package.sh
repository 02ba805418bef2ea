# Sourced by the fetch scripts of the tables that Debian's python3-sklearn ships (digits, boston, diabetes); it brings
# apt-package.sh with it. sklearn_unpack WORK downloads the package with `apt-get download` into WORK and unpacks it into WORK/root;
# sklearn_check WORK SUMS checks the named tables under its datasets/data folder against the SHA-256 file SUMS.
source "$(dirname "${BASH_SOURCE[0]}")/apt-package.sh"
sklearn_tables="usr/lib/python3/dist-packages/sklearn/datasets/data"

sklearn_unpack() {
  apt_unpack python3-sklearn "$1"
}

sklearn_check() {
  local work="$1" sums="$2"
  (cd "$work/root/$sklearn_tables" && sha256sum --check --quiet "$sums") || {
    echo "fetch: checksum mismatch: python3-sklearn's tables are not the ones this project expects ($sums)" >&2
    return 1
  }
}

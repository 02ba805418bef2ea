# Sourced by the fetch scripts of the tables that Debian's python3-sklearn ships (digits, boston, diabetes):
# sklearn_unpack WORK downloads the package with `apt-get download` into WORK and unpacks it into WORK/root;
# sklearn_check WORK SUMS checks the named tables under its datasets/data folder against the SHA-256 file SUMS.
sklearn_tables="usr/lib/python3/dist-packages/sklearn/datasets/data"

sklearn_unpack() {
  local work="$1" tool
  for tool in apt-get dpkg-deb; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "fetch: $tool is needed to fetch python3-sklearn's tables (a Debian or Ubuntu machine)" >&2
      return 1
    fi
  done
  echo "fetch: apt-get download python3-sklearn"
  if ! (cd "$work" && apt-get download -q python3-sklearn >/dev/null 2>"$work/apt.log"); then
    # A fresh machine's package lists may be stale or absent: refresh them once (this needs root) and try again.
    echo "fetch: refreshing the package lists (apt-get update) and trying again"
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$work" && apt-get download -q python3-sklearn >/dev/null 2>"$work/apt.log") || {
      cat "$work/apt.log" >&2
      echo "fetch: apt-get download python3-sklearn failed (as root, apt-get update, then run this again)" >&2
      return 1
    }
  fi
  dpkg-deb -x "$work"/python3-sklearn_*.deb "$work/root"
}

sklearn_check() {
  local work="$1" sums="$2"
  (cd "$work/root/$sklearn_tables" && sha256sum --check --quiet "$sums") || {
    echo "fetch: checksum mismatch: python3-sklearn's tables are not the ones this project expects ($sums)" >&2
    return 1
  }
}

# Sourced by the fetch scripts whose data set comes in a Debian package (python3-sklearn's tables, Fashion-MNIST):
# apt_unpack PACKAGE WORK downloads PACKAGE with `apt-get download` (no install) into WORK and unpacks it into
# WORK/root. A fresh machine's package lists may be stale or absent, so a failed download refreshes them once
# (apt-get update, which needs root) and tries again before giving up with apt-get's own message.
apt_unpack() {
  local package="$1" work="$2" tool
  for tool in apt-get dpkg-deb; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "fetch: $tool is needed to fetch $package (a Debian or Ubuntu machine)" >&2
      return 1
    fi
  done
  echo "fetch: apt-get download $package"
  if ! (cd "$work" && apt-get download -q "$package" >/dev/null 2>"$work/apt.log"); then
    echo "fetch: refreshing the package lists (apt-get update) and trying again"
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$work" && apt-get download -q "$package" >/dev/null 2>"$work/apt.log") || {
      cat "$work/apt.log" >&2
      echo "fetch: apt-get download $package failed (as root, apt-get update, then run this again)" >&2
      return 1
    }
  fi
  dpkg-deb -x "$work/${package}"_*.deb "$work/root"
}

#!/usr/bin/env bash
# Fetches the diabetes table (442 patients, 10 baseline variables, a measure of disease progression one year later
# as the target; Efron et al. 2004) from Debian's python3-sklearn package with `apt-get download`, checks the raw
# (unscaled) data and target against data/diabetes.sha256, and installs them into DEST (default:
# data/cache/diabetes) as diabetes.csv: a header row, then the features and the target of each row. Nothing is
# installed unless the checksums match.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/cache/diabetes}"
source "$here/sklearn-package.sh"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
sklearn_unpack "$work"
sklearn_check "$work" "$here/diabetes.sha256"
tables="$work/root/$sklearn_tables"
{
  echo "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target"
  paste -d ' ' <(zcat "$tables/diabetes_data_raw.csv.gz") <(zcat "$tables/diabetes_target.csv.gz") | tr -s ' ' ','
} > "$work/diabetes.csv"
mkdir -p "$dest"
mv "$work/diabetes.csv" "$dest/diabetes.csv"
echo "fetch-diabetes: the diabetes table ($(($(wc -l < "$dest/diabetes.csv") - 1)) rows) is in $dest"

#!/usr/bin/env bash
# Packs everything a GPU machine without .NET needs to verify IlgpuVae on CUDA in one command:
# self-contained builds of the test suite, ilgpu-vae and the BenchmarkDotNet suite (sharing one runtime folder),
# the PyTorch comparison scripts, MNIST as .gz, the digits count matrix and the Boston and diabetes tables (the GPU machine
# may have no network), and run.sh.
# Output: publish/gpu-verify.tar.xz (xz: about 48 MB where gzip gives over 60; kept under 60 MB).
#
#   bash scripts/gpu-verify.sh            # here: build the package
#   tar xJf gpu-verify.tar.xz || python3 -m tarfile -e gpu-verify.tar.xz .   # there (python3 if xz is absent)
#   bash gpu-verify/run.sh [OUT]          # there: check, tests, one epoch, benchmarks, PyTorch, summary
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stage="$root/publish/gpu-verify"
rm -rf "$stage" "$root/publish/gpu-verify.tar.gz" "$root/publish/gpu-verify.tar.xz"
mkdir -p "$stage/mnist"

publish() {
  dotnet publish "$1" -c Release -r linux-x64 --self-contained -o "$stage" \
    -p:PublishTrimmed=false -p:DebugType=none -p:GenerateDocumentationFile=false --nologo -v quiet
}
publish tests/Tests.csproj
publish src/Host/Host.csproj
publish bench/Bench.csproj

# MNIST travels with the package, compressed; the IDX reader reads .gz directly.
if [ ! -f data/cache/mnist/train-images-idx3-ubyte ]; then
  bash data/fetch-mnist.sh data/cache/mnist
fi
for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  gzip -9 -c "data/cache/mnist/$name" > "$stage/mnist/$name.gz"
done
# The digits count matrix for the double DEF (discrete.sh ddef20-10 pf20).
if [ ! -f data/cache/digits/counts.csv ]; then
  bash data/fetch-digits.sh data/cache/digits
fi
mkdir -p "$stage/digits"
cp data/cache/digits/counts.csv "$stage/digits/counts.csv"
# The regression tables for the deep GP (dgp.sh boston diabetes).
mkdir -p "$stage/tables"
for table in boston diabetes; do
  if [ ! -f "data/cache/$table/$table.csv" ]; then
    bash "data/fetch-$table.sh" "data/cache/$table"
  fi
  cp "data/cache/$table/$table.csv" "$stage/tables/$table.csv"
done
cp scripts/gpu-run.sh "$stage/run.sh"
cp scripts/gpu-table1.sh "$stage/table1.sh"
cp scripts/gpu-discrete.sh "$stage/discrete.sh"
cp scripts/gpu-dgp.sh "$stage/dgp.sh"
mkdir -p "$stage/compare"
cp bench/compare/run.sh bench/compare/pytorch_vae.py "$stage/compare/"
git rev-parse --short HEAD > "$stage/COMMIT" 2>/dev/null || echo unknown > "$stage/COMMIT"

tar -C "$root/publish" -cf - gpu-verify | xz -T0 -6 > "$root/publish/gpu-verify.tar.xz"
size=$(stat -c %s "$root/publish/gpu-verify.tar.xz")
echo "gpu-verify: publish/gpu-verify.tar.xz, $((size / 1048576)) MiB"
if [ "$size" -gt $((60 * 1048576)) ]; then
  echo "gpu-verify: the package is over 60 MB" >&2
  exit 1
fi

#!/usr/bin/env bash
# One machine, one run, both sides: `ilgpu-vae bench` against the PyTorch VAE example's model (eager, and
# torch.compile max-autotune where torch >= 2), same model, batch, steps and device-resident data; prints each
# side's figures and the ratio table. Run from the repository, or on a GPU machine from the gpu-verify folder.
#
#   bash bench/compare/run.sh [--device cpu|cuda] [--steps N] [--batch-size N] [--out DIR]
# Environment: ILGPU_VAE (command that runs ilgpu-vae; default: the published binary beside this script, else
# `dotnet run -c Release --project src/Host --`), PYTHON (a python with torch; default: the first that has it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
device=""; steps=469; batch=128; out="${OUT:-$PWD/bench-compare}"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"

if [ -z "${ILGPU_VAE:-}" ]; then
  if [ -x "$here/../ilgpu-vae" ]; then ILGPU_VAE="$here/../ilgpu-vae"
  else ILGPU_VAE="dotnet run -c Release --project $here/../../src/Host --"; fi
fi
if [ -z "${PYTHON:-}" ]; then
  for candidate in python3 /usr/bin/python3; do
    if "$candidate" -c "import torch" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
[ -n "${PYTHON:-}" ] || { echo "compare: no python with torch found (apt-get install python3-torch, or set PYTHON)" >&2; exit 1; }
if [ -z "$device" ]; then
  device=$("$PYTHON" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
fi
accelerator=$([ "$device" = cuda ] && echo cuda || echo cpu)
threads=$(nproc)

echo "== ilgpu-vae bench on $accelerator"
$ILGPU_VAE bench --accelerator "$accelerator" --steps "$steps" --batch-size "$batch" --csv "$out/ilgpu-vae.csv"

modes="eager"
if "$PYTHON" -c "import sys, torch; sys.exit(0 if int(torch.__version__.split('.')[0]) >= 2 else 1)"; then modes="eager compile"; fi
for mode in $modes; do
  echo "== pytorch $mode on $device"
  # OPENBLAS_CORETYPE pins old OpenBLAS builds to a safe kernel on some CPUs; unset here only, so the baseline
  # runs the kernel its BLAS would pick (see the tool library's env notes).
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PYTHON" "$here/pytorch_vae.py" --device "$device" --mode "$mode" \
    --steps "$steps" --batch-size "$batch" --threads "$threads" | tee "$out/pytorch-$mode.csv"
done

echo "== ratio table (ilgpu-vae samples/s ÷ baseline samples/s; above 1 means ilgpu-vae is faster)"
"$PYTHON" - "$out" $modes <<'PY'
import csv, sys
out, modes = sys.argv[1], sys.argv[2:]
ours = next(csv.DictReader(open(f"{out}/ilgpu-vae.csv")))
ours_rate = float(ours["samples_per_second"])
print(f"{'side':<60} {'samples/s':>10} {'ms/epoch':>10} {'ratio':>7}")
print(f"{'ilgpu-vae ' + ours['accelerator']:<60} {ours_rate:>10.0f} {float(ours['ms_per_epoch']):>10.0f} {'':>7}")
for mode in modes:
    row = next(csv.DictReader(open(f"{out}/pytorch-{mode}.csv")))
    rate = float(row["samples_per_second"])
    print(f"{row['framework']:<60} {rate:>10.0f} {float(row['ms_per_epoch']):>10.0f} {ours_rate / rate:>7.2f}")
PY

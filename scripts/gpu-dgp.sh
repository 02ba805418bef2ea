#!/usr/bin/env bash
# The deep GPs of issue 25 at the paper's length on a GPU machine, from the unpacked gpu-verify folder: the Boston
# housing and diabetes tables, 20 random 90/10 splits each, depths 1 (the single sparse GP), 2 and 3, 100 inducing
# points, Adam 0.01 for DGP_STEPS steps (default 20000, the paper's), S = 100 samples for the test log-likelihood
# (dgp-splits writes results.csv and summary.md, mean ± standard error); and MNIST classification with 2 layers
# (inner width 30 by the principal directions, softmax, batch 10000, 100 inducing points), MNIST_STEPS steps
# (default 20000). Every run is resumable: run the script again to go on where it stopped.
# Usage: bash gpu-verify/dgp.sh [OUT] [WHAT...]   (OUT default: $OUT or ./dgp-results; WHAT: boston diabetes mnist)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${OUT:-$PWD/dgp-results}}"
shift || true
what=("$@")
[ ${#what[@]} -eq 0 ] && what=(boston diabetes mnist)
steps="${DGP_STEPS:-20000}"
mnist_steps="${MNIST_STEPS:-20000}"
mkdir -p "$out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=0
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
for item in "${what[@]}"; do
  case "$item" in
    boston|diabetes)
      "$here/ilgpu-vae" dgp-splits --data "$here/tables/$item.csv" --dgp-layers 1,2,3 --splits 20 --steps "$steps" --eval-every "$steps" \
        --accelerator cuda --out "$out/$item" > "$out/$item.log" 2>&1
      echo "$item: dgp-splits exit $?"
      [ -f "$out/$item/summary.md" ] && cat "$out/$item/summary.md" ;;
    mnist)
      run="$out/mnist-dgp2"
      if [ -f "$run/model.safetensors" ]; then
        "$here/ilgpu-vae" dgp --resume "$run" --steps "$mnist_steps" --eval-every 1000 --accelerator cuda >> "$out/mnist.log" 2>&1
      else
        rm -rf "$run"
        "$here/ilgpu-vae" dgp --data "$here/mnist" --dgp-layers 2 --steps "$mnist_steps" --eval-every 1000 --accelerator cuda --out "$run" > "$out/mnist.log" 2>&1
      fi
      echo "mnist: dgp exit $?; $(grep -E '^step ' "$out/mnist.log" | tail -1)" ;;
    *) echo "dgp.sh: unknown item $item (boston, diabetes or mnist)" >&2; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# The deep GPs of issue 25 on a GPU machine, from the unpacked gpu-verify folder: the Boston housing and diabetes
# tables, 20 random 90/10 splits each, depths 1 (the single sparse GP), 2 and 3, 100 inducing points, Adam 0.01 for
# DGP_STEPS steps, S = 100 samples for the test log-likelihood (dgp-splits writes results.csv and summary.md, mean ±
# standard error); and MNIST classification with 2 layers in the authors' MNIST setting (their demo notebook: inner
# width 30 by the principal directions, the robust-max likelihood, batches of 1000, 100 inducing points, lengthscales
# and signal variance starting at 2) for MNIST_STEPS steps, evaluated every 1000 with 10 samples.
#
# A device lease is short, so every part runs at once, each (table, depth) and MNIST its own process on the one GPU
# (they are small: launches, not arithmetic, bound each of them), and at DGP_SECONDS each is sent SIGTERM: it stops
# after its step, checkpoints, and dgp-splits writes the partial table of the splits finished. Running the script
# again in the same OUT continues every part where it stopped.
#
# DGP_STEPS defaults to 2000, the length of the CPU tables in docs/MODELS.md, so the two can be set side by side;
# the paper's is 20000 (DGP_STEPS=20000, with a longer DGP_SECONDS). MNIST_STEPS defaults to 20000, the authors'.
# DGP_DEPTHS (default "1 2 3") and DGP_ACCELERATOR (default cuda; cpu to try the script on a machine without a GPU).
# Usage: bash gpu-verify/dgp.sh [OUT] [WHAT...]   (OUT default: $OUT or ./dgp-results; WHAT: boston diabetes mnist)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${OUT:-$PWD/dgp-results}}"
shift || true
what=("$@")
[ ${#what[@]} -eq 0 ] && what=(boston diabetes mnist)
steps="${DGP_STEPS:-2000}"
mnist_steps="${MNIST_STEPS:-20000}"
seconds="${DGP_SECONDS:-420}"
depths="${DGP_DEPTHS:-1 2 3}"
accelerator="${DGP_ACCELERATOR:-cuda}"
mkdir -p "$out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=0
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
echo "dgp.sh: tables at $steps steps, MNIST to $mnist_steps, every part stopped after $seconds s"

# Each part under `timeout`: SIGTERM at the deadline (a checkpoint and a partial table follow), SIGKILL a minute later.
bounded() { timeout --signal=TERM --kill-after=60 "$seconds" "$@"; }
started=$(date +%s)
parts=()
for item in "${what[@]}"; do
  case "$item" in
    boston|diabetes)
      for depth in $depths; do
        name="$item-layers$depth"
        bounded "$here/ilgpu-vae" dgp-splits --data "$here/tables/$item.csv" --dgp-layers "$depth" --splits 20 --steps "$steps" \
          --eval-every "$steps" --accelerator "$accelerator" --out "$out/$name" > "$out/$name.log" 2>&1 &
        parts+=("$name:$!")
      done ;;
    mnist)
      run="$out/mnist-dgp2"
      if [ -f "$run/model.safetensors" ]; then
        bounded "$here/ilgpu-vae" dgp --resume "$run" --steps "$mnist_steps" --eval-every 1000 --samples 10 --accelerator "$accelerator" >> "$out/mnist.log" 2>&1 &
      else
        rm -rf "$run"
        bounded "$here/ilgpu-vae" dgp --data "$here/mnist" --dgp-layers 2 --likelihood robust-max --inducing 100 --batch-size 1000 \
          --initial-lengthscale 2 --initial-signal-variance 2 --steps "$mnist_steps" --eval-every 1000 --samples 10 --accelerator "$accelerator" \
          --out "$run" > "$out/mnist.log" 2>&1 &
      fi
      parts+=("mnist:$!") ;;
    *) echo "dgp.sh: unknown item $item (boston, diabetes or mnist)" >&2; exit 2 ;;
  esac
done
for part in "${parts[@]}"; do
  wait "${part##*:}"
  echo "${part%%:*}: exit $? after $(( $(date +%s) - started )) s"
done
for part in "${parts[@]}"; do
  name="${part%%:*}"
  if [ "$name" = mnist ]; then
    line="$(grep -E '^step ' "$out/mnist.log" | tail -1)"
    echo "mnist: ${line:-no evaluation yet; $(tail -1 "$out/mnist.log")}"
  elif [ -f "$out/$name/summary.md" ]; then
    echo "--- $name"
    cat "$out/$name/summary.md"
  else
    echo "--- $name: no summary (see $name.log)"; tail -3 "$out/$name.log"
  fi
done

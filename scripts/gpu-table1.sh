#!/usr/bin/env bash
# The IWAE paper's Table 1 on a GPU machine, from the unpacked gpu-verify folder: each preset named (all ten by
# default) trains with the short schedule (the paper's eight learning rates, one epoch each) on CUDA, then
# `eval --k 5000` gives the test NLL on the full test set. Each run is cut at LIMIT seconds (default 240) so a
# 10-minute device call can hold two; the full 3280-epoch schedule needs hours per cell and is not run here.
# Usage: bash gpu-verify/table1.sh [OUT] [PRESET...]     (OUT default: $OUT or ./table1-results)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${OUT:-$PWD/table1-results}}"
shift || true
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(vae-1layer-k1 vae-1layer-k5 vae-1layer-k50 iwae-1layer-k5 iwae-1layer-k50
                                      vae-2layer-k1 vae-2layer-k5 vae-2layer-k50 iwae-2layer-k5 iwae-2layer-k50)
limit="${LIMIT:-240}"
mkdir -p "$out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=0
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
for preset in "${presets[@]}"; do
  start=$(date +%s)
  timeout "$limit" "$here/ilgpu-vae" train --preset "$preset" --lr-schedule iwae-short --data "$here/mnist" \
    --accelerator cuda --out "$out/$preset" > "$out/$preset.log" 2>&1
  train_status=$?
  mid=$(date +%s)
  if [ "$train_status" -eq 0 ]; then
    timeout "$limit" "$here/ilgpu-vae" eval "$out/$preset" --k 5000 --accelerator cuda >> "$out/$preset.log" 2>&1
    eval_status=$?
  else
    eval_status=skipped
  fi
  end=$(date +%s)
  echo "$preset: train exit $train_status ($((mid - start)) s), eval exit $eval_status ($((end - mid)) s); $(grep -E '^L_5000' "$out/$preset.log")"
done

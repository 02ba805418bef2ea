#!/usr/bin/env bash
# The sigmoid belief networks and DARN of issue 24 at full length on a GPU machine, from the unpacked gpu-verify
# folder: SBN 200 and 200-200 (NVIL's MNIST models: linear sigmoid layers) and DARN with 500 units, each trained on
# binarized MNIST (dynamic binarization, batch 128, Adam 1e-3) for EPOCHS epochs (default 1000; the CPU runs in
# docs/MODELS.md are the same commands cut short), then `eval --k 5000` for the test NLL by importance sampling
# with q as the proposal. Papers: SBN 200 about 113 nats, 200-200 about 100 (Mnih and Gregor 2014); DARN 500 about
# 84-85 (Gregor et al. 2014). Also the sparse gamma DEF 100-40-15 beside its one-layer baseline (gamma:100, the
# Bernoulli–Poisson factorization of the same pixels), and both with Poisson counts of the grey levels (no
# binarization; one layer is Poisson factorization). And the double DEF on the digits count matrix (rows 20-10, columns
# 20-10) beside one layer each side (Poisson factorization), DDEF_STEPS Adam steps (default 20000), scored by the
# held-out Poisson log-likelihood. Each run is resumable: run the script again to go on where it stopped.
# Usage: bash gpu-verify/discrete.sh [OUT] [MODEL...]   (OUT default: $OUT or ./discrete-results; MODEL: sbn200
# sbn200-200 darn500 def100-40-15 def100 def100-40-15-counts def100-counts defsbn100 defpoisson100 darn500-ar darn500-ar-taylor darn500-300 hvmb200
# ddef20-10 pf20)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${OUT:-$PWD/discrete-results}}"
shift || true
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(sbn200 sbn200-200 darn500 def100-40-15 def100 def100-40-15-counts def100-counts defsbn100 defpoisson100 darn500-ar darn500-ar-taylor darn500-300 hvmb200 ddef20-10 pf20)
epochs="${EPOCHS:-1000}"
ddef_steps="${DDEF_STEPS:-20000}"
mkdir -p "$out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=0
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
for model in "${models[@]}"; do
  # The double DEF trains on a count matrix with its own command.
  case "$model" in
    ddef20-10|pf20)
      layers=gamma:20,gamma:10
      [ "$model" = pf20 ] && layers=gamma:20
      run="$out/$model"
      if [ -f "$run/model.safetensors" ]; then
        "$here/ilgpu-vae" double-def --resume "$run" --steps "$ddef_steps" --accelerator cuda >> "$out/$model.log" 2>&1
      else
        rm -rf "$run"
        "$here/ilgpu-vae" double-def --def-layers "$layers" --data "$here/digits/counts.csv" --steps "$ddef_steps" --eval-every 1000 \
          --accelerator cuda --out "$run" > "$out/$model.log" 2>&1
      fi
      echo "$model: double-def exit $?; $(grep -E '^step ' "$out/$model.log" | tail -1)"
      continue ;;
  esac
  case "$model" in
    sbn200) settings=(--model sbn --latent 200) ;;
    sbn200-200) settings=(--model sbn --stochastic-layers 2 --latent 200 --latent2 200) ;;
    darn500) settings=(--model darn --latent 500) ;;
    def100-40-15) settings=(--model def --def-layers gamma:100,gamma:40,gamma:15) ;;
    def100) settings=(--model def --def-layers gamma:100) ;;
    def100-40-15-counts) settings=(--model def --def-layers gamma:100,gamma:40,gamma:15 --likelihood poisson) ;;
    def100-counts) settings=(--model def --def-layers gamma:100 --likelihood poisson) ;;
    defsbn100) settings=(--model def --def-layers sbn:100) ;;
    darn500-ar) settings=(--model darn --latent 500 --darn-decoder autoregressive) ;;
    darn500-ar-taylor) settings=(--model darn --latent 500 --darn-decoder autoregressive --darn-estimator taylor) ;;
    darn500-300) settings=(--model darn --latent 500 --stochastic-layers 2 --latent2 300) ;;
    defpoisson100) settings=(--model def --def-layers poisson:100) ;;
    hvmb200) settings=(--model hvm-bernoulli --latent 200) ;;
    *) echo "discrete.sh: unknown model $model (sbn200, sbn200-200, darn500, def100-40-15, def100, def100-40-15-counts, def100-counts, defsbn100, defpoisson100, darn500-ar, darn500-ar-taylor, darn500-300, hvmb200, ddef20-10 or pf20)" >&2; exit 2 ;;
  esac
  # Counts are the grey levels' bytes; every other model sees binary pixels drawn afresh each epoch.
  binarize=dynamic
  case "$model" in *-counts) binarize=none ;; esac
  run="$out/$model"
  if [ -f "$run/checkpoint/state.json" ]; then
    "$here/ilgpu-vae" train --resume "$run" --epochs "$epochs" --accelerator cuda >> "$out/$model.log" 2>&1
  else
    "$here/ilgpu-vae" train "${settings[@]}" --binarize "$binarize" --epochs "$epochs" --data "$here/mnist" --accelerator cuda \
      --out "$run" > "$out/$model.log" 2>&1
  fi
  train_status=$?
  if [ "$train_status" -eq 0 ]; then
    "$here/ilgpu-vae" eval "$run" --k 5000 --accelerator cuda >> "$out/$model.log" 2>&1
  fi
  echo "$model: train exit $train_status; $(grep -E '^L_5000|NLL' "$out/$model.log" | tail -1)"
done

#!/usr/bin/env bash
# Runs on the GPU machine from the unpacked gpu-verify folder (see scripts/gpu-verify.sh): the whole test
# suite on CUDA, one epoch of the default model on MNIST on CUDA, the dense kernels and training steps timed
# (ilgpu-vae bench --kernels), the same model in PyTorch eager and torch.compile on the same GPU
# (bench/compare/run.sh), the BenchmarkDotNet classes, then a summary. Results go to OUT
# (default: $OUT if set, else ./gpu-verify-results).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-${OUT:-$PWD/gpu-verify-results}}"
mkdir -p "$out"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_gcServer=0

echo "== commit $(cat "$here/COMMIT" 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"

echo "== ilgpu-vae check on CUDA: every kernel against its reference"
"$here/ilgpu-vae" check --accelerator cuda > "$out/check-cuda.log" 2>&1
check_status=$?
grep -E "FAIL|checks passed|^accelerators|^  [A-Z]" "$out/check-cuda.log" | head -30

echo "== tests on CUDA (ILGPUVAE_ACCELERATOR=cuda)"
ILGPUVAE_ACCELERATOR=cuda "$here/IlgpuVae.Tests" -noColor -parallel none > "$out/tests-cuda.log" 2>&1
tests_status=$?
grep -E "^\s*(\[FAIL\]|Failed )" "$out/tests-cuda.log" | head -40
grep -E "Total: [0-9]+" "$out/tests-cuda.log" | tail -n 1

echo "== one epoch on CUDA, default model"
"$here/ilgpu-vae" train --data "$here/mnist" --epochs 1 --accelerator cuda --out "$out/run-cuda" > "$out/train-cuda.log" 2>&1
train_status=$?
tail -n 4 "$out/train-cuda.log"

echo "== NCCL: one rank on one GPU (its all-reduce is a copy, so the weights must equal the plain run's bit for bit)"
# NCCL from the environment, else the copy PyTorch's wheels carry (nvidia-nccl-cu12).
if [ -z "${ILGPUVAE_NCCL_LIBRARY:-}" ]; then
  ILGPUVAE_NCCL_LIBRARY="$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so.2"))' 2>/dev/null || true)"
  [ -f "$ILGPUVAE_NCCL_LIBRARY" ] && export ILGPUVAE_NCCL_LIBRARY || unset ILGPUVAE_NCCL_LIBRARY
fi
nccl_args=(train --data "$here/mnist" --epochs 1 --train-limit 12800 --accelerator cuda)
"$here/ilgpu-vae" "${nccl_args[@]}" --out "$out/run-plain" > "$out/nccl.log" 2>&1
"$here/ilgpu-vae" "${nccl_args[@]}" --gradient-exchange nccl --out "$out/run-nccl" >> "$out/nccl.log" 2>&1
nccl_status=$?
if [ "$nccl_status" -eq 0 ] && cmp -s "$out/run-plain/checkpoint/model.safetensors" "$out/run-nccl/checkpoint/model.safetensors"; then
  nccl_result="1 rank: weights identical to the plain run"
else
  nccl_result="1 rank: exit $nccl_status, weights $(cmp -s "$out/run-plain/checkpoint/model.safetensors" "$out/run-nccl/checkpoint/model.safetensors" 2>/dev/null && echo identical || echo DIFFERENT)"
  nccl_status=1
fi
grep -E "^gradients by|^error" "$out/nccl.log"
# Two GPUs and an MPI launcher: two ranks over NCCL against two over the host path (sums in another order:
# close, not equal).
if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -ge 2 ] && command -v mpirun >/dev/null 2>&1; then
  for exchange in nccl host; do
    mpirun --allow-run-as-root --oversubscribe -np 2 "$here/ilgpu-vae" "${nccl_args[@]}" --gradient-exchange "$exchange" \
      --out "$out/run-2ranks-$exchange" >> "$out/nccl.log" 2>&1
  done
  nccl_result="$nccl_result; 2 ranks: $(grep -E '^epoch 1/1:' "$out/nccl.log" | tail -n 2 | cut -c1-60 | tr '\n' ' ')"
  # The scaling itself: one GPU against two (NCCL, then the host path), the global batch 128 and 256.
  for batch in 128 256; do
    "$here/ilgpu-vae" bench --accelerator cuda --batch-size "$batch" >> "$out/nccl.log" 2>&1
    for exchange in nccl host; do
      mpirun --allow-run-as-root --oversubscribe -np 2 "$here/ilgpu-vae" bench --accelerator cuda --batch-size "$batch" \
        --gradient-exchange "$exchange" >> "$out/nccl.log" 2>&1
    done
  done
  grep -E "^model " "$out/nccl.log"
fi
echo "$nccl_result"

echo "== dense kernels alone and the training-step benchmark on CUDA"
"$here/ilgpu-vae" bench --accelerator cuda --kernels --csv "$out/bench-cuda.csv" > "$out/bench-cuda.log" 2>&1
bench_status=$?
# The same steps with the shared-memory tiled dense kernels (not the default until measured).
"$here/ilgpu-vae" bench --accelerator cuda --dense tiled --csv "$out/bench-cuda-tiled.csv" >> "$out/bench-cuda.log" 2>&1
# Where a step's time goes on the GPU, kernel by kernel (each launch waited for): the default model and the
# IWAE paper's largest one-layer cell.
"$here/ilgpu-vae" bench --accelerator cuda --steps 100 --profile 50 >> "$out/bench-cuda.log" 2>&1
"$here/ilgpu-vae" bench --accelerator cuda --preset iwae-1layer-k50 --steps 300 --profile 50 >> "$out/bench-cuda.log" 2>&1
cat "$out/bench-cuda.log"

echo "== against PyTorch on the same GPU (eager, then torch.compile max-autotune)"
ILGPU_VAE="$here/ilgpu-vae" bash "$here/compare/run.sh" --device cuda --out "$out/compare" > "$out/compare.log" 2>&1
compare_status=$?
tail -n 8 "$out/compare.log"

echo "== BenchmarkDotNet, every kernel class on CUDA (in process; at most 4 minutes)"
ILGPUVAE_ACCELERATOR=cuda timeout 240 "$here/IlgpuVae.Bench" --filter '*' --artifacts "$out/benchmarkdotnet" > "$out/benchmarkdotnet.log" 2>&1
bdn_status=$?
grep -E "^\|" "$out/benchmarkdotnet.log" | head -60

echo "== summary"
echo "check on CUDA: exit $check_status; $(grep -E 'checks passed' "$out/check-cuda.log")"
echo "tests on CUDA: exit $tests_status; $(grep -oE 'Total: [0-9]+, Errors: [0-9]+, Failed: [0-9]+, Skipped: [0-9]+' "$out/tests-cuda.log" | tail -n 1)"
echo "one epoch on CUDA: exit $train_status; $(grep -E '^epoch 1/1:' "$out/train-cuda.log")"
echo "NCCL: $nccl_result"
echo "bench on CUDA: exit $bench_status"; grep -E '^model ' "$out/bench-cuda.log"
echo "compare with PyTorch: exit $compare_status (table above; logs in $out/compare.log)"
echo "BenchmarkDotNet: exit $bdn_status (124: cut at 4 minutes; tables above; logs in $out/benchmarkdotnet.log)"
[ "$check_status" -eq 0 ] && [ "$tests_status" -eq 0 ] && [ "$train_status" -eq 0 ] && [ "$bench_status" -eq 0 ]

#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (driver for CUDA 13, cuDNN 9): runs the PP-OCRv4 batching benchmark
# with processors that must use CUDA (Processor:Runtime:ExecutionProvider=cuda: a processor that
# cannot load CUDA stops with the reason instead of running on the CPU), and prints items/s for
# batch size 1 vs 8 and the device recorded on the jobs' events (it must say cuda).
#   scripts/gpu-check.sh [jobs]     (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu-check: no NVIDIA GPU here (nvidia-smi not found); processors run on the CPU on this machine" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
export Processor__Runtime__ExecutionProvider=cuda
./bench.sh ocr-batching "${1:-2000}" | tee /dev/stderr | grep -q '| cuda |' || { echo "gpu-check: no job was recorded as run on cuda" >&2; exit 1; }
echo "gpu-check: PP-OCRv4 ran on CUDA"

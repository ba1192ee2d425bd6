#!/usr/bin/env bash
# All encoder/OCR GPU benchmarks in one go, for a lent GPU machine (16 cores, one GPU).
# Usage: OUT=/some/dir bash benchmarks/gpu_run.sh [WHEEL_DIR] [MINILM_CONFIG_DIR]
# Missing packages come as wheels; MiniLM runs with random weights from its config and
# tokenizer (speed does not depend on the weights). Every step has its own time limit.
set -u
WHL=${1:-../.whl}
TOK=${2:-bench_assets/minilm}
OUT=${OUT:-/tmp/bench-out}
mkdir -p "$OUT"
if ls "$WHL"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHL"/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,clocks.sm --format=csv | tee "$OUT/gpu.txt"
nproc | tee -a "$OUT/gpu.txt"
B="python3 benchmarks/bench_encoders.py"
run() { local t=$1 name=$2; shift 2; echo "== $name"; timeout "$t" "$@" --json "$OUT/$name.json" 2>&1 \
  | grep -v -i warn | tee "$OUT/$name.log"; }
run 150 clip $B --only clip --device cuda --clip-images 4096 --clip-batch 256 --clip-workers 15
run 60 text_gpu $B --only text --device cuda --text-chunks 4096 --text-batch 256 --text-model-dir "$TOK"
run 100 text_cpu2 taskset -c 0,1 $B --only text --device cpu --threads 2 --text-chunks 192 \
  --text-batch 32 --text-model-dir "$TOK"
run 200 ocr $B --only ocr --device cuda --ocr-images 64 --ocr-pages 24 --ocr-workers 16 \
  --ocr-single 6 --ocr-rec-batch 32 --ocr-gpu-threads 4 --ocr-default-threads
echo "== summary"
grep -h "^\[" "$OUT"/*.log

#!/usr/bin/env bash
# One call on a GPU machine: the parity tests, then the benchmarks; results under $OUT.
#   bash bench/gpu_job.sh [extra commands run after the bench]
set -uo pipefail
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export BI_GIT_SHA=${BI_GIT_SHA:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
# The device image may lack pure-Python test/bench tools: wheels carried in .whl/ fill the gap.
if ! python3 -c "import absl, pytest" 2>/dev/null && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/device.txt"
python3 -m pytest parity_tests -q -p no:cacheprovider 2>&1 | tee "$OUT/tests.log" | tail -15
python3 -m bench rmsnorm --out "$OUT" 2>&1 | grep -v "^I1\|^W1" | tee "$OUT/bench.log"
for cmd in "$@"; do eval "$cmd" 2>&1 | tee -a "$OUT/extra.log"; done

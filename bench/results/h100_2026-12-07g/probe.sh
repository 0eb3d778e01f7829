#!/usr/bin/env bash
# One H100 call (2026-12-07g): ab_ln.py's PTX sums in bitorch's layer_norm, ab_mean.py's persistent mean, then
# ncu_probe.sh. Logs in $OUT.
set -uo pipefail
D=bench/results/h100_2026-12-07g
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
git rev-parse HEAD 2>/dev/null | tee $OUT/GIT.txt
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv
timeout 200 python3 $D/ab_ln.py 1 8 32 128 2>&1 | grep "^ab_ln\|^tune\|Error\|error" | tee $OUT/ab_ln.log
timeout 120 python3 $D/ab_mean.py 2048 4096 2>&1 | grep "^ab_mean\|^tune\|Error\|error" | tee $OUT/ab_mean.log
timeout 220 bash $D/ncu_probe.sh 2>&1 | tee $OUT/ncu.log | tail -70

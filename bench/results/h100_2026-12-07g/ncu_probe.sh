#!/usr/bin/env bash
# ncu on the H100 (2026-12-07g): every kernel of ncu_probe.py (layer_norm at 1 and 8 tokens, the mean at 256 and
# 4096; bitorch, bijax, torch.compile, XLA) with the full section set, caches flushed before each kernel, clocks
# left alone. Results: $OUT/ncu.tgz (details and SASS-source pages as CSV, both frameworks' PTX) and the log.
set -uo pipefail
D=bench/results/h100_2026-12-07g
W=$(mktemp -d)
mkdir -p $W/out/ptx
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false TRITON_CACHE_DIR=$W/tc
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu | head -1)
echo "ncu: $NCU"; $NCU --version | tail -1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv
$NCU --clock-control none --profile-from-start off --nvtx --set full --import-source no -o $W/rep \
  python3 $D/ncu_probe.py $W/out/ptx 2>&1 | grep -v "^==PROF== Profiling\|^I1\|^W1" | tail -40
$NCU -i $W/rep.ncu-rep --page details --csv --print-nvtx-rename kernel > $W/out/details.csv 2>&1
$NCU -i $W/rep.ncu-rep --page source --print-source sass --csv > $W/out/sass.csv 2>&1
$NCU -i $W/rep.ncu-rep --page raw --csv --print-nvtx-rename kernel --metrics gpu__time_duration.sum,launch__grid_size,launch__block_size,launch__registers_per_thread,launch__shared_mem_per_block_dynamic,launch__shared_mem_per_block_static,launch__shared_mem_config_size,smsp__cycles_active.avg,sm__cycles_elapsed.max > $W/out/raw.csv 2>&1
find $W/tc -name "*.ptx" -exec cp {} $W/out/ptx/ \;
python3 - $W/out/raw.csv <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head = rows[0]
want = ["Kernel Name", "gpu__time_duration.sum", "launch__grid_size", "launch__block_size", "launch__registers_per_thread",
        "launch__shared_mem_per_block_dynamic", "launch__shared_mem_config_size", "smsp__cycles_active.avg"]
idx = [head.index(w) for w in want if w in head]
nvtx = [i for i, h in enumerate(head) if "NVTX" in h or "nvtx" in h]
for r in rows[2:]:
    print(" | ".join([r[i][:40] for i in nvtx] + [r[i][:60] for i in idx]))
PY
ls -la $W/out $W/out/ptx
tar czf $OUT/ncu.tgz -C $W out

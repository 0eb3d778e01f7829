#!/usr/bin/env bash
# One call on a GPU machine: the parity tests, then every benchmark. Results in $OUT:
# tests.log, bench.log and results.tgz (CSV, JSON and PNG of each op, refreshed after each op).
#   bash bench/gpu_job.sh [op ...]      (default: every op in bench/__main__.py)
#   BI_TESTS='parity_tests/test_x.py ...' runs those tests only; BI_GIT_SHA names the commit measured;
#   BI_BENCH_FLAGS='--reps 300 --rounds 3' passes flags to every bench;
#   BI_TUNE='what:tokens ...' runs python -m bench.tune what --tokens tokens for each, after the tests (tune.log).
set -uo pipefail
OUT=${OUT:-gpu_results}
RES=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export BI_GIT_SHA=${BI_GIT_SHA:-}  # the commit measured; bench.report asks git when unset
# The device image may lack pure-Python test/bench tools: wheels carried in .whl/ fill the gap.
need() { python3 -c "import $1" 2>/dev/null || ls .whl/$2 2>/dev/null; }
wheels=$(need absl 'absl_py-*'; need pytest 'pytest-[0-9]*' ; need pytest 'pluggy-*'; need pytest 'iniconfig-*'; \
         need pytest 'pygments-*'; need xdist 'pytest_xdist-*'; need execnet 'execnet-*')
if [ -n "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $wheels && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
workers=$(python3 -c "import xdist" 2>/dev/null && echo "-n 8")
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/tests.log"
python3 -m pytest ${BI_TESTS:-parity_tests} -q $workers 2>&1 | tee -a "$OUT/tests.log" | tail -15
for job in ${BI_TUNE:-}; do
  what=${job%%:*} tokens=${job#*:}
  [ "$tokens" = "$job" ] && tokens=""
  python3 -m bench.tune "$what" ${tokens:+--tokens "$tokens"} 2>&1 | grep "^tune\|Error" | tee -a "$OUT/tune.log"
done
ops=${*:-$(python3 -c "from bench.__main__ import OPS; print(*OPS)")}
for op in $ops; do
  python3 -m bench "$op" --out "$RES" ${BI_BENCH_FLAGS:-} 2>&1 | grep -v "^I1\|^W1\|UserWarning\|_warn_once" | tee -a "$OUT/bench.log"
  tar czf "$OUT/results.tgz" -C "$RES" .
done

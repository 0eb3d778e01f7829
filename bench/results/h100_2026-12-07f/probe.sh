#!/usr/bin/env bash
# The ptxas probe (2026-12-07f): versions, XLA's dump of bijax's kernels, and ptxas_ab.py under each ptxas on the
# machine (Triton's, torch's, the CUDA toolkit's). Results in $OUT/probe.tgz and the log.
set -uo pipefail
D=bench/results/h100_2026-12-07f
W=$(mktemp -d)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -m pip list 2>/dev/null | grep -i -E "nvidia|jax|triton|torch"
ver() { echo $(basename $(dirname $(dirname $1)))-$($1 --version | grep -o "V[0-9][0-9.]*" | head -1); }
PTXAS=$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name ptxas -type f -print 2>/dev/null)
for p in $PTXAS; do echo "ptxas $p $(ver $p)"; done
XLA_FLAGS="--xla_dump_to=$W/xla" python3 - <<'PY'
import jax, jax.numpy as jnp, bijax
x = jnp.ones((4096, 8192), jnp.bfloat16); w = jnp.ones((8192,), jnp.bfloat16)
jax.jit(lambda x: bijax.mean(x, -1))(x).block_until_ready()
jax.jit(lambda x, w: bijax.layer_norm(x[:8], w, w))(x, w).block_until_ready()
PY
mkdir -p $W/out/xla && ls -la $W/xla | grep -v "convert_element\|broadcast_in" | tee $W/out/xla_ls.txt
find $W/xla -name "*lambda*" -size -4M -exec cp -r {} $W/out/xla/ \;
TOOLS=$(python3 -c "from bench.kernel_code import TOOLS; print(TOOLS)")
for f in $(grep -l "ld.global" $(find $W/out/xla -type f) 2>/dev/null); do
  for p in $PTXAS; do
    $p -arch=sm_90a -o $W/k.cubin $f 2>&1 | tail -2 && $TOOLS/cuobjdump -sass $W/k.cubin > $f.$(ver $p).sass
  done
done
for p in $PTXAS; do
  TRITON_PTXAS_PATH=$p TRITON_CACHE_DIR=$W/tc_$(ver $p) OUT=$W/out python3 $D/ptxas_ab.py $(ver $p)
done
tar czf $OUT/probe.tgz -C $W out

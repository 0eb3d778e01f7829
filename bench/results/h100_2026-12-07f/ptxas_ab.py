"""Does the ptxas that builds a kernel explain bijax's edge over bitorch (mean at 256 / 4096 tokens, layer_norm at 8)?
Run once per ptxas (TRITON_PTXAS_PATH, a TRITON_CACHE_DIR of its own): torch.compile / XLA, bitorch and bijax,
medians of 5 rounds of each line's mean time (bench.tune's helpers), then bitorch's PTX and SASS into $OUT.
XLA builds bijax with its own Triton and ptxas, so bijax's lines do not move with TRITON_PTXAS_PATH.
torch.compile's inductor sets TRITON_PTXAS_PATH to torch's own ptxas when unset, for every later Triton compile in
the process (bitorch's included): the runs here set it first.
    TRITON_PTXAS_PATH=... python ptxas_ab.py LABEL"""
import os
import statistics
import subprocess
import sys

import jax
import torch
import triton
import triton.language as tl

import bijax
import bitorch
from bench import layer_norm as bench_layer_norm
from bench.kernel_code import TOOLS
from bench.tune import _jax_ms, _norm_sets, _sets, _torch_ms
import importlib

tln, tred = (importlib.import_module(f"bitorch.{m}") for m in ("layer_norm", "reduce"))
from bitorch._triton_helpers import cast_rtne, tree_sum


@triton.jit
def mean32_kernel(x_ptr, out_ptr, R: tl.constexpr, INV_R: tl.constexpr, VEC: tl.constexpr, WARPS: tl.constexpr):
    """bitorch's row kernel for R == BLOCK with 32-bit row offsets (as bijax's), evict-first loads; same bits."""
    row = tl.program_id(0)
    v = tl.load(x_ptr + row * R + tl.arange(0, R), eviction_policy="evict_first").to(tl.float32)
    tl.store(out_ptr + row, cast_rtne(tree_sum(v, VEC, WARPS) * INV_R, out_ptr.dtype.element_ty))


def mean32(x):
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    mean32_kernel[(x.shape[0],)](x, out, R=8192, INV_R=1 / 8192, VEC=8, WARPS=16, num_warps=16)
    return out

label, out = sys.argv[1], os.environ.get("OUT", "/tmp")
compile_mean = torch.compile(lambda x: torch.mean(x, -1))
for m, op in ((256, "mean"), (4096, "mean"), (8, "layer_norm")):
    if op == "mean":
        sets, jsets = _sets(lambda: (torch.randn(m, 8192, dtype=torch.bfloat16, device="cuda"),), m * 8192 * 2)
        lines = {"torch.compile": lambda: _torch_ms(compile_mean, sets),
                 "bitorch": lambda: _torch_ms(lambda x: bitorch.mean(x, -1), sets),
                 "bitorch int32": lambda: _torch_ms(mean32, sets),
                 "bijax": lambda: _jax_ms(jax.jit(lambda x: bijax.mean(x, -1)), jsets)}
    else:
        sets, jsets = _norm_sets(m, 8192, 2)
        lines = {"xla": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bench_layer_norm.jnp_style(x, w, b)), jsets),
                 "bitorch": lambda: _torch_ms(lambda x, r, w, b: bitorch.layer_norm(x, w, b), sets),
                 "bijax": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b)), jsets)}
    if op == "mean":
        assert torch.equal(mean32(sets[0][0]), bitorch.mean(sets[0][0], -1)), "mean32's bits"
    times = {k: [] for k in lines}
    for _ in range(5):
        for k, f in lines.items():
            times[k].append(f())
    print(f"ab {label} {op} tokens={m:5d}: " + "  ".join(
        f"{k} {statistics.median(v) * 1e3:.3f} [{min(v) * 1e3:.3f}-{max(v) * 1e3:.3f}]" for k, v in times.items())
        + " us", flush=True)
for name, kernel in (("mean", tred.reduce_rows_kernel), ("mean32", mean32_kernel), ("layer_norm", tln.layer_norm_kernel)):
    for i, k in enumerate(kernel.device_caches[0][0].values()):
        stem = os.path.join(out, f"{label}_{name}_{i}")
        with open(stem + ".ptx", "w") as f:
            f.write(k.asm["ptx"])
        with open(stem + ".cubin", "wb") as f:
            f.write(k.asm["cubin"])
        sass = subprocess.run([f"{TOOLS}/cuobjdump", "-sass", stem + ".cubin"], capture_output=True, text=True).stdout
        os.remove(stem + ".cubin")
        with open(stem + ".sass", "w") as f:
            f.write(sass)

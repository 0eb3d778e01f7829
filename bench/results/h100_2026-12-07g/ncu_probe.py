"""Target of ncu_probe.sh: bitorch, bijax and the peers at the three points, each kernel three times on fresh inputs.

Only the window between cudaProfilerStart and Stop is profiled (ncu --profile-from-start off). bijax's PTX, as
jaxlib's own Triton writes it, is saved from jaxlib's compilation handler; bitorch's is in TRITON_CACHE_DIR.
"""
import os
import sys

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F
from jax._src.lib import triton as jax_triton

OUT = sys.argv[1]
_compile = jax_triton.compile


def _saving_compile(platform, module, arch_name, **kw):
    result = _compile(platform, module, arch_name, **kw)
    n = len([f for f in os.listdir(OUT) if f.endswith(".ptx")])
    with open(os.path.join(OUT, f"bijax_{n}.ptx"), "w") as f:
        f.write(result.asm)
    print(f"bijax kernel {n}: smem {result.smem_bytes}, {kw}")
    return result


jax_triton.compile = _saving_compile

import bijax  # noqa: E402
import bitorch  # noqa: E402

EPS = 1e-5


def ln_inputs(tokens):
    return [(torch.randn(tokens, 8192, dtype=torch.bfloat16, device="cuda"),
             torch.randn(8192, dtype=torch.bfloat16, device="cuda"),
             torch.randn(8192, dtype=torch.bfloat16, device="cuda")) for _ in range(3)]


def jnp_ln(x, w, b):
    h = x.astype(jnp.float32)
    d = h - jnp.mean(h, axis=-1, keepdims=True)
    h = d * jax.lax.rsqrt(jnp.mean(d * d, axis=-1, keepdims=True) + EPS)
    return (h * w.astype(jnp.float32) + b.astype(jnp.float32)).astype(x.dtype)


cases = []
for tokens in (1, 8):
    sets = ln_inputs(tokens)
    cases.append((f"layer_norm {tokens}", sets, {
        "bitorch": lambda x, w, b: bitorch.layer_norm(x, w, b, EPS),
        "torch_compile": torch.compile(lambda x, w, b: F.layer_norm(x, (8192,), w, b, EPS), dynamic=False)},
        {"bijax": jax.jit(lambda x, w, b: bijax.layer_norm(x, w, b, EPS)), "xla": jax.jit(jnp_ln)}))
for tokens in (256, 4096):
    sets = [(torch.randn(tokens, 8192, dtype=torch.bfloat16, device="cuda"),) for _ in range(3)]
    cases.append((f"mean {tokens}", sets, {
        "bitorch": lambda x: bitorch.mean(x, -1), "torch_compile": torch.compile(lambda x: x.mean(-1), dynamic=False)},
        {"bijax": jax.jit(lambda x: bijax.mean(x, -1)), "xla": jax.jit(lambda x: jnp.mean(x, axis=-1))}))

for name, sets, tlines, jlines in cases:  # warm-up: every compile happens here
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    for fn in tlines.values():
        fn(*sets[0])
    for fn in jlines.values():
        jax.block_until_ready(fn(*jsets[0]))
torch.cuda.synchronize()
torch.cuda.cudart().cudaProfilerStart()
for name, sets, tlines, jlines in cases:
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    for line, fn in {**tlines, **jlines}.items():
        for s, js in zip(sets, jsets):
            torch.cuda.nvtx.range_push(f"{name} {line}")
            out = fn(*s) if line in tlines else jax.block_until_ready(fn(*js))
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_pop()
torch.cuda.cudart().cudaProfilerStop()
print("probe done")

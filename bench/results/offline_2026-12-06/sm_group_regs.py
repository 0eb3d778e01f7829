"""Offline (no GPU; triton 3.6, sm_90): the one-launch softmax / log_softmax kernels of both frameworks at
128 x 128256 bf16 in groups of 2 and 3, as an H100 (132 SMs) would get them: registers, instructions, spills.
Run on main from the repo root: PYTHONPATH=. python <this file>."""
import functools
import os
import sys

sys.argv = sys.argv[:1]
from bench import kernel_code as kc  # noqa: E402  (first: it readies bitorch's GPU path)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402
import triton  # noqa: E402

import bijax  # noqa: E402
import bitorch  # noqa: E402
from bijax import _launch as jax_launch  # noqa: E402
from bispec import softmax as spec  # noqa: E402

H100 = "NVIDIA H100 80GB HBM3"
bitorch._launch.multiprocessors, bitorch._launch.gpu_name = (lambda t: 132), (lambda t: H100)
jax_launch.multiprocessors, jax_launch.gpu_name = (lambda: 132), (lambda: H100)
compiled = {}
bitorch._launch.launch = functools.partial(kc.compile_launch, compiled)
bitorch._launch.DEVICE = "cpu"
tmp = "/tmp/sm_group_regs"
os.makedirs(tmp, exist_ok=True)
for group in (2, 3):
    spec.FUSED_GROUP_BY_GPU = {"H100": {"triton": group, "pallas": group}}
    jax.clear_caches()  # bijax's traces key on shapes, not on the spec's constants
    for name in spec.NAMES:
        compiled.clear()
        getattr(bitorch, name)(torch.zeros(128, spec.FIGURE_VOCAB, dtype=torch.bfloat16))
        (_, kernel), = compiled.items()
        code, regs = kc.sass(kernel.asm["cubin"], f"{tmp}/k.cubin")
        print(f"bitorch {name:11} group {group}: {regs}, {code.count(chr(10))} instructions, spills: {'STL' in code}")
        ir = kc.pallas_ir(getattr(bijax, name), jnp.zeros((128, spec.FIGURE_VOCAB), jnp.bfloat16))
        with open(f"{tmp}/{name}.ttir", "w") as f:
            f.write(ir)
        kernel = triton.compile(f"{tmp}/{name}.ttir", target=kc.TARGET,
                                options={"num_warps": spec.num_warps(spec.FIGURE_VOCAB)})
        code, regs = kc.sass(kernel.asm["cubin"], f"{tmp}/k.cubin")
        print(f"bijax   {name:11} group {group}: {regs}, {code.count(chr(10))} instructions, spills: {'STL' in code}")

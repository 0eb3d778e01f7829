"""Where bijax kernels run, and the one place pallas_call is configured.

On a GPU backend kernels compile through Pallas' Triton lowering (named
explicitly: Mosaic GPU is the default since jax 0.9); the one exception is the
Hopper matmul of bijax/matmul_mosaic.py, which names Mosaic GPU itself.
Elsewhere they run under Pallas' interpreter. Each kernel is a named
pallas_call, so a jaxpr shows which kernel ran.
"""
from __future__ import annotations

import jax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

INTERPRET = jax.default_backend() != "gpu"
# Hopper (sm_90): the Mosaic GPU matmul's wgmma (bijax/matmul_mosaic.py) runs there and nowhere else.
HOPPER = not INTERPRET and getattr(jax.devices()[0], "compute_capability", "") == "9.0"


def pallas_call(kernel, *, name: str, grid, in_specs, out_specs, out_shape, num_warps: int, num_stages: int = 1,
                input_output_aliases=None):
    return pl.pallas_call(
        kernel, name=name, grid=grid, in_specs=in_specs, out_specs=out_specs, out_shape=out_shape,
        interpret=INTERPRET, input_output_aliases=input_output_aliases or {},
        compiler_params=plgpu.CompilerParams(num_warps=num_warps, num_stages=num_stages),
    )


def cuda_lowering(fn, *args) -> str:
    """fn(*args) lowered for CUDA, as text: natively on a GPU; elsewhere with INTERPRET off while it traces, so
    that Pallas takes its Triton path (how the tests and bench.kernel_code see GPU kernels without a GPU). A
    fresh jit, so that no trace made for the interpreter is reused."""
    global INTERPRET
    fresh = jax.jit(lambda *a: fn(*a))
    if not INTERPRET:
        return fresh.trace(*args).lower().as_text()
    INTERPRET = False
    try:
        return fresh.trace(*args).lower(lowering_platforms=("cuda",)).as_text()
    finally:
        INTERPRET = True


def multiprocessors() -> int:
    """SMs of the default GPU; 0 under the interpreter, which runs programs one after another.

    0 also for a device that does not say (a CPU host lowering for CUDA in the tests): the two-launch path.
    """
    return 0 if INTERPRET else getattr(jax.devices()[0], "core_count", 0)


def gpu_name() -> str:
    """The name of the default GPU ("NVIDIA H100 80GB HBM3"); empty under the interpreter."""
    return "" if INTERPRET else getattr(jax.devices()[0], "device_kind", "")


def row_spec(length: int) -> pl.BlockSpec:
    """One whole row of a (rows, length) array per program (grid axis 0; a row split over axis 1 shares it)."""
    return pl.BlockSpec((None, length), lambda i, *_: (i, 0))


def whole_spec(length: int) -> pl.BlockSpec:
    """A 1-D array, the same for every program."""
    return pl.BlockSpec((length,), lambda *_: (0,))

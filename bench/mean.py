"""Mean over the last dim over the token sweep (tokens x hidden), batch-invariant and not.

Bytes counted per call: read x, write the output (one element a row).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import torch

from bench import sweep, timing
from bijax import reduce as jreduce
from bispec import reduce as spec
from bitorch import reduce as treduce

SIZE, CPU_SIZE = spec.FIGURE_HIDDEN, 256
LINES = {
    "torch_eager": "Non-batch-invariant (CUDA): torch x.mean(-1)",
    "torch_compile": "Non-batch-invariant: torch.compile",
    "xla": "Non-batch-invariant: XLA jit (jnp.mean)",
    **sweep.DYNAMIC_COMPILE_LINE,
    **sweep.OUR_LINES,
    **sweep.COPY_LIMIT_LINE,
}


def title(dtype: str, hidden: int) -> str:
    return f"Mean over the last dim, {dtype}, hidden {hidden}"


def eager(x):
    return x.mean(-1)


def run(tokens_sweep, hidden: int, dtype: str, reps: int) -> tuple[dict, list[dict]]:
    tdtype = getattr(torch, dtype)
    itemsize = tdtype.itemsize

    def nbytes(tokens):
        return spec.bytes_moved(tokens, hidden, 1, itemsize, itemsize)

    def call_inputs(tokens):
        return (torch.randn(tokens, hidden, dtype=tdtype, device=timing.DEVICE),)

    torch_lines = {"torch_eager": eager, "bitorch": lambda x: treduce.mean(x, -1)}
    jax_lines = {"xla": jax.jit(lambda x: jnp.mean(x, axis=-1)), "bijax": jax.jit(lambda x: jreduce.mean(x, -1))}
    meta, rows = sweep.run(tokens_sweep, call_inputs, nbytes, torch_lines, jax_lines, reps, compile_peer=eager)
    meta.update(hidden=hidden, dtype=dtype)
    return meta, rows

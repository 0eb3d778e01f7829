"""LayerNorm (weight and bias) over the token sweep.

Bytes counted per call: read x, weight and bias, write out.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F

from bench import sweep, timing
from bijax.layer_norm import layer_norm as bijax_layer_norm
from bispec import layer_norm as spec
from bitorch.layer_norm import layer_norm as bitorch_layer_norm

EPS = spec.DEFAULT_EPS
SIZE, CPU_SIZE = spec.FIGURE_HIDDEN, 256
LINES = {
    "torch_eager": "Non-batch-invariant (CUDA): F.layer_norm",
    "torch_compile": "Non-batch-invariant: torch.compile(F.layer_norm)",
    "xla": "Non-batch-invariant: XLA jit (jnp)",
    **sweep.DYNAMIC_COMPILE_LINE,
    **sweep.OUR_LINES,
    **sweep.COPY_LIMIT_LINE,
}


def title(dtype: str, hidden: int) -> str:
    return f"LayerNorm, {dtype}, hidden {hidden}"


def eager(x, weight, bias):
    return F.layer_norm(x, (x.shape[-1],), weight, bias, EPS)


def jnp_style(x, weight, bias):
    h = x.astype(jnp.float32)
    d = h - jnp.mean(h, axis=-1, keepdims=True)
    h = d * jax.lax.rsqrt(jnp.mean(d * d, axis=-1, keepdims=True) + EPS)
    return (h * weight.astype(jnp.float32) + bias.astype(jnp.float32)).astype(x.dtype)


def run(tokens_sweep, hidden: int, dtype: str, reps: int) -> tuple[dict, list[dict]]:
    tdtype = getattr(torch, dtype)
    itemsize = tdtype.itemsize

    def call_inputs(tokens):  # x, weight, bias
        return (torch.randn(tokens, hidden, dtype=tdtype, device=timing.DEVICE),
                *(torch.randn(hidden, dtype=tdtype, device=timing.DEVICE) for _ in range(2)))

    torch_lines = {"torch_eager": eager, "bitorch": lambda x, w, b: bitorch_layer_norm(x, w, b, EPS)}
    jax_lines = {"xla": jax.jit(jnp_style), "bijax": jax.jit(lambda x, w, b: bijax_layer_norm(x, w, b, EPS))}
    meta, rows = sweep.run(tokens_sweep, call_inputs, lambda tokens: spec.bytes_moved(tokens, hidden, itemsize),
                           torch_lines, jax_lines, reps, compile_peer=eager)
    meta.update(hidden=hidden, dtype=dtype)
    return meta, rows

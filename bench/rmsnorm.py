"""Fused residual-add + RMSNorm over the token sweep: the starting figure, with the Pallas line added.

Bytes counted per call: read x, residual and weight, write out and new_residual.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F

import bijax
import bitorch
from bench import sweep, timing
from bispec import rms_norm as spec

EPS = spec.DEFAULT_EPS
SIZE, CPU_SIZE = spec.FIGURE_HIDDEN, 256
LINES = {
    "torch_eager": "Non-batch-invariant (CUDA): torch add + F.rms_norm",
    "torch_compile": "Non-batch-invariant: torch.compile (HF-style)",
    "xla": "Non-batch-invariant: XLA jit (jnp)",
    "hf_eager": "Batch-invariant (Python): HF-style eager torch",
    **sweep.DYNAMIC_COMPILE_LINE,
    **sweep.OUR_LINES,
    **sweep.COPY_LIMIT_LINE,
}


def title(dtype: str, hidden: int) -> str:
    return f"Fused residual-add + RMSNorm, {dtype}, hidden {hidden}"


def hf_style(x, residual, weight):
    s = x + residual
    h = s.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + EPS)
    return weight * h.to(s.dtype), s


def eager(x, residual, weight):
    s = x + residual
    return F.rms_norm(s, (s.shape[-1],), weight, EPS), s


def jnp_style(x, residual, weight):
    s = x + residual
    h = s.astype(jnp.float32)
    h = h * jax.lax.rsqrt(jnp.mean(h * h, axis=-1, keepdims=True) + EPS)
    return (h * weight.astype(jnp.float32)).astype(s.dtype), s


def run(tokens_sweep, hidden: int, dtype: str, reps: int) -> tuple[dict, list[dict]]:
    tdtype = getattr(torch, dtype)
    itemsize = tdtype.itemsize

    def call_inputs(tokens):  # x, residual, weight
        return (*(torch.randn(tokens, hidden, dtype=tdtype, device=timing.DEVICE) for _ in range(2)),
                torch.randn(hidden, dtype=tdtype, device=timing.DEVICE))

    torch_lines = {"torch_eager": eager, "hf_eager": hf_style,
                   "bitorch": lambda x, r, w: bitorch.rms_norm(x, w, EPS, residual=r)}
    jax_lines = {"xla": jnp_style, "bijax": lambda x, r, w: bijax.rms_norm(x, w, EPS, residual=r)}
    meta, rows = sweep.run(tokens_sweep, call_inputs,
                           lambda tokens: spec.bytes_moved(tokens, hidden, itemsize, residual=True),
                           torch_lines, jax_lines, reps, compile_peer=hf_style)
    meta.update(hidden=hidden, dtype=dtype)
    return meta, rows

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
from bench import timing
from bispec import rms_norm as spec

EPS = spec.DEFAULT_EPS
SIZE, CPU_SIZE = spec.FIGURE_HIDDEN, 256
LINES = {
    "torch_eager": "Non-batch-invariant (CUDA): torch add + F.rms_norm",
    "torch_compile": "Non-batch-invariant: torch.compile (HF-style)",
    "xla": "Non-batch-invariant: XLA jit (jnp)",
    "hf_eager": "Batch-invariant (Python): HF-style eager torch",
    "bitorch": "Batch-invariant (Triton): bitorch",
    "bijax": "Batch-invariant (Pallas): bijax",
    "limit": "Limit: bytes / measured copy bandwidth",
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
    device = "cuda" if timing.ON_GPU else "cpu"
    tdtype = getattr(torch, dtype)
    compiled = torch.compile(hf_style) if timing.ON_GPU else None
    xla = jax.jit(jnp_style)
    pallas = jax.jit(lambda x, r, w: bijax.rms_norm(x, w, EPS, residual=r))
    bandwidth = timing.copy_bandwidth_gbs()
    rows = []
    for tokens in tokens_sweep:
        nbytes = spec.bytes_moved(tokens, hidden, torch.finfo(tdtype).bits // 8, residual=True)
        n_sets = timing.input_sets_for(nbytes)
        weight = torch.randn(hidden, dtype=tdtype, device=device)
        sets = [(torch.randn(tokens, hidden, dtype=tdtype, device=device),
                 torch.randn(tokens, hidden, dtype=tdtype, device=device)) for _ in range(n_sets)]
        jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]  # the same bytes as the torch inputs
        jweight = jax.dlpack.from_dlpack(weight)
        torch_fns = {"torch_eager": eager, "hf_eager": hf_style,
                     "bitorch": lambda x, r, w: bitorch.rms_norm(x, w, EPS, residual=r)}
        if compiled is not None:
            torch_fns["torch_compile"] = compiled
        row = {"tokens": tokens}
        for key, fn in torch_fns.items():
            row[key] = timing.line_ms(key, [lambda s=s, fn=fn: fn(*s, weight) for s in sets], timing.torch_sync, reps)
        for key, fn in (("xla", xla), ("bijax", pallas)):
            row[key] = timing.line_ms(key, [lambda s=s, fn=fn: fn(*s, jweight) for s in jsets], timing.jax_sync, reps)
        row["limit"] = nbytes / bandwidth / 1e6
        peer = min(row.get("torch_compile") or float("inf"), row["xla"] or float("inf"))
        for key in ("bitorch", "bijax"):
            if row[key]:
                row[f"{key}_GBps"] = nbytes / row[key] / 1e6
                row[f"{key}/peer"] = row[key] / peer
        t_out = bitorch.rms_norm(*sets[0][:1], weight, EPS, residual=sets[0][1])
        j_out = jax.block_until_ready(pallas(*jsets[0], jweight))
        row["bits_equal"] = all(torch.equal(a, torch.from_dlpack(b)) for a, b in zip(t_out, j_out))
        rows.append(row)
        del sets, jsets
    meta = {"copy_GBps": bandwidth, "hidden": hidden, "dtype": dtype,
            "timing": "CUPTI device time via torch.profiler" if timing.ON_GPU else "host wall clock, interpreters"}
    return meta, rows

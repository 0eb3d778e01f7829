"""Linear layers (x @ W.T) over the token sweep: Llama-3-8B's projections, cuBLAS and XLA against ours.

--size picks the shape: 1 qkv 4096->6144, 2 o 4096->4096, 3 gate_up 4096->28672,
4 down 14336->4096; 0 (the default) times all four and sums them, as one
decoder layer runs them (per shape, extra columns give bitorch's TFLOP/s and
cuBLAS's and bijax's times over bitorch's). 9 is a tiny shape for the CPU
smoke run.

Each shape goes through bench.sweep (CUPTI device time, inputs rotated past
the L2 — weights too, so decode does not read a cached weight). Extra columns:
TFLOP/s per line, and the ratio of ours to the faster of cuBLAS and XLA.
The limit is a roofline: max(FLOPs / the rate of a large cuBLAS bf16 matmul
measured in the same run, bytes (weights + x + out) / copy bandwidth).
fp32 runs compare IEEE fp32 everywhere (XLA at HIGHEST, torch without TF32).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F

import bijax
import bitorch
from bench import sweep, timing
from bispec import matmul as spec

SHAPES = {1: "qkv", 2: "o", 3: "gate_up", 4: "down"}
TINY = (256, 384)  # (K, N) for the CPU smoke run
SIZE, CPU_SIZE = 0, 9
LINES = {
    "cublas": "Non-batch-invariant (cuBLAS): F.linear",
    "xla": "Non-batch-invariant: XLA jit (jnp.dot)",
    **sweep.OUR_LINES,
    "limit": "Limit: max(FLOPs / cuBLAS bf16 peak, bytes / copy bandwidth)",
}
# Lines timed in turn over at least this many rounds (sweep.run): the large matmuls heat the card, which then
# slows (the same kernel drifted from 1.44 to 1.74 ms within one H100 run at 4096 x 28672).
MIN_ROUNDS = 3
PEAK_SIZE = 8192  # the large cuBLAS bf16 matmul that measures the achievable matmul rate


def _shapes(size: int) -> dict[str, tuple[int, int]]:
    if size == 0:
        return dict(spec.LLAMA3_8B)
    if size == 9:
        return {"tiny": TINY}
    if size not in SHAPES:
        raise ValueError(f"size: {size} is not a shape; expected 0 (all), {SHAPES} or 9 (tiny)")
    return {SHAPES[size]: spec.LLAMA3_8B[SHAPES[size]]}


def title(dtype: str, size: int) -> str:
    shapes = _shapes(size)
    if len(shapes) > 1:
        return f"Llama-3-8B layer linears ({', '.join(shapes)}), summed, {dtype}"
    (name, (k, n)), = shapes.items()
    return f"Linear {name} {k}->{n}, {dtype}"


def peak_tflops() -> float:
    """Rate of a large cuBLAS bf16 matmul (a small one on CPU), timed like every line."""
    n = PEAK_SIZE if timing.ON_GPU else 512
    a, b = (torch.randn(n, n, dtype=torch.bfloat16, device=timing.DEVICE) for _ in range(2))
    ms = timing.device_ms([lambda: torch.mm(a, b)], timing.torch_sync, reps=20)
    return spec.flops(n, n, n) / ms / 1e9


def _run_shape(tokens_sweep, k: int, n: int, dtype: str, reps: int, peak: float) -> tuple[dict, list[dict]]:
    tdtype = getattr(torch, dtype)
    itemsize = tdtype.itemsize

    def call_inputs(tokens):  # x, weight
        return (torch.randn(tokens, k, dtype=tdtype, device=timing.DEVICE),
                torch.randn(n, k, dtype=tdtype, device=timing.DEVICE) * k ** -0.5)

    precision = jax.lax.Precision.HIGHEST if dtype == "float32" else None
    torch_lines = {"cublas": F.linear, "bitorch": bitorch.linear}
    jax_lines = {"xla": jax.jit(lambda x, w: jnp.dot(x, w.T, precision=precision)),
                 "bijax": jax.jit(bijax.linear)}
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    rounds = max(MIN_ROUNDS, sweep.ROUNDS)
    try:
        meta, rows = sweep.run(tokens_sweep, call_inputs, lambda t: spec.bytes_moved(t, n, k, itemsize),
                               torch_lines, jax_lines, reps, rounds=rounds)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    for row in rows:
        row["limit"] = max(row["limit"], spec.flops(row["tokens"], n, k) / peak / 1e9)
    meta.update(rounds=rounds)
    return meta, rows


def run(tokens_sweep, size: int, dtype: str, reps: int) -> tuple[dict, list[dict]]:
    shapes = _shapes(size)
    peak = peak_tflops()
    per_shape = {name: _run_shape(tokens_sweep, k, n, dtype, reps, peak) for name, (k, n) in shapes.items()}
    meta = next(iter(per_shape.values()))[0]
    rows = []
    for i, tokens in enumerate(tokens_sweep):
        shape_rows = {name: r[1][i] for name, r in per_shape.items()}
        flops = sum(spec.flops(tokens, n, k) for k, n in shapes.values())
        row = {"tokens": tokens}
        for key in LINES:
            times = [r.get(key) for r in shape_rows.values()]
            row[key] = sum(times) if all(t is not None for t in times) else None
        for key in ("cublas", "xla", "bitorch", "bijax"):
            if row[key]:
                row[f"{key}_TFLOPs"] = flops / row[key] / 1e9
        peer = min((row[k] for k in ("cublas", "xla") if row.get(k)), default=None)
        for key in ("bitorch", "bijax"):
            if row[key] and peer:
                row[f"{key}/peer"] = row[key] / peer
        if len(shapes) > 1:
            for name, r in shape_rows.items():
                k, n = shapes[name]
                if r.get("bitorch"):
                    row[f"bitorch_{name}_TFLOPs"] = spec.flops(tokens, n, k) / r["bitorch"] / 1e9
                if r.get("bitorch") and r.get("cublas"):
                    row[f"{name}:cublas/bitorch"] = r["cublas"] / r["bitorch"]
                if r.get("bitorch") and r.get("bijax"):
                    row[f"{name}:bijax/bitorch"] = r["bijax"] / r["bitorch"]
        row["bits_equal"] = all(r["bits_equal"] for r in shape_rows.values())
        rows.append(row)

    def tiles(pallas: bool) -> dict:
        return {name: [dataclasses.astuple(spec.plan(t, n, k, dtype, pallas=pallas).tiling) for t in tokens_sweep]
                for name, (k, n) in shapes.items()}

    meta.update(dtype=dtype, shapes={name: {"K": k, "N": n} for name, (k, n) in shapes.items()},
                peak_bf16_TFLOPs=peak, peak_matmul=f"torch.mm bf16 {PEAK_SIZE if timing.ON_GPU else 512}^3",
                block_k=spec.BLOCK_K[dtype], tiles=tiles(False), pallas_tiles=tiles(True))
    return meta, rows

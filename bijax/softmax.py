"""Batch-invariant softmax and log_softmax: Pallas kernels (Triton lowering)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from bispec import softmax as spec
from bijax import _launch
from bijax._kernel_helpers import combine_chunks, exp_f32, log_f32, max_sum_exp, reciprocal_f32


def _row_constant(s, log: bool):
    """What the row's outputs need of S: log(S) for log_softmax, 1/S for softmax."""
    return log_f32(s) if log else reciprocal_f32(s)


def _normalize(x, m, k, log: bool):
    return (x - m) - k if log else exp_f32(x - m) * k


def _row_kernel(x_ref, out_ref, *, n: int, block: int, log: bool):
    """One row held in registers: one read, one write."""
    cols = jnp.arange(block)
    mask = cols < n
    x = plgpu.load(x_ref.at[cols], mask=mask, other=-jnp.inf, eviction_policy=spec.STREAM_EVICTION).astype(jnp.float32)
    m, s = max_sum_exp(x)
    out = _normalize(x, m, _row_constant(s, log), log)
    plgpu.store(out_ref.at[cols], out.astype(out_ref.dtype), mask=mask, eviction_policy=spec.STREAM_EVICTION)


def _chunk_stats_kernel(x_ref, m_ref, s_ref, *, n: int, block: int):
    """Pass 1 of a long row; grid (rows, chunks): chunk c's max and sum of exp(x - max) to the workspace."""
    offs = pl.program_id(1) * block + jnp.arange(block)
    x = plgpu.load(x_ref.at[offs], mask=offs < n, other=-jnp.inf, eviction_policy=spec.REREAD_EVICTION)
    m_c, s_c = max_sum_exp(x.astype(jnp.float32))
    plgpu.store(m_ref, m_c)
    plgpu.store(s_ref, s_c)


def _chunk_out_kernel(x_ref, m_ref, s_ref, out_ref, *, n: int, block: int, chunks: int, stats: int, log: bool):
    """Pass 2 of a long row; grid (rows, chunks): the row's (M, S) from every chunk's, then chunk c's outputs."""
    i = jnp.arange(stats)
    m_c = plgpu.load(m_ref.at[i], mask=i < chunks, other=-jnp.inf)
    s_c = plgpu.load(s_ref.at[i], mask=i < chunks, other=0.0)
    m, s = combine_chunks(m_c, s_c)
    offs = pl.program_id(1) * block + jnp.arange(block)
    mask = offs < n
    x = plgpu.load(x_ref.at[offs], mask=mask, other=-jnp.inf, eviction_policy=spec.STREAM_EVICTION)
    out = _normalize(x.astype(jnp.float32), m, _row_constant(s, log), log)
    plgpu.store(out_ref.at[offs], out.astype(out_ref.dtype), mask=mask, eviction_policy=spec.STREAM_EVICTION)


def _chunked(x2: jax.Array, out_dtype, log: bool, block: int, chunks: int, stats: int, num_warps: int) -> jax.Array:
    """The two passes over rows longer than spec.MAX_REGISTER, a program per (row, chunk)."""
    rows, n = x2.shape
    grid = (rows, chunks)
    row = pl.BlockSpec((None, n), lambda r, c: (r, 0))
    stats_row = pl.BlockSpec((None, chunks), lambda r, c: (r, 0))
    one_stat = pl.BlockSpec((None, None), lambda r, c: (r, c))
    stat_shape = jax.ShapeDtypeStruct((rows, chunks), jnp.float32)
    m_c, s_c = _launch.pallas_call(
        functools.partial(_chunk_stats_kernel, n=n, block=block), name="bijax_softmax_chunk_stats", grid=grid,
        in_specs=[row], out_specs=[one_stat, one_stat], out_shape=[stat_shape, stat_shape], num_warps=num_warps)(x2)
    return _launch.pallas_call(
        functools.partial(_chunk_out_kernel, n=n, block=block, chunks=chunks, stats=stats, log=log),
        name=f"bijax_{'log_softmax' if log else 'softmax'}_chunk_out", grid=grid,
        in_specs=[row, stats_row, stats_row], out_specs=row, out_shape=jax.ShapeDtypeStruct(x2.shape, out_dtype),
        num_warps=num_warps)(x2, m_c, s_c)


@functools.partial(jax.jit, static_argnames=("out_dtype", "log", "plan", "interpret"))
def _run(x2: jax.Array, *, out_dtype, log: bool, plan: tuple[bool, int, int, int, int], interpret: bool) -> jax.Array:
    """The kernel over packed rows, compiled once per shape and key.

    `plan` (chunked, block, chunks, stats, num_warps) comes from the spec and `interpret` from _launch: both are
    in the jit cache key, so a trace made under other constants or for the interpreter is never reused.
    """
    chunked, block, chunks, stats, num_warps = plan
    if chunked:
        return _chunked(x2, out_dtype, log, block, chunks, stats, num_warps)
    row = _launch.row_spec(x2.shape[1])
    return _launch.pallas_call(
        functools.partial(_row_kernel, n=x2.shape[1], block=block, log=log),
        name=f"bijax_{'log_softmax' if log else 'softmax'}", grid=(x2.shape[0],), in_specs=[row], out_specs=row,
        out_shape=jax.ShapeDtypeStruct(x2.shape, out_dtype), num_warps=num_warps)(x2)


def _apply(x: jax.Array, dim, half_to_float, log: bool) -> jax.Array:
    n, _, dim, out_dtype = spec.check_args(x.shape, x.dtype, dim, half_to_float)
    xt = jnp.moveaxis(x, dim, -1)
    if x.size == 0:
        out = jnp.zeros(xt.shape, out_dtype)
    else:
        plan = (spec.chunked(n), spec.block_size(n), spec.num_chunks(n), spec.stats_block(n), spec.num_warps(n))
        out = _run(xt.reshape(-1, n), out_dtype=jnp.dtype(out_dtype), log=log, plan=plan,
                   interpret=_launch.INTERPRET).reshape(xt.shape)
    return jnp.moveaxis(out, -1, dim)


def softmax(x: jax.Array, dim: int = -1, half_to_float: bool = False) -> jax.Array:
    """softmax along `dim`; half_to_float=True takes bf16/fp16 x and returns fp32 (torch's aten._softmax)."""
    return _apply(x, dim, half_to_float, log=False)


def log_softmax(x: jax.Array, dim: int = -1, half_to_float: bool = False) -> jax.Array:
    """log_softmax along `dim`; half_to_float=True takes bf16/fp16 x and returns fp32 (torch's aten._log_softmax)."""
    return _apply(x, dim, half_to_float, log=True)

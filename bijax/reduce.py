"""Batch-invariant sum and mean over any dims: Pallas row and column kernels (Triton lowering).

The reduction order is bispec.reduce's, the same operations as bitorch/reduce.py's kernels.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from bispec import common
from bispec import reduce as spec
from bijax import _launch
from bijax._kernel_helpers import stream_load, tree_sum


def _term(v, dtype, round_in: bool):
    """A loaded element as the fp32 term of the sum: x cast to the output dtype first when that is not exact."""
    v = v.astype(jnp.float32)
    return v.astype(dtype).astype(jnp.float32) if round_in else v


def _finish(s, dtype, length: int, mean: bool):
    """fp32 sum -> output value: times fp32(1/R) for the mean, rounded once to the output dtype."""
    if mean:
        s = s * jnp.float32(common.inv_f32(length))
    return s.astype(dtype)


def _rows_kernel(x_ref, out_ref, *, length: int, block: int, vec: int, warps: int, mean: bool, round_in: bool,
                 past_l1: bool):
    """B == 1: one program per row of R elements, read past L1 or evict-first (bispec.reduce.pallas_rows_past_l1)."""
    dtype = out_ref.dtype
    cols = jnp.arange(block, dtype=jnp.int32)
    load = functools.partial(plgpu.load, other=0, **stream_load(past_l1, spec.STREAM_EVICTION))
    if length <= block:  # the whole row in registers: one term a lane
        s = tree_sum(_term(load(x_ref.at[cols], mask=cols < length), dtype, round_in), vec, warps)
    else:  # lane l adds r = l, l + BLOCK, ... in fp64, then one tree over the lanes
        def chunk(c, acc):
            idx = c * block + cols
            return acc + _term(load(x_ref.at[idx], mask=idx < length), dtype, round_in).astype(jnp.float64)

        with jax.enable_x64(True):
            acc = lax.fori_loop(jnp.int32(0), jnp.int32(common.cdiv(length, block)), chunk,
                                jnp.zeros((block,), jnp.float64))
            s = tree_sum(acc, vec, warps).astype(jnp.float32)
    plgpu.store(out_ref, _finish(s, dtype, length, mean))


def _cols_kernel(x_ref, out_ref, *, length: int, inner: int, rows: int, block_b: int, mean: bool, round_in: bool):
    """B > 1: a program sums BLOCK_B columns of one (R, B) slab, r = 0..R-1 in order, in fp64."""
    dtype = out_ref.dtype
    cols = pl.program_id(1) * block_b + jnp.arange(block_b, dtype=jnp.int32)
    cmask = cols < inner
    load = functools.partial(plgpu.load, other=0, eviction_policy=spec.STREAM_EVICTION or None)

    def chunk(c, acc):
        # `rows` loads issued together, added in row order.
        for i in range(rows):
            r = c * rows + i
            acc = acc + _term(load(x_ref.at[r, cols], mask=cmask & (r < length)), dtype, round_in).astype(jnp.float64)
        return acc

    with jax.enable_x64(True):
        acc = lax.fori_loop(jnp.int32(0), jnp.int32(common.cdiv(length, rows)), chunk,
                            jnp.zeros((block_b,), jnp.float64))
        s = acc.astype(jnp.float32)
    plgpu.store(out_ref.at[cols], _finish(s, dtype, length, mean), mask=cmask,
                eviction_policy=spec.STREAM_EVICTION or None)


def _run(x: jax.Array, plan: spec.Plan, mean: bool) -> jax.Array:
    A, R, B = plan.outer, plan.length, plan.inner
    out_dtype = common.NUMPY_DTYPES[plan.out_dtype]
    if A * B == 0 or R == 0:  # nothing to launch; an empty sum is 0, an empty mean NaN (as torch)
        return jnp.full(plan.out_shape, math.nan if mean else 0.0, out_dtype)
    xc = jnp.transpose(x, plan.perm) if plan.perm is not None else x
    if B == 1:
        warps = spec.row_warps(R)
        kernel = functools.partial(_rows_kernel, length=R, block=spec.row_block(R),
                                   vec=common.vector_width(R, x.dtype.itemsize), warps=warps, mean=mean,
                                   round_in=plan.round_inputs, past_l1=spec.pallas_rows_past_l1(A))
        out = _launch.pallas_call(
            kernel, name="bijax_reduce_rows", grid=(A,), in_specs=[_launch.row_spec(R)],
            out_specs=pl.BlockSpec((None,), lambda i: (i,)), out_shape=jax.ShapeDtypeStruct((A,), out_dtype),
            num_warps=warps)(xc.reshape(A, R))
    else:
        block_b, warps = spec.col_tiling(A, B, x.dtype.itemsize)
        kernel = functools.partial(_cols_kernel, length=R, inner=B, rows=spec.COL_ROWS, block_b=block_b,
                                   mean=mean, round_in=plan.round_inputs)
        # Each program sees its outer index's whole (R, B) slab and picks its columns itself.
        out = _launch.pallas_call(
            kernel, name="bijax_reduce_cols", grid=(A, common.cdiv(B, block_b)),
            in_specs=[pl.BlockSpec((None, R, B), lambda a, j: (a, 0, 0))],
            out_specs=pl.BlockSpec((None, B), lambda a, j: (a, 0)),
            out_shape=jax.ShapeDtypeStruct((A, B), out_dtype), num_warps=warps)(xc.reshape(A, R, B))
    return out.reshape(plan.out_shape)


def sum(x: jax.Array, dim=None, keepdim: bool = False, dtype=None) -> jax.Array:  # noqa: A001
    """torch.sum(x, dim, keepdim, dtype=dtype) semantics, batch-invariant (order: bispec.reduce)."""
    return _run(x, spec.check_args("sum", x.shape, x.dtype, dim, keepdim, dtype), mean=False)


def mean(x: jax.Array, dim=None, keepdim: bool = False, dtype=None) -> jax.Array:
    """torch.mean(x, dim, keepdim, dtype=dtype) semantics, batch-invariant (order: bispec.reduce)."""
    return _run(x, spec.check_args("mean", x.shape, x.dtype, dim, keepdim, dtype), mean=True)

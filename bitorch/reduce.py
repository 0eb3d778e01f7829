"""Batch-invariant sum and mean over any dims: Triton row and column kernels, torch custom ops.

The reduction order is bispec.reduce's; this module only lays x out as (A, R, B) and launches.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional

import torch
import triton
import triton.language as tl

from bispec import common
from bispec import reduce as spec
from bitorch import _launch
from bitorch._triton_helpers import cast_rtne, tree_sum


@triton.jit
def _finish(s, dtype: tl.constexpr, INV_R: tl.constexpr, MEAN: tl.constexpr):
    """fp32 sum -> output value: times fp32(1/R) for the mean, rounded once to the output dtype."""
    if MEAN:
        s = s * INV_R
    return cast_rtne(s, dtype)


@triton.jit
def reduce_rows_kernel(x_ptr, out_ptr, R: tl.constexpr, INV_R: tl.constexpr, MEAN: tl.constexpr,
                       ROUND_IN: tl.constexpr, BLOCK: tl.constexpr, VEC: tl.constexpr, WARPS: tl.constexpr,
                       X_CACHE: tl.constexpr, X_EVICT: tl.constexpr):
    """B == 1: one program per packed row of R elements, read past L1 or evict-first (spec.triton_rows_past_l1)."""
    row = tl.program_id(0).to(tl.int64)
    dtype = out_ptr.dtype.element_ty
    cols = tl.arange(0, BLOCK)
    base = x_ptr + row * R
    if R <= BLOCK:  # the whole row in registers: one term a lane
        v = tl.load(base + cols, mask=cols < R, other=0.0, cache_modifier=X_CACHE,
                    eviction_policy=X_EVICT).to(tl.float32)
        if ROUND_IN:  # x is cast to the output dtype first when that cast is not exact (torch's dtype=)
            v = cast_rtne(v, dtype).to(tl.float32)
        s = tree_sum(v, VEC, WARPS)
    else:  # lane l adds r = l, l + BLOCK, ... in fp64, then one tree over the lanes
        acc = tl.zeros([BLOCK], dtype=tl.float64)
        for start in range(0, R, BLOCK):
            idx = start + cols
            v = tl.load(base + idx, mask=idx < R, other=0.0, cache_modifier=X_CACHE,
                        eviction_policy=X_EVICT).to(tl.float32)
            if ROUND_IN:
                v = cast_rtne(v, dtype).to(tl.float32)
            acc += v.to(tl.float64)
        s = tree_sum(acc, VEC, WARPS).to(tl.float32)
    tl.store(out_ptr + row, _finish(s, dtype, INV_R, MEAN))


@triton.jit
def reduce_cols_kernel(x_ptr, out_ptr, B, R: tl.constexpr, INV_R: tl.constexpr, MEAN: tl.constexpr,
                       ROUND_IN: tl.constexpr, ROWS: tl.constexpr, BLOCK_B: tl.constexpr, STREAM: tl.constexpr):
    """B > 1: a program sums BLOCK_B columns of one (R, B) slab, r = 0..R-1 in order, in fp64."""
    outer = tl.program_id(0).to(tl.int64)
    dtype = out_ptr.dtype.element_ty
    cols = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    cmask = cols < B
    ptrs = x_ptr + outer * R * B + cols
    acc = tl.zeros([BLOCK_B], dtype=tl.float64)
    for start in range(0, R, ROWS):
        # ROWS loads issued together, added in row order.
        for i in tl.static_range(ROWS):
            v = tl.load(ptrs + i * B, mask=cmask & (start + i < R), other=0.0, eviction_policy=STREAM).to(tl.float32)
            if ROUND_IN:
                v = cast_rtne(v, dtype).to(tl.float32)
            acc += v.to(tl.float64)
        ptrs += ROWS * B
    tl.store(out_ptr + outer * B + cols, _finish(acc.to(tl.float32), dtype, INV_R, MEAN), mask=cmask)


def _run(x: torch.Tensor, dim, keepdim: bool, dtype, mean: bool) -> torch.Tensor:
    plan = spec.check_args("mean" if mean else "sum", x.shape, x.dtype, dim, keepdim, dtype)
    out_dtype = getattr(torch, plan.out_dtype)
    A, R, B = plan.outer, plan.length, plan.inner
    if A * B == 0 or R == 0:  # nothing to launch; an empty sum is 0, an empty mean NaN (as torch)
        return torch.full(plan.out_shape, math.nan if mean else 0.0, dtype=out_dtype, device=x.device)
    xc = x.permute(plan.perm) if plan.perm is not None else x
    out = torch.empty((A, B), dtype=out_dtype, device=x.device)
    meta = dict(R=R, INV_R=common.inv_f32(R), MEAN=mean, ROUND_IN=plan.round_inputs)
    if B == 1:
        x2 = _launch.packed_rows(xc.reshape(A, R))
        _launch.launch(reduce_rows_kernel, (A,), x2, out, BLOCK=spec.row_block(R),
                       VEC=common.vector_width(R, x.element_size()), WARPS=spec.row_warps(R),
                       **_launch.x_load_hints(spec.triton_rows_past_l1(A), spec.STREAM_EVICTION), **meta)
    else:
        x3 = xc.reshape(A, R, B).contiguous()
        block_b, warps = spec.col_tiling(A, B, x.element_size())
        _launch.launch(reduce_cols_kernel, (A, common.cdiv(B, block_b)), x3, out, B, ROWS=spec.COL_ROWS,
                       BLOCK_B=block_b, STREAM=spec.STREAM_EVICTION, num_warps=warps, **meta)
    return out.reshape(plan.out_shape)


def _fake(x, dim, keepdim, dtype):
    # Sizes may be symbolic here: only the rank and dtypes are checked, and the shape is built from x's own sizes.
    dims = spec.normalize_dims(dim, x.dim())
    out_dtype = x.dtype if dtype is None else dtype
    return torch.empty(spec.out_shape(x.shape, dims, keepdim), dtype=out_dtype, device=x.device)


@torch.library.custom_op("bitorch::sum", mutates_args=())
def sum_op(x: torch.Tensor, dim: Optional[list[int]], keepdim: bool, dtype: Optional[torch.dtype]) -> torch.Tensor:
    return _run(x, dim, keepdim, dtype, mean=False)


@torch.library.custom_op("bitorch::mean", mutates_args=())
def mean_op(x: torch.Tensor, dim: Optional[list[int]], keepdim: bool, dtype: Optional[torch.dtype]) -> torch.Tensor:
    return _run(x, dim, keepdim, dtype, mean=True)


@sum_op.register_fake
def _(x, dim, keepdim, dtype):
    return _fake(x, dim, keepdim, dtype)


@mean_op.register_fake
def _(x, dim, keepdim, dtype):
    return _fake(x, dim, keepdim, dtype)


def _call(op, name: str, x: torch.Tensor, dim, keepdim: bool, dtype):
    spec.check_args(name, x.shape, x.dtype, dim, keepdim, dtype)
    _launch.check_device("x", x)
    dims = None if dim is None else [int(d) for d in ((dim,) if isinstance(dim, numbers.Integral) else dim)]
    return op(x, dims, keepdim, None if dtype is None else getattr(torch, common.dtype_name(dtype)))


def sum(x: torch.Tensor, dim=None, keepdim: bool = False, dtype=None) -> torch.Tensor:  # noqa: A001
    """torch.sum(x, dim, keepdim, dtype=dtype), batch-invariant (order: bispec.reduce)."""
    return _call(sum_op, "sum", x, dim, keepdim, dtype)


def mean(x: torch.Tensor, dim=None, keepdim: bool = False, dtype=None) -> torch.Tensor:
    """torch.mean(x, dim, keepdim, dtype=dtype), batch-invariant (order: bispec.reduce)."""
    return _call(mean_op, "mean", x, dim, keepdim, dtype)

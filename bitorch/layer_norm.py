"""Batch-invariant LayerNorm: Triton kernel and torch custom op."""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from bispec import common
from bispec import layer_norm as spec
from bitorch import _launch
from bitorch._triton_helpers import cast_rtne, fma_f32, mul_f32, out_columns, row_sum


@triton.jit
def layer_norm_kernel(x_ptr, w_ptr, b_ptr, out_ptr, eps_sum, HIDDEN: tl.constexpr, INV_HIDDEN: tl.constexpr,
                      BLOCK: tl.constexpr, VEC: tl.constexpr, WARPS: tl.constexpr, SLICE: tl.constexpr,
                      IN_BLOCK: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, STREAM: tl.constexpr,
                      PARAM: tl.constexpr, PARAMS_FIRST: tl.constexpr, X_CACHE: tl.constexpr, X_EVICT: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < HIDDEN
    ocols, omask = out_columns(cols, mask, HIDDEN, BLOCK, SLICE, IN_BLOCK)
    if PARAMS_FIRST:  # bispec.layer_norm.params_first: no arithmetic changes with it
        if HAS_WEIGHT:
            w = tl.load(w_ptr + ocols, mask=omask, other=0.0, eviction_policy=PARAM).to(tl.float32)
        if HAS_BIAS:
            b = tl.load(b_ptr + ocols, mask=omask, other=0.0, eviction_policy=PARAM).to(tl.float32)
    x = tl.load(x_ptr + row * HIDDEN + cols, mask=mask, other=0.0, cache_modifier=X_CACHE,
                eviction_policy=X_EVICT).to(tl.float32)
    if SLICE < BLOCK and not IN_BLOCK:  # a split row's own block: its columns, loaded again now (the sums hide it)
        xs = tl.load(x_ptr + row * HIDDEN + ocols, mask=omask, other=0.0, eviction_policy=STREAM).to(tl.float32)
    # x - mean, rounded once; the constant carries the sign (negating the sum would round -0 apart
    # between the frameworks). Padding lanes are zeroed so that they add nothing to the squares.
    s = row_sum(x, VEC, WARPS, IN_BLOCK)  # in the block: tree_ptx's block of sums
    neg_inv = tl.full([], -INV_HIDDEN, tl.float32)
    d = tl.where(mask, fma_f32(s, neg_inv, x), 0.0)
    rstd = tl.math.rsqrt((row_sum(mul_f32(d, d), VEC, WARPS, IN_BLOCK) + eps_sum) * INV_HIDDEN)
    if SLICE < BLOCK and not IN_BLOCK:  # d of this program's columns, by the same FMA
        d = fma_f32(s, neg_inv, xs)
    if not PARAMS_FIRST:
        if HAS_WEIGHT:
            w = tl.load(w_ptr + ocols, mask=omask, other=0.0, eviction_policy=PARAM).to(tl.float32)
        if HAS_BIAS:
            b = tl.load(b_ptr + ocols, mask=omask, other=0.0, eviction_policy=PARAM).to(tl.float32)
    if HAS_WEIGHT:
        if HAS_BIAS:
            y = fma_f32(d * rstd, w, b)
        else:
            y = d * rstd * w
    else:
        if HAS_BIAS:
            y = fma_f32(d, rstd, b)
        else:
            y = d * rstd
    tl.store(out_ptr + row * HIDDEN + ocols, cast_rtne(y, out_ptr.dtype.element_ty), mask=omask,
             eviction_policy=STREAM)


def _run(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    hidden = x.shape[-1]
    x2 = _launch.packed_rows(x)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if x2.shape[0]:
        # A missing weight or bias is never read: x stands in for its pointer.
        w = _launch.packed_rows(weight) if weight is not None else x2
        b = _launch.packed_rows(bias) if bias is not None else x2
        split = spec.triton_split(x2.shape[0], hidden, _launch.INTERPRET)
        _launch.launch(layer_norm_kernel, (x2.shape[0], split), x2, w, b, out, eps * hidden,
                       HIDDEN=hidden, INV_HIDDEN=common.inv_f32(hidden), BLOCK=spec.block_size(hidden),
                       VEC=common.vector_width(hidden, x.element_size()), WARPS=spec.num_warps(hidden),
                       SLICE=spec.block_size(hidden) // split, IN_BLOCK=spec.in_block(split),
                       HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None, STREAM=spec.STREAM_EVICTION,
                       PARAM=spec.PARAM_EVICTION, PARAMS_FIRST=spec.params_first(x2.shape[0]),
                       **_launch.x_load_hints(spec.triton_x_past_l1(split), spec.STREAM_EVICTION))
    return out


@torch.library.custom_op("bitorch::layer_norm", mutates_args=())
def layer_norm_op(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                  eps: float) -> torch.Tensor:
    return _run(x, weight, bias, eps)


@layer_norm_op.register_fake
def _(x, weight, bias, eps):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
               eps: float = spec.DEFAULT_EPS) -> torch.Tensor:
    """LayerNorm of x's last dim (F.layer_norm with normalized_shape=(hidden,)); weight and bias optional."""
    spec.check_args(x.shape, x.dtype, *common.shape_dtype(weight), *common.shape_dtype(bias), eps)
    _launch.check_tensors(x=x, weight=weight, bias=bias, unit_stride=True)
    return layer_norm_op(x, weight, bias, float(eps))

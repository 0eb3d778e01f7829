"""Batch-invariant (fused residual-add +) RMSNorm: Triton kernel and torch custom ops."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from bispec import common
from bispec import rms_norm as spec
from bitorch import _launch
from bitorch._triton_helpers import cast_rtne, mul_f32, out_columns, tree_sum


@triton.jit
def rms_norm_kernel(x_ptr, res_ptr, w_ptr, out_ptr, new_res_ptr, eps_sum, HIDDEN: tl.constexpr,
                    INV_HIDDEN: tl.constexpr, BLOCK: tl.constexpr, VEC: tl.constexpr, WARPS: tl.constexpr,
                    SLICE: tl.constexpr, HAS_RESIDUAL: tl.constexpr, STREAM: tl.constexpr, WEIGHT: tl.constexpr,
                    WEIGHT_FIRST: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < HIDDEN
    ocols, omask = out_columns(cols, mask, HIDDEN, BLOCK, SLICE)
    if WEIGHT_FIRST:  # bispec.rms_norm.weight_first: no arithmetic changes with it
        w = tl.load(w_ptr + ocols, mask=omask, other=0.0, eviction_policy=WEIGHT).to(tl.float32)
    s = _residual_stream(x_ptr, res_ptr, new_res_ptr, row * HIDDEN + cols, mask, SLICE == BLOCK, HAS_RESIDUAL, STREAM)
    rstd = tl.math.rsqrt((tree_sum(mul_f32(s, s), VEC, WARPS) + eps_sum) * INV_HIDDEN)
    if SLICE < BLOCK:  # a split row: this program's columns read again (from cache), the same values
        s = _residual_stream(x_ptr, res_ptr, new_res_ptr, row * HIDDEN + ocols, omask, True, HAS_RESIDUAL, STREAM)
    if not WEIGHT_FIRST:
        w = tl.load(w_ptr + ocols, mask=omask, other=0.0, eviction_policy=WEIGHT).to(tl.float32)
    tl.store(out_ptr + row * HIDDEN + ocols, cast_rtne(s * rstd * w, out_ptr.dtype.element_ty), mask=omask,
             eviction_policy=STREAM)


@triton.jit
def _residual_stream(x_ptr, res_ptr, new_res_ptr, offs, mask, STORE: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
                     STREAM: tl.constexpr):
    """fp32 x (+ residual, rounded to x's dtype as stored; STORE writes it to new_res_ptr) at offs."""
    s = tl.load(x_ptr + offs, mask=mask, other=0.0, eviction_policy=STREAM).to(tl.float32)
    if HAS_RESIDUAL:
        s += tl.load(res_ptr + offs, mask=mask, other=0.0, eviction_policy=STREAM).to(tl.float32)
        # The norm sees the residual stream as stored: rounded to the input dtype.
        s_rounded = cast_rtne(s, new_res_ptr.dtype.element_ty)
        if STORE:
            tl.store(new_res_ptr + offs, s_rounded, mask=mask, eviction_policy=STREAM)
        s = s_rounded.to(tl.float32)
    return s


def _run(x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None):
    hidden = x.shape[-1]
    x2 = _launch.packed_rows(x)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    new_res = torch.empty_like(out) if residual is not None else out
    res2 = _launch.packed_rows(residual) if residual is not None else x2
    if x2.shape[0]:
        split = spec.triton_split(x2.shape[0], hidden, _launch.INTERPRET)
        _launch.launch(rms_norm_kernel, (x2.shape[0], split), x2, res2, _launch.packed_rows(weight), out, new_res,
                       eps * hidden, HIDDEN=hidden, INV_HIDDEN=common.inv_f32(hidden), BLOCK=spec.block_size(hidden),
                       VEC=common.vector_width(hidden, x.element_size()), WARPS=spec.num_warps(hidden),
                       SLICE=spec.block_size(hidden) // split,
                       HAS_RESIDUAL=residual is not None, STREAM=spec.STREAM_EVICTION,
                       WEIGHT=spec.WEIGHT_EVICTION, WEIGHT_FIRST=spec.weight_first(x2.shape[0]))
    return out, new_res


@torch.library.custom_op("bitorch::rms_norm", mutates_args=())
def rms_norm_op(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return _run(x, weight, eps, None)[0]


@torch.library.custom_op("bitorch::fused_add_rms_norm", mutates_args=())
def fused_add_rms_norm_op(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                          eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    return _run(x, weight, eps, residual)


@rms_norm_op.register_fake
def _(x, weight, eps):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


@fused_add_rms_norm_op.register_fake
def _(x, residual, weight, eps):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device), torch.empty(x.shape, dtype=x.dtype, device=x.device)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = spec.DEFAULT_EPS,
             residual: torch.Tensor | None = None):
    """RMSNorm of x's last dim; with `residual`, returns (norm(x + residual), x + residual)."""
    spec.check_args(x.shape, x.dtype, weight.shape, weight.dtype, eps, *common.shape_dtype(residual))
    _launch.check_tensors(x=x, weight=weight, residual=residual, unit_stride=True)
    if residual is None:
        return rms_norm_op(x, weight, float(eps))
    return fused_add_rms_norm_op(x, residual, weight, float(eps))

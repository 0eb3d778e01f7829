"""Batch-invariant (fused residual-add +) RMSNorm: Pallas kernel (Triton lowering)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas import triton as plgpu

from bispec import common
from bispec import rms_norm as spec
from bijax import _launch
from bijax._kernel_helpers import mul_f32, out_columns, row_sum, stream_load


def _kernel(*refs, hidden: int, block: int, vec: int, warps: int, slice_: int, eps: float, has_residual: bool,
            weight_first: bool, past_l1: bool):
    if has_residual:
        x_ref, res_ref, w_ref, out_ref, new_res_ref = refs
    else:
        (x_ref, w_ref, out_ref), res_ref, new_res_ref = refs, None, None
    cols = jnp.arange(block)
    mask = cols < hidden
    ocols, omask = out_columns(cols, mask, hidden, block, slice_)
    load_weight = lambda: plgpu.load(w_ref.at[ocols], mask=omask, other=0,  # noqa: E731
                                     eviction_policy=spec.WEIGHT_EVICTION or None).astype(jnp.float32)
    if weight_first:  # bispec.rms_norm.pallas_weight_first: no arithmetic changes with it
        w = load_weight()
    stream = functools.partial(_residual_stream, x_ref, res_ref, new_res_ref, past_l1=past_l1)
    s = stream(cols, mask, store=slice_ == block)
    squares = row_sum(mul_f32(s, s), vec, warps, whole_row=slice_ == block)
    rstd = jax.lax.rsqrt((squares + eps * hidden) * jnp.float32(common.inv_f32(hidden)))
    if slice_ < block:  # a split row: this program's columns read again (from cache), the same values
        s = stream(ocols, omask, store=True)
    if not weight_first:
        w = load_weight()
    plgpu.store(out_ref.at[ocols], (s * rstd * w).astype(out_ref.dtype), mask=omask,
                eviction_policy=spec.STREAM_EVICTION or None)


def _residual_stream(x_ref, res_ref, new_res_ref, cols, mask, store: bool, past_l1: bool):
    """fp32 x (+ residual, rounded to x's dtype as stored; `store` writes it to new_res_ref) at cols."""
    stream = spec.STREAM_EVICTION or None
    hint = stream_load(past_l1, spec.STREAM_EVICTION)  # past L1: spec.pallas_inputs_past_l1
    s = plgpu.load(x_ref.at[cols], mask=mask, other=0, **hint).astype(jnp.float32)
    if res_ref is not None:
        s = s + plgpu.load(res_ref.at[cols], mask=mask, other=0, **hint).astype(jnp.float32)
        # The norm sees the residual stream as stored: rounded to the input dtype.
        s_rounded = s.astype(new_res_ref.dtype)
        if store:
            plgpu.store(new_res_ref.at[cols], s_rounded, mask=mask, eviction_policy=stream)
        s = s_rounded.astype(jnp.float32)
    return s


def _run(x2, weight, residual2, eps: float):
    rows, hidden = x2.shape
    has_residual = residual2 is not None
    warps, block, split = spec.num_warps(hidden), spec.block_size(hidden), spec.split(rows, hidden, _launch.INTERPRET)
    kernel = functools.partial(_kernel, hidden=hidden, block=block, vec=common.vector_width(hidden, x2.dtype.itemsize),
                               warps=warps, slice_=block // split, eps=eps,
                               has_residual=has_residual, weight_first=spec.pallas_weight_first(rows),
                               past_l1=split == 1 and spec.pallas_inputs_past_l1(rows))
    row = _launch.row_spec(hidden)
    out = jax.ShapeDtypeStruct(x2.shape, x2.dtype)
    call = _launch.pallas_call(
        kernel, name="bijax_rms_norm", grid=(rows, split),
        in_specs=[row, row, _launch.whole_spec(hidden)] if has_residual else [row, _launch.whole_spec(hidden)],
        out_specs=[row, row] if has_residual else row,
        out_shape=[out, out] if has_residual else out,
        num_warps=warps)
    return call(x2, residual2, weight) if has_residual else call(x2, weight)


def rms_norm(x: jax.Array, weight: jax.Array, eps: float = spec.DEFAULT_EPS, residual: jax.Array | None = None):
    """RMSNorm of x's last dim; with `residual`, returns (norm(x + residual), x + residual)."""
    spec.check_args(x.shape, x.dtype, weight.shape, weight.dtype, eps, *common.shape_dtype(residual))
    hidden = x.shape[-1]
    if x.size == 0:
        empty = jnp.zeros(x.shape, x.dtype)
        return empty if residual is None else (empty, empty)
    res2 = None if residual is None else residual.reshape(-1, hidden)
    out = _run(x.reshape(-1, hidden), weight, res2, float(eps))
    if residual is None:
        return out.reshape(x.shape)
    return out[0].reshape(x.shape), out[1].reshape(x.shape)

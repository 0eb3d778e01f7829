"""Batch-invariant LayerNorm: Pallas kernel (Triton lowering)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas import triton as plgpu

from bispec import common
from bispec import layer_norm as spec
from bijax import _launch
from bijax._kernel_helpers import fma_f32, mul_f32, out_columns, row_sum, stream_load


def _kernel(*refs, hidden: int, block: int, vec: int, warps: int, slice_: int, in_block: bool, eps: float,
            has_weight: bool, has_bias: bool, params_first: bool, x_past_l1: bool):
    x_ref, *param_refs, out_ref = refs
    w_ref = param_refs.pop(0) if has_weight else None
    b_ref = param_refs.pop(0) if has_bias else None
    cols = jnp.arange(block)
    mask = cols < hidden
    ocols, omask = out_columns(cols, mask, hidden, block, slice_, in_block)
    param = spec.PARAM_EVICTION or None
    load = lambda ref: plgpu.load(ref.at[ocols], mask=omask, other=0, eviction_policy=param).astype(jnp.float32)  # noqa: E731
    if params_first:  # bispec.layer_norm.params_first: no arithmetic changes with it
        w = load(w_ref) if has_weight else None
        b = load(b_ref) if has_bias else None
    stream = spec.STREAM_EVICTION or None
    x_hint = stream_load(x_past_l1, spec.STREAM_EVICTION)  # past L1: spec.x_past_l1
    x = plgpu.load(x_ref.at[cols], mask=mask, other=0, **x_hint).astype(jnp.float32)
    if slice_ < block and not in_block:  # a split row's own block: its columns, loaded again now (the sums hide it)
        xs = plgpu.load(x_ref.at[ocols], mask=omask, other=0, eviction_policy=stream).astype(jnp.float32)
    inv = common.inv_f32(hidden)
    # x - mean, rounded once; the constant carries the sign (negating the sum would round -0 apart
    # between the frameworks). Padding lanes are zeroed so that they add nothing to the squares.
    whole = slice_ == block or in_block  # the sums meet only blocks of the row's layout: tree_total's blocks
    s, neg_inv = row_sum(x, vec, warps, whole), jnp.float32(-inv)
    d = jnp.where(mask, fma_f32(s, neg_inv, x), 0.0)
    rstd = jax.lax.rsqrt((row_sum(mul_f32(d, d), vec, warps, whole) + eps * hidden) * jnp.float32(inv))
    if slice_ < block and not in_block:  # d of this program's columns, by the same FMA
        d = fma_f32(s, neg_inv, xs)
    if not params_first:
        w = load(w_ref) if has_weight else None
        b = load(b_ref) if has_bias else None
    if has_weight:
        y = fma_f32(d * rstd, w, b) if has_bias else d * rstd * w
    else:
        y = fma_f32(d, rstd, b) if has_bias else d * rstd
    plgpu.store(out_ref.at[ocols], y.astype(out_ref.dtype), mask=omask, eviction_policy=stream)


def _run(x2, weight, bias, eps: float):
    rows, hidden = x2.shape
    params = [p for p in (weight, bias) if p is not None]
    warps, block, split = spec.num_warps(hidden), spec.block_size(hidden), spec.split(rows, hidden, _launch.INTERPRET)
    kernel = functools.partial(_kernel, hidden=hidden, block=block, vec=common.vector_width(hidden, x2.dtype.itemsize),
                               warps=warps, slice_=block // split, in_block=spec.in_block(split), eps=eps,
                               has_weight=weight is not None, has_bias=bias is not None,
                               params_first=spec.params_first(rows), x_past_l1=spec.x_past_l1(split))
    row = _launch.row_spec(hidden)
    call = _launch.pallas_call(
        kernel, name="bijax_layer_norm", grid=(rows, split),
        in_specs=[row] + [_launch.whole_spec(hidden)] * len(params), out_specs=row,
        out_shape=jax.ShapeDtypeStruct(x2.shape, x2.dtype), num_warps=warps)
    return call(x2, *params)


def layer_norm(x: jax.Array, weight: jax.Array | None = None, bias: jax.Array | None = None,
               eps: float = spec.DEFAULT_EPS) -> jax.Array:
    """LayerNorm of x's last dim (F.layer_norm with normalized_shape=(hidden,)); weight and bias optional."""
    spec.check_args(x.shape, x.dtype, *common.shape_dtype(weight), *common.shape_dtype(bias), eps)
    hidden = x.shape[-1]
    if x.size == 0:
        return jnp.zeros(x.shape, x.dtype)
    return _run(x.reshape(-1, hidden), weight, bias, float(eps)).reshape(x.shape)

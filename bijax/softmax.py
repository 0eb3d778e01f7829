"""Batch-invariant softmax and log_softmax: Pallas kernels (Triton lowering)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas import triton as plgpu

from bispec import softmax as spec
from bijax import _launch
from bijax._kernel_helpers import exp_f32, log_f32, max_sum_exp, merge_max_sum, reciprocal_f32


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


def _chunked_kernel(x_ref, out_ref, *, n: int, block: int, chunks: int, log: bool):
    """One long row in chunks: pass 1 merges per-chunk (max, sum), pass 2 re-reads (from L2) and writes."""
    cols = jnp.arange(block)

    def pass1(c, carry):
        offs = c * block + cols
        x = plgpu.load(x_ref.at[offs], mask=offs < n, other=-jnp.inf,
                       eviction_policy=spec.REREAD_EVICTION).astype(jnp.float32)
        return merge_max_sum(*carry, *max_sum_exp(x))

    m, s = jax.lax.fori_loop(0, chunks, pass1, (jnp.float32(-jnp.inf), jnp.float32(0.0)))
    k = _row_constant(s, log)

    def pass2(i, carry):  # last chunk first: what pass 1 read last is the likeliest still in L2
        offs = (chunks - 1 - i) * block + cols
        mask = offs < n
        x = plgpu.load(x_ref.at[offs], mask=mask, other=-jnp.inf,
                       eviction_policy=spec.STREAM_EVICTION).astype(jnp.float32)
        plgpu.store(out_ref.at[offs], _normalize(x, m, k, log).astype(out_ref.dtype), mask=mask,
                    eviction_policy=spec.STREAM_EVICTION)
        return carry

    jax.lax.fori_loop(0, chunks, pass2, 0)


@functools.partial(jax.jit, static_argnames=("out_dtype", "log", "plan", "interpret"))
def _run(x2: jax.Array, *, out_dtype, log: bool, plan: tuple[bool, int, int, int], interpret: bool) -> jax.Array:
    """The kernel over packed rows, compiled once per shape and key.

    `plan` (chunked, block, chunks, num_warps) comes from the spec and `interpret` from _launch: both are
    in the jit cache key, so a trace made under other constants or for the interpreter is never reused.
    """
    rows, n = x2.shape
    chunked, block, chunks, num_warps = plan
    if chunked:
        kernel = functools.partial(_chunked_kernel, n=n, block=block, chunks=chunks, log=log)
    else:
        kernel = functools.partial(_row_kernel, n=n, block=block, log=log)
    row = _launch.row_spec(n)
    return _launch.pallas_call(
        kernel, name=f"bijax_{'chunked_' if chunked else ''}{'log_softmax' if log else 'softmax'}", grid=(rows,),
        in_specs=[row], out_specs=row, out_shape=jax.ShapeDtypeStruct(x2.shape, out_dtype), num_warps=num_warps)(x2)


def _apply(x: jax.Array, dim, half_to_float, log: bool) -> jax.Array:
    n, _, dim, out_dtype = spec.check_args(x.shape, x.dtype, dim, half_to_float)
    xt = jnp.moveaxis(x, dim, -1)
    if x.size == 0:
        out = jnp.zeros(xt.shape, out_dtype)
    else:
        plan = (spec.chunked(n), spec.block_size(n), spec.num_chunks(n), spec.num_warps(n))
        out = _run(xt.reshape(-1, n), out_dtype=jnp.dtype(out_dtype), log=log, plan=plan,
                   interpret=_launch.INTERPRET).reshape(xt.shape)
    return jnp.moveaxis(out, -1, dim)


def softmax(x: jax.Array, dim: int = -1, half_to_float: bool = False) -> jax.Array:
    """softmax along `dim`; half_to_float=True takes bf16/fp16 x and returns fp32 (torch's aten._softmax)."""
    return _apply(x, dim, half_to_float, log=False)


def log_softmax(x: jax.Array, dim: int = -1, half_to_float: bool = False) -> jax.Array:
    """log_softmax along `dim`; half_to_float=True takes bf16/fp16 x and returns fp32 (torch's aten._log_softmax)."""
    return _apply(x, dim, half_to_float, log=True)

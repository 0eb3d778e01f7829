"""Batch-invariant matmul / bmm / linear: Pallas kernels (Triton lowering).

The same reduction order as bitorch (bispec.matmul): K tiles of BLOCK_K[dtype]
summed ascending into one fp32 accumulator, in an output tile that
plan(M, N, K, dtype) picks for the shape.

Each program indexes its tile of whole-array refs with pl.ds and masked
plgpu loads/stores, as the Triton kernels do with pointers; the batch axis is
a grid axis whose block dimension is squeezed. linear reads the weight in its
(N, K) layout and contracts both operands' last axes (the lowering transposes
the tile). jit and vmap apply as to any pallas_call (vmap adds a grid axis). On Hopper,
bf16/fp16 matmul, bmm and linear run bijax/matmul_mosaic.py's kernel where its tile
fits (the same bits).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from bispec import common
from bispec import matmul as spec
from bijax import _launch, matmul_mosaic


def _dot_acc(acc, a, b, *, weight_nk: bool, precision):
    """acc + a @ b in fp32 (Triton folds the add into the MMA's accumulator, as in bitorch).

    Under the interpreter XLA's CPU dot (and its reductions) order a row's sums by the tile's shape, which
    follows M; there the products are summed over k by a tree of elementwise adds (k and k + 1 first; BLOCK_K
    is a power of 2), one order for every row, column and tile, the products kept apart from the adds (no
    contraction into FMAs). TF32 is not emulated (full fp32 products)."""
    if _launch.INTERPRET:
        b_kn = (b.T if weight_nk else b).astype(jnp.float32)
        terms = lax.optimization_barrier(a.astype(jnp.float32)[:, :, None] * b_kn[None, :, :])
        while terms.shape[1] > 1:
            terms = terms[:, 0::2] + terms[:, 1::2]
        return acc + terms[:, 0]
    dims = (((1,), (1,)), ((), ())) if weight_nk else (((1,), (0,)), ((), ()))
    return acc + lax.dot_general(a, b, dims, precision=precision, preferred_element_type=jnp.float32)


class _Tile:
    """One program's output rows, or one column block of it: offsets and edge masks."""

    def __init__(self, pid_m, n0, m: int, n: int, block_m: int, block_n: int):
        self.rows = pl.ds(pid_m * block_m, block_m)
        self.cols = pl.ds(n0, block_n)
        self.mask_m = (pid_m * block_m + jnp.arange(block_m)) < m
        self.mask_n = (n0 + jnp.arange(block_n)) < n
        self.mask = self.mask_m[:, None] & self.mask_n[None, :]


def _load_tile(ref, rows, mask_rows, kt, p: spec.Plan, k_last: bool):
    """K tile kt of an operand: ref[rows, k] (k_last) or ref[k, rows]; zeros past the edges."""
    bk = p.block_k
    ks = pl.ds(kt * bk, bk)
    mask = mask_rows[:, None] if k_last else mask_rows[None, :]
    if not p.even_k:
        k_ok = jnp.arange(bk) < p.k - kt * bk
        mask = mask & (k_ok[None, :] if k_last else k_ok[:, None])
    return plgpu.load(ref.at[rows, ks] if k_last else ref.at[ks, rows], mask=mask, other=0)


def _epilogue(total, bias_ref, out_ref, tile: _Tile):
    """out = round(total + bias): the bias added once in fp32, one rounding to the output dtype."""
    if bias_ref is not None:
        total = total + plgpu.load(bias_ref.at[tile.cols], mask=tile.mask_n, other=0).astype(jnp.float32)[None, :]
    plgpu.store(out_ref.at[tile.rows, tile.cols], total.astype(out_ref.dtype), mask=tile.mask)


def _matmul_kernel(a_ref, b_ref, *refs, m, n, p: spec.Plan, weight_nk, precision, has_bias):
    """One program per output tile: the K tiles in ascending order into one accumulator per column block
    (bitorch's matmul_kernel)."""
    bias_ref, out_ref = refs if has_bias else (None, refs[0])
    t = p.tiling
    pid_m, pid_n = spec.tile_of(pl.program_id(0), common.cdiv(m, t.block_m), common.cdiv(n, t.width), t.group_m,
                                 jnp.minimum)
    blocks = [_Tile(pid_m, pid_n * t.width, m, n, t.block_m, t.block_n)]
    if t.block_n2:
        blocks.append(_Tile(pid_m, pid_n * t.width + t.block_n, m, n, t.block_m, t.block_n2))

    def body(kt, accs):
        a = _load_tile(a_ref, blocks[0].rows, blocks[0].mask_m, kt, p, k_last=True)
        return tuple(_dot_acc(acc, a, _load_tile(b_ref, blk.cols, blk.mask_n, kt, p, k_last=weight_nk),
                              weight_nk=weight_nk, precision=precision) for acc, blk in zip(accs, blocks))

    accs = lax.fori_loop(0, p.k_tiles, body, tuple(jnp.zeros(blk.mask.shape, jnp.float32) for blk in blocks))
    for acc, blk in zip(accs, blocks):
        _epilogue(acc, bias_ref, out_ref, blk)


def _run(a, b, bias, *, weight_nk: bool, allow_tf32: bool, shared_b: bool):
    """a (B, M, K) @ b (B or 1, K, N), or b (1, N, K) with weight_nk, [+ bias] -> (B, M, N)."""
    batch, m, k = a.shape
    n = b.shape[1] if weight_nk else b.shape[2]
    p = spec.plan(m, n, k, common.dtype_name(a.dtype), allow_tf32, pallas=True, mosaic=_launch.HOPPER)
    t = p.tiling
    if t.mosaic:
        return matmul_mosaic.matmul(a, b, p, weight_nk=weight_nk, sms=_launch.multiprocessors(), bias=bias)
    precision = lax.Precision.HIGH if p.precision == "tf32" else lax.Precision.HIGHEST  # HIGH lowers to TF32
    a_spec = pl.BlockSpec((None, m, k), lambda i, bt: (bt, 0, 0))
    b_spec = pl.BlockSpec((None, *b.shape[1:]), (lambda i, bt: (0, 0, 0)) if shared_b else (lambda i, bt: (bt, 0, 0)))
    bias_spec = [pl.BlockSpec((n,), lambda i, bt: (0,))] if bias is not None else []
    bias_args = (bias,) if bias is not None else ()
    return _launch.pallas_call(
        functools.partial(_matmul_kernel, m=m, n=n, p=p, weight_nk=weight_nk, precision=precision,
                          has_bias=bias is not None),
        name="bijax_matmul", grid=(t.programs(m, n), batch), in_specs=[a_spec, b_spec, *bias_spec],
        out_specs=pl.BlockSpec((None, m, n), lambda i, bt: (bt, 0, 0)),
        out_shape=jax.ShapeDtypeStruct((batch, m, n), a.dtype),
        num_warps=t.num_warps, num_stages=t.num_stages)(a, b, *bias_args)


def matmul(a: jax.Array, b: jax.Array, bias: jax.Array | None = None, *, allow_tf32: bool = False) -> jax.Array:
    """a (M, K) @ b (K, N) [+ bias (N,)], batch-invariant (bispec.matmul)."""
    m, k, n, _ = spec.check_matmul(a.shape, a.dtype, b.shape, b.dtype, *common.shape_dtype(bias), allow_tf32)
    if m * n == 0:
        return jnp.zeros((m, n), a.dtype)
    return _run(a[None], b[None], bias, weight_nk=False, allow_tf32=allow_tf32, shared_b=True)[0]


def bmm(a: jax.Array, b: jax.Array, *, allow_tf32: bool = False) -> jax.Array:
    """a (B, M, K) @ b (B, K, N), batch-invariant (bispec.matmul)."""
    batch, m, k, n, _ = spec.check_bmm(a.shape, a.dtype, b.shape, b.dtype, allow_tf32)
    if batch * m * n == 0:
        return jnp.zeros((batch, m, n), a.dtype)
    return _run(a, b, None, weight_nk=False, allow_tf32=allow_tf32, shared_b=False)


def linear(x: jax.Array, weight: jax.Array, bias: jax.Array | None = None, *,
           allow_tf32: bool = False) -> jax.Array:
    """x (..., K) @ weight (N, K).T [+ bias (N,)] as torch's F.linear, batch-invariant (bispec.matmul)."""
    m, k, n, _ = spec.check_linear(x.shape, x.dtype, weight.shape, weight.dtype, *common.shape_dtype(bias),
                                   allow_tf32)
    shape = (*x.shape[:-1], n)
    if m * n == 0:
        return jnp.zeros(shape, x.dtype)
    out = _run(x.reshape(1, m, k), weight[None], bias, weight_nk=True, allow_tf32=allow_tf32, shared_b=True)
    return out.reshape(shape)

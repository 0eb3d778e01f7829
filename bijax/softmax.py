"""Batch-invariant softmax and log_softmax: Pallas kernels (Triton lowering)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from bispec import common
from bispec import softmax as spec
from bijax import _launch
from bijax._kernel_helpers import combine_chunks, exp_shift, log_f32, max_exp, reciprocal_f32, tree_sum


def _normalize(x, e, m_part, m, s, log: bool):
    """The outputs of a block whose max is m_part and e = exp(x - m_part), in a row of (M, S) = (m, s)."""
    return (x - m) - log_f32(s) if log else e * (exp_shift(m_part, m) * reciprocal_f32(s))


def _row_kernel(x_ref, out_ref, *, n: int, block: int, vec: int, warps: int, log: bool):
    """One row held in registers: one read, one write."""
    cols = jnp.arange(block)
    mask = cols < n
    x = plgpu.load(x_ref.at[cols], mask=mask, other=-jnp.inf, eviction_policy=spec.STREAM_EVICTION).astype(jnp.float32)
    m, e = max_exp(x)
    out = _normalize(x, e, m, m, tree_sum(e, vec, warps), log)
    plgpu.store(out_ref.at[cols], out.astype(out_ref.dtype), mask=mask, eviction_policy=spec.STREAM_EVICTION)


def _chunk(x_ref, row, c, n: int, block: int, eviction: str):
    """Chunk c of a row: (columns, mask, x in fp32, m_c, exp(x - m_c))."""
    cols = c * block + jnp.arange(block)
    mask = cols < n
    x = plgpu.load(x_ref.at[row, cols], mask=mask, other=-jnp.inf, eviction_policy=eviction).astype(jnp.float32)
    return (cols, mask, x, *max_exp(x))


def _store_stats(m_ref, s_ref, row, c, m_c, e, chunks: int, vec: int, warps: int):
    s_c = tree_sum(e, vec, warps)

    @pl.when(c < chunks)  # a group's last chunk may lie past the row
    def _():
        plgpu.store(m_ref.at[row, c], m_c)
        plgpu.store(s_ref.at[row, c], s_c)


def _store_out(out_ref, row, cols, mask, x, e, m_c, m, s, log: bool):
    out = _normalize(x, e, m_c, m, s, log)
    plgpu.store(out_ref.at[row, cols], out.astype(out_ref.dtype), mask=mask, eviction_policy=spec.STREAM_EVICTION)


def _chunked_kernel(*refs, n: int, block: int, vec: int, warps: int, chunks: int, stats: int, group: int, log: bool,
                    stats_pass: bool, out_pass: bool, eviction: str):
    """A long row, a program per (row, `group` chunks from c0) as bispec.softmax orders it; refs are whole arrays.

    stats_pass writes each chunk's (max, sum of exp(x - max)) to the workspace; out_pass combines the row's and
    writes the chunks' outputs. Both at once (a GPU, one launch): the program streams its first group - 1 chunks,
    holds the last one in registers while it waits for the row's other chunks, counted in sync[1 + row], then
    writes it and re-reads the others.
    """
    if stats_pass and out_pass:
        x_ref, _, m_ref, s_ref, out_ref, sync_ref = refs
        # Tickets in start order: see bispec.softmax on why this cannot hang. (Arrays, not Python ints, for the
        # interpreter's atomics; it runs this launch where one program holds a whole row.)
        t = plgpu.atomic_add(sync_ref, jnp.int32(0), jnp.int32(1))
    else:
        x_ref, m_ref, s_ref, out_ref = refs if out_pass else (*refs, None)
        t = pl.program_id(0)
    programs = common.cdiv(chunks, group)
    # Unsigned, and the row clamped to the array (neither changes a valid ticket): the compiler then bounds
    # row * n in int32 and keeps the row's addresses per program, not per thread (sm_90, offline: 56 registers
    # in groups of 2, as bitorch's kernel; signed, 72; signed and clamped, 64).
    tu = t.astype(jnp.uint32)
    row = jnp.minimum(tu // programs, x_ref.shape[0] - 1).astype(jnp.int32)
    c0 = (tu % programs).astype(jnp.int32) * group

    def stream(j, carry):
        *_, m_c, e = _chunk(x_ref, row, c0 + j, n, block, spec.REREAD_EVICTION)
        _store_stats(m_ref, s_ref, row, c0 + j, m_c, e, chunks, vec, warps)
        return carry

    jax.lax.fori_loop(0, group - 1, stream, 0)
    held = c0 + group - 1
    cols, mask, x, m_h, e = _chunk(x_ref, row, held, n, block, eviction)  # the out pass alone recomputes (m_c, e)
    if stats_pass:
        _store_stats(m_ref, s_ref, row, held, m_h, e, chunks, vec, warps)
    if stats_pass and out_pass:
        if not _launch.INTERPRET:  # (the interpreter runs a program as one thread: nothing to order)
            plgpu.debug_barrier()  # the stores above come before this program's arrival is released
        mine = jnp.minimum(group, chunks - c0)
        arrived = plgpu.atomic_add(sync_ref, row + 1, mine) + mine

        def poll(arrived):
            return plgpu.atomic_add(sync_ref, row + 1, arrived * 0)  # (a literal 0 trips the interpreter)

        jax.lax.while_loop(lambda arrived: arrived < chunks, poll, arrived)
    if out_pass:
        i = jnp.arange(stats)
        m, s = combine_chunks(plgpu.load(m_ref.at[row, i], mask=i < chunks, other=-jnp.inf, volatile=True),
                              plgpu.load(s_ref.at[row, i], mask=i < chunks, other=0.0, volatile=True))
        _store_out(out_ref, row, cols, mask, x, e, m_h, m, s, log)

        def reread(j, carry):
            cols, mask, x, m_c, e = _chunk(x_ref, row, c0 + j, n, block, spec.STREAM_EVICTION)
            _store_out(out_ref, row, cols, mask, x, e, m_c, m, s, log)
            return carry

        jax.lax.fori_loop(0, group - 1, reread, 0)


def chunked(x2: jax.Array, out_dtype, log: bool, fused: bool) -> jax.Array:
    """_chunked_kernel over packed rows longer than spec.MAX_REGISTER: one launch (fused) or two."""
    rows, n = x2.shape
    chunks = spec.num_chunks(n)
    warps = spec.num_warps(n)
    group = spec.group(fused, _launch.gpu_name())
    call = functools.partial(_launch.pallas_call, grid=(rows * common.cdiv(chunks, group),), num_warps=warps)
    kernel = functools.partial(_chunked_kernel, n=n, block=spec.block_size(n),
                               vec=common.vector_width(n, x2.dtype.itemsize), warps=warps, chunks=chunks,
                               stats=spec.stats_block(n), group=group, log=log)
    name = f"bijax_{'log_softmax' if log else 'softmax'}_chunked"
    stat_shape = jax.ShapeDtypeStruct((rows, chunks), jnp.float32)
    out_shape = jax.ShapeDtypeStruct(x2.shape, out_dtype)
    x_spec, sync_spec, stat_spec = (pl.BlockSpec(shape, lambda t, dims=len(shape): (0,) * dims)
                                    for shape in (x2.shape, (rows + 1,), (rows, chunks)))
    if fused:
        sync = jnp.zeros((rows + 1,), jnp.int32)
        *_, out, _ = call(
            functools.partial(kernel, stats_pass=True, out_pass=True, eviction=spec.STREAM_EVICTION),
            name=f"{name}_fused", in_specs=[x_spec, sync_spec], out_specs=[stat_spec, stat_spec, x_spec, sync_spec],
            out_shape=[stat_shape, stat_shape, out_shape, sync], input_output_aliases={1: 3})(x2, sync)
        return out
    m_c, s_c = call(functools.partial(kernel, stats_pass=True, out_pass=False, eviction=spec.REREAD_EVICTION),
                    name=f"{name}_stats", in_specs=[x_spec], out_specs=[stat_spec, stat_spec],
                    out_shape=[stat_shape, stat_shape])(x2)
    return call(functools.partial(kernel, stats_pass=False, out_pass=True, eviction=spec.STREAM_EVICTION),
                name=f"{name}_out", in_specs=[x_spec, stat_spec, stat_spec], out_specs=x_spec,
                out_shape=out_shape)(x2, m_c, s_c)


@functools.partial(jax.jit, static_argnames=("out_dtype", "log", "plan", "interpret"))
def _run(x2: jax.Array, *, out_dtype, log: bool, plan: tuple[bool, bool, int, int], interpret: bool) -> jax.Array:
    """The kernel over packed rows, compiled once per shape and key.

    `plan` (long row, fused, block, num_warps) comes from the spec and `interpret` from _launch: both are in the
    jit cache key, so a trace made under other constants or for the interpreter is never reused.
    """
    long_row, fused, block, num_warps = plan
    if long_row:
        return chunked(x2, out_dtype, log, fused)
    row = _launch.row_spec(x2.shape[1])
    return _launch.pallas_call(
        functools.partial(_row_kernel, n=x2.shape[1], block=block,
                          vec=common.vector_width(x2.shape[1], x2.dtype.itemsize), warps=num_warps, log=log),
        name=f"bijax_{'log_softmax' if log else 'softmax'}", grid=(x2.shape[0],), in_specs=[row], out_specs=row,
        out_shape=jax.ShapeDtypeStruct(x2.shape, out_dtype), num_warps=num_warps)(x2)


def _apply(x: jax.Array, dim, half_to_float, log: bool) -> jax.Array:
    n, _, dim, out_dtype = spec.check_args(x.shape, x.dtype, dim, half_to_float)
    xt = jnp.moveaxis(x, dim, -1)
    if x.size == 0:
        out = jnp.zeros(xt.shape, out_dtype)
    else:
        plan = (spec.chunked(n), spec.fused(n, x.size // n, _launch.multiprocessors()), spec.block_size(n),
                spec.num_warps(n))
        out = _run(xt.reshape(-1, n), out_dtype=jnp.dtype(out_dtype), log=log, plan=plan,
                   interpret=_launch.INTERPRET).reshape(xt.shape)
    return jnp.moveaxis(out, -1, dim)


def softmax(x: jax.Array, dim: int = -1, half_to_float: bool = False) -> jax.Array:
    """softmax along `dim`; half_to_float=True takes bf16/fp16 x and returns fp32 (torch's aten._softmax)."""
    return _apply(x, dim, half_to_float, log=False)


def log_softmax(x: jax.Array, dim: int = -1, half_to_float: bool = False) -> jax.Array:
    """log_softmax along `dim`; half_to_float=True takes bf16/fp16 x and returns fp32 (torch's aten._log_softmax)."""
    return _apply(x, dim, half_to_float, log=True)

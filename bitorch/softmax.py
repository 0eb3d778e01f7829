"""Batch-invariant softmax and log_softmax: Triton kernels and torch custom ops."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from bispec import common
from bispec import softmax as spec
from bitorch import _launch
from bitorch._triton_helpers import cast_rtne, combine_chunks, exp_shift, log_f32, max_exp, reciprocal_f32, tree_sum


_STREAM = tl.constexpr(spec.STREAM_EVICTION)
_REREAD = tl.constexpr(spec.REREAD_EVICTION)


@triton.jit
def _normalize(x, e, m_part, m, s, LOG: tl.constexpr):
    """The outputs of a block whose max is m_part and e = exp(x - m_part), in a row of (M, S) = (m, s)."""
    if LOG:
        return (x - m) - log_f32(s)
    else:
        return e * (exp_shift(m_part, m) * reciprocal_f32(s))


@triton.jit
def softmax_row_kernel(x_ptr, out_ptr, N: tl.constexpr, BLOCK: tl.constexpr, VEC: tl.constexpr, WARPS: tl.constexpr,
                       LOG: tl.constexpr):
    """One row held in registers: one read, one write."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < N
    x = tl.load(x_ptr + row * N + cols, mask=mask, other=float("-inf"), eviction_policy=_STREAM).to(tl.float32)
    m, e = max_exp(x)
    out = _normalize(x, e, m, m, tree_sum(e, VEC, WARPS), LOG)
    tl.store(out_ptr + row * N + cols, cast_rtne(out, out_ptr.dtype.element_ty), mask=mask, eviction_policy=_STREAM)


@triton.jit
def _chunk(x_row, c, N: tl.constexpr, BLOCK: tl.constexpr, EVICTION: tl.constexpr):
    """Chunk c of a row: (offsets, mask, x in fp32, m_c, exp(x - m_c))."""
    offs = c * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = tl.load(x_row + offs, mask=mask, other=float("-inf"), eviction_policy=EVICTION).to(tl.float32)
    m_c, e = max_exp(x)
    return offs, mask, x, m_c, e


@triton.jit
def _store_stats(m_row, s_row, c, m_c, e, CHUNKS: tl.constexpr, VEC: tl.constexpr, WARPS: tl.constexpr):
    tl.store(m_row + c, m_c, mask=c < CHUNKS)  # a group's last chunk may lie past the row
    tl.store(s_row + c, tree_sum(e, VEC, WARPS), mask=c < CHUNKS)


@triton.jit
def _store_out(out_row, offs, mask, x, e, m_c, m, s, LOG: tl.constexpr):
    out = _normalize(x, e, m_c, m, s, LOG)
    tl.store(out_row + offs, cast_rtne(out, out_row.dtype.element_ty), mask=mask, eviction_policy=_STREAM)


@triton.jit
def softmax_chunked_kernel(x_ptr, m_ptr, s_ptr, sync_ptr, out_ptr, N: tl.constexpr, BLOCK: tl.constexpr,
                           VEC: tl.constexpr, WARPS: tl.constexpr, CHUNKS: tl.constexpr, STATS: tl.constexpr,
                           GROUP: tl.constexpr, LOG: tl.constexpr, STATS_PASS: tl.constexpr, OUT_PASS: tl.constexpr,
                           EVICTION: tl.constexpr):
    """A long row, a program per (row, GROUP chunks from c0) as bispec.softmax orders it.

    STATS_PASS writes each chunk's (max, sum of exp(x - max)) to the workspace; OUT_PASS combines the row's
    and writes the chunks' outputs. Both at once (a GPU, one launch): the program streams its first GROUP - 1
    chunks, holds the last one in registers (softmax: its exps, log_softmax: x) while it waits for the row's
    other chunks, counted in sync_ptr[1 + row], then writes it and re-reads the others.
    """
    if STATS_PASS and OUT_PASS:
        t = tl.atomic_add(sync_ptr, 1)  # tickets in start order: see bispec.softmax on why this cannot hang
    else:
        t = tl.program_id(0)
    PROGRAMS: tl.constexpr = (CHUNKS + GROUP - 1) // GROUP
    row = (t // PROGRAMS).to(tl.int64)
    c0 = (t % PROGRAMS) * GROUP
    x_row, out_row = x_ptr + row * N, out_ptr + row * N
    m_row, s_row = m_ptr + row * CHUNKS, s_ptr + row * CHUNKS
    for j in tl.range(GROUP - 1):
        _, _, _, m_c, e = _chunk(x_row, c0 + j, N, BLOCK, _REREAD)
        _store_stats(m_row, s_row, c0 + j, m_c, e, CHUNKS, VEC, WARPS)
    held = c0 + GROUP - 1
    offs, mask, x, m_h, e = _chunk(x_row, held, N, BLOCK, EVICTION)  # the out pass alone recomputes (m_c, e)
    if STATS_PASS:
        _store_stats(m_row, s_row, held, m_h, e, CHUNKS, VEC, WARPS)
    if STATS_PASS and OUT_PASS:
        tl.debug_barrier()  # the stores above come before this program's arrival is released
        mine = tl.minimum(GROUP, CHUNKS - c0)
        arrived = tl.atomic_add(sync_ptr + 1 + row, mine) + mine
        while arrived < CHUNKS:
            arrived = tl.atomic_add(sync_ptr + 1 + row, 0)
    if OUT_PASS:
        i = tl.arange(0, STATS)
        m, s = combine_chunks(tl.load(m_row + i, mask=i < CHUNKS, other=float("-inf"), volatile=True),
                              tl.load(s_row + i, mask=i < CHUNKS, other=0.0, volatile=True))
        _store_out(out_row, offs, mask, x, e, m_h, m, s, LOG)
        for j in tl.range(GROUP - 1):
            offs, mask, x, m_c, e = _chunk(x_row, c0 + j, N, BLOCK, _STREAM)
            _store_out(out_row, offs, mask, x, e, m_c, m, s, LOG)


def chunked_launches(x2: torch.Tensor, out: torch.Tensor, log: bool, fused: bool) -> None:
    """softmax_chunked_kernel over packed rows longer than spec.MAX_REGISTER: one launch (fused) or two."""
    rows, n = x2.shape
    chunks = spec.num_chunks(n)
    m_c, s_c = torch.empty((2, rows, chunks), dtype=torch.float32, device=x2.device)
    group = spec.group(fused, _launch.gpu_name(x2))
    meta = dict(N=n, BLOCK=spec.block_size(n), VEC=common.vector_width(n, x2.element_size()), WARPS=spec.num_warps(n),
                CHUNKS=chunks, STATS=spec.stats_block(n), GROUP=group, LOG=log)
    grid = (rows * common.cdiv(chunks, group),)
    if fused:
        sync = torch.zeros(rows + 1, dtype=torch.int32, device=x2.device)
        _launch.launch(softmax_chunked_kernel, grid, x2, m_c, s_c, sync, out, STATS_PASS=True, OUT_PASS=True,
                       EVICTION=spec.STREAM_EVICTION, **meta)
        return
    for passes, eviction in (((True, False), spec.REREAD_EVICTION), ((False, True), spec.STREAM_EVICTION)):
        _launch.launch(softmax_chunked_kernel, grid, x2, m_c, s_c, None, out, STATS_PASS=passes[0],
                       OUT_PASS=passes[1], EVICTION=eviction, **meta)


def _run(x: torch.Tensor, dim: int, half_to_float: bool, log: bool) -> torch.Tensor:
    xt = x.movedim(dim, -1)
    n = xt.shape[-1]
    x2 = _launch.packed_rows(xt)
    out = torch.empty(xt.shape, dtype=torch.float32 if half_to_float else x.dtype, device=x.device)
    rows = x2.shape[0]
    if rows and spec.chunked(n):
        chunked_launches(x2, out, log, spec.fused(n, rows, _launch.multiprocessors(x2)))
    elif rows:
        _launch.launch(softmax_row_kernel, (rows,), x2, out, N=n, BLOCK=spec.block_size(n),
                       VEC=common.vector_width(n, x2.element_size()), WARPS=spec.num_warps(n), LOG=log)
    return out.movedim(-1, dim)


def _fake(x: torch.Tensor, dim: int, half_to_float: bool) -> torch.Tensor:
    xt = x.movedim(dim, -1)
    return torch.empty(xt.shape, dtype=torch.float32 if half_to_float else x.dtype, device=x.device).movedim(-1, dim)


@torch.library.custom_op("bitorch::softmax", mutates_args=())
def softmax_op(x: torch.Tensor, dim: int, half_to_float: bool) -> torch.Tensor:
    return _run(x, dim, half_to_float, log=False)


@torch.library.custom_op("bitorch::log_softmax", mutates_args=())
def log_softmax_op(x: torch.Tensor, dim: int, half_to_float: bool) -> torch.Tensor:
    return _run(x, dim, half_to_float, log=True)


softmax_op.register_fake(_fake)
log_softmax_op.register_fake(_fake)


def _checked(x: torch.Tensor, dim, half_to_float) -> int:
    dim = spec.check_args(x.shape, x.dtype, dim, half_to_float)[2]
    _launch.check_device("x", x)
    return dim


def softmax(x: torch.Tensor, dim: int = -1, half_to_float: bool = False) -> torch.Tensor:
    """softmax along `dim`; half_to_float=True takes bf16/fp16 x and returns fp32 (torch's aten._softmax)."""
    return softmax_op(x, _checked(x, dim, half_to_float), bool(half_to_float))


def log_softmax(x: torch.Tensor, dim: int = -1, half_to_float: bool = False) -> torch.Tensor:
    """log_softmax along `dim`; half_to_float=True takes bf16/fp16 x and returns fp32 (torch's aten._log_softmax)."""
    return log_softmax_op(x, _checked(x, dim, half_to_float), bool(half_to_float))

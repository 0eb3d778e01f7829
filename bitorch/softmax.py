"""Batch-invariant softmax and log_softmax: Triton kernels and torch custom ops."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from bispec import softmax as spec
from bitorch import _launch
from bitorch._triton_helpers import cast_rtne, combine_chunks, exp_f32, log_f32, max_sum_exp, reciprocal_f32


@triton.jit
def _row_constant(s, LOG: tl.constexpr):
    """What the row's outputs need of S: log(S) for log_softmax, 1/S for softmax."""
    if LOG:
        return log_f32(s)
    else:
        return reciprocal_f32(s)


@triton.jit
def _normalize(x, m, k, LOG: tl.constexpr):
    if LOG:
        return (x - m) - k
    else:
        return exp_f32(x - m) * k


@triton.jit
def softmax_row_kernel(x_ptr, out_ptr, N: tl.constexpr, BLOCK: tl.constexpr, LOG: tl.constexpr,
                       STREAM: tl.constexpr):
    """One row held in registers: one read, one write."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < N
    x = tl.load(x_ptr + row * N + cols, mask=mask, other=float("-inf"), eviction_policy=STREAM).to(tl.float32)
    m, s = max_sum_exp(x)
    out = _normalize(x, m, _row_constant(s, LOG), LOG)
    tl.store(out_ptr + row * N + cols, cast_rtne(out, out_ptr.dtype.element_ty), mask=mask, eviction_policy=STREAM)


@triton.jit
def softmax_chunk_stats_kernel(x_ptr, m_ptr, s_ptr, N: tl.constexpr, BLOCK: tl.constexpr, CHUNKS: tl.constexpr,
                               REREAD: tl.constexpr):
    """Pass 1 of a long row; grid (rows, chunks): chunk c's max and sum of exp(x - max) to the workspace."""
    row = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1)
    offs = c * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * N + offs, mask=offs < N, other=float("-inf"), eviction_policy=REREAD)
    m_c, s_c = max_sum_exp(x.to(tl.float32))
    tl.store(m_ptr + row * CHUNKS + c, m_c)
    tl.store(s_ptr + row * CHUNKS + c, s_c)


@triton.jit
def softmax_chunk_out_kernel(x_ptr, m_ptr, s_ptr, out_ptr, N: tl.constexpr, BLOCK: tl.constexpr,
                             CHUNKS: tl.constexpr, STATS: tl.constexpr, LOG: tl.constexpr, STREAM: tl.constexpr):
    """Pass 2 of a long row; grid (rows, chunks): the row's (M, S) from every chunk's, then chunk c's outputs."""
    row = tl.program_id(0).to(tl.int64)
    i = tl.arange(0, STATS)
    m_c = tl.load(m_ptr + row * CHUNKS + i, mask=i < CHUNKS, other=float("-inf"))
    s_c = tl.load(s_ptr + row * CHUNKS + i, mask=i < CHUNKS, other=0.0)
    m, s = combine_chunks(m_c, s_c)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    x = tl.load(x_ptr + row * N + offs, mask=mask, other=float("-inf"), eviction_policy=STREAM).to(tl.float32)
    out = _normalize(x, m, _row_constant(s, LOG), LOG)
    tl.store(out_ptr + row * N + offs, cast_rtne(out, out_ptr.dtype.element_ty), mask=mask, eviction_policy=STREAM)


def _run(x: torch.Tensor, dim: int, half_to_float: bool, log: bool) -> torch.Tensor:
    xt = x.movedim(dim, -1)
    n = xt.shape[-1]
    x2 = _launch.packed_rows(xt)
    out = torch.empty(xt.shape, dtype=torch.float32 if half_to_float else x.dtype, device=x.device)
    rows = x2.shape[0]
    if rows and spec.chunked(n):
        chunks = spec.num_chunks(n)
        m_c, s_c = torch.empty((2, rows, chunks), dtype=torch.float32, device=x.device)
        meta = dict(N=n, BLOCK=spec.block_size(n), CHUNKS=chunks, num_warps=spec.num_warps(n))
        _launch.launch(softmax_chunk_stats_kernel, (rows, chunks), x2, m_c, s_c, REREAD=spec.REREAD_EVICTION,
                       **meta)
        _launch.launch(softmax_chunk_out_kernel, (rows, chunks), x2, m_c, s_c, out, STATS=spec.stats_block(n),
                       LOG=log, STREAM=spec.STREAM_EVICTION, **meta)
    elif rows:
        _launch.launch(softmax_row_kernel, (rows,), x2, out, N=n, BLOCK=spec.block_size(n), LOG=log,
                       STREAM=spec.STREAM_EVICTION, num_warps=spec.num_warps(n))
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

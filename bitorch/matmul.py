"""Batch-invariant matmul / bmm / linear: Triton kernels and torch custom ops.

The reduction order is bispec.matmul's: K tiles of BLOCK_K[dtype] summed
ascending into one fp32 accumulator. plan(M, N, K, dtype) picks the output tile
for the shape (the same bits for every tile). On Hopper most of its tiles load
one matrix's operands by TMA descriptors instead (matmul_tma_kernel, the two
largest persistent: bispec.matmul.TMA_SWAPS), where their layout allows.

Operands may have any strides (transposed, sliced, expanded): the kernels take
them as arguments, so nothing is copied; linear hands the weight (N, K) in as
its transposed view. Two exceptions are copied to contiguous first (same values,
same bits): a strided bias (N elements), and an operand whose K stride is so
large that BLOCK_K steps would overflow int32.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from bispec import common
from bispec import matmul as spec
from bitorch import _launch
from bitorch._triton_helpers import cast_rtne

_INTERPRET = tl.constexpr(_launch.INTERPRET)


@triton.jit
def _dot_acc(acc, a, b, PRECISION: tl.constexpr):
    """acc + a @ b in fp32. Written as an add, exactly as Pallas writes it; Triton folds the add into
    the MMA's accumulator input in both.

    Under the interpreter tl.dot is NumPy's matmul, which multiplies bf16's raw bits and (OpenBLAS)
    sums a row differently by its place in the tile, and NumPy's sums over an axis also follow the
    array's shape. There the products are summed over k by a tree of elementwise adds (k and k + 1
    first, as bijax's interpreter path does; BLOCK_K is a power of 2): the same order for every row,
    column and tile shape, as the GPU's MMA is, so the CPU tests can check batch invariance. The
    first level is formed from the even and odd k apart (Triton caps a block at 2**20 elements).
    TF32 is not emulated (full fp32 products). (Interpreted Python: the loop over the levels.)"""
    if _INTERPRET:
        BM: tl.constexpr = a.shape[0]
        BK: tl.constexpr = a.shape[1]
        BN: tl.constexpr = b.shape[1]
        a_even, a_odd = tl.split(tl.reshape(a.to(tl.float32), (BM, BK // 2, 2)))
        b_even, b_odd = tl.split(tl.reshape(tl.trans(b.to(tl.float32)), (BN, BK // 2, 2)))
        terms = a_even[:, :, None] * tl.trans(b_even)[None, :, :] + a_odd[:, :, None] * tl.trans(b_odd)[None, :, :]
        while terms.shape[1] > 1:
            lo, hi = tl.split(tl.permute(tl.reshape(terms, (BM, terms.shape[1] // 2, 2, BN)), (0, 1, 3, 2)))
            terms = lo + hi
        return acc + tl.reshape(terms, (BM, BN))
    else:
        return acc + tl.dot(a, b, input_precision=PRECISION, out_dtype=tl.float32)


@triton.jit
def _tile(pid, M, N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """Grouped tile order (bispec.matmul.tile_of): GROUP_M row tiles sweep the column tiles together."""
    tiles_m = tl.cdiv(M, BLOCK_M)
    tiles_n: tl.constexpr = (N + BLOCK_N - 1) // BLOCK_N
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    rows = tl.minimum(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % per_group) % rows
    pid_n = (pid % per_group) // rows
    return pid_m, pid_n


@triton.jit
def _a_ptrs(a_ptr, batch, pid_m, M, stride_ab, stride_am, stride_ak, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """Pointers to the first K tile of this program's a rows, the row offsets and mask."""
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_k = tl.arange(0, BLOCK_K)
    ptrs = (a_ptr + batch * stride_ab + offs_m[:, None].to(tl.int64) * stride_am
            + offs_k[None, :].to(tl.int64) * stride_ak)
    return ptrs, offs_m, offs_m < M


@triton.jit
def _b_ptrs(b_ptr, batch, n0, stride_bb, stride_bk, stride_bn, N: tl.constexpr, BLOCK_N: tl.constexpr,
            BLOCK_K: tl.constexpr):
    """Pointers to the first K tile of the b columns n0 .. n0 + BLOCK_N, the column offsets and mask."""
    offs_n = n0 + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    ptrs = (b_ptr + batch * stride_bb + offs_k[:, None].to(tl.int64) * stride_bk
            + offs_n[None, :].to(tl.int64) * stride_bn)
    return ptrs, offs_n, offs_n < N


@triton.jit
def _load_a(ptrs, t, mask_m, K: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr):
    """K tile t of a (BLOCK_M, BLOCK_K); zeros past the edges."""
    if EVEN_K:
        return tl.load(ptrs, mask=mask_m[:, None], other=0.0)
    else:
        return tl.load(ptrs, mask=mask_m[:, None] & (tl.arange(0, BLOCK_K) < K - t * BLOCK_K)[None, :], other=0.0)


@triton.jit
def _load_b(ptrs, t, mask_n, K: tl.constexpr, BLOCK_K: tl.constexpr, EVEN_K: tl.constexpr):
    """K tile t of b (BLOCK_K, BLOCK_N); zeros past the edges."""
    if EVEN_K:
        return tl.load(ptrs, mask=mask_n[None, :], other=0.0)
    else:
        return tl.load(ptrs, mask=(tl.arange(0, BLOCK_K) < K - t * BLOCK_K)[:, None] & mask_n[None, :], other=0.0)


@triton.jit
def _epilogue(total, bias_ptr, out_ptr, batch, offs_m, offs_n, mask_m, mask_n, stride_ob, stride_om, stride_on,
              HAS_BIAS: tl.constexpr):
    """out = round(total + bias): the bias added once in fp32, one rounding to the output dtype."""
    if HAS_BIAS:
        total += tl.load(bias_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    out_ptrs = (out_ptr + batch * stride_ob + offs_m[:, None].to(tl.int64) * stride_om
                + offs_n[None, :].to(tl.int64) * stride_on)
    tl.store(out_ptrs, cast_rtne(total, out_ptr.dtype.element_ty), mask=mask_m[:, None] & mask_n[None, :])


@triton.jit(do_not_specialize=["M"])
def matmul_kernel(a_ptr, b_ptr, bias_ptr, out_ptr, M, stride_ab, stride_am, stride_ak, stride_bb, stride_bk,
                  stride_bn, stride_ob, stride_om, stride_on,
                  N: tl.constexpr, K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_N2: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, K_TILES: tl.constexpr,
                  EVEN_K: tl.constexpr, HAS_BIAS: tl.constexpr, PRECISION: tl.constexpr):
    """One program per output tile; grid (tiles, batch). The K tiles in ascending order into one accumulator
    per column block (BLOCK_N, then BLOCK_N2 when the tile has a second one)."""
    WIDTH: tl.constexpr = BLOCK_N + BLOCK_N2
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, WIDTH, GROUP_M)
    batch = tl.program_id(1).to(tl.int64)
    a_ptrs, offs_m, mask_m = _a_ptrs(a_ptr, batch, pid_m, M, stride_ab, stride_am, stride_ak, BLOCK_M, BLOCK_K)
    n0 = pid_n * WIDTH
    b_ptrs, offs_n, mask_n = _b_ptrs(b_ptr, batch, n0, stride_bb, stride_bk, stride_bn, N, BLOCK_N, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if BLOCK_N2 > 0:
        b2_ptrs, offs_n2, mask_n2 = _b_ptrs(b_ptr, batch, n0 + BLOCK_N, stride_bb, stride_bk, stride_bn, N,
                                            BLOCK_N2, BLOCK_K)
        acc2 = tl.zeros((BLOCK_M, BLOCK_N2), dtype=tl.float32)
    for t in range(0, K_TILES):
        a = _load_a(a_ptrs, t, mask_m, K, BLOCK_K, EVEN_K)
        acc = _dot_acc(acc, a, _load_b(b_ptrs, t, mask_n, K, BLOCK_K, EVEN_K), PRECISION)
        # Steps computed here, not passed in: a runtime step hides the pointers' contiguity from Triton's
        # analysis, and the 128x256 tile then spilled registers (ptxas -v: 1 kB of spill stores).
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
        if BLOCK_N2 > 0:
            acc2 = _dot_acc(acc2, a, _load_b(b2_ptrs, t, mask_n2, K, BLOCK_K, EVEN_K), PRECISION)
            b2_ptrs += BLOCK_K * stride_bk
    _epilogue(acc, bias_ptr, out_ptr, batch, offs_m, offs_n, mask_m, mask_n, stride_ob, stride_om, stride_on,
              HAS_BIAS)
    if BLOCK_N2 > 0:
        _epilogue(acc2, bias_ptr, out_ptr, batch, offs_m, offs_n2, mask_m, mask_n2, stride_ob, stride_om,
                  stride_on, HAS_BIAS)


@triton.jit
def _tma_b(b_desc, t, n0, BLOCK_K: tl.constexpr, B_KN: tl.constexpr):
    """K tile t of b's columns from n0, as (BLOCK_K, the descriptor's width)."""
    return b_desc.load([t * BLOCK_K, n0]) if B_KN else tl.trans(b_desc.load([n0, t * BLOCK_K]))


@triton.jit
def _tma_tile(a_desc, b_desc, b2_desc, bias_ptr, out_ptr, M, stride_om, stride_on, m0, n0, N: tl.constexpr,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_N2: tl.constexpr, BLOCK_K: tl.constexpr,
              K_TILES: tl.constexpr, HAS_BIAS: tl.constexpr, PRECISION: tl.constexpr, B_KN: tl.constexpr):
    """The output tile at (m0, n0), BLOCK_N columns (b_desc) and BLOCK_N2 beside them (b2_desc) when not 0: the
    K tiles in ascending order into one accumulator per column block."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if BLOCK_N2 > 0:
        acc2 = tl.zeros((BLOCK_M, BLOCK_N2), dtype=tl.float32)
    for t in range(0, K_TILES):
        a = a_desc.load([m0, t * BLOCK_K])
        acc = _dot_acc(acc, a, _tma_b(b_desc, t, n0, BLOCK_K, B_KN), PRECISION)
        if BLOCK_N2 > 0:
            acc2 = _dot_acc(acc2, a, _tma_b(b2_desc, t, n0 + BLOCK_N, BLOCK_K, B_KN), PRECISION)
    offs_m, offs_n = m0 + tl.arange(0, BLOCK_M), n0 + tl.arange(0, BLOCK_N)
    _epilogue(acc, bias_ptr, out_ptr, 0, offs_m, offs_n, offs_m < M, offs_n < N, 0, stride_om, stride_on, HAS_BIAS)
    if BLOCK_N2 > 0:
        offs_n2 = n0 + BLOCK_N + tl.arange(0, BLOCK_N2)
        _epilogue(acc2, bias_ptr, out_ptr, 0, offs_m, offs_n2, offs_m < M, offs_n2 < N, 0, stride_om, stride_on,
                  HAS_BIAS)


@triton.jit(do_not_specialize=["M"])
def matmul_tma_kernel(a_desc, b_desc, b_side_desc, bias_ptr, out_ptr, M, stride_om, stride_on,
                      N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_N2: tl.constexpr,
                      BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, K_TILES: tl.constexpr, HAS_BIAS: tl.constexpr,
                      PRECISION: tl.constexpr, B_KN: tl.constexpr, PERSISTENT: tl.constexpr):
    """matmul_kernel's tiles and K order (one matrix), a and b loaded by TMA descriptors, whose out-of-bounds
    zeros are the masked loads'. b is described as (K, N) with B_KN, else as (N, K) (linear's weight); a second
    column block (BLOCK_N2) comes through b_side_desc. PERSISTENT (one column block): the grid's programs walk
    the tiles in turn, the loops flattened so that the next tile's loads overlap this one's epilogue; a last
    round that would fill at most half the programs is run as twice as many half-width tiles (b_side_desc), so
    that it takes about half as long. Else a program per tile."""
    WIDTH: tl.constexpr = BLOCK_N + BLOCK_N2
    tiles = tl.cdiv(M, BLOCK_M) * ((N + WIDTH - 1) // WIDTH)
    programs = tl.num_programs(0)
    whole = tiles
    if PERSISTENT:
        last = tiles % programs
        whole = tiles - last if 2 * last <= programs else tiles
    for tile in tl.range(tl.program_id(0), whole, programs, flatten=PERSISTENT):
        pid_m, pid_n = _tile(tile, M, N, BLOCK_M, WIDTH, GROUP_M)
        _tma_tile(a_desc, b_desc, b_side_desc, bias_ptr, out_ptr, M, stride_om, stride_on, pid_m * BLOCK_M,
                  pid_n * WIDTH, N, BLOCK_M, BLOCK_N, BLOCK_N2, BLOCK_K, K_TILES, HAS_BIAS, PRECISION, B_KN)
    if PERSISTENT:
        for half in tl.range(tl.program_id(0), 2 * (tiles - whole), programs):
            pid_m, pid_n = _tile(whole + half // 2, M, N, BLOCK_M, BLOCK_N, GROUP_M)
            _tma_tile(a_desc, b_side_desc, b_side_desc, bias_ptr, out_ptr, M, stride_om, stride_on, pid_m * BLOCK_M,
                      pid_n * BLOCK_N + (half % 2) * (BLOCK_N // 2), N, BLOCK_M, BLOCK_N // 2, 0, BLOCK_K, K_TILES,
                      HAS_BIAS, PRECISION, B_KN)


def _tma_ready(t: torch.Tensor) -> bool:
    """Whether TMA can describe 2-D t as it is laid out: unit last stride, 16-byte aligned base and rows."""
    return (t.stride(1) == 1 and t.data_ptr() % 16 == 0 and t.stride(0) * t.element_size() % 16 == 0
            and t.shape[1] * t.element_size() >= 16)


def _tma_operands(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool] | None:
    """(a, b, b_kn): one matrix's a (M, K) and b as (K, N) (b_kn) or as (N, K), each as TMA can describe it; None
    where TMA cannot (a batch, other strides, not Hopper: the pointer kernel then runs the same order)."""
    hopper = _launch.INTERPRET or torch.cuda.get_device_capability(a.device)[0] >= 9
    if a.shape[0] != 1 or b.shape[0] != 1 or not hopper:
        return None
    a2, b2 = a[0], b[0]
    if not _tma_ready(a2):
        return None
    if _tma_ready(b2):
        return a2, b2, True
    return (a2, b2.t(), False) if _tma_ready(b2.t()) else None


def _launch_tma(a: torch.Tensor, b: torch.Tensor, b_kn: bool, bias_arg, has_bias: bool, out, p: spec.Plan) -> None:
    """matmul_tma_kernel over one matrix: a (M, K), b (K, N) or (N, K), out (1, M, N)."""
    t = p.tiling
    m, n = out.shape[1:]
    tiles = t.programs(m, n)
    grid = min(tiles, _launch.multiprocessors(a) or 2) if t.persistent else tiles  # (2: the interpreter)
    side = t.block_n2 or t.block_n // 2  # the second column block, or the persistent kernel's half-width tiles
    b_desc, b_side_desc = (TensorDescriptor.from_tensor(b, [p.block_k, w] if b_kn else [w, p.block_k])
                           for w in (t.block_n, side))
    _launch.launch(matmul_tma_kernel, (grid,), TensorDescriptor.from_tensor(a, [t.block_m, p.block_k]), b_desc,
                   b_side_desc, bias_arg, out, m, out.stride(1), out.stride(2), N=n, BLOCK_M=t.block_m,
                   BLOCK_N=t.block_n, BLOCK_N2=t.block_n2, BLOCK_K=p.block_k, GROUP_M=t.group_m, K_TILES=p.k_tiles,
                   HAS_BIAS=has_bias, PRECISION=p.precision, B_KN=b_kn, PERSISTENT=t.persistent, num_warps=t.num_warps,
                   num_stages=t.num_stages)


def _steppable(t: torch.Tensor, k_dim: int, block_k: int) -> torch.Tensor:
    """t itself, unless BLOCK_K steps along K would overflow int32 (then a contiguous copy)."""
    return t.contiguous() if abs(t.stride(k_dim)) * block_k >= 2**31 else t


def _run(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None, allow_tf32: bool) -> torch.Tensor:
    """a (B, M, K) @ b (B or 1, K, N) [+ bias], any strides -> a fresh contiguous (B, M, N)."""
    batch, m, k = a.shape
    n = b.shape[2]
    out = torch.empty((batch, m, n), dtype=a.dtype, device=a.device)
    if out.numel() == 0:
        return out
    tma = _tma_operands(a, b)
    p = spec.plan(m, n, k, common.dtype_name(a.dtype), allow_tf32, tma=tma is not None)
    t = p.tiling
    bias_arg = bias.contiguous() if bias is not None else out  # N elements: a strided bias is packed
    if t.tma and tma:  # (a TMA tile forced on other operands, as the tests do, runs in the pointer kernel)
        _launch_tma(*tma, bias_arg, bias is not None, out, p)
        return out
    a, b = _steppable(a, 2, p.block_k), _steppable(b, 1, p.block_k)
    stride_bb = b.stride(0) if b.shape[0] > 1 else 0
    _launch.launch(matmul_kernel, (t.programs(m, n), batch), a, b, bias_arg, out, m,
                   a.stride(0), a.stride(1), a.stride(2), stride_bb, b.stride(1), b.stride(2), *out.stride(),
                   N=n, K=k, BLOCK_M=t.block_m, BLOCK_N=t.block_n, BLOCK_N2=t.block_n2, BLOCK_K=p.block_k,
                   GROUP_M=t.group_m, K_TILES=p.k_tiles, EVEN_K=p.even_k, HAS_BIAS=bias is not None, PRECISION=p.precision,
                   num_warps=t.num_warps, num_stages=t.num_stages)
    return out


@torch.library.custom_op("bitorch::matmul", mutates_args=())
def matmul_op(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None, allow_tf32: bool) -> torch.Tensor:
    return _run(a.unsqueeze(0), b.unsqueeze(0), bias, allow_tf32)[0]


@torch.library.custom_op("bitorch::bmm", mutates_args=())
def bmm_op(a: torch.Tensor, b: torch.Tensor, allow_tf32: bool) -> torch.Tensor:
    return _run(a, b, None, allow_tf32)


@torch.library.custom_op("bitorch::linear", mutates_args=())
def linear_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, allow_tf32: bool) -> torch.Tensor:
    k = x.shape[-1]
    out = _run(x.reshape(1, -1, k), weight.t().unsqueeze(0), bias, allow_tf32)
    return out.reshape(*x.shape[:-1], weight.shape[0])


@matmul_op.register_fake
def _(a, b, bias, allow_tf32):
    return a.new_empty((a.shape[0], b.shape[1]))


@bmm_op.register_fake
def _(a, b, allow_tf32):
    return a.new_empty((a.shape[0], a.shape[1], b.shape[2]))


@linear_op.register_fake
def _(x, weight, bias, allow_tf32):
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def matmul(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None, *,
           allow_tf32: bool = False) -> torch.Tensor:
    """a (M, K) @ b (K, N) [+ bias (N,)], batch-invariant (bispec.matmul)."""
    spec.check_matmul(a.shape, a.dtype, b.shape, b.dtype, *common.shape_dtype(bias), allow_tf32)
    _launch.check_tensors(a=a, b=b, bias=bias)
    return matmul_op(a, b, bias, allow_tf32)


def bmm(a: torch.Tensor, b: torch.Tensor, *, allow_tf32: bool = False) -> torch.Tensor:
    """a (B, M, K) @ b (B, K, N), batch-invariant (bispec.matmul)."""
    spec.check_bmm(a.shape, a.dtype, b.shape, b.dtype, allow_tf32)
    _launch.check_tensors(a=a, b=b)
    return bmm_op(a, b, allow_tf32)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           allow_tf32: bool = False) -> torch.Tensor:
    """x (..., K) @ weight (N, K).T [+ bias (N,)] as F.linear, batch-invariant (bispec.matmul)."""
    spec.check_linear(x.shape, x.dtype, weight.shape, weight.dtype, *common.shape_dtype(bias), allow_tf32)
    _launch.check_tensors(x=x, weight=weight, bias=bias)
    return linear_op(x, weight, bias, allow_tf32)

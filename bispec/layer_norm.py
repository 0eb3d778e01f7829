"""layer_norm(x, weight=None, bias=None, eps=1e-5) -> out

Semantics: torch.nn.functional.layer_norm with normalized_shape = (hidden,).
x has shape (..., hidden); weight and bias, each optional, have shape
(hidden,) and x's dtype. Arithmetic in fp32, one rounding to x's dtype at the
end; both sums are common.SUM_RULE's fp32 tree. In the order the kernels
compute it (h = hidden, INV = 1/h rounded to fp32, every name an fp32 value,
fma(a, b, c) = a*b + c rounded once):

  S    = sum(x)                          the tree over the block
  d    = fma(S, -INV, x)                 x - mean, rounded once
  Q    = sum(d*d)                        the tree over the squares, each rounded (mul_f32)
  rstd = rsqrt((Q + eps*h) * INV)        as rms_norm writes it
  out  = round(fma(d*rstd, weight, bias))     weight and bias
         round(d*rstd*weight)                 weight only
         round(fma(d, rstd, bias))            bias only
         round(d*rstd)                        neither

Contraction: a product feeding an fp32 add may be fused into one FMA by one
compiler (Triton for bitorch, XLA's Triton for bijax) and rounded twice by the
other. So no fp32 add here follows a plain product: the two that would (x -
mean, and "+ bias" after the scaling) are explicit FMAs, written as one in both
frameworks (tl.fma; PTX fma.rn.f32 inline in Pallas, which has no FMA
primitive), and the squares that feed the tree are explicit mul.rn.f32, which
no compiler fuses; that leaves a compiler nothing to fuse or split. The one
plain add, Q + eps*h, follows the sum. Every remaining product feeds a product,
rsqrt, an FMA operand or the final cast. The sign sits in the constant -INV:
Triton writes -S as 0 - S, which turns -0 into +0 where a negation would not.
Under the interpreters (no GPU) both twins emulate the FMA alike in fp64
(within a double rounding of a true FMA).

Reduction order: as rms_norm's. One program owns one row and holds it whole
in registers as a block of BLOCK = next_pow2(hidden) lanes over
num_warps(hidden) warps; sum(x) and sum(d*d) are each SUM_RULE's tree over
that block (padding lanes hold 0 in both), shaped by the vector width of
x's dtype and those warps. Both depend on hidden and the dtype alone, never on
the number of rows, the row's position or the device.
"""
from __future__ import annotations

import numpy as np

from bispec import common, rms_norm

NAME = "layer_norm"
DEFAULT_EPS = 1e-5

# The row-in-registers tiling is rms_norm's, shared rather than restated:
# the same block, warps, size limit and cache hints (weight and bias are
# read by every program, as rms_norm's weight is).
MAX_HIDDEN = rms_norm.MAX_HIDDEN
block_size = rms_norm.block_size
num_warps = rms_norm.num_warps
STREAM_EVICTION = rms_norm.STREAM_EVICTION
PARAM_EVICTION = rms_norm.WEIGHT_EVICTION
WEIGHT_LATE_FROM_ROWS = rms_norm.WEIGHT_LATE_FROM_ROWS
params_first = rms_norm.weight_first  # where weight and bias loads are issued (no arithmetic changes)
# Programs per row for few rows (no arithmetic changes): rms_norm's rule with its own aim. H200, hidden 8192 bf16,
# medians of 3 (scratch/norm_few.py), 64 -> 128 programs: bitorch 2.46 -> 2.29 us at 32 tokens, 2.11 -> 1.95 at
# 16 (bijax 2.40 -> 2.30, 1.95 -> 1.95; XLA 2.24, 1.78); a split of 16 at 8 tokens lost to 8 (1.79 against 1.76).
SPLIT_PROGRAMS = 128
MAX_SPLIT = 8


def split(rows: int, hidden: int, interpret: bool) -> int:
    return rms_norm.split(rows, hidden, interpret, SPLIT_PROGRAMS, MAX_SPLIT)


def triton_split(rows: int, hidden: int, interpret: bool) -> int:
    """bitorch's programs per row: rms_norm's rule (whole rows from TRITON_UNSPLIT_FROM_ROWS), over split()."""
    return rms_norm.triton_split(rows, hidden, interpret, split)


# A split row's program keeps the row's block (no arithmetic changes): d and the output over the whole block, the
# weight, bias and store masked to its slice, where it would otherwise take its slice as a block of its own and load
# x's slice a second time. Its sums are then used only elementwise with blocks of the row's layout, so both
# frameworks take them through bispec.common.tree_ptx (one shared-memory round trip a sum where Triton's reduction
# takes two; bijax's whole rows do so already). Off until timed on the H100 (no machine came the session it was
# written): `python -m bench.tune layer_norm_in_block --tokens 1,8,32` times both ways. The same bits either way
# (test_layer_norm's test_split_rows_in_block_or_apart).
SPLIT_IN_BLOCK = False


def in_block(split_: int) -> bool:
    """Whether a row split over split_ programs is kept in the row's block (SPLIT_IN_BLOCK)."""
    return SPLIT_IN_BLOCK and split_ > 1


# An unsplit row's x is read past L1 (ld.global.cg in both frameworks; bijax: _kernel_helpers.stream_load), leaving
# L1 to the weight and bias that every program reads again. It matters most to bijax: XLA launches every kernel that
# takes dynamic shared memory (ours: 32 bytes for the cross-warp sums) with CU_FUNC_CACHE_PREFER_SHARED, leaving ~23
# KB of L1 where Triton's launcher leaves ~240 KB. A split row reads x through L1 (each program loads its slice
# twice). Same values either way. H200, hidden 8192 bf16, medians of 3, unsplit (128 / 512 / 4096 tokens): bitorch
# 3.39 / 6.53 / 36.1 us -> 3.26 / 6.64 / 35.1, bijax 3.39 / 7.10 / 40.2 -> 3.36 / 7.07 / 38.1; split (1 / 8 / 32
# tokens), bijax past L1 against not: 1.66 / 1.79 / 2.37 against 1.62 / 1.76 / 2.30 us.
# Since ccf7954 bijax's unsplit rows take no shared memory (bijax._kernel_helpers.tree_total), so XLA leaves them the
# whole L1 too; those timings predate it.
def x_past_l1(split_: int) -> bool:
    return split_ == 1


# bitorch reads x past L1 split or not (its launch leaves L1 whole). H100, hidden 8192 bf16, weight and bias,
# medians of 5 (bench.tune layer_norm_knobs, bench/results/h100_2026-12-07b): split rows through L1 -> past L1 at
# 1 / 8 / 16 tokens 1.664 / 1.856 / 2.016 -> 1.633 / 1.824 / 2.017 us (XLA 3.711 / 1.824 / 1.888, bijax 1.600 /
# 1.823 / 2.016).
def triton_x_past_l1(split_: int) -> bool:
    return True


FIGURE_HIDDEN = 8192
FIGURE_DTYPE = "bfloat16"
HIDDEN_SIZES = (8192, 4096)  # each over common.TOKEN_SWEEP
ODD_HIDDEN = (1000, 5120, 1)
ODD_TOKENS = common.ODD_TOKENS


def check_args(x_shape, x_dtype, w_shape=None, w_dtype=None, b_shape=None, b_dtype=None,
               eps=DEFAULT_EPS) -> tuple[int, str, float]:
    """Validate framework-neutral shapes and dtypes (None: no weight / no bias); return (hidden, dtype name, eps)."""
    hidden, dtype = common.check_rows("x", x_shape, x_dtype, MAX_HIDDEN)
    for arg, shape, arg_dtype in (("weight", w_shape, w_dtype), ("bias", b_shape, b_dtype)):
        if shape is None:
            continue
        if tuple(shape) != (hidden,):
            raise ValueError(f"{arg}: shape {tuple(shape)} does not match x's hidden size; expected ({hidden},)")
        common.check_same_dtype(arg, arg_dtype, dtype)
    return hidden, dtype, common.check_eps(eps)


def bytes_moved(tokens: int, hidden: int, itemsize: int, weight: bool = True, bias: bool = True) -> int:
    """Fewest bytes through device memory: x, weight, bias read once, out written once."""
    return (2 * tokens + int(weight) + int(bias)) * hidden * itemsize


def reference(x: np.ndarray, weight: np.ndarray | None = None, bias: np.ndarray | None = None,
              eps: float = DEFAULT_EPS) -> np.ndarray:
    """Float64 reference (biased variance, as torch); returns out in float64."""
    x64 = x.astype(np.float64)
    d = x64 - x64.mean(axis=-1, keepdims=True)
    out = d / np.sqrt((d * d).mean(axis=-1, keepdims=True) + eps)
    if weight is not None:
        out = out * weight.astype(np.float64)
    if bias is not None:
        out = out + bias.astype(np.float64)
    return out

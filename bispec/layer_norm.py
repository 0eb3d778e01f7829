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
split = rms_norm.split                 # programs per row for few rows (no arithmetic changes)
# bijax reads x past L1 (a volatile load: PTX serves it from L2 and allocates no L1 line; the same values).
# XLA's launch sets CU_FUNC_CACHE_PREFER_SHARED on every kernel that takes dynamic shared memory (ours: 32 bytes
# for the cross-warp sums), leaving ~23 KB of L1, where Triton's launcher leaves ~240 KB; streaming x through it
# evicts the weight and bias that every program reads again. (Pallas' cache_modifier=".cg" does not lower: jax
# looks ".cg" up in a table keyed "cg".) H200, hidden 8192 bf16, bijax layer_norm at 4096 / 1024 / 256 / 32
# tokens: 40.7 / 12.5 / 4.6 / 2.46 us -> 38.3 / 11.8 / 4.5 / 2.35 (bitorch 36.4 / 11.9 / 4.6 / 2.50); in the
# bench 39.5 -> 38.0 us at 4096 tokens, 2.40 -> 2.21 at 32, but 1.57 -> 1.63 and 1.73 -> 1.79 at 1 and 8 (a
# split row's slice is then read again from L2, not L1). rms_norm gained at 4096 and 1024 tokens (72.7 -> 70.5,
# 20.6 -> 20.0 us) but lost at 256 and 32 (5.6 -> 5.7, 2.78 -> 2.84), so it keeps its cached loads.
PALLAS_X_PAST_L1 = True

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

"""rms_norm(x, weight, eps=1e-6, residual=None) -> out | (out, new_residual)

Semantics (x of shape (..., hidden), weight of shape (hidden,), same dtype):
  s            = x                          without residual
  s            = round(x + residual)        with residual (x's dtype; returned
                                            as new_residual, as vLLM's and
                                            SGLang's fused_add_rms_norm do)
  out          = round(s * rstd * weight)   rstd = rsqrt((sum(s*s) + eps*hidden) * (1/hidden))

Arithmetic in fp32, one rounding to x's dtype at the end; sum(s*s) is
common.SUM_RULE's fp32 tree over the squares, each an explicit mul.rn.f32, so
bitorch and bijax agree to the bit.

Reduction order: one program owns one row and holds it whole in registers as a
block of BLOCK = next_pow2(hidden) lanes, split over num_warps(hidden) warps;
sum(s*s) is SUM_RULE's tree over that block, shaped by the vector width of x's
dtype and those warps. Both depend on hidden and the dtype alone,
never on the number of rows, the row's position or the device. The mean is a
product with the fp32 constant 1/hidden (Triton lowers fp32 division to an
approximate instruction), taken after eps*hidden is added: written as
sum/hidden + eps, one compiler fuses the multiply-add and the other does not. Kernels see packed
rows on 16-byte boundaries, so the compilers lay a row out as the tree assumes
(common.vector_width elements a thread's load).
"""
from __future__ import annotations

import numpy as np

from bispec import common

NAME = "rms_norm"
DEFAULT_EPS = 1e-6
# Rows up to this length are held in registers: one read of every input.
MAX_HIDDEN = 65536

# The starting figure: fused add + RMSNorm, bf16, hidden 8192, tokens 1..4096.
FIGURE_HIDDEN = 8192
FIGURE_DTYPE = "bfloat16"
HIDDEN_SIZES = (8192, 4096, 5120, 1000)
ODD_HIDDEN = (1000, 5120, 1)


# Cache hints: rows stream through once; the weight is read by every program.
STREAM_EVICTION = "evict_first"
WEIGHT_EVICTION = "evict_last"


# Where the weight load is issued changes no arithmetic, so it may follow the row count:
# first (its latency hidden by the reduction) for few rows; after the reduction (fewer
# registers held, more rows in flight per SM) from this many rows on. Tuned on an H100.
WEIGHT_LATE_FROM_ROWS = 512


def weight_first(rows: int) -> bool:
    return rows < WEIGHT_LATE_FROM_ROWS


# bijax reads x and the residual past L1 (bijax._kernel_helpers.stream_load; the same values) from this many rows on,
# so that the ~23 KB of L1 which XLA's launch leaves (bispec.layer_norm.x_past_l1 says why) keeps the weight. H200,
# hidden 8192 bf16 (scratch/norm_few.py, medians of 3), cached -> past L1: 1024 tokens 20.5 -> 19.9 us, 4096 72.0 ->
# 69.7 (bitorch 67.1, torch.compile 70.1); but 128 3.84 -> 3.90, 256 5.52 -> 5.74, 512 9.84 -> 9.86. bitorch's
# ld.global.cg was no faster (4096 tokens 67.1 -> 68.4 us).
PALLAS_PAST_L1_FROM_ROWS = 1024


def pallas_inputs_past_l1(rows: int) -> bool:
    return rows >= PALLAS_PAST_L1_FROM_ROWS


# bijax issues the weight load first wherever its inputs go past L1 (the weight then comes from L1 alone). H200,
# hidden 8192 bf16, with residual (scratch/rms_wf.py, medians of 3), late -> first: 1024 tokens 20.1 -> 19.4 us,
# 2048 35.9 -> 35.8, 4096 70.3 -> 70.4; with the inputs cached, 512 tokens 9.7 -> 11.3.
def pallas_weight_first(rows: int) -> bool:
    return weight_first(rows) or pallas_inputs_past_l1(rows)


def block_size(hidden: int) -> int:
    return common.next_pow2(hidden)


# Few rows leave most SMs idle and each row's program long: then a row's outputs are split over
# split(rows, hidden) programs of BLOCK / split columns each. Every one of them still reads and
# reduces the whole row (the same tree, so the same bits) and writes its own columns, reading
# them again from cache. XLA's Triton fusion does the same for LayerNorm (seen in its HLO).
# bench.tune split on the H100 (2026-11-28), hidden 8192: 64 against 128 programs took 1.86 against 1.89 us at
# 8 tokens (rmsnorm) and 3.23 against 3.78 us at 64 tokens (a split of 2 lost to none there).
SPLIT_PROGRAMS = 64    # aim: this many programs over the batch
MAX_SPLIT = 16
MAX_SPLIT_INTERPRETED = 2  # the interpreters run programs one by one: split only to test the path
MIN_SLICE = 512        # columns a split program writes, at least


def split(rows: int, hidden: int, interpret: bool, programs: int | None = None, max_split: int | None = None) -> int:
    """Programs per row (a power of 2; 1 from `programs` rows on). Changes no bit. programs and max_split are
    SPLIT_PROGRAMS and MAX_SPLIT unless given (layer_norm gives its own), read at call time as bench.tune needs."""
    programs = SPLIT_PROGRAMS if programs is None else programs
    cap = MAX_SPLIT_INTERPRETED if interpret else (MAX_SPLIT if max_split is None else max_split)
    most = min(cap, block_size(hidden) // MIN_SLICE, programs // max(rows, 1))
    return 1 << max(0, most.bit_length() - 1) if most > 1 else 1


# bitorch leaves a row whole from this many rows on (rms_norm and layer_norm), where bijax still splits it in 2
# (split()): H200, hidden 8192 bf16, with residual, medians of 3 (scratch/rms_split.py), 32 tokens, unsplit against
# 2 programs a row: bitorch 2.56 against 2.91 us, bijax 2.85 against 2.77 (torch.compile 2.64). H100 layer_norm, 32
# tokens (bench/results/h100_2026-12-05/tune_30aba51/tune.log): bitorch unsplit 2.35 against 2.46 us split in 4,
# bijax 2.50 against 2.46.
TRITON_UNSPLIT_FROM_ROWS = 32
# Below that, bitorch's rms_norm aims at fewer programs than bijax's: H100, 8 tokens (same tune), 32 programs (4 a
# row) took bitorch 1.79 us against 1.89 with 64, bijax 1.95 against 1.82.
TRITON_SPLIT_PROGRAMS = 32


def triton_split(rows: int, hidden: int, interpret: bool, plan=None) -> int:
    """bitorch's programs per row: 1 from TRITON_UNSPLIT_FROM_ROWS rows on, else plan(rows, hidden, interpret)
    (rms_norm's: split() aiming at TRITON_SPLIT_PROGRAMS). Changes no bit."""
    if rows >= TRITON_UNSPLIT_FROM_ROWS:
        return 1
    return plan(rows, hidden, interpret) if plan else split(rows, hidden, interpret, TRITON_SPLIT_PROGRAMS)


def num_warps(hidden: int) -> int:
    # 32 elements a thread: four 16-byte bf16 loads in flight per operand. At hidden 8192 on an H100,
    # 16 warps were ~0.2 us faster at 1..128 tokens (bench.tune rmsnorm) but 1.8 us slower at 512 in the bench.
    return min(32, max(1, block_size(hidden) // 1024))


def check_args(x_shape, x_dtype, w_shape, w_dtype, eps, res_shape=None, res_dtype=None) -> tuple[int, str, float]:
    """Validate framework-neutral shapes and dtypes; return (hidden, dtype name, eps)."""
    hidden, dtype = common.check_rows("x", x_shape, x_dtype, MAX_HIDDEN)
    if tuple(w_shape) != (hidden,):
        raise ValueError(f"weight: shape {tuple(w_shape)} does not match x's hidden size; expected ({hidden},)")
    common.check_same_dtype("weight", w_dtype, dtype)
    if res_shape is not None:
        if tuple(res_shape) != tuple(x_shape):
            raise ValueError(f"residual: shape {tuple(res_shape)} does not match x's shape {tuple(x_shape)}")
        common.check_same_dtype("residual", res_dtype, dtype)
    return hidden, dtype, common.check_eps(eps)


def bytes_moved(tokens: int, hidden: int, itemsize: int, residual: bool) -> int:
    """Fewest bytes through device memory: inputs read once, outputs written once."""
    tensors = 4 if residual else 2  # x, (residual,) out, (new_residual)
    return (tensors * tokens + 1) * hidden * itemsize


def reference(x: np.ndarray, weight: np.ndarray, eps: float = DEFAULT_EPS, residual: np.ndarray | None = None):
    """Float64 reference. Returns out (float64) or (out, new_residual in x's dtype)."""
    s = x
    if residual is not None:
        s = common.round_to(x.astype(np.float64) + residual.astype(np.float64), x.dtype)
    s64 = s.astype(np.float64)
    rstd = 1.0 / np.sqrt(np.mean(s64 * s64, axis=-1, keepdims=True) + eps)
    out = s64 * rstd * weight.astype(np.float64)
    return out if residual is None else (out, s)

"""sum(x, dim=None, keepdim=False, dtype=None) and mean(...) with torch's semantics

Semantics (x float32, bfloat16 or float16; dim an int, a tuple/list of ints,
negative allowed, or None for every dim; dtype the output dtype, x's by default):
  t    = x                          when the cast x -> dtype is exact
  t    = round(x, dtype)            otherwise (torch casts x to dtype first)
  sum  = round(S, dtype)            S = sum of t over dim, in fp32 (order below)
  mean = round(S * INV_N, dtype)    INV_N = fp32(1 / n), n the reduced length; no fp32 division
An empty reduced length gives 0 (sum) and NaN (mean), as torch does. dim=() is
rejected: torch reduces every dim for it, NumPy and JAX none; say dim=None.
Integer x is rejected (torch's mean cannot infer a dtype for it; the sum
would be int64), and so is any dtype other than the three above.

Canonical form: the reduced dims are brought together (a copy when they are not
adjacent: the order becomes kept dims before the last reduced dim, the reduced
dims in their order, the kept dims after it) and x is viewed as (A, R, B):
A outer kept elements, R = n reduced elements (row-major over the reduced dims),
B inner kept elements. Output element (a, b) reduces x[a, :, b].

Reduction order, for one output element; it depends on R, the dtypes and the
constants here alone, never on A, B, the element's position, the device or any tuning:
  B == 1, the row kernel: R <= BLOCK = row_block(R): common.SUM_RULE's fp32
    tree over the row's block (vector width of x's dtype, row_warps(R) warps).
    Longer rows: lane l of BLOCK lanes adds the terms r = l, l + BLOCK,
    l + 2*BLOCK, ... in that order, in fp64 starting from 0; then the same
    tree over the BLOCK lanes in fp64, rounded once to fp32.
  B > 1, the column kernel: the R terms are added one after another, r = 0, 1,
    ..., R-1, into an fp64 accumulator starting from 0, rounded once to fp32.
    No tree: the order does not even depend on the tiling. A program owns
    BLOCK_B columns of one outer index and loads COL_ROWS rows of them at a
    time (each load coalesced along B); BLOCK_B and the warps may follow A and
    B, because they change which program adds a column, never the order.
Each kernel gives one output element the same bits at every A and B on its
side of B == 1 (kept dims of size 1 count for nothing: (A, R, 1) is a row
reduction); the same data at B == 1 and at B > 1 may differ in the last bits
(tree versus sequential sum). bitorch and bijax emit the same Triton
operations in the same order (checked by comparing their TTIR; the row kernel's
load differs in its cache hint alone, below): the column
kernel's bits are equal everywhere, the CPU interpreters included, and the row
kernel's are the rule's tree in both (test_sum_tree).
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from bispec import common

NAME = "reduce"
OPS = ("sum", "mean")

# The figure: mean over the last dim, bf16, hidden 8192, tokens 1..4096.
FIGURE_HIDDEN = 8192
FIGURE_DTYPE = "bfloat16"
HIDDEN_SIZES = (8192, 4096)
ODD_HIDDEN = (1000, 5120, 1)
# Token counts: common.TOKEN_SWEEP (the figure's x axis) and common.ODD_TOKENS.

# Rows stream through once: the column kernel's loads and stores ask L2 to evict them first. The row kernel reads x
# past L1 (ld.global.cg in both; bijax._kernel_helpers.stream_load), which served a few rows' latency-bound reads
# faster. Same values. H200, mean over hidden 8192 bf16, medians of 3 (scratch/mean_few.py), cached -> past L1 at 1 /
# 8 / 32 tokens: bitorch 1.50 / 1.34 / 1.65 us -> 1.28 / 1.31 / 1.34, bijax 1.50 / 1.34 / 1.65 -> 1.23 / 1.30 / 1.38
# (torch.compile 1.50 / 1.39 / 1.73); from 128 tokens within 1 % for bitorch (4096: 16.00 -> 16.14), bijax 1-2 %
# faster from 512 (4096: 16.42 -> 16.21). H100, past L1 -> cached, bitorch / bijax
# (bench/results/h100_2026-12-06/mean_l1_probe: knob.diff on c5adf1c, one run): 4096 tokens 22.40 / 22.21 -> 22.35 /
# 22.32 us, 1024 6.82 / 6.81 -> 6.78 / 6.82; no change worth a rule.
STREAM_EVICTION = "evict_first"
# bitorch's row kernel, from ROW_EVICT_FIRST_FROM_ROWS rows on, reads x through L1 with STREAM_EVICTION instead (as
# torch.compile's mean does). Same values. H100, mean over hidden 8192 bf16, medians of 5
# (bench/results/h100_2026-12-07b/mean_variants.log), past L1 -> evict-first at 256 / 1024 / 2048 / 4096 tokens:
# bitorch 3.009 / 6.848 / 12.064 / 22.528 -> 3.040 / 6.816 / 12.000 / 22.337 us (torch.compile 3.040 / 6.880 /
# 12.000 / 22.400); bijax 3.072 / 6.880 / 12.128 / 22.400 -> 3.040 / 6.848 / 12.112 / 22.432, no rule.
ROW_EVICT_FIRST_FROM_ROWS = 1024
# bijax's does so from PALLAS_ROW_EVICT_FIRST_FROM_ROWS rows on. H100, mean over hidden 8192 bf16, medians of 5 rounds
# of each kernel's mean time (bench.tune mean_loads, bench/results/h100_2026-12-07e/tune_b16c8d4), past L1 ->
# evict-first at 256 / 2048 / 4096 tokens: bijax 3.066 / 12.169 / 22.503 -> 3.008 / 12.115 / 22.506 us (torch.compile
# 3.014 / 12.192 / 22.571); below 256 rows not timed, so past L1 as before.
PALLAS_ROW_EVICT_FIRST_FROM_ROWS = 256


def triton_rows_past_l1(rows: int) -> bool:
    return rows < ROW_EVICT_FIRST_FROM_ROWS


def pallas_rows_past_l1(rows: int) -> bool:
    return rows < PALLAS_ROW_EVICT_FIRST_FROM_ROWS


# Row kernel: a row of up to MAX_ROW_BLOCK elements is held in registers whole;
# longer rows loop over chunks of MAX_ROW_BLOCK into an fp64 vector accumulator.
MAX_ROW_BLOCK = 8192
# Column kernel: rows loaded (and in flight) per step; not part of the order.
COL_ROWS = 8
# Column kernel tiling, free to change: up to MAX_COL_WARPS warps, each thread
# loading 16 bytes a row, narrowed until there are MIN_COL_PROGRAMS programs.
MAX_COL_WARPS = 4
MIN_COL_PROGRAMS = 512
MIN_COL_BLOCK = 32


def row_block(length: int) -> int:
    return min(common.next_pow2(length), MAX_ROW_BLOCK)


def row_warps(length: int) -> int:
    # 16 elements a thread at 8192: bench.tune mean on the H100 found 16 warps 0.4 us faster than 8 at 4096 tokens
    # and within 0.06 us below 1024 tokens.
    return min(16, max(1, row_block(length) // 512))


def col_tiling(outer: int, inner: int, itemsize: int) -> tuple[int, int]:
    """(BLOCK_B, num_warps) of the column kernel. Not part of the reduction order."""
    vec = max(1, 16 // itemsize)
    block = min(common.next_pow2(inner), 32 * MAX_COL_WARPS * vec)
    while block > MIN_COL_BLOCK and outer * common.cdiv(inner, block) < MIN_COL_PROGRAMS:
        block //= 2
    return block, min(MAX_COL_WARPS, max(1, block // (32 * vec)))


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a call runs: its checked arguments and canonical (A, R, B) form."""
    dims: tuple[int, ...]           # reduced dims, sorted, >= 0
    out_shape: tuple[int, ...]
    perm: tuple[int, ...] | None    # transpose of x before the (A, R, B) view; None: a reshape suffices
    outer: int                      # A
    length: int                     # R
    inner: int                      # B
    dtype: str                      # x's dtype
    out_dtype: str
    round_inputs: bool              # terms are rounded to out_dtype first (x -> dtype is not exact)

    @property
    def kernel(self) -> str:
        return "rows" if self.inner == 1 else "cols"


_EXACT = {("bfloat16", "float32"), ("float16", "float32")}


def _is_int(d) -> bool:
    return isinstance(d, numbers.Integral) and not isinstance(d, bool)


def normalize_dims(dim, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    if _is_int(dim):
        dims = (dim,)
    elif isinstance(dim, (tuple, list)) and all(_is_int(d) for d in dim):
        dims = tuple(dim)
    else:
        raise TypeError(f"dim: must be None, an int or a tuple of ints, got {dim!r}")
    if not dims:
        raise ValueError("dim: an empty tuple is ambiguous (torch reduces every dim, NumPy and JAX none); "
                         "pass dim=None to reduce every dim")
    wrap = max(ndim, 1)  # a 0-d tensor takes dim 0 or -1, as in torch
    out = []
    for d in dims:
        d = int(d)
        if not -wrap <= d < wrap:
            raise ValueError(f"dim: {d} is out of range for a tensor of {ndim} dims (expected {-wrap}..{wrap - 1})")
        d %= wrap
        if d in out:
            raise ValueError(f"dim: dim {d} appears more than once in {dims}")
        out.append(d)
    return tuple(sorted(out)) if ndim else ()


def out_shape(shape, dims: tuple[int, ...], keepdim: bool) -> tuple:
    """The output's shape; entries are taken from `shape` as they are (symbolic sizes stay symbolic)."""
    if keepdim:
        return tuple(1 if d in dims else s for d, s in enumerate(shape))
    return tuple(s for d, s in enumerate(shape) if d not in dims)


def check_args(op: str, x_shape, x_dtype, dim=None, keepdim=False, dtype=None) -> Plan:
    """Validate framework-neutral arguments; return the Plan (dims normalized)."""
    assert op in OPS, op
    name = common.dtype_name(x_dtype)
    if name not in common.FLOAT_DTYPES and op == "mean" and dtype is None:
        raise TypeError(f"x: mean cannot infer an output dtype for {name} input (torch raises too); "
                        f"x must be one of {common.FLOAT_DTYPES}")
    name = common.check_float_dtype("x", x_dtype)
    out_dtype = name if dtype is None else common.check_float_dtype("dtype", dtype)
    if not isinstance(keepdim, bool):
        raise TypeError(f"keepdim: must be a bool, got {keepdim!r}")
    shape = tuple(int(s) for s in x_shape)
    dims = normalize_dims(dim, len(shape))
    kept = [d for d in range(len(shape)) if d not in dims]
    last = dims[-1] if dims else -1
    before, after = [d for d in kept if d < last], [d for d in kept if d > last]
    order = before + list(dims) + after
    # Dims of size 1 sit anywhere without moving data: only the others must stay in order.
    moved = [d for d in order if shape[d] != 1]
    perm = None if moved == sorted(moved) else tuple(order)
    return Plan(dims=dims, out_shape=out_shape(shape, dims, keepdim), perm=perm,
                outer=math.prod([shape[d] for d in before]),
                length=math.prod([shape[d] for d in dims]),
                inner=math.prod([shape[d] for d in after]),
                dtype=name, out_dtype=out_dtype,
                round_inputs=name != out_dtype and (name, out_dtype) not in _EXACT)


def bytes_moved(outer: int, length: int, inner: int, itemsize: int, out_itemsize: int) -> int:
    """Fewest bytes through device memory: x read once, the output written once."""
    return outer * inner * (length * itemsize + out_itemsize)


def reference(op: str, x: np.ndarray, dim=None, keepdim: bool = False, dtype=None) -> np.ndarray:
    """Float64 reference (before the final rounding to the output dtype)."""
    plan = check_args(op, x.shape, x.dtype, dim, keepdim, dtype)
    t = common.round_to(x, plan.out_dtype) if plan.round_inputs else x
    t = t.astype(np.float64)
    if op == "sum":
        out = np.sum(t, axis=plan.dims, keepdims=keepdim)
    elif plan.length == 0:
        out = np.full(plan.out_shape, np.nan)
    else:
        out = np.mean(t, axis=plan.dims, keepdims=keepdim)
    return np.asarray(out, np.float64).reshape(plan.out_shape)


def error_bound(op: str, x: np.ndarray, dim=None, keepdim: bool = False, dtype=None) -> np.ndarray:
    """How far an output may be from reference(): its one rounding to the output dtype (common.tolerance), plus
    the fp32 tree's, at most one fp32 unit roundoff per level on the sum of the terms' magnitudes, as for any
    fp32 sum (torch's own included): levels * 2**-24 * sum |t| (mean: over n)."""
    plan = check_args(op, x.shape, x.dtype, dim, keepdim, dtype)
    rtol, atol = common.tolerance(plan.out_dtype)
    levels = row_block(max(plan.length, 1)).bit_length()
    magnitude = reference(op, np.abs(x), dim, keepdim, dtype)
    return rtol * np.abs(reference(op, x, dim, keepdim, dtype)) + atol + levels * 2.0**-24 * magnitude

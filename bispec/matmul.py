"""matmul(a, b, bias=None), bmm(a, b), linear(x, weight, bias=None) -> out

Semantics (a, b, bias, x, weight of one float dtype; allow_tf32 a keyword, False by default):
  matmul   a (M, K) @ b (K, N) [+ bias (N,)]             -> (M, N)
  bmm      a (B, M, K) @ b (B, K, N), batch by batch      -> (B, M, N)
  linear   x (..., K) @ weight (N, K).T [+ bias (N,)]     -> (..., N)   (torch's layout)

  out[i, j] = round(total[j-th column of row i] + bias[j])   one rounding to the input dtype

Products are formed from the inputs as stored and summed in fp32. fp32 inputs
are multiplied exactly (Triton input_precision="ieee", Pallas precision
HIGHEST): TF32 only when the caller passes allow_tf32=True, which then rounds
the fp32 inputs to TF32 (a different op with its own reduction order). bf16 and
fp16 inputs ignore allow_tf32. The bias is added once, in fp32, after the whole
K reduction.

Reduction order (the contract): it depends on (K, dtype, allow_tf32) and the
constant BLOCK_K, never on M, N, the row's place in the batch, the batch index,
the SM count or any autotuning:

  * K is cut into tiles of BLOCK_K[dtype] (the last one masked with zeros);
  * acc = +0; for each K tile t, ascending: acc = acc + dot(a tile, b tile)
    (fp32; the add is the MMA's own accumulator input, as the compilers fuse it);
  * out = round(acc + bias), the bias added once in fp32.

No split-K: one accumulator per output element, so a zero row of a gives +0.0.

The output tile (BLOCK_M, BLOCK_N, warps, stages) may change with M: plan(M,
N, K, dtype) gives decode (M <= DECODE_MAX_M) the widest tile of DECODE_TILES
that still spreads the weight's columns over every SM, and larger M the tile of
LADDERS with the least estimated time: waves of WAVE programs times the tile's
area over its measured rate (bijax swaps a few for its own: PALLAS_SWAPS, and on
Hopper most for its Mosaic GPU kernel: MOSAIC_SWAPS; bitorch most for TMA kernels
on Hopper: TMA_SWAPS). A
tile may be two column blocks side by side (BLOCK_N + BLOCK_N2, each with its own accumulator):
widths such as 192 that Triton's power-of-two blocks cannot take, chosen when
they fit the output into fewer waves.
That changes no bit: the MMA sums each element's BLOCK_K products the same way
whatever the tile's other dimensions and whichever instruction the tile gets
(Hopper's wgmma for BLOCK_M >= 64, mma.sync below). Measured on the H100 on
2026-11-28 (eight tilings from 16x32 to 128x256, bf16 and fp16, Llama-3-8B qkv
and down and an odd 1000 -> 300: all the same bits, both frameworks), and
tested by test_matmul.test_tilings_agree on every run (on the H200 also for the
2-warp 16x32 and 4-warp 32x128 decode tiles and the 64x256 rung).
M is also kept out of the compiled kernel (do_not_specialize).

Without a GPU the kernels run in interpreters, whose dot (NumPy's matmul) sums
a row differently by its place in the tile; bitorch replaces it there by a
broadcast product summed over k in a fixed order (the same for every tile),
so batch invariance is tested on CPU too. Bitwise equality of bitorch and
bijax is a GPU property (two interpreters round fp32 sums differently); on CPU
they agree within the tolerance.

Tolerance (error_bound), against the float64 reference, element by element:
  |out - exact| <= EPS[dtype] * |exact|              the output's one rounding (half an ulp, 2x margin)
                 + ACC_ULPS * sqrt(K) * 2**-24 * S   the fp32 accumulation, S = sum_k |a_ik b_kj| + |bias_j|
                 + 2**-10 * S                        with allow_tf32 only: each product off by up to that
                 + the dtype's smallest subnormal
The sqrt(K) is the random-walk growth of K fp32 roundings (scaled by the dtype: a
bf16 output's rounding dominates unless the sum cancels); S bounds every partial
sum, so the rule holds under any cancellation in the output.
"""
from __future__ import annotations

import dataclasses
import math

import ml_dtypes
import numpy as np

from bispec import common

NAME = "matmul"


@dataclasses.dataclass(frozen=True)
class Tiling:
    block_m: int
    block_n: int
    group_m: int     # tile order: GROUP_M row tiles share the same column tiles (L2 reuse); order never affects bits
    num_warps: int
    num_stages: int
    rate: float = 1.0  # measured throughput per SM relative to the largest tile (plan()'s cost model)
    block_n2: int = 0  # a second column block beside the first (own accumulator): widths that are no power of 2
    tma: bool = False         # bitorch on Hopper: operands loaded by TMA descriptors (TMA_SWAPS)
    persistent: bool = False  # with tma: a program per SM walks the tiles in the same order
    mosaic: bool = False      # bijax on Hopper: the Mosaic GPU kernel; num_warps its compute warps (4 a warpgroup)

    @property
    def warpgroups(self) -> int:
        """With mosaic: the compute warpgroups, side by side along N."""
        return self.num_warps // 4

    @property
    def width(self) -> int:
        """Columns of one output tile."""
        return self.block_n + self.block_n2

    def programs(self, m: int, n: int) -> int:
        """Output tiles of an (m, n) output: one program each (per matrix of a batch)."""
        return common.cdiv(m, self.block_m) * common.cdiv(n, self.width)


# The reduction order: K tile per precision (dtype, or "tf32" for fp32 with allow_tf32).
BLOCK_K = {"bfloat16": 64, "float16": 64, "float32": 32, "tf32": 32}

# Output tiles, timed with bench.tune matmul: the ladders on the H100; the decode tiles, 64x256, and the
# stages and warps of 128x64 and 64x64 on the H200 (no H100 was lent). Up to DECODE_MAX_M rows a tile with a
# deep pipeline streams the weight: the first of DECODE_TILES with at least WAVE column tiles (a wide one when
# N is large: gate_up), else the last, narrowest. Above, plan() takes the tile of LADDERS whose programs, run
# in waves of WAVE (the H100's 132 SMs), finish first: waves * BLOCK_M * width / rate (ties: the larger tile).
DECODE_MAX_M = 32
WAVE = 132
_HALF_DECODE = (Tiling(32, 128, 8, 4, 4), Tiling(16, 32, 8, 2, 12))
_HALF = (Tiling(128, 256, 8, 8, 4), Tiling(128, 128, 8, 8, 4, 0.8, 64), Tiling(128, 128, 8, 8, 5, 0.85),
         Tiling(64, 256, 8, 8, 5, 0.75), Tiling(64, 128, 8, 4, 6, 0.75, 64), Tiling(128, 64, 8, 8, 8, 0.75),
         Tiling(64, 64, 8, 4, 10, 0.6))
_FP32_DECODE = (Tiling(16, 32, 8, 4, 4),)
_FP32 = (Tiling(128, 128, 8, 8, 3), Tiling(64, 64, 8, 4, 3, 0.6))
DECODE_TILES = {"bfloat16": _HALF_DECODE, "float16": _HALF_DECODE, "float32": _FP32_DECODE, "tf32": _FP32_DECODE}
LADDERS = {"bfloat16": _HALF, "float16": _HALF, "float32": _FP32, "tf32": _FP32}

# bijax (XLA's own Triton) runs some tiles faster with other warps or stages, so plan(..., pallas=True) swaps
# them; the bits stay (test_tilings_agree). bijax's times on the H200 (tune_*_jax.log in bench/results):
#   the narrow decode tile with 8 stages, not 12, at 32 tokens: o 13.5 against 13.9 us, qkv 16.8 against 17.4
#   (down 40.2 against 39.6); and where it is one row tile, 16x16 over 1 warp with 12 stages instead, at 1 and
#   8 tokens: o 11.7 and 11.6 against 12.6 and 12.8 us, qkv 14.6 and 14.5 against 15.3 and 15.3, down 33.5 and
#   31.6 against 39.4 and 39.5 (bitorch: o 11.7 against its 11.3, down 33.9 against 32.5; at 32 tokens, two
#   row tiles, far slower);
#   128x64 over 4 warps, not 8: qkv at 128 tokens 18.4 against 20.6 us, o at 256 19.3 against 20.8; then
#   64x128 over 4 warps (scratch/mm_pallas.py): o at 256 18.1 against 19.0 us, down at 256 63.0 against 65.1;
#   128x128 over 4 warps: qkv at 1024 75.9 against 82.2 us; 128x(128+64) over 4 warps with 5 stages: qkv at 512
#   42.5 against 43.4 us.
PALLAS_SWAPS = {_HALF_DECODE[1]: Tiling(16, 32, 8, 2, 8), _HALF[1]: Tiling(128, 128, 8, 4, 5, 0.8, 64),
                _HALF[2]: Tiling(128, 128, 8, 4, 5, 0.85), _HALF[5]: Tiling(64, 128, 8, 4, 8, 0.75)}
PALLAS_ONE_ROW_SWAPS = {_HALF_DECODE[1]: Tiling(16, 16, 8, 1, 12)}  # where M fits in one row tile

# bitorch swaps its rungs for TMA kernels (plan(..., tma=True)) where its operands allow TMA descriptors (unit
# stride along the last dim, 16-byte rows) on a Hopper GPU: the out-of-bounds zeros of TMA are the masked loads'
# zeros and the MMA is the same, so the bits are too (test_tilings_agree). H200, bf16, cuBLAS time over ours
# (scratch/mm_tma.py, scratch/mm_n2.py, medians of 3): 128x256 persistent, its loop flattened so a tile's loads
# overlap the last one's epilogue, at 1024 to 4096 tokens: qkv 0.92-0.99 -> 0.98-1.03, o 0.95-0.98 -> 0.98-0.99,
# gate_up 0.89-0.94 -> 0.91-0.99, down 0.99-1.08 -> 1.00-1.10; the persistent kernel runs a last round that would
# fill at most half the programs as twice as many half-width tiles: gate_up at 512 tokens (448 tiles, the fourth
# round over 132 SMs 39 % full) 0.88-0.90 -> 0.98 in the bench. 128x(128+64) over 4 warps with 5 stages: qkv at
# 512 0.87 -> 1.00 (8 warps: 0.93). 128x128 over 4 warps with 5 stages, persistent: qkv at 1024 0.93 -> 0.99
# (not persistent 0.96), down and o at 512 0.96 -> 0.98 (not persistent). 64x(128+64) with 7 stages: qkv at 256
# 0.95 -> 0.98. 64x128 over 4 warps with 8 stages for 128x64: down at 256 0.84 -> 1.02, o at 256 0.97 -> 1.12,
# qkv at 128 0.89 -> 0.95. 64x64 with 12 stages: down at 128 0.92 -> 0.99, o at 128 0.98 -> 1.00.
TMA_SWAPS = {_HALF[0]: Tiling(128, 256, 8, 8, 4, tma=True, persistent=True),
             _HALF[1]: Tiling(128, 128, 8, 4, 5, 0.8, 64, tma=True),
             _HALF[2]: Tiling(128, 128, 8, 4, 5, 0.85, tma=True, persistent=True),
             _HALF[4]: Tiling(64, 128, 8, 4, 7, 0.75, 64, tma=True),
             _HALF[5]: Tiling(64, 128, 8, 4, 8, 0.75, tma=True),
             _HALF[6]: Tiling(64, 64, 8, 4, 12, 0.6, tma=True)}

# bijax swaps rungs for its Mosaic GPU kernel (bijax/matmul_mosaic.py: TMA loads, a memory warpgroup, one to
# three compute warpgroups side by side along N) on Hopper, for bf16/fp16 matmul and linear (a bias too) where
# mosaic_fits: the same wgmma in the same K order, so bitorch's bits (equal at every probed point, also with M
# not a multiple of the tile: qkv at 1000 tokens 88.1 -> 68.7 us, down at 4000 661.0 -> 585.6). H200,
# bijax time over bitorch's, Triton lowering -> Mosaic (scratch/mm_mosaic2.py, medians of 3):
#   128x256 over 2 compute warpgroups, 4 stages: down at 1024 and 4096 tokens 1.11 and 1.04 -> 1.00 and 0.94,
#     gate_up at 512 and 4096 1.16 and 1.04 -> 1.08 and 0.97 (128x128 with 6 stages: 1.05 and 1.11);
#   128x(128+64) as 128x192 over 3: qkv at 512 1.21 -> 0.97;  128x128 over 2, 6 stages: down at 512 1.16 -> 1.01,
#     qkv at 1024 1.09 -> 1.02;  64x(128+64) as 64x192 over 3, 6 stages: qkv at 256 1.13 -> 1.02;
#   128x64 as 64x128 over 1, 8 stages: down at 256 1.33 -> 0.98, o at 256 1.15 -> 0.97 (over 2: 1.01, 1.00);
#   64x64 over 1, 12 stages: down at 128 1.15 -> 1.05.
MOSAIC_KEYS = ("bfloat16", "float16")  # the precisions the Mosaic kernel takes (one BLOCK_K: 64)
MOSAIC_SWAPS = {_HALF[0]: Tiling(128, 256, 8, 8, 4, mosaic=True), _HALF[1]: Tiling(128, 192, 8, 12, 4, mosaic=True),
                _HALF[2]: Tiling(128, 128, 8, 8, 6, mosaic=True), _HALF[4]: Tiling(64, 192, 8, 12, 6, mosaic=True),
                _HALF[5]: Tiling(64, 128, 8, 4, 8, mosaic=True), _HALF[6]: Tiling(64, 64, 8, 4, 12, mosaic=True)}


def mosaic_fits(t: Tiling, m: int, n: int, k: int) -> bool:
    """The Mosaic kernel masks only the last row tile (by TMA: zeros loaded past M, stores past it dropped), and
    its TMA descriptors need M a multiple of 8 rows; its tile must divide N and BLOCK_K the K dimension; each
    compute warpgroup's columns are whole 128-byte swizzle spans (64 bf16/fp16)."""
    return m % 8 == 0 and n % t.block_n == 0 and k % BLOCK_K["bfloat16"] == 0 and (t.block_n // t.warpgroups) % 64 == 0


# Limits: Pallas' Triton lowering indexes with int32; grid axes 1 and 2 hold at most 65535.
MAX_ELEMENTS = 2**31 - 1
MAX_BATCH = 65535

# Error bound constants (see the module docstring).
ACC_ULPS = 2.0
U32 = 2.0**-24
TF32_PRODUCT_ERROR = 2.0**-10

# Llama-3-8B projections as (K, N): the bench's shapes.
LLAMA3_8B = {"qkv": (4096, 6144), "o": (4096, 4096), "gate_up": (4096, 28672), "down": (14336, 4096)}


@dataclasses.dataclass(frozen=True)
class Plan:
    tiling: Tiling
    k: int
    block_k: int
    precision: str      # Triton input_precision: "ieee" or "tf32"

    @property
    def k_tiles(self) -> int:
        return common.cdiv(self.k, self.block_k)

    @property
    def even_k(self) -> bool:
        """K is a multiple of BLOCK_K: no K mask."""
        return self.k % self.block_k == 0


def precision_key(dtype: str, allow_tf32: bool) -> str:
    return "tf32" if dtype == "float32" and allow_tf32 else dtype


def plan(m: int, n: int, k: int, dtype: str, allow_tf32: bool = False, pallas: bool = False,
         tma: bool = False, mosaic: bool = False) -> Plan:
    """The K tiling (from K and the dtype alone: the reduction order) and the output tile for this M
    (pallas: bijax's, which may differ; tma: bitorch's where TMA can load its operands; mosaic, with pallas:
    bijax's Mosaic GPU tile where one fits; the bits do not)."""
    key = precision_key(common.dtype_name(dtype), allow_tf32)
    if m <= DECODE_MAX_M:
        tiling = next((t for t in DECODE_TILES[key] if common.cdiv(n, t.width) >= WAVE), DECODE_TILES[key][-1])
    else:
        def cost(t: Tiling) -> float:
            return common.cdiv(t.programs(m, n), WAVE) * t.block_m * t.width / t.rate
        tiling = min(LADDERS[key], key=cost)  # min keeps the first (largest) of equal costs
    mosaic_tile = MOSAIC_SWAPS.get(tiling) if mosaic and key in MOSAIC_KEYS else None
    if pallas and mosaic_tile and mosaic_fits(mosaic_tile, m, n, k):
        tiling = mosaic_tile
    elif pallas:
        tiling = pallas_tile(tiling, m)
    elif tma:
        tiling = TMA_SWAPS.get(tiling, tiling)
    return Plan(tiling, k, BLOCK_K[key], "tf32" if key == "tf32" else "ieee")


def pallas_tile(tiling: Tiling, m: int) -> Tiling:
    """bijax's tile where bitorch's is `tiling` (PALLAS_ONE_ROW_SWAPS when M fits in one row tile, PALLAS_SWAPS)."""
    if m <= tiling.block_m and tiling in PALLAS_ONE_ROW_SWAPS:
        return PALLAS_ONE_ROW_SWAPS[tiling]
    return PALLAS_SWAPS.get(tiling, tiling)


def tilings(key: str) -> tuple[Tiling, ...]:
    """Every output tile plan() may pick for a precision key, in either framework."""
    own = (*LADDERS[key], *DECODE_TILES[key])
    swaps = tuple(pallas_tile(t, m) for t in own for m in (1, DECODE_MAX_M)) + tuple(TMA_SWAPS.get(t, t) for t in own)
    if key in MOSAIC_KEYS:
        swaps += tuple(MOSAIC_SWAPS.get(t, t) for t in own)
    return tuple(dict.fromkeys(own + swaps))


def tile_of(pid, tiles_m: int, tiles_n: int, group_m: int, minimum=min):
    """Grouped tile order: program pid -> (row tile, column tile). Every kernel uses this formula (a traced pid
    with its framework's minimum)."""
    per_group = group_m * tiles_n
    first_m = (pid // per_group) * group_m
    rows = minimum(tiles_m - first_m, group_m)
    return first_m + (pid % per_group) % rows, (pid % per_group) // rows


# ---- argument checks (framework-neutral shapes and dtypes) ----

def _check_tf32(allow_tf32) -> bool:
    if not isinstance(allow_tf32, bool):
        raise TypeError(f"allow_tf32: must be a bool, got {allow_tf32!r}")
    return allow_tf32


def _check_dtype_like(arg: str, dtype, expected: str, first: str) -> None:
    name = common.dtype_name(dtype)
    if name != expected:
        raise TypeError(f"{arg}: dtype {name} does not match {first}'s dtype {expected}")


def _numel(shape) -> int:
    n = 1
    for s in shape:  # a plain loop: torch.compile traces these checks
        n *= int(s)
    return n


def _check_size(arg: str, shape) -> None:
    if _numel(shape) > MAX_ELEMENTS:
        raise ValueError(f"{arg}: {_numel(shape)} elements exceed the supported maximum {MAX_ELEMENTS}")


def _check_bias(bias_shape, bias_dtype, n: int, dtype: str, first: str) -> None:
    if bias_shape is None:
        return
    if tuple(bias_shape) != (n,):
        raise ValueError(f"bias: shape {tuple(bias_shape)} does not match the output width; expected ({n},)")
    _check_dtype_like("bias", bias_dtype, dtype, first)


def _check_k(arg: str, k: int) -> None:
    if k == 0:
        raise ValueError(f"{arg}: the contracted dimension K is 0")


def check_matmul(a_shape, a_dtype, b_shape, b_dtype, bias_shape=None, bias_dtype=None,
                 allow_tf32=False) -> tuple[int, int, int, str]:
    """a (M, K) @ b (K, N) [+ bias (N,)]: return (M, K, N, dtype name)."""
    if len(a_shape) != 2:
        raise ValueError(f"a: must be 2-D (M, K), got shape {tuple(a_shape)}")
    dtype = common.check_float_dtype("a", a_dtype)
    if len(b_shape) != 2:
        raise ValueError(f"b: must be 2-D (K, N), got shape {tuple(b_shape)}")
    _check_dtype_like("b", b_dtype, dtype, "a")
    m, k = (int(s) for s in a_shape)
    if int(b_shape[0]) != k:
        raise ValueError(f"b: shape {tuple(b_shape)} does not match a's K = {k}; expected ({k}, N)")
    n = int(b_shape[1])
    _check_bias(bias_shape, bias_dtype, n, dtype, "a")
    _check_k("a", k)
    _check_tf32(allow_tf32)
    for arg, shape in (("a", a_shape), ("b", b_shape), ("a", (m, n))):
        _check_size(arg, shape)
    return m, k, n, dtype


def check_bmm(a_shape, a_dtype, b_shape, b_dtype, allow_tf32=False) -> tuple[int, int, int, int, str]:
    """a (B, M, K) @ b (B, K, N): return (B, M, K, N, dtype name)."""
    if len(a_shape) != 3:
        raise ValueError(f"a: must be 3-D (batch, M, K), got shape {tuple(a_shape)}")
    dtype = common.check_float_dtype("a", a_dtype)
    if len(b_shape) != 3:
        raise ValueError(f"b: must be 3-D (batch, K, N), got shape {tuple(b_shape)}")
    _check_dtype_like("b", b_dtype, dtype, "a")
    batch, m, k = (int(s) for s in a_shape)
    if int(b_shape[0]) != batch:
        raise ValueError(f"b: batch size {int(b_shape[0])} does not match a's batch size {batch}")
    if int(b_shape[1]) != k:
        raise ValueError(f"b: shape {tuple(b_shape)} does not match a's K = {k}; expected ({batch}, {k}, N)")
    n = int(b_shape[2])
    if batch > MAX_BATCH:
        raise ValueError(f"a: batch size {batch} exceeds the supported maximum {MAX_BATCH}")
    _check_k("a", k)
    _check_tf32(allow_tf32)
    for arg, shape in (("a", a_shape), ("b", b_shape), ("a", (batch, m, n))):
        _check_size(arg, shape)
    return batch, m, k, n, dtype


def check_linear(x_shape, x_dtype, w_shape, w_dtype, bias_shape=None, bias_dtype=None,
                 allow_tf32=False) -> tuple[int, int, int, str]:
    """x (..., K) @ weight (N, K).T [+ bias (N,)]: return (rows M, K, N, dtype name)."""
    if len(x_shape) < 1:
        raise ValueError("x: must have at least one dimension (..., K)")
    dtype = common.check_float_dtype("x", x_dtype)
    if len(w_shape) != 2:
        raise ValueError(f"weight: must be 2-D (N, K), got shape {tuple(w_shape)}")
    _check_dtype_like("weight", w_dtype, dtype, "x")
    k = int(x_shape[-1])
    if int(w_shape[1]) != k:
        raise ValueError(f"weight: shape {tuple(w_shape)} does not match x's K = {k}; expected (N, {k})")
    n = int(w_shape[0])
    _check_bias(bias_shape, bias_dtype, n, dtype, "x")
    _check_k("x", k)
    _check_tf32(allow_tf32)
    m = _numel(x_shape[:-1])
    for arg, shape in (("x", x_shape), ("weight", w_shape), ("x", (m, n))):
        _check_size(arg, shape)
    return m, k, n, dtype


# ---- cost model and reference ----

def flops(m: int, n: int, k: int, batch: int = 1) -> int:
    return 2 * batch * m * n * k


def bytes_moved(m: int, n: int, k: int, itemsize: int, bias: bool = False, batch: int = 1) -> int:
    """Fewest bytes through device memory: a, b (and bias) read once, out written once."""
    return batch * (m * k + k * n + m * n) * itemsize + (n * itemsize if bias else 0)


def reference(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Float64 a @ b (+ bias); batched over leading dims like np.matmul."""
    out = np.matmul(a.astype(np.float64), b.astype(np.float64))
    return out if bias is None else out + bias.astype(np.float64)


def error_bound(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None, dtype, allow_tf32: bool = False,
                exact: np.ndarray | None = None) -> np.ndarray:
    """Per-element bound on |out - reference(a, b, bias)| (module docstring)."""
    name = common.dtype_name(dtype)
    k = a.shape[-1]
    scale = np.matmul(np.abs(a.astype(np.float64)), np.abs(b.astype(np.float64)))
    if bias is not None:
        scale = scale + np.abs(bias.astype(np.float64))
    exact = reference(a, b, bias) if exact is None else exact
    acc = ACC_ULPS * math.sqrt(k) * U32
    if name == "float32" and allow_tf32:
        acc += TF32_PRODUCT_ERROR
    tiny = float(ml_dtypes.finfo(common.NUMPY_DTYPES[name]).smallest_subnormal)
    return common.EPS[name] * np.abs(exact) + acc * scale + tiny

"""softmax(x, dim=-1, half_to_float=False), log_softmax(x, dim=-1, half_to_float=False)

Semantics (x of any float dtype, reduced along `dim`; out of x's dtype, or
float32 with half_to_float=True, which takes bf16/fp16 x only, as torch's
aten._softmax does):
  M       = max(x)                       the row maximum
  S       = sum(exp(x - M))              fp32, accumulated as below
  softmax = round(exp(x - m_b) * (e(m_b, M) * (1/S)))
            m_b: the max of the block holding the element (the row, or its chunk;
            below), so exp(x - m_b) is the exp pass 1 already took for S;
            e(a, M) = exp(a - M), and 1 where a == M (so for a held row, the
            factor is 1/S exactly); 1/S: fp32, correctly rounded (rcp.rn.f32)
  log_softmax = round((x - M) - log(S))

Arithmetic in fp32; exp is common.EXP_RULE's (the same two instructions in both frameworks)
and log is libdevice's __nv_logf (log only ever sees S >= 1); one rounding to
the output dtype at the end (softmax's factor e(m_b, M) * (1/S) is rounded to
fp32 first, once per block). No plain product feeds an add in fp32 (nothing a
compiler could fuse into an FMA differently): the products that feed S's sum
are explicit mul.rn.f32 (common.SUM_RULE).

NaN/inf follow torch.softmax/log_softmax: a row holding a NaN or a +inf gives
NaN everywhere; a row of -inf only (fully masked logits) gives NaN everywhere;
-inf beside finite values gives 0 (softmax) or -inf (log_softmax) there.

Reduction order, a function of the reduced length n alone:
- n <= MAX_REGISTER: one program owns a row and holds it in registers as one
  block of next_pow2(n) lanes over num_warps(n) warps (one read of x). M is a
  tree max over the block; S is one block sum (common.SUM_RULE's tree, the
  vector width of x's dtype and num_warps(n) warps).
- n > MAX_REGISTER: the row is cut into CHUNK-lane chunks, each owned by its
  own program (so even one row fills the GPU). Pass 1, per chunk c:
  m_c = max(chunk), s_c = sum(exp(chunk - m_c)) (common.SUM_RULE's tree over
  the chunk, CHUNK_WARPS warps; a chunk of -inf only gives s_c = 0), written to
  an fp32 workspace. Pass 2, per chunk:
  read the row's (m_c) and (s_c) as blocks of stats_block(n) lanes, then
      M = max_c m_c                                (exact, order-free)
      S = sum_c s_c * e(m_c, M)       products rounded to fp32, summed by
                                      SUM_RULE's tree with VEC = WARPS = 1
                                      (halving: chunk c + stats_block/2 first)
  and write the chunk's outputs (softmax: from pass 1's exps, m_b = m_c).
  Every pass-2 program of a row computes the same (M, S).
  On a GPU, rows of up to FUSED_MAX_CHUNKS chunks, FUSED_MIN_ROWS or more of
  them, run both passes in one launch, a program per group (group(): FUSED_GROUP,
  or the GPU's) of consecutive chunks of a row: it streams the group's first chunks for their (m_c, s_c),
  asking L2 to keep them, keeps the last chunk's exps (softmax) or x
  (log_softmax) in registers, publishes, waits until its row's other programs
  have, writes the held chunk and re-reads the others from L2, so x is read
  from memory once. Programs take tickets from an atomic counter in the order
  they start, so every lower ticket's program is running or done: a row's
  programs all run as long as the GPU holds cdiv(FUSED_MAX_CHUNKS, group)
  programs at once, which a GPU of FUSED_MIN_SMS SMs does. The
  interpreters run programs one after another (none could wait for a later
  one), so there, on smaller GPUs, and for longer or fewer rows, the passes
  are two launches of a program per chunk: pass 1 asks L2 to keep x for pass
  2's re-read. A re-read chunk gets m_c and the exps again (the same bits).
The rows are packed (a dim other than the last is moved last by a copy), so a
kernel sees the same shape for the same n whatever the batch.
"""
from __future__ import annotations

import operator

import numpy as np

from bispec import common

NAMES = ("softmax", "log_softmax")
# Rows up to this length are held in registers: one read of x.
MAX_REGISTER = 32768
# Longer rows: chunks of this many lanes, each 32 a thread over CHUNK_WARPS warps.
CHUNK = 4096
CHUNK_WARPS = 4
# Rows of up to this many chunks run both passes in one launch on a GPU of FUSED_MIN_SMS SMs or more (which
# holds this many of its 4-warp, <= 64-register programs at once, 8 an SM, twice over), when there are at least
# FUSED_MIN_ROWS of them: the one launch needs its counters zeroed first. H100, vocab 128256: at 1 row the two
# launches took 5.8 us against 6.9, at 32 rows 18.1 against 19.8 us for log_softmax (16.2 against 14.5 for
# softmax); from 128 rows the one launch wins (softmax 42 against 46 us at 128 rows, 0.98 against 1.42 ms at
# 4096).
FUSED_MAX_CHUNKS = 64
FUSED_MIN_ROWS = 64
FUSED_MIN_SMS = 16
# Chunks a program of the one launch owns, the last held across the wait and the others re-read from L2: a program
# holds one chunk in registers whatever the group (56 registers), so a longer group waits less per byte, until the
# re-read chunks fall out of L2. H200, 4096 x 128256 bf16, softmax / log_softmax: 0.663 / 0.667 ms holding one
# chunk a program, 0.605 / 0.599 groups of 2, 0.584 / 0.575 of 3, 0.620 / 0.600 of 4, 0.647 / 0.622 of 5 (at 512
# rows 88.9 / 89.4 us against 82.0 / 78.8 with 3). The same bits whatever the group.
FUSED_GROUP = 3
# Where another group is faster: a substring of the GPU's name -> group. H100, 4096 x 128256 bf16, softmax /
# log_softmax, bitorch / bijax (bench/results/h100_2026-12-06/full_b2693f7/tune.log): groups of 2 759.8 / 771.4
# and 755.5 / 762.8 us, of 3 775.7 / 781.9 and 782.4 / 776.7. (bijax lost in groups of 2 while its program held
# 72 or 64 registers to bitorch's 56, from signed ticket arithmetic: bijax/softmax.py.)
FUSED_GROUP_BY_GPU = {"H100": 2}



# Cache hints: a row held in registers, and pass 2 of a long row, stream through
# once; pass 1 of a long row asks L2 to keep the row for pass 2's re-read.
STREAM_EVICTION = "evict_first"
REREAD_EVICTION = "evict_last"

# The figure: bf16 logits over an LLM vocabulary, tokens 1..4096.
FIGURE_VOCAB = 128256
FIGURE_DTYPE = "bfloat16"
VOCAB_SIZES = (32000, 128256, 151936)
ODD_SIZES = (1000, 5120, 1)
SHAPES = tuple((tokens, vocab) for vocab in VOCAB_SIZES for tokens in common.TOKEN_SWEEP) + tuple(
    (tokens, n) for n in ODD_SIZES for tokens in common.ODD_TOKENS)


def chunked(n: int) -> bool:
    """Whether a row of length n takes the chunked kernels (two passes, a program per chunk)."""
    return n > MAX_REGISTER


def block_size(n: int) -> int:
    """Lanes one program holds at a time: the whole row, or one chunk."""
    return CHUNK if chunked(n) else common.next_pow2(n)


def num_chunks(n: int) -> int:
    return common.cdiv(n, CHUNK) if chunked(n) else 1


def fused(n: int, rows: int, multiprocessors: int) -> bool:
    """Whether the two passes over `rows` long rows of length n run in one launch (see the module docstring).

    multiprocessors: the GPU's SM count; 0 under an interpreter, which runs programs one after another.
    """
    return (chunked(n) and num_chunks(n) <= FUSED_MAX_CHUNKS and rows >= FUSED_MIN_ROWS
            and multiprocessors >= FUSED_MIN_SMS)


def group(fused_launch: bool, gpu_name: str = "") -> int:
    """Chunks a program of the chunked kernel owns: one in the two launches; in the one launch, the group
    FUSED_GROUP_BY_GPU gives the GPU named gpu_name, else FUSED_GROUP. Any group gives the same bits."""
    if not fused_launch:
        return 1
    return next((g for key, g in FUSED_GROUP_BY_GPU.items() if key in gpu_name), FUSED_GROUP)


def stats_block(n: int) -> int:
    """Lanes of pass 2's vectors of per-chunk (max, sum): num_chunks(n), rounded up to a power of two."""
    return common.next_pow2(num_chunks(n))


def num_warps(n: int) -> int:
    # Held rows: 32 elements a thread, four 16-byte bf16 loads in flight (as rms_norm).
    return CHUNK_WARPS if chunked(n) else min(32, max(1, block_size(n) // 1024))


def check_args(x_shape, x_dtype, dim, half_to_float) -> tuple[int, str, int, str]:
    """Validate framework-neutral arguments; return (n, x's dtype name, dim in [0, ndim), out dtype name)."""
    if not isinstance(half_to_float, (bool, np.bool_)):
        raise TypeError(f"half_to_float: must be a bool, got {half_to_float!r}")
    if isinstance(dim, (bool, np.bool_)):
        raise TypeError(f"dim: must be an int, got {dim!r}")
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"dim: must be an int, got {dim!r}") from None
    ndim = len(x_shape)
    if ndim < 1:
        raise ValueError("x: must have at least one dimension")
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim: {dim} is out of range for x of {ndim} dimensions; expected {-ndim}..{ndim - 1}")
    dim %= ndim
    dtype = common.check_float_dtype("x", x_dtype)
    if half_to_float and dtype == "float32":
        raise TypeError("half_to_float: converts bfloat16 or float16 x to float32; x is already float32")
    n = int(x_shape[dim])
    if n == 0:
        raise ValueError(f"x: the reduced dimension {dim} has length 0")
    return n, dtype, dim, "float32" if half_to_float else dtype


def bytes_moved(tokens: int, vocab: int, in_itemsize: int, out_itemsize: int) -> int:
    """Fewest bytes through device memory: x read once, out written once."""
    return tokens * vocab * (in_itemsize + out_itemsize)


def softmax_reference(x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Float64 reference of softmax along `dim`."""
    x64 = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        e = np.exp(x64 - np.max(x64, axis=dim, keepdims=True))
        return e / np.sum(e, axis=dim, keepdims=True)


def log_softmax_reference(x: np.ndarray, dim: int = -1) -> np.ndarray:
    """Float64 reference of log_softmax along `dim`."""
    x64 = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        shifted = x64 - np.max(x64, axis=dim, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


REFERENCES = {"softmax": softmax_reference, "log_softmax": log_softmax_reference}

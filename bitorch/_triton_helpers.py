"""Triton device functions shared by bitorch kernels.

Each has a twin of the same name in bijax/_kernel_helpers.py; the pair is what
lets the two frameworks agree to the bit on the GPU.
"""
import triton
import triton.language as tl
from triton.language.extra import libdevice

from bispec import common
from bitorch._launch import INTERPRET

_INTERPRET = tl.constexpr(INTERPRET)


@triton.jit
def cast_rtne(x, dtype: tl.constexpr):
    """fp32 -> dtype, round to nearest even: what `.to(dtype)` does on the GPU.

    Triton 3.x's interpreter truncates fp32 -> bf16 (and its "rtne" mode rounds
    ties up), so under the interpreter bf16 is rounded here from the bits.
    """
    if _INTERPRET and dtype == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        rounded = tl.where(x == x, rounded, 0x7FC0)  # keep NaN a NaN
        return rounded.to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(dtype)


_tree_levels = triton.constexpr_function(common.tree_levels)
_pair_shape = triton.constexpr_function(common.pair_shape)


@triton.jit
def tree_sum(x, VEC: tl.constexpr, WARPS: tl.constexpr, EXPLICIT: tl.constexpr = False):
    """Sum of a 1-D block (a power of 2 long) in its dtype by bispec.common.SUM_RULE's tree.

    VEC and WARPS are the block's layout: its elements a 16-byte load and the kernel's num_warps.
    EXPLICIT takes every step as pairs, for a block whose layout the kernel does not fix.
    """
    N: tl.constexpr = x.shape[0]
    LEVELS: tl.constexpr = _tree_levels(N, VEC, WARPS)
    # On the GPU the steps inside a thread are written out and Triton's butterfly, the rule's order
    # (test_sum_tree), does the rest, one term a thread.
    HYBRID: tl.constexpr = not (_INTERPRET or EXPLICIT) and N >= VEC * 32 * WARPS
    STEPS: tl.constexpr = LEVELS[0] + LEVELS[1] if HYBRID else LEVELS[0] + LEVELS[1] + LEVELS[2] + LEVELS[3]
    for i in tl.static_range(STEPS):
        pairs = tl.reshape(x, _pair_shape(N, LEVELS, i))
        if _INTERPRET:  # tl.sum is a jit function, and the interpreter pays ~2 ms for every nested call
            a, b = tl.split(tl.permute(pairs, (0, 2, 1)))
            x = tl.reshape(a + b, (N >> (i + 1),))
        else:  # a sum over an axis of 2: one add
            x = tl.reshape(tl.sum(pairs, axis=1), (N >> (i + 1),))
    if HYBRID:
        return tl.sum(x, axis=0)
    else:
        return tl.reshape(x, ())


@triton.jit
def mul_f32(a, b):
    """a*b of fp32 values as PTX mul.rn.f32, which no compiler contracts with a following add."""
    if _INTERPRET:
        return a * b
    else:
        return tl.inline_asm_elementwise("mul.rn.f32 $0, $1, $2;", "=f,f,f", [a, b], dtype=tl.float32, is_pure=True,
                                         pack=1)


_tree_ptx = triton.constexpr_function(common.tree_ptx)
_tree_ptx_constraints = triton.constexpr_function(common.tree_ptx_constraints)
_tree_ptx_fits = triton.constexpr_function(common.tree_ptx_fits)


@triton.jit
def row_sum(x, VEC: tl.constexpr, WARPS: tl.constexpr, TOTAL: tl.constexpr):
    """tree_sum of a row's fp32 block x; with TOTAL, for a kernel that uses the sum only elementwise with blocks of
    x's layout, on the GPU and where bispec.common.tree_ptx fits, a block of x's shape every element of which is the
    sum, its warps' step through the PTX's static shared array (bijax's twin: row_sum and tree_total)."""
    N: tl.constexpr = x.shape[0]
    if TOTAL and not _INTERPRET and _tree_ptx_fits(N, VEC, WARPS):
        PER_THREAD: tl.constexpr = N // (32 * WARPS)
        return tl.inline_asm_elementwise(_tree_ptx(PER_THREAD, VEC, WARPS), _tree_ptx_constraints(PER_THREAD), [x],
                                         dtype=tl.float32, is_pure=True, pack=PER_THREAD)
    else:
        return tree_sum(x, VEC, WARPS)


@triton.jit
def out_columns(cols, mask, N: tl.constexpr, BLOCK: tl.constexpr, SLICE: tl.constexpr, IN_BLOCK: tl.constexpr = False):
    """(columns, mask) a program writes: the whole block, or slice program_id(1) of a split row, as a block of its
    own or (IN_BLOCK) as the row's block masked to the slice."""
    if SLICE == BLOCK:
        return cols, mask
    elif IN_BLOCK:
        return cols, mask & (cols // SLICE == tl.program_id(1))
    else:
        ocols = tl.program_id(1) * SLICE + tl.arange(0, SLICE)
        return ocols, ocols < N


@triton.jit
def log_f32(x):
    """log through libdevice's __nv_logf, the function Pallas lowers jnp.log to."""
    if _INTERPRET:
        return tl.log(x)
    else:
        return libdevice.log(x)


@triton.jit
def fma_f32(a, b, c):
    """a*b + c of fp32 values, rounded once: PTX fma.rn.f32, the instruction the Pallas twin writes.

    An explicit FMA leaves a compiler nothing to fuse or split, where a*b + c
    written as two ops may be contracted by one compiler and not the other.
    Scalars broadcast against blocks. The interpreter's tl.fma rounds twice;
    there the product is taken exactly in fp64 and the sum rounded to fp64,
    then to fp32, as the Pallas twin does under its interpreter.
    """
    a, b = tl.broadcast(tl.cast(a, tl.float32), tl.cast(b, tl.float32))
    a, c = tl.broadcast(a, tl.cast(c, tl.float32))
    b, c = tl.broadcast(b, c)
    if _INTERPRET:
        return (a.to(tl.float64) * b.to(tl.float64) + c.to(tl.float64)).to(tl.float32)
    else:
        return tl.fma(a, b, c)


_LOG2E = tl.constexpr(common.LOG2E)
_FLT_MIN = tl.constexpr(common.FLT_MIN)


@triton.jit
def exp_f32(x):
    """exp of fp32 x by bispec.common.EXP_RULE, the same instructions as the Pallas twin."""
    t = mul_f32(x, _LOG2E)
    if _INTERPRET:  # NumPy's exp2, rounded correctly: within EXP_RULE's bound, not the SFU's bits
        y = tl.exp2(t)
        return tl.where(y < _FLT_MIN, 0.0, y)
    else:
        return tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=f,f", [t], dtype=tl.float32, is_pure=True,
                                         pack=1)


@triton.jit
def reciprocal_f32(s):
    """1/s of fp32 s, correctly rounded: PTX rcp.rn.f32, the instruction the Pallas twin writes.

    Not `1.0 / s`: Triton lowers fp32 division to an approximate instruction, and
    the two compilers' fp64 divisions were seen to round some quotients apart.
    """
    if _INTERPRET:
        return 1.0 / s  # NumPy's fp32 division is IEEE, correctly rounded
    else:
        return tl.inline_asm_elementwise("rcp.rn.f32 $0, $1;", "=f,f", [s], dtype=tl.float32, is_pure=True, pack=1)


@triton.jit
def max_exp(x):
    """(m, e) of a 1-D fp32 block: m = max(x), e = exp(x - m).

    A block of -inf only (fully masked, or padding) gives (-inf, 0), never NaN.
    """
    m = tl.max(x, axis=0)
    return m, exp_f32(x - tl.where(m == float("-inf"), 0.0, m))


@triton.jit
def exp_shift(a, m):
    """exp(a - m) for a <= m, exactly 1 where a == m (also for -inf == -inf)."""
    return exp_f32(tl.where(a == m, 0.0, a - m))


@triton.jit
def combine_chunks(m_c, s_c):
    """(M, S) of a row from its chunks' (max, sum of exp(x - max)) blocks, as bispec.softmax specifies.

    Padding lanes hold (-inf, 0). The sum is the tree of VEC = WARPS = 1 (halving, top bit first).
    """
    m = tl.max(m_c, axis=0)
    return m, tree_sum(mul_f32(s_c, exp_shift(m_c, m)), 1, 1, True)

"""What every op's spec shares: dtypes, tolerances, shapes, argument checks."""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np

# The starting figure's token sweep (x axis of every benchmark).
TOKEN_SWEEP = (1, 8, 32, 128, 256, 512, 1024, 2048, 4096)
# Row counts that catch off-by-one tiling: one row, a few, a prime.
ODD_TOKENS = (1, 3, 199)

FLOAT_DTYPES = ("float32", "bfloat16", "float16")
NUMPY_DTYPES = {
    "float32": np.dtype(np.float32),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float16": np.dtype(np.float16),
}
# Unit roundoff of each dtype: the tolerances are counted in these.
EPS = {name: float(ml_dtypes.finfo(dt).eps) for name, dt in NUMPY_DTYPES.items()}


# How a kernel sums a block of terms held in registers.
SUM_RULE = """A block of n = 2**k terms (padding lanes hold 0) is summed by one fixed
pairwise tree: each step adds the pairs of terms whose indices differ in one
bit, each add rounded once in the terms' dtype (fp32, or fp64 for the reduce
op's lane accumulators), and drops that bit. The bits go in this order
(tree_levels): the repeat bits above one layout cover of VEC * 32 * WARPS
terms, top bit first; the VEC bits of a thread's vector, bit 0 first; the 32
lanes, top bit first; the warps, top bit first. VEC and WARPS are the kernel's
own constants (vector_width, the op's warps), so on the GPU the first two
groups are adds inside one thread and the last two a butterfly over lanes, then
warps, which is how Triton reduces one term a thread: the kernels write the
in-thread steps as reshapes into pairs (a sum over an axis of 2 is one add,
which any compiler must do the same way) and leave the rest to the compiler's
own reduction, which test_sum_tree checks against this order on every GPU run
(the interpreters take every step explicitly). So the order is the spec's, not
a compiler's, and it depends on n, the dtype and the op's constants alone.
A product that feeds the tree is an explicit mul.rn.f32 (mul_f32), which no
compiler contracts into an FMA with the add after it."""


def vector_width(n: int, itemsize: int) -> int:
    """Elements of one 16-byte load of a packed row of n elements: a power of 2 dividing n."""
    vec = 16 // itemsize
    while n % vec:
        vec //= 2
    return vec


def tree_levels(n: int, vec: int, warps: int) -> tuple[int, int, int, int]:
    """(repeat, vector, lane, warp) bit counts of SUM_RULE's tree over n = 2**k terms."""
    k = n.bit_length() - 1
    v = min(vec.bit_length() - 1, k)
    lanes = min(5, k - v)
    w = min(warps.bit_length() - 1, k - v - lanes)
    return k - v - lanes - w, v, lanes, w


def pair_shape(n: int, levels: tuple[int, int, int, int], step: int) -> tuple[int, int, int]:
    """Step `step` of the tree over n terms (levels from tree_levels) as a reshape of what is left of the block
    to (outer, 2, inner): the step adds the two halves of the middle axis, the terms whose indices differ in
    one bit (the top one for repeats and warps, from the top down over the lanes, bit 0 for the vector)."""
    reps, v, lanes, w = levels
    if reps <= step < reps + v:
        bit = 0
    elif reps + v <= step < reps + v + lanes:
        bit = reps + v + lanes - 1 - step
    else:
        bit = reps + v + lanes + w - 1 - step
    return n >> (step + 1 + bit), 2, 1 << bit


def tree_sum(x: np.ndarray, vec: int, warps: int) -> np.ndarray:
    """SUM_RULE's sum over the last axis (a power of 2 long), in x's dtype: the bits every kernel must give."""
    n, lead = x.shape[-1], x.shape[:-1]
    levels = tree_levels(n, vec, warps)
    for step in range(sum(levels)):
        pairs = x.reshape(*lead, *pair_shape(n, levels, step))
        x = (pairs[..., 0, :] + pairs[..., 1, :]).reshape(*lead, n >> (step + 1))
    return x[..., 0]


def tree_ptx(per_thread: int, vec: int, warps: int) -> str:
    """PTX of SUM_RULE's tree over a thread's `per_thread` fp32 operands ($per_thread...), then its lanes and its warps
    (through the static array tws), every output ($0...) the total: one inline-asm call over a block laid out as a
    16-byte load of vec elements lays it (Triton's register order for pack: a vector's elements, then its repeats).
    Both frameworks' tree_total write it; tree_ptx_fits says which blocks it serves."""
    regs = iter(f"%ta{i}" for i in range(1 << 16))
    body = []

    def adds(terms, pairs):
        out = [next(regs) for _ in pairs]
        body.extend(f"add.f32 {o}, {terms[a]}, {terms[b]};" for o, (a, b) in zip(out, pairs))
        return out

    def top_bit_first(terms, down_to: int):
        while len(terms) > down_to:
            terms = adds(terms, [(i, i + len(terms) // 2) for i in range(len(terms) // 2)])
        return terms

    terms = top_bit_first([f"${per_thread + i}" for i in range(per_thread)], vec)  # repeats: whole vectors apart
    while len(terms) > 1:  # the vector, bit 0 first
        terms = adds(terms, [(2 * i, 2 * i + 1) for i in range(len(terms) // 2)])
    acc = terms[0]
    for lane_bit in (16, 8, 4, 2, 1):
        other, acc_next = next(regs), next(regs)
        body += [f"shfl.sync.bfly.b32 {other}, {acc}, {lane_bit}, 0x1f, 0xffffffff;",
                 f"add.f32 {acc_next}, {acc}, {other};"]
        acc = acc_next
    body += ["mov.u32 %tw, %tid.x;", "and.b32 %tl, %tw, 31;", "shr.u32 %tw, %tw, 5;", "setp.eq.u32 %tp, %tl, 0;",
             "mov.u32 %tad, tws;", "mad.lo.u32 %tad, %tw, 4, %tad;", f"@%tp st.shared.f32 [%tad], {acc};", "bar.sync 0;"]
    warp_sums = [next(regs) for _ in range(warps)]
    body += [f"ld.shared.f32 {r}, [tws+{4 * w}];" for w, r in enumerate(warp_sums)]
    total = top_bit_first(warp_sums, 1)[0]
    body += [f"mov.f32 ${i}, {total};" for i in range(per_thread)]
    body.append("bar.sync 0;")  # every warp has read tws before any writes it again (a loop)
    head = ["{", f".reg .f32 %ta<{int(next(regs)[3:])}>;", ".reg .u32 %tw, %tl, %tad;", ".reg .pred %tp;",
            f".shared .align 16 .f32 tws[{warps}];"]
    return "\n".join(head + body + ["}"])


def tree_ptx_constraints(per_thread: int) -> str:
    """The inline-asm constraints of tree_ptx: per_thread fp32 outputs, then as many inputs."""
    return ",".join(["=f"] * per_thread + ["f"] * per_thread)


def tree_ptx_fits(n: int, vec: int, warps: int) -> bool:
    """Whether tree_ptx serves a block of n terms over `warps` warps: more than one warp, one term a thread or more."""
    return warps > 1 and n >= vec * 32 * warps


# exp of fp32 values, written out in both frameworks (libdevice's __nv_expf is
# linked with flush-to-zero in one framework's compiler and not in the other's).
EXP_RULE = """exp(x) of fp32 x as two explicit instructions, so both frameworks execute the same ones
(the pair CUDA's __expf and Triton's tl.exp lower to):
  t = x * LOG2E                     rounded to fp32 (mul.rn.f32)
  y = 2**t                          the SFU's approximation, a result below 2**-126 flushed to 0
                                    (ex2.approx.ftz.f32)
NaN gives NaN, -inf gives 0, x above ~88.72 gives +inf. Error: ex2's own 2 ulps plus
t's rounding, which grows with |x|: within 2 + 1.173 |x| ulps (CUDA's bound for
__expf), so within 3 ulps where softmax's outputs are near 1 and up to ~100 where
they are below 1e-37 (tested against float64). Few instructions on purpose: an
H100 issues one warp instruction (32 elements) in the time its memory moves ~3
bytes, softmax moves 4 bytes an element, and a polynomial exp of ~12 FMAs was
~40 % of its instructions (with it softmax took 10 %, log_softmax 15 % longer on
an H200).
The interpreters take a correctly rounded exp2 of the same t: within the bound, not
the SFU's bits."""
LOG2E = float(np.float32(1.4426950408889634))
EXP_ULPS = (2.0, 1.173)               # the error bound above: EXP_ULPS[0] + EXP_ULPS[1] * |x| ulps
FLT_MIN = 2.0**-126


def dtype_name(dtype) -> str:
    """'bfloat16' for torch.bfloat16, jnp.bfloat16, np.dtype(bfloat16) alike."""
    name = str(dtype)
    name = name.removeprefix("torch.")
    return np.dtype(dtype).name if name.startswith("<class") else name


def tolerance(dtype, ulps: float = 2.0) -> tuple[float, float]:
    """(rtol, atol) for comparing an output of `dtype` with a float64 reference.

    The output is rounded once to `dtype` (half an ulp) and its fp32 arithmetic
    adds far less than that for bf16/fp16; fp32 outputs carry the fp32
    accumulation error, bounded here by 16 ulps of fp32.
    """
    name = dtype_name(dtype)
    tol = ulps * EPS[name] if name != "float32" else 16 * EPS[name]
    return tol, tol


def next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(n))) if n > 1 else 1


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def check_float_dtype(arg: str, dtype) -> str:
    name = dtype_name(dtype)
    if name not in FLOAT_DTYPES:
        raise TypeError(f"{arg}: dtype {name} is not supported; expected one of {FLOAT_DTYPES}")
    return name


def shape_dtype(t) -> tuple:
    """(shape, dtype) of an optional array or tensor: (None, None) for None, as the check_args functions take them."""
    return (None, None) if t is None else (t.shape, t.dtype)


def check_rows(arg: str, shape, dtype, max_len: int) -> tuple[int, str]:
    """An input of shape (..., n) normalized along its last dim: return (n, dtype name)."""
    if len(shape) < 1:
        raise ValueError(f"{arg}: must have at least one dimension (..., hidden)")
    n = int(shape[-1])
    if n == 0:
        raise ValueError(f"{arg}: hidden size (last dimension) is 0")
    if n > max_len:
        raise ValueError(f"{arg}: hidden size {n} exceeds the supported maximum {max_len}")
    return n, check_float_dtype(arg, dtype)


def check_same_dtype(arg: str, dtype, expected: str) -> None:
    name = dtype_name(dtype)
    if name != expected:
        raise TypeError(f"{arg}: dtype {name} does not match x's dtype {expected}")


def check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps: must be a finite Python float >= 0, got {eps!r}")
    return float(eps)


def inv_f32(n: int) -> float:
    """1/n rounded to fp32 (a Python float holding an fp32 value): the factor a mean multiplies by.

    Kernels multiply by it rather than divide: Triton lowers fp32 division to an
    approximate instruction. n = 0 gives inf (so a mean over nothing is NaN).
    """
    return float(np.float32(1.0 / n)) if n else math.inf


def round_to(a: np.ndarray, dtype) -> np.ndarray:
    """Round a float64 array to `dtype` (round to nearest even), as the kernels do."""
    return np.asarray(a).astype(NUMPY_DTYPES[dtype_name(dtype)])

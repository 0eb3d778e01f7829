"""Triton device functions shared by bitorch kernels."""
import triton
import triton.language as tl

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


@triton.jit
def sum_of_squares(s):
    """fp32 sum(s*s) of a 1-D fp32 block, accumulated in fp64 (see bispec.common.SUM_RULE)."""
    s64 = s.to(tl.float64)
    return tl.sum(s64 * s64, axis=0).to(tl.float32)

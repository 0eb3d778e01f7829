"""Triton device functions shared by bitorch kernels.

Each has a twin of the same name in bijax/_kernel_helpers.py; the pair is what
lets the two frameworks agree to the bit on the GPU.
"""
import triton
import triton.language as tl
from triton.language.extra import libdevice

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
def sum_fp64(x, axis: tl.constexpr = 0):
    """fp64 sum of fp32 terms along `axis` (bispec.common.SUM_RULE), rounded to fp32."""
    return tl.sum(x.to(tl.float64), axis=axis).to(tl.float32)


@triton.jit
def sum_of_squares(s):
    """fp32 sum(s*s) of a 1-D fp32 block, accumulated in fp64 (bispec.common.SUM_RULE)."""
    s64 = s.to(tl.float64)
    return tl.sum(s64 * s64, axis=0).to(tl.float32)


@triton.jit
def exp_f32(x):
    """exp through libdevice's __nv_expf, the function Pallas lowers jnp.exp to."""
    if _INTERPRET:
        return tl.exp(x)
    else:
        return libdevice.exp(x)


@triton.jit
def log_f32(x):
    """log through libdevice's __nv_logf, the function Pallas lowers jnp.log to."""
    if _INTERPRET:
        return tl.log(x)
    else:
        return libdevice.log(x)

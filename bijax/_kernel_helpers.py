"""Pallas device functions shared by bijax kernels.

Each has a twin of the same name in bitorch/_triton_helpers.py; the pair is what
lets the two frameworks agree to the bit on the GPU. fp64 inside a kernel needs
x64 on while the kernel is traced; it is switched on for those lines alone.
"""
import jax
import jax.numpy as jnp


def sum_fp64(x: jax.Array, axis: int = 0) -> jax.Array:
    """fp64 sum of fp32 terms along `axis` (bispec.common.SUM_RULE), rounded to fp32."""
    with jax.enable_x64(True):
        return jnp.sum(x.astype(jnp.float64), axis=axis).astype(jnp.float32)


def sum_of_squares(s: jax.Array) -> jax.Array:
    """fp32 sum(s*s) of a 1-D fp32 block, accumulated in fp64 (bispec.common.SUM_RULE)."""
    with jax.enable_x64(True):
        s64 = s.astype(jnp.float64)
        return jnp.sum(s64 * s64).astype(jnp.float32)


def exp_f32(x: jax.Array) -> jax.Array:
    """exp; Pallas lowers it to libdevice's __nv_expf, as the Triton twin calls it."""
    return jnp.exp(x)


def log_f32(x: jax.Array) -> jax.Array:
    """log; Pallas lowers it to libdevice's __nv_logf, as the Triton twin calls it."""
    return jnp.log(x)

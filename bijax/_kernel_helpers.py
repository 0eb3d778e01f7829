"""Pallas device functions shared by bijax kernels."""
import jax
import jax.numpy as jnp


def sum_of_squares(s: jax.Array) -> jax.Array:
    """fp32 sum(s*s) of a 1-D fp32 block, accumulated in fp64 (see bispec.common.SUM_RULE)."""
    with jax.enable_x64(True):
        s64 = s.astype(jnp.float64)
        return jnp.sum(s64 * s64).astype(jnp.float32)

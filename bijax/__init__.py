"""Batch-invariant ops for JAX: Pallas kernels (Triton lowering), jit- and vmap-able."""
from bijax._launch import INTERPRET
from bijax.rms_norm import rms_norm

__all__ = ["INTERPRET", "rms_norm"]

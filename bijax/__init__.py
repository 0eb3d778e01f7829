"""Batch-invariant ops for JAX: Pallas kernels (Triton lowering), jit- and vmap-able."""
from bijax._launch import INTERPRET
from bijax.layer_norm import layer_norm
from bijax.matmul import bmm, linear, matmul
from bijax.reduce import mean, sum  # noqa: A004
from bijax.rms_norm import rms_norm
from bijax.softmax import log_softmax, softmax

__all__ = ["INTERPRET", "layer_norm", "bmm", "linear", "matmul", "mean", "sum", "rms_norm", "log_softmax", "softmax"]

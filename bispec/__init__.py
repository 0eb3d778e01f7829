"""The shared spec of every batch-invariant op: one module per op.

Each op module holds its signature and argument checks, its dtype and
accumulation rules, a NumPy float64 reference, the tolerance rule and the
tiling constants that fix the reduction order. ``bitorch`` and ``bijax`` import
their constants from here, so the reduction order is written once.
"""
from bispec import common, layer_norm, matmul, reduce, rms_norm, softmax

__all__ = ["common", "layer_norm", "matmul", "reduce", "rms_norm", "softmax"]

"""Batch-invariant ops for PyTorch: Triton kernels exposed as torch.library custom ops."""
from bitorch import _launch
from bitorch._launch import INTERPRET, launches
from bitorch.layer_norm import layer_norm
from bitorch.matmul import bmm, linear, matmul
from bitorch.mode import batch_invariant_mode, is_batch_invariant_mode, set_batch_invariant_mode
from bitorch.reduce import mean, sum  # noqa: A004
from bitorch.rms_norm import rms_norm
from bitorch.softmax import log_softmax, softmax

__all__ = ["INTERPRET", "launches", "layer_norm", "bmm", "linear", "matmul", "mean", "sum", "rms_norm",
           "log_softmax", "softmax", "batch_invariant_mode", "is_batch_invariant_mode", "set_batch_invariant_mode",
           "_launch"]

"""Batch-invariant ops for PyTorch: Triton kernels exposed as torch.library custom ops."""
from bitorch import _launch
from bitorch._launch import INTERPRET, launches
from bitorch.rms_norm import rms_norm

__all__ = ["INTERPRET", "launches", "rms_norm", "_launch"]

"""Batch-invariant mode: torch's own ops routed to bitorch's kernels, so unchanged model code is batch-invariant.

Inside `with bitorch.batch_invariant_mode():` (or between set_batch_invariant_mode(True) and (False)) aten's
mm, addmm, bmm, _softmax, _log_softmax, mean.dim and sum.dim_IntList run bitorch's ops on the device bitorch
launches on (CUDA, or the CPU through Triton's interpreter): F.linear, torch.matmul, torch.softmax,
F.log_softmax, x.mean(-1) and the like reach them through those. A call the kernels cannot take (alpha or
beta other than 1, an addmm input that is not a bias of N elements, an integer dtype, ...) raises an error
naming the argument; it never falls back to the native, non-invariant kernel.
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from bitorch import _launch
from bitorch.matmul import bmm, matmul
from bitorch.reduce import mean, sum  # noqa: A004
from bitorch.softmax import log_softmax, softmax

_library: torch.library.Library | None = None


def _addmm(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *, beta=1, alpha=1) -> torch.Tensor:
    """addmm(input, mat1, mat2) as linear layers call it: input a bias of N elements, beta = alpha = 1."""
    for name, value in (("beta", beta), ("alpha", alpha)):
        if value != 1:
            raise ValueError(f"{name}: batch-invariant addmm takes {name}=1 only, got {value}")
    if bias.dim() != 1:
        raise ValueError(f"input: batch-invariant addmm takes a bias of N elements (1-D), got shape "
                         f"{tuple(bias.shape)}")
    return matmul(a, b, bias)


_IMPLS = {
    "mm": matmul,
    "addmm": _addmm,
    "bmm": bmm,
    "_softmax": softmax,
    "_log_softmax": log_softmax,
    "mean.dim": lambda x, dim, keepdim=False, dtype=None: mean(x, dim, keepdim, dtype),
    "sum.dim_IntList": lambda x, dim, keepdim=False, dtype=None: sum(x, dim, keepdim, dtype),
}


def set_batch_invariant_mode(enabled: bool = True) -> None:
    """Route the aten ops above to bitorch (enabled) or back to torch's own kernels."""
    global _library
    if enabled and _library is None:
        library = torch.library.Library("aten", "IMPL")
        key = "CPU" if _launch.INTERPRET else "CUDA"
        with warnings.catch_warnings():  # torch warns that it overrides its own kernels: that is the point
            warnings.simplefilter("ignore", UserWarning)
            for op, fn in _IMPLS.items():
                library.impl(op, fn, key)
        _library = library
    elif not enabled and _library is not None:
        _library._destroy()  # what dropping the Library does (its finalizer), done now
        _library = None


def is_batch_invariant_mode() -> bool:
    return _library is not None


@contextlib.contextmanager
def batch_invariant_mode():
    """Batch-invariant mode for the `with` block; the mode as it was afterwards."""
    was = is_batch_invariant_mode()
    set_batch_invariant_mode(True)
    try:
        yield
    finally:
        set_batch_invariant_mode(was)

"""Where bitorch kernels run, and a record of which kernel ran.

With a CUDA device, kernels run natively on CUDA tensors. Without one, Triton's
interpreter runs the same kernels on CPU tensors (TRITON_INTERPRET=1 is set
before any kernel is defined). A tensor on the other kind of device is an
error, never a silent fallback.
"""
from __future__ import annotations

import collections
import os

import torch

INTERPRET = not torch.cuda.is_available()
if INTERPRET:
    os.environ["TRITON_INTERPRET"] = "1"

import triton  # noqa: E402  (after TRITON_INTERPRET is settled)

DEVICE = "cpu" if INTERPRET else "cuda"
# Kernel name -> number of launches; tests read it to prove which kernel ran.
launches: collections.Counter = collections.Counter()


def check_device(arg: str, t: torch.Tensor) -> None:
    if t.device.type != DEVICE:
        where = "the Triton interpreter (no GPU here)" if INTERPRET else "CUDA"
        raise ValueError(f"{arg}: tensor is on {t.device}, but bitorch runs on {where}; move it to '{DEVICE}'")


def check_unit_stride(arg: str, t: torch.Tensor) -> None:
    if t.dim() and t.stride(-1) != 1 and t.shape[-1] > 1 and t.numel():
        raise ValueError(f"{arg}: last dimension must have stride 1 (got strides {tuple(t.stride())}); call .contiguous()")


def check_tensors(*, unit_stride: bool = False, **tensors: torch.Tensor | None) -> None:
    """check_device (and with unit_stride, check_unit_stride) for each named tensor that is given."""
    for arg, t in tensors.items():
        if t is not None:
            check_device(arg, t)
            if unit_stride:
                check_unit_stride(arg, t)


def multiprocessors(t: torch.Tensor) -> int:
    """SMs of t's GPU; 0 under the interpreter, which runs programs one after another."""
    return 0 if INTERPRET else torch.cuda.get_device_properties(t.device).multi_processor_count


def gpu_name(t: torch.Tensor) -> str:
    """The name of t's GPU ("NVIDIA H100 80GB HBM3"); empty under the interpreter."""
    return "" if INTERPRET else torch.cuda.get_device_name(t.device)


def packed_rows(t: torch.Tensor) -> torch.Tensor:
    """t as packed (rows, last dim), starting on a 16-byte boundary.

    Triton specializes a kernel on its pointers' alignment and picks the
    register layout, and so the order of a reduction, from that. Handing every
    kernel packed, aligned rows keeps the order a function of the shape alone;
    any other layout is copied first (same values, same bits out).
    """
    t2 = t.reshape(-1, t.shape[-1]) if t.dim() else t
    if not t2.is_contiguous() or t2.data_ptr() % 16:
        t2 = t2.clone(memory_format=torch.contiguous_format)
    return t2


def x_load_hints(past_l1: bool, eviction: str) -> dict:
    """A kernel's X_CACHE and X_EVICT constants: x read past L1 (ld.global.cg, which takes no eviction hint) or
    through L1 with `eviction` (bijax's twin: _kernel_helpers.stream_load)."""
    return dict(X_CACHE=".cg", X_EVICT="") if past_l1 else dict(X_CACHE="", X_EVICT=eviction)


def launch(kernel: triton.JITFunction, grid: tuple[int, ...], *args, **meta) -> None:
    """kernel[grid](*args, **meta), counted; a kernel's WARPS constant (its sums' layout) is also its num_warps."""
    if "WARPS" in meta:
        meta["num_warps"] = meta["WARPS"]
    launches[kernel.fn.__name__ if hasattr(kernel, "fn") else kernel.__name__] += 1
    kernel[grid](*args, **meta)

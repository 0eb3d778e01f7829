"""Device time of a callable, measured the same way for PyTorch and JAX.

On the GPU every line is timed by CUPTI's record of the kernels (and copies) it
ran, read through torch.profiler: the profiler sees every kernel in the process,
JAX's too, so both frameworks are measured by one clock. A line's time per call
is, over its kernel names, median duration x launches per call; launch gaps and
host dispatch are not counted. Calls rotate over input sets that together
exceed the L2, so large shapes start cold.

Without a GPU the interpreters run and host wall-clock time is reported, marked
as not GPU time.
"""
from __future__ import annotations

import collections
import statistics
import time
from typing import Callable, Sequence

import torch

ON_GPU = torch.cuda.is_available()
L2_BYTES = torch.cuda.get_device_properties(0).L2_cache_size if ON_GPU else 0


def input_sets_for(bytes_per_call: int, most: int = 32) -> int:
    """Enough distinct input sets that one pass over them is twice the L2."""
    return max(2, min(most, -(-2 * L2_BYTES // max(1, bytes_per_call))))


def device_ms(calls: Sequence[Callable[[], object]], sync: Callable[[object], None], reps: int = 30,
              warmup: int = 3) -> float:
    """Median device time of one call (ms); `calls` are the same op on different input sets.

    `sync(result)` waits for the device to finish the call that returned `result`.
    """
    if not ON_GPU:
        return _host_ms(calls, sync, reps=3)
    for _ in range(warmup):
        for call in calls:
            result = call()
    sync(result)
    n = max(reps, len(calls))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for i in range(n):
            result = calls[i % len(calls)]()
        sync(result)
    durations = collections.defaultdict(list)
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA and event.device_time > 0:
            durations[event.name].append(event.device_time)
    if not durations:
        raise RuntimeError("the profiler recorded no device activity")
    return sum(statistics.median(d) * len(d) / n for d in durations.values()) / 1e3


def line_ms(name: str, calls, sync, reps: int) -> float | None:
    """device_ms for one line of a table; a line that fails is reported and left empty."""
    try:
        return device_ms(calls, sync, reps)
    except Exception as e:  # noqa: BLE001  (one broken baseline must not hide the others)
        print(f"line {name}: FAILED: {type(e).__name__}: {e}")
        return None


def _host_ms(calls, sync, reps: int) -> float:
    times = []
    for i in range(reps + 1):
        start = time.perf_counter()
        sync(calls[i % len(calls)]())
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1e3


def copy_bandwidth_gbs() -> float:
    """Device-to-device copy bandwidth (GB/s, bytes read + written), same clock as the ops."""
    n = (1 << 30) if ON_GPU else (1 << 22)
    device = "cuda" if ON_GPU else "cpu"
    src = [torch.empty(n, dtype=torch.uint8, device=device).random_() for _ in range(2)]
    dst = [torch.empty_like(s) for s in src]
    ms = device_ms([lambda i=i: dst[i].copy_(src[i]) for i in range(2)], torch_sync, reps=20)
    return 2 * n / ms / 1e6


def torch_sync(_result=None) -> None:
    if ON_GPU:
        torch.cuda.synchronize()


def jax_sync(result) -> None:
    import jax

    jax.block_until_ready(result)

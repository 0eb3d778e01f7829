"""Device time of a callable, measured the same way for PyTorch and JAX.

On the GPU every line runs as one back-to-back sequence of calls with no host
work between them: a CUDA graph for PyTorch, one jitted function holding every
call for JAX (which XLA runs as a command buffer). Each call takes its own
input set, and the sets together exceed the L2, so large shapes start cold.
The kernels are timed by CUPTI through torch.profiler, which records every
kernel in the process, JAX's too: one clock for both frameworks.
With ISOLATED (python -m bench --isolated) every call runs alone instead: its
own CUDA graph or jit call, then a sync, so each kernel starts on an idle GPU
in both frameworks. Back to back, XLA starts a call's kernel while the one
before still runs (median gap -32 to -64 ns between the independent calls of
one jit, where a CUDA graph's run one after another, +0.26 to +0.48 us apart;
bench/results/h100_2026-12-07f/cadence.log), a head start that no chain of
dependent ops in a model would give. Timed alone, the ratios stayed within a
round's spread of the back-to-back ones (bench/results/h100_2026-12-07f/iso_9b88dd3). A line's time
per call is, over its kernel names, the mean duration x launches per call
(samples_ms says why the mean, and which samples it drops).

Without a GPU the interpreters run and host wall-clock time is reported,
marked as not GPU time.
"""
from __future__ import annotations

import collections
import statistics
import time
from typing import Callable, Sequence

import torch

ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"  # where the bench puts its tensors
L2_BYTES = torch.cuda.get_device_properties(0).L2_cache_size if ON_GPU else 0
ISOLATED = False  # each call alone, then a sync (module docstring)


# Calls timed per line. 300, not 50: H100 rmsnorm at 256 tokens, --rounds 3, bitorch took 7.14-7.28 us a call
# timed over 50 calls (9 graph replays of 6 input sets) and 6.98-7.10 over 300, while torch.compile and bijax
# moved by 0.03 us at most (bench/results/h100_2026-12-06d/reps_256_9ff9f69).
REPS = 300


def input_sets_for(bytes_per_call: int, most: int = 32) -> int:
    """Enough distinct input sets that one pass over them is twice the L2."""
    return max(2, min(most, -(-2 * L2_BYTES // max(1, bytes_per_call))))


def torch_runner(calls: Sequence[Callable[[], object]]) -> Callable[[], object]:
    """All calls captured in one CUDA graph (after a warm-up on a side stream); returns its replay (ISOLATED: a graph
    a call, each replay followed by a sync)."""
    if not ON_GPU:
        return lambda: [call() for call in calls]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for call in calls:
            call()
    torch.cuda.current_stream().wait_stream(stream)
    if ISOLATED:
        graphs = [_capture(call) for call in calls]
        return lambda: [(graph.replay(), torch.cuda.synchronize()) for graph in graphs]
    return _capture(lambda: [call() for call in calls]).replay


def _capture(make: Callable[[], object]) -> "torch.cuda.CUDAGraph":
    """make() captured in a CUDA graph that keeps its outputs' memory alive."""
    graph = torch.cuda.CUDAGraph()
    # thread_local: JAX's runtime threads (freeing the last token count's buffers, some of them torch's
    # through DLPack) may make calls that a "global" capture forbids to every thread, voiding it: the
    # likely cause of the H100 rmsnorm run with --reps 300 --rounds 3 (0e28947) failing with "operation
    # failed due to a previous error during capture", JAX's stream errored from then on. Not yet rerun.
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        graph.outputs = make()  # keeps the graph's output memory alive with it
    return graph


def jax_runner(fn: Callable, sets: Sequence[tuple]) -> Callable[[], object]:
    """All calls in one jitted function: XLA runs them back to back (ISOLATED: one call, then a sync, at a time)."""
    import jax

    if ISOLATED:
        one = jax.jit(fn)
        return lambda: [jax.block_until_ready(one(*s)) for s in sets]
    batch = jax.jit(lambda sets: [fn(*s) for s in sets])
    return lambda: batch(list(sets))


# CUPTI gives a kernel's duration in steps of 32 ns (H100), so the median of a kernel's samples is a step (or halfway):
# two kernels a few ns apart, or one kernel whose durations straddle a step, read a whole step (1 % at 3 us) apart,
# and which token count shows the step moved from run to run (the mean's misses on the 2026-12-07 cards). The mean
# of the samples is not tied to the steps. A sample beyond OUTLIER times its kernel's median (a stall from outside
# the sequence) is dropped first.
OUTLIER = 1.5


def samples_ms(durations_us: Sequence[float]) -> dict[str, float]:
    """{"mean", "median"} of one kernel's durations (us) in ms; the mean over the samples within OUTLIER of the median."""
    median = statistics.median(durations_us)
    kept = [d for d in durations_us if median / OUTLIER <= d <= median * OUTLIER]
    return {"mean": statistics.fmean(kept) / 1e3, "median": median / 1e3}


def runner_times(runner: Callable[[], object], calls_per_run: int, sync: Callable[[object], None],
                 reps: int = REPS, warmup: int = 2) -> dict[str, float]:
    """Device time of one call (ms) from `runner`, which makes `calls_per_run` calls, as {"mean", "median"}: the
    sum over its kernels of samples_ms x launches per call. Off the GPU, both the host's wall time."""
    for _ in range(warmup):
        result = runner()
    sync(result)
    if not ON_GPU:
        start = time.perf_counter()
        sync(runner())
        ms = (time.perf_counter() - start) * 1e3 / calls_per_run
        return {"mean": ms, "median": ms}
    runs = max(1, -(-reps // calls_per_run))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(runs):
            result = runner()
        sync(result)
    durations = collections.defaultdict(list)
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA and event.device_time > 0:
            durations[event.name].append(event.device_time)
    if not durations:
        raise RuntimeError("the profiler recorded no device activity")
    n = runs * calls_per_run
    per_kernel = [(samples_ms(d), len(d) / n) for d in durations.values()]
    return {stat: sum(t[stat] * share for t, share in per_kernel) for stat in ("mean", "median")}


def runner_ms(runner: Callable[[], object], calls_per_run: int, sync: Callable[[object], None],
              reps: int = REPS) -> float:
    """Device time of one call (ms) from `runner`: runner_times' mean."""
    return runner_times(runner, calls_per_run, sync, reps)["mean"]


def device_ms(calls: Sequence[Callable[[], object]], sync: Callable[[object], None], reps: int = REPS) -> float:
    """Device time of one call (ms) of torch `calls` (same op, different inputs), graph-replayed."""
    return runner_ms(torch_runner(calls), len(calls), sync, reps)


def line_times(name: str, runner: Callable[[], object], calls_per_run: int, sync, reps: int) -> dict | None:
    """runner_times for one line of a table; a line that fails is reported and left empty."""
    try:
        return runner_times(runner, calls_per_run, sync, reps)
    except Exception as e:  # noqa: BLE001  (one broken baseline must not hide the others)
        print(f"line {name}: FAILED: {type(e).__name__}: {e}")
        return None


def copy_bandwidth_gbs() -> float:
    """Device-to-device copy bandwidth (GB/s, bytes read + written), same clock as the ops."""
    n = (1 << 30) if ON_GPU else (1 << 22)
    src = [torch.empty(n, dtype=torch.uint8, device=DEVICE).random_() for _ in range(2)]
    dst = [torch.empty_like(s) for s in src]
    # Launched from the host, not a graph: a graph's memcpy node runs on a copy engine, slower than the SMs.
    copies = [lambda i=i: dst[i].copy_(src[i]) for i in range(2)]
    ms = runner_ms(lambda: [copy() for copy in copies], len(copies), torch_sync, reps=20)
    return 2 * n / ms / 1e6


def torch_sync(_result=None) -> None:
    if ON_GPU:
        torch.cuda.synchronize()


def jax_sync(result) -> None:
    import jax

    jax.block_until_ready(result)

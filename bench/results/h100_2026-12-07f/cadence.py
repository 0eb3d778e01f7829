"""Do the frameworks feed the GPU at the same cadence? For each line (mean at 256 / 4096 tokens, layer_norm at 8),
as bench.timing runs it: each kernel's mean duration and the mean idle gap from one kernel's end to the next one's
start, back to back (as the bench) and with a sync after every run (each run then starts on an idle GPU, in both
frameworks alike). Medians of 5 rounds.   python cadence.py"""
import collections
import statistics

import jax
import torch

import bijax
import bitorch
from bench import layer_norm as bench_layer_norm, timing
from bench.tune import _norm_sets, _sets


def profile(runner, calls, sync, synced):
    """(device time a call as the bench counts it, mean and median idle gap between kernels) in us."""
    go = (lambda: sync(runner())) if synced else runner
    for _ in range(2):
        sync(runner())
    runs = -(-timing.REPS // calls)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(runs):
            result = go()
        sync(result)
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and e.device_time > 0]
    spans = sorted((e.time_range.start, e.time_range.end) for e in kernels)
    by_name = collections.defaultdict(list)
    for e in kernels:
        by_name[e.name].append(e.device_time)
    durations = sum(timing.samples_ms(d)["mean"] * 1e3 * len(d) / (runs * calls) for d in by_name.values())
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    return durations, statistics.fmean(gaps), statistics.median(gaps)


def torch_line(fn, sets):
    return timing.torch_runner([lambda s=s: fn(*s) for s in sets]), len(sets), timing.torch_sync


def jax_line(fn, jsets):
    return timing.jax_runner(jax.jit(fn), jsets), len(jsets), timing.jax_sync


compile_mean = torch.compile(lambda x: torch.mean(x, -1))
for m, op in ((256, "mean"), (4096, "mean"), (8, "layer_norm")):
    if op == "mean":
        sets, jsets = _sets(lambda: (torch.randn(m, 8192, dtype=torch.bfloat16, device="cuda"),), m * 8192 * 2)
        lines = {"torch.compile": lambda: torch_line(compile_mean, sets),
                 "bitorch": lambda: torch_line(lambda x: bitorch.mean(x, -1), sets),
                 "bijax": lambda: jax_line(lambda x: bijax.mean(x, -1), jsets)}
    else:
        sets, jsets = _norm_sets(m, 8192, 2)
        lines = {"xla": lambda: jax_line(lambda x, r, w, b: bench_layer_norm.jnp_style(x, w, b), jsets),
                 "bitorch": lambda: torch_line(lambda x, r, w, b: bitorch.layer_norm(x, w, b), sets),
                 "bijax": lambda: jax_line(lambda x, r, w, b: bijax.layer_norm(x, w, b), jsets)}
    stats = collections.defaultdict(list)
    for _ in range(5):
        for name, make in lines.items():
            runner, calls, sync = make()
            for synced in (False, True):
                stats[(name, synced)].append(profile(runner, calls, sync, synced))
    for (name, synced), rows in stats.items():
        dur, gap, gap_med = (statistics.median(col) for col in zip(*rows))
        print(f"cadence {op} tokens={m:5d} {name:14s} {'synced runs' if synced else 'back to back'}: "
              f"call {dur:8.3f} us  gap mean {gap:8.3f} us  median {gap_med:7.3f}", flush=True)

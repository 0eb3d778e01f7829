"""The token sweep every op's bench runs: lines timed alike, limit, ratios to the fastest peer, bits."""
from __future__ import annotations

import functools
import random
import statistics
from typing import Callable

import jax
import torch

from bench import timing

OURS = ("bitorch", "bijax")
PEERS = ("torch_compile", "torch_compile_dynamic", "xla")
# Legend labels every op's LINES shares: ours, torch.compile's second mode (compile_peers), and the
# copy-bandwidth limit (matmul has its own limit).
OUR_LINES = {"bitorch": "Batch-invariant (Triton): bitorch", "bijax": "Batch-invariant (Pallas): bijax"}
DYNAMIC_COMPILE_LINE = {"torch_compile_dynamic": "Non-batch-invariant: torch.compile, token dim dynamic"}
COPY_LIMIT_LINE = {"limit": "Limit: bytes / measured copy bandwidth"}
# Rounds of every line in turn (python -m bench --rounds sets it): see run().
ROUNDS = 1
# Seeds the order of the lines in each round (run()).
SEED = 0


def run(tokens_sweep, call_inputs: Callable[[int], tuple], nbytes: Callable[[int], int],
        torch_lines: dict[str, Callable], jax_lines: dict[str, Callable], reps: int,
        rounds: int | None = None, compile_peer: Callable | None = None) -> tuple[dict, list[dict]]:
    """Time every line at every token count.

    call_inputs(tokens) -> the torch tensors of one call, weights included. It is
    drawn once per input set (timing.input_sets_for), so no two calls share an
    input: XLA would otherwise fuse the back-to-back calls into one kernel through
    it. JAX lines get the same bytes through DLPack. A line's function returns its
    output (a tensor/array or a tuple of them).

    compile_peer, on a GPU, adds two torch.compile lines of it (compile_peers).

    With rounds > 1 the lines are timed round after round, each round in an order
    of its own (drawn from SEED), and each line keeps its median round: a card that
    heats (and slows) during the sweep, or the line timed just before, then weighs
    on no line more than on another. Each round of a line replays a runner of its
    own (a graph captured anew, with its own output memory; a new jit): where a
    line's memory lies moves its time by up to 2-3 % from one capture to the next,
    steadily within a capture (H100, rmsnorm 256 tokens, four captures of one line:
    6.78-6.94 us ours, 7.07-7.26 torch.compile; bench/results/h100_2026-12-06b/spread),
    so each round draws a placement. The JSON keeps every round's time (meta
    "rounds_ms"), and the median of the same samples (meta "rounds_median_ms", the statistic used until
    2026-12-07).
    """
    rounds = rounds or ROUNDS
    rng = random.Random(SEED)
    bandwidth = timing.copy_bandwidth_gbs()
    rows, each_round, each_round_median = [], {}, {}
    for tokens in tokens_sweep:
        size = nbytes(tokens)
        sets = [call_inputs(tokens) for _ in range(timing.input_sets_for(size))]
        jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
        row = {"tokens": tokens}
        runners = {}
        peers = compile_peers(compile_peer, sets[0]) if compile_peer is not None and timing.ON_GPU else {}
        for key, fn in {**torch_lines, **peers}.items():
            fn = fn() if key in peers else fn
            calls = [functools.partial(fn, *s) for s in sets]
            built = _guard(key, lambda calls=calls: [timing.torch_runner(calls) for _ in range(rounds)])
            if built:
                runners[key] = (built, timing.torch_sync)
            else:
                row[key] = None
        for key, fn in jax_lines.items():
            runners[key] = ([timing.jax_runner(fn, jsets) for _ in range(rounds)], timing.jax_sync)
        times = {key: [] for key in runners}
        for i in range(rounds):
            for key in rng.sample(list(runners), len(runners)):
                built, sync = runners[key]
                t = timing.line_times(key, built[i], len(sets), sync, reps)
                if t is not None:
                    times[key].append(t)
        for stat, store in (("mean", each_round), ("median", each_round_median)):
            store[tokens] = {key: [t[stat] for t in ts] for key, ts in times.items()}
        row.update({key: statistics.median_low(ts) if ts else None for key, ts in each_round[tokens].items()})
        row["limit"] = size / bandwidth / 1e6
        peer = min((row[k] for k in PEERS if row.get(k)), default=float("inf"))
        for key in OURS:
            if row.get(key):
                row[f"{key}_GBps"] = size / row[key] / 1e6
                row[f"{key}/peer"] = row[key] / peer
        ours_t = _as_tuple(torch_lines["bitorch"](*sets[0]))
        ours_j = _as_tuple(jax.block_until_ready(jax_lines["bijax"](*jsets[0])))
        row["bits_equal"] = all(torch.equal(a, torch.from_dlpack(b)) for a, b in zip(ours_t, ours_j))
        rows.append(row)
        del sets, jsets
    meta = {"copy_GBps": bandwidth,
            "timing": "CUPTI device time via torch.profiler, mean per kernel (bench.timing.samples_ms)"
            if timing.ON_GPU else "host wall clock, interpreters: NOT GPU times",
            # tokens -> line -> each round's time, in the order the rounds ran; the same samples' medians beside
            "rounds_ms": each_round, "rounds_median_ms": each_round_median, "seed": SEED}
    return meta, rows


def compile_peers(fn: Callable, first_inputs: tuple) -> dict[str, Callable[[], Callable]]:
    """torch.compile of fn two ways for one token count, each made (after a reset of dynamo's caches) when
    called, so that its line is compiled and captured before the next one resets: "torch_compile" for this
    shape alone (dynamic=False), and "torch_compile_dynamic" with the token dim of first_inputs (every input
    of 2 or more dims, from 2 tokens) marked dynamic, as a function compiled once over the sweep runs from
    its second token count on. The faster is the peer: the compiled kernels' times move from compile to
    compile (Inductor times a reduction's candidate configs on its first call and keeps one), and neither
    mode was the faster everywhere. H200 rmsnorm at 32 tokens, static / dynamic: 2.7 us (95fff4b, static
    only) and 4.4 / 2.7 (61a5376); one function over the sweep took 4.3 (fec8664).
    """
    def static():
        torch._dynamo.reset()
        return torch.compile(fn, dynamic=False)

    def dynamic():
        torch._dynamo.reset()
        for t in first_inputs:
            if t.dim() >= 2 and t.shape[0] > 1:  # dynamo specializes sizes 0 and 1 whatever the mark
                torch._dynamo.mark_dynamic(t, 0)
        return torch.compile(fn)

    return {"torch_compile": static, "torch_compile_dynamic": dynamic}


def _guard(name, make):
    try:
        return make()
    except Exception as e:  # noqa: BLE001  (a baseline that can't be captured is reported, not fatal)
        print(f"line {name}: FAILED to capture: {type(e).__name__}: {e}")
        return None


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)

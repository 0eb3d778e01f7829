"""Time candidate spec constants on the GPU: python -m bench.tune <what> (main() lists them).

Each candidate is applied by setting the spec's constants (both frameworks read
them at call time), then timed like the bench (CUDA graph / one jit, CUPTI).
The winner is written into bispec by hand. Constants that fix a reduction order
(softmax's CHUNK, matmul's BLOCK_K) may be tuned only before they are fixed.
"""
import collections
import dataclasses
import os
import statistics

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from absl import app, flags  # noqa: E402

import bijax  # noqa: E402
import bitorch  # noqa: E402
from bijax import _kernel_helpers as _helpers  # noqa: E402
from bench import layer_norm as bench_layer_norm, timing  # noqa: E402
from bispec import layer_norm as layer_norm_spec  # noqa: E402
from bispec import matmul as matmul_spec  # noqa: E402
from bispec import reduce as reduce_spec  # noqa: E402
from bispec import rms_norm as rms_spec  # noqa: E402
from bispec import softmax as softmax_spec  # noqa: E402

flags.DEFINE_list("tokens", ["1", "32", "256", "4096"], "token counts")
flags.DEFINE_list("tiles", [], "matmul: indices into TILES to time (default: all)")
flags.DEFINE_bool("jax", False, "matmul: time bijax too")


def _sets(make, nbytes):
    sets = [make() for _ in range(timing.input_sets_for(nbytes))]
    return sets, [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]


def _torch_ms(fn, sets) -> float:
    """fn over every torch input set, one CUDA graph: ms a call."""
    return timing.device_ms([lambda s=s: fn(*s) for s in sets], timing.torch_sync)


def _jax_ms(fn, jsets) -> float:
    """fn over every JAX input set, one jit: ms a call."""
    return timing.runner_ms(timing.jax_runner(fn, jsets), len(jsets), timing.jax_sync)


def _both(torch_fn, jax_fn, sets, jsets) -> str:
    return f"bitorch {_torch_ms(torch_fn, sets) * 1e3:8.2f} us  bijax {_jax_ms(jax_fn, jsets) * 1e3:8.2f} us"


def _norm_sets(m, hidden, vectors):
    """_sets of the norms' inputs (bf16): x and residual (m, hidden), then `vectors` of (hidden,): weight (, bias)."""
    def draw():
        return (*(torch.randn(m, hidden, dtype=torch.bfloat16, device="cuda") for _ in range(2)),
                *(torch.randn(hidden, dtype=torch.bfloat16, device="cuda") for _ in range(vectors)))
    return _sets(draw, 4 * m * hidden * 2)


# op -> (bitorch call, bijax call) on _norm_sets' inputs: x, residual, weight (, bias); the mean takes x alone
_CALLS = {"rmsnorm": (lambda x, r, w, *b: bitorch.rms_norm(x, w, residual=r),
                      lambda x, r, w, *b: bijax.rms_norm(x, w, residual=r)),
          "layer_norm": (lambda x, r, w, b: bitorch.layer_norm(x, w, b),
                         lambda x, r, w, b: bijax.layer_norm(x, w, b)),
          "mean": (lambda x, *rest: bitorch.mean(x, -1), lambda x, *rest: bijax.mean(x, -1))}


def _setter(module, **values):
    """A candidate for _rounds: a function that sets `values` as attributes of `module` (a spec)."""
    def apply():
        for name, value in values.items():
            setattr(module, name, value)
    return apply


def tune_rmsnorm(tokens, hidden=8192):
    for warps in (4, 8, 16, 32):
        rms_spec.num_warps = lambda h, warps=warps: warps
        jax.clear_caches()
        for m in tokens:
            sets, jsets = _norm_sets(m, hidden, 1)
            torch_fn, jax_fn = _CALLS["rmsnorm"]
            line = _both(torch_fn, jax.jit(jax_fn), sets, jsets)
            print(f"tune rmsnorm tokens={m:5d} num_warps={warps:2d}: {line}")


def tune_rmsnorm_weight(tokens, hidden=8192):
    """Where the weight load goes (bispec.rms_norm.WEIGHT_LATE_FROM_ROWS; no bit changes): rmsnorm and layer_norm."""
    for late_from in (256, 512, 1024, 2048, 1 << 30):
        rms_spec.WEIGHT_LATE_FROM_ROWS = late_from
        _norms(tokens, hidden, f"weight late from {late_from}")


def tune_split(tokens, hidden=8192):
    """Programs per row for few rows (bispec.rms_norm.split and layer_norm.split, each candidate set in both, and
    bitorch rms_norm's triton_split following it; no bit changes): rmsnorm and layer_norm."""
    rms_spec.TRITON_UNSPLIT_FROM_ROWS = 1 << 30
    for programs, most, min_slice in ((128, 16, 512), (256, 32, 256), (128, 32, 256), (256, 16, 512), (64, 16, 512),
                                      (128, 8, 512), (32, 16, 512), (1, 1, 1 << 30)):
        for spec in (rms_spec, layer_norm_spec):
            spec.SPLIT_PROGRAMS, spec.MAX_SPLIT = programs, most
        rms_spec.MIN_SLICE = min_slice
        _norms(tokens, hidden, f"split: {programs} programs, at most {most}, slices >= {min_slice}")


def _norms(tokens, hidden, what: str):
    """rmsnorm (with residual) and layer_norm (weight and bias), both frameworks, at each token count."""
    jax.clear_caches()
    for m in tokens:
        sets, jsets = _norm_sets(m, hidden, 2)  # x, residual, weight, bias
        for op in ("rmsnorm", "layer_norm"):
            torch_fn, jax_fn = _CALLS[op]
            print(f"tune {op} tokens={m:5d} {what}: {_both(torch_fn, jax.jit(jax_fn), sets, jsets)}")


def tune_pallas_weight(tokens, hidden=8192):
    """bijax rms_norm (with residual): where the weight load goes and from which row count x and the residual are
    read past L1 (bispec.rms_norm.pallas_weight_first, PALLAS_PAST_L1_FROM_ROWS; no bit changes)."""
    shipped = rms_spec.pallas_weight_first, rms_spec.PALLAS_PAST_L1_FROM_ROWS

    def use(rule, past_from):
        return _setter(rms_spec, pallas_weight_first=rule, PALLAS_PAST_L1_FROM_ROWS=past_from)

    candidates = {f"first, past L1 from {shipped[1]}": use(*shipped),
                  f"late, past L1 from {shipped[1]}": use(rms_spec.weight_first, shipped[1]),
                  "late, past L1 from 512": use(rms_spec.weight_first, 512)}
    for m in tokens:
        _bijax_rounds("pallas_weight", m, *_norm_sets(m, hidden, 1), _CALLS["rmsnorm"], candidates)
    use(*shipped)()


def tune_past_l1(tokens, hidden=8192):
    """How bijax reads a stream past L1 (bijax._kernel_helpers.PAST_L1_LOAD; no bit changes): rmsnorm with residual,
    layer_norm with weight and bias, and mean, wherever they read past L1."""
    shipped = _helpers.PAST_L1_LOAD
    candidates = {kind: _setter(_helpers, PAST_L1_LOAD=kind) for kind in ("volatile", "cg")}
    for m in tokens:
        sets, jsets = _norm_sets(m, hidden, 2)
        for op, calls in _CALLS.items():
            _bijax_rounds(f"past_l1 {op}", m, sets, jsets, calls, candidates)
    _helpers.PAST_L1_LOAD = shipped


def _bijax_rounds(what, m, sets, jsets, calls, candidates):
    """bitorch, then bijax under each candidate (a setter of spec constants); see _rounds."""
    torch_fn, jax_fn = calls
    _rounds(what, m, {"bitorch": lambda: _torch_ms(torch_fn, sets)}, candidates,
            {"bijax": lambda: _jax_ms(jax.jit(jax_fn), jsets)})


def _rounds(what, m, fixed, candidates, timed, rounds=3):
    """For `rounds` rounds: each `fixed` line (name -> a function giving ms), then under each candidate (a setter of
    spec constants) each `timed` line, each a new graph / jit; prints the median of each."""
    times = collections.defaultdict(list)
    for _ in range(rounds):
        for name, ms in fixed.items():
            times[name].append(ms())
        for cname, apply in candidates.items():
            apply()
            jax.clear_caches()  # bijax's traces key on shapes, not on the spec's constants
            for name, ms in timed.items():
                times[f"{name} {cname}"].append(ms())
    print(f"tune {what} tokens={m:5d}: "
          + "  ".join(f"{k} {statistics.median(v) * 1e3:.3f}" for k, v in times.items()) + " us")


def tune_layer_norm_knobs(tokens, hidden=8192):
    """bitorch layer_norm (weight and bias) under bit-neutral knobs: where the weight and bias loads go
    (bispec.layer_norm.params_first), whether a split row's whole-row x load goes past L1 (triton_x_past_l1), and
    the eviction hints; XLA and bijax beside."""
    knobs = ("params_first", "triton_x_past_l1", "STREAM_EVICTION", "PARAM_EVICTION")
    shipped = {k: getattr(layer_norm_spec, k) for k in knobs}

    def use(**change):
        return _setter(layer_norm_spec, **{**shipped, **change})

    # shipped last: the next round's fixed lines (bijax reads these knobs too) run under it
    candidates = {"params late": use(params_first=lambda rows: False),
                  "split x via L1": use(triton_x_past_l1=layer_norm_spec.x_past_l1),
                  "no hints": use(STREAM_EVICTION="", PARAM_EVICTION=""), "no param hint": use(PARAM_EVICTION=""),
                  "shipped": use()}
    torch_fn, jax_fn = _CALLS["layer_norm"]
    for m in tokens:
        sets, jsets = _norm_sets(m, hidden, 2)
        fixed = {"xla": lambda: _xla_layer_norm_ms(jsets), "bijax": lambda: _jax_ms(jax.jit(jax_fn), jsets)}
        _rounds("layer_norm_knobs", m, fixed, candidates, {"bitorch": lambda: _torch_ms(torch_fn, sets)}, rounds=5)
    use()()


def _xla_layer_norm_ms(jsets) -> float:
    return _jax_ms(jax.jit(lambda x, r, w, b: bench_layer_norm.jnp_style(x, w, b)), jsets)


def tune_layer_norm_in_block(tokens, hidden=8192):
    """Split layer_norm rows kept in the row's block (bispec.layer_norm.SPLIT_IN_BLOCK: no second load of the slice,
    sums through tree_ptx) or each program's slice as a block of its own, in both frameworks; XLA beside."""
    shipped = layer_norm_spec.SPLIT_IN_BLOCK
    candidates = {f"in block {flag}": _setter(layer_norm_spec, SPLIT_IN_BLOCK=flag) for flag in (not shipped, shipped)}
    torch_fn, jax_fn = _CALLS["layer_norm"]
    for m in tokens:
        sets, jsets = _norm_sets(m, hidden, 2)
        _rounds("layer_norm_in_block", m, {"xla": lambda: _xla_layer_norm_ms(jsets)}, candidates,
                {"bitorch": lambda: _torch_ms(torch_fn, sets), "bijax": lambda: _jax_ms(jax.jit(jax_fn), jsets)},
                rounds=5)


def _mean_rounds(what, tokens, hidden, candidates, rounds):
    """_rounds of the mean over the last dim (bf16 x of (m, hidden)) at each token count: torch.compile, then bitorch
    and bijax under each candidate."""
    peer = torch.compile(lambda x: torch.mean(x, -1))
    torch_fn, jax_fn = _CALLS["mean"]
    for m in tokens:
        sets, jsets = _sets(lambda: (torch.randn(m, hidden, dtype=torch.bfloat16, device="cuda"),), m * hidden * 2)
        _rounds(what, m, {"torch.compile": lambda: _torch_ms(peer, sets)}, candidates,
                {"bitorch": lambda: _torch_ms(torch_fn, sets), "bijax": lambda: _jax_ms(jax.jit(jax_fn), jsets)},
                rounds=rounds)


def tune_mean(tokens, hidden=8192):
    """The mean's row tiling (bispec.reduce.MAX_ROW_BLOCK and row_warps; each changes the bits, in both frameworks
    alike): torch.compile, then bitorch and bijax under each tiling, on the bench's input sets."""
    shipped = reduce_spec.MAX_ROW_BLOCK, reduce_spec.row_warps

    def use(block, warps):
        return _setter(reduce_spec, MAX_ROW_BLOCK=block, row_warps=(lambda r: warps) if warps else shipped[1])

    candidates = {f"block {b} warps {w or 'shipped'}": use(b, w)
                  for b, w in ((8192, 0), (8192, 32), (8192, 8), (4096, 16), (4096, 8), (2048, 8), (2048, 4))}
    _mean_rounds("mean", tokens, hidden, candidates, rounds=3)
    use(shipped[0], 0)()  # 0: the shipped row_warps


def tune_mean_loads(tokens, hidden=8192):
    """How the mean's row kernel reads x (no bit changes): past L1, through L1 evict-first, or plain, in both
    frameworks (bispec.reduce.triton_rows_past_l1, pallas_rows_past_l1, STREAM_EVICTION); torch.compile beside."""
    knobs = ("triton_rows_past_l1", "pallas_rows_past_l1", "STREAM_EVICTION")
    shipped = {k: getattr(reduce_spec, k) for k in knobs}

    def use(past_l1, **change):
        rule = {} if past_l1 is None else dict(triton_rows_past_l1=past_l1, pallas_rows_past_l1=past_l1)
        return _setter(reduce_spec, **{**shipped, **rule, **change})

    # shipped last, so that it stays set
    candidates = {"past L1": use(lambda rows: True), "evict-first": use(lambda rows: False),
                  "plain": use(lambda rows: False, STREAM_EVICTION=""), "shipped": use(None)}
    _mean_rounds("mean_loads", tokens, hidden, candidates, rounds=5)


def tune_softmax(tokens, vocab=128256):
    for chunk, warps in ((2048, 2), (4096, 4), (8192, 8), (16384, 16), (4096, 8), (8192, 4)):
        softmax_spec.CHUNK, softmax_spec.CHUNK_WARPS = chunk, warps
        jax.clear_caches()  # jit caches key on the function, not on the spec's constants
        for m in tokens:
            sets, jsets = _sets(lambda: (3 * torch.randn(m, vocab, device="cuda").to(torch.bfloat16),), 4 * m * vocab)
            print(f"tune softmax tokens={m:5d} chunk={chunk:5d} warps={warps:2d}: "
                  + _both(bitorch.softmax, jax.jit(bijax.softmax), sets, jsets))


def tune_softmax_group(tokens, vocab=128256):
    """Chunks a program of the one-launch softmax owns (bispec.softmax.FUSED_GROUP, FUSED_GROUP_BY_GPU dropped), in
    both frameworks, and whether every group keeps group 3's bits."""
    softmax_spec.FUSED_GROUP_BY_GPU = {}
    for m in tokens:
        sets, jsets = _sets(lambda: (3 * torch.randn(m, vocab, device="cuda").to(torch.bfloat16),), 4 * m * vocab)
        for name in softmax_spec.NAMES:
            torch_fn, jax_fn = getattr(bitorch, name), jax.jit(getattr(bijax, name))
            softmax_spec.FUSED_GROUP = 3
            jax.clear_caches()
            expected = torch_fn(*sets[0])
            for group in (2, 3, 4):
                softmax_spec.FUSED_GROUP = group
                jax.clear_caches()  # bijax's traces key on shapes, not on the spec's constants
                same = (torch.equal(torch_fn(*sets[0]), expected)
                        and torch.equal(torch.from_dlpack(jax_fn(*jsets[0])), expected))
                print(f"tune {name} tokens={m:5d} group={group}: {_both(torch_fn, jax_fn, sets, jsets)}  "
                      f"group 3's bits (both): {same}")


TILES = [matmul_spec.Tiling(*t) for t in (  # (BLOCK_M, BLOCK_N, GROUP_M, warps, stages, rate, BLOCK_N2)
    (128, 256, 8, 8, 4), (128, 128, 8, 8, 5), (128, 64, 8, 4, 8), (64, 64, 8, 4, 8),
    # two column blocks: 192- and 96-wide tiles, for the waves of the 256..512-row gap (issue 3)
    (128, 128, 8, 8, 4, 1.0, 64), (128, 128, 8, 8, 3, 1.0, 64), (64, 128, 8, 4, 4, 1.0, 64),
    (64, 128, 8, 4, 6, 1.0, 64), (128, 64, 8, 4, 6, 1.0, 32),
    # 64-row tiles, 256 and 384 wide: 7 waves of gate_up at 512 rows (4 of 128x256 run 85 % full), one of qkv
    (64, 256, 8, 8, 4), (64, 256, 8, 8, 5), (64, 256, 8, 8, 3, 1.0, 128), (64, 256, 8, 8, 4, 1.0, 128),
    # decode (M <= 32), timed on the H200: deeper, 2 warps, 16 wide, 32 rows, 128 wide (gate_up's 224 tiles)
    (16, 32, 8, 4, 8), (16, 32, 8, 4, 12), (16, 32, 8, 2, 8), (16, 32, 8, 2, 12), (16, 32, 8, 2, 16),
    (16, 16, 8, 1, 12), (32, 32, 8, 4, 8), (32, 64, 8, 4, 8), (16, 128, 8, 4, 4), (32, 128, 8, 4, 4),
    # 64-512 rows of the narrow shapes (o, down: 4096 columns): thin tiles so that every SM gets one
    (64, 32, 8, 4, 8), (64, 32, 8, 2, 8), (128, 32, 8, 4, 6), (64, 64, 8, 4, 6), (64, 64, 8, 4, 10),
    (128, 64, 8, 4, 10), (128, 64, 8, 8, 8))]


def _force(tiling, dtype="bfloat16"):
    """Every shape gets `tiling` in both frameworks (no decode tile, the ladder cut to one rung, no Pallas swap);
    BLOCK_K stays the spec's."""
    matmul_spec.DECODE_MAX_M = 0
    matmul_spec.LADDERS[dtype] = (tiling,)
    matmul_spec.PALLAS_SWAPS, matmul_spec.PALLAS_ONE_ROW_SWAPS = {}, {}
    jax.clear_caches()  # bijax's jit caches key on the function, not on the spec's constants


def tune_matmul(tokens):
    """Time each tiling against cuBLAS (test_matmul.test_tilings_agree checks that they give the same bits)."""
    saved = (dict(matmul_spec.LADDERS), matmul_spec.DECODE_MAX_M, matmul_spec.PALLAS_SWAPS,
             matmul_spec.PALLAS_ONE_ROW_SWAPS)
    for name, (k, n) in matmul_spec.LLAMA3_8B.items():
        for m in tokens:
            sets, jsets = _sets(lambda: (torch.randn(m, k, dtype=torch.bfloat16, device="cuda"),
                                         torch.randn(n, k, dtype=torch.bfloat16, device="cuda")),
                                matmul_spec.bytes_moved(m, n, k, 2))
            cublas = _torch_ms(F.linear, sets)
            for tiling in [TILES[int(i)] for i in flags.FLAGS.tiles] or TILES:
                _force(tiling)
                try:
                    ours = _torch_ms(bitorch.linear, sets)
                    line = f"bitorch {ours * 1e3:8.2f} us  cublas/bitorch {cublas / ours:5.2f}"
                    if flags.FLAGS.jax:
                        j = _jax_ms(bijax.linear, jsets)
                        line += f"  bijax {j * 1e3:8.2f} us  bijax/bitorch {j / ours:5.2f}"
                except Exception as e:  # noqa: BLE001  (a tiling that does not compile is reported)
                    line = f"FAILED {type(e).__name__}"
                print(f"tune tiles time {name:7} M={m:5d} {dataclasses.astuple(tiling)}: {line}  "
                      f"cublas {cublas * 1e3:8.2f} us")
        matmul_spec.LADDERS.update(saved[0])
        matmul_spec.DECODE_MAX_M, matmul_spec.PALLAS_SWAPS, matmul_spec.PALLAS_ONE_ROW_SWAPS = saved[1:]


def main(argv):
    tokens = [int(t) for t in flags.FLAGS.tokens]
    {"rmsnorm": tune_rmsnorm, "rmsnorm_weight": tune_rmsnorm_weight, "split": tune_split,
     "pallas_weight": tune_pallas_weight, "past_l1": tune_past_l1, "layer_norm_knobs": tune_layer_norm_knobs,
     "layer_norm_in_block": tune_layer_norm_in_block,
     "mean": tune_mean, "mean_loads": tune_mean_loads, "softmax": tune_softmax, "softmax_group": tune_softmax_group,
     "matmul": tune_matmul}[argv[1]](tokens)


if __name__ == "__main__":
    app.run(main)

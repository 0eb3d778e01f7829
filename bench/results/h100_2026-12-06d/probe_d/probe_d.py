"""H100 probe (2026-12-06 night), not committed as a tool:
A. gaps: are JAX's kernels launched back to back like a CUDA graph's? (layer_norm and rmsnorm, 8 tokens)
B. bitorch mean's row loads: .cg (shipped), volatile, cached; bijax and torch.compile beside them.
C. placement: bitorch rmsnorm at 256 tokens, captures with and without a random pad before the outputs."""
import os, random, statistics, sys
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import jax, torch
import bijax, bitorch
from bench import timing, rmsnorm as brms, sweep
from bitorch import reduce as treduce

H = 8192
bf = torch.bfloat16


def draw(m, n):
    return [(*(torch.randn(m, H, dtype=bf, device="cuda") for _ in range(2)),
             *(torch.randn(H, dtype=bf, device="cuda") for _ in range(2))) for _ in range(n)]


def trace(runner, sync, reps=20):
    runner(); sync(runner())
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(reps):
            out = runner()
        sync(out)
    ev = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                if e.device_type == torch.autograd.DeviceType.CUDA and e.device_time > 0)
    durs = [b - a for a, b in ev]
    gaps = [ev[i + 1][0] - ev[i][1] for i in range(len(ev) - 1)]
    return statistics.median(durs), statistics.median(gaps), sorted(gaps)[len(gaps) // 10]


# A
for m in (8, 1024):
    sets = draw(m, timing.input_sets_for(4 * m * H * 2))
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    for op, tfn, jfn in (("layer_norm", lambda x, r, w, b: bitorch.layer_norm(x, w, b), lambda x, r, w, b: bijax.layer_norm(x, w, b)),
                         ("rmsnorm", lambda x, r, w, b: bitorch.rms_norm(x, w, residual=r), lambda x, r, w, b: bijax.rms_norm(x, w, residual=r))):
        t = trace(timing.torch_runner([lambda s=s: tfn(*s) for s in sets]), timing.torch_sync)
        j = trace(timing.jax_runner(jax.jit(jfn), jsets), timing.jax_sync)
        print(f"A gaps {op} tokens={m}: bitorch graph dur/gap/gap_p10 {t[0]:.2f}/{t[1]:.2f}/{t[2]:.2f} us; "
              f"bijax jit {j[0]:.2f}/{j[1]:.2f}/{j[2]:.2f} us", flush=True)

# B
compiled = torch.compile(lambda x: torch.mean(x, -1))
variants = {"cg": {}, "volatile": dict(CACHE="", VOLATILE=True), "cached": dict(CACHE="")}
for m in (256, 1024, 2048, 4096):
    sets = [(torch.randn(m, H, dtype=bf, device="cuda"),) for _ in range(timing.input_sets_for(m * H * 2))]
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    res = {k: [] for k in [*variants, "bijax", "compile"]}
    for _ in range(3):
        for name, kw in variants.items():
            treduce.PROBE_ROW_LOAD = kw
            res[name].append(timing.device_ms([lambda s=s: bitorch.mean(s[0], -1) for s in sets], timing.torch_sync, 300))
        treduce.PROBE_ROW_LOAD = {}
        res["compile"].append(timing.device_ms([lambda s=s: compiled(s[0]) for s in sets], timing.torch_sync, 300))
        res["bijax"].append(timing.runner_ms(timing.jax_runner(jax.jit(lambda x: bijax.mean(x, -1)), jsets), len(jsets),
                                             timing.jax_sync, reps=300))
    print(f"B mean tokens={m:5d}: " + "  ".join(f"{k} {statistics.median(v) * 1e3:.3f}" for k, v in res.items()) + " us",
          flush=True)

# C
rng = random.Random(0)
for m in (256, 1024):
    sets = draw(m, timing.input_sets_for(4 * m * H * 2))
    fn = lambda x, r, w, b: bitorch.rms_norm(x, w, residual=r)
    peers = sweep.compile_peers(brms.hf_style, sets[0][:3])
    cfn = peers["torch_compile"]()
    for name, f in (("bitorch", fn), ("compile", lambda x, r, w, b: cfn(x, r, w))):
        for pad_mb in (None, 0):
            times = []
            for i in range(8):
                pad = None if pad_mb is None else rng.randrange(0, 64) * (1 << 18)  # 0..16 MB in 256 KB steps
                calls = [lambda s=s: f(*s) for s in sets]
                if pad is None:
                    runner = timing.torch_runner(calls)
                else:
                    runner = timing.torch_runner([lambda: torch.empty(pad, dtype=torch.uint8, device="cuda")] + calls)
                times.append(timing.runner_ms(runner, len(sets), timing.torch_sync, reps=300) * 1e3)
            print(f"C placement {name:8s} tokens={m:5d} {'no pad ' if pad_mb is None else 'rnd pad'}: "
                  + " ".join(f"{t:.3f}" for t in times) + f"  median {statistics.median(times):.3f}", flush=True)

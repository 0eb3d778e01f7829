"""Probe: per-kernel launch facts (registers, shared memory, grid, block) from the CUPTI trace, and timings. Not committed."""
import json, os, statistics, sys, tempfile
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import jax, torch
import bijax, bitorch
from bench import timing, rmsnorm as brms, layer_norm as bln

H = 8192
tag = sys.argv[1] if len(sys.argv) > 1 else "default"


def draw(m):
    return (*(torch.randn(m, H, dtype=torch.bfloat16, device="cuda") for _ in range(2)),
            *(torch.randn(H, dtype=torch.bfloat16, device="cuda") for _ in range(2)))


ops = {"rmsnorm": (lambda x, r, w, b: bitorch.rms_norm(x, w, residual=r), jax.jit(lambda x, r, w, b: bijax.rms_norm(x, w, residual=r))),
       "layer_norm": (lambda x, r, w, b: bitorch.layer_norm(x, w, b), jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b))),
       "mean": (lambda x, r, w, b: bitorch.mean(x, -1), jax.jit(lambda x, r, w, b: bijax.mean(x, -1)))}
plan = [("layer_norm", 8), ("layer_norm", 32), ("rmsnorm", 8), ("rmsnorm", 256), ("rmsnorm", 1024), ("rmsnorm", 4096),
        ("mean", 256), ("mean", 4096)]
for op, m in plan:
    tfn, jfn = ops[op]
    sets = [draw(m) for _ in range(timing.input_sets_for(4 * m * H * 2))]
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    t = [timing.device_ms([lambda s=s: tfn(*s) for s in sets], timing.torch_sync, reps=300) for _ in range(3)]
    j = [timing.runner_ms(timing.jax_runner(jfn, jsets), len(jsets), timing.jax_sync, reps=300) for _ in range(3)]
    facts = {}
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        torch_sync = tfn(*sets[0]); torch.cuda.synchronize()
        jax.block_until_ready(jfn(*jsets[0]))
    path = tempfile.mktemp(suffix=".json")
    prof.export_chrome_trace(path)
    for ev in json.load(open(path))["traceEvents"]:
        if ev.get("cat") == "kernel":
            a = ev.get("args", {})
            facts[ev["name"][:40]] = {k: a.get(k) for k in ("registers per thread", "shared memory", "grid", "block", "blocks per SM", "est. achieved occupancy %")}
    print(f"kargs[{tag}] {op:10s} tokens={m:5d} bitorch {statistics.median(t)*1e3:7.3f} bijax {statistics.median(j)*1e3:7.3f}", flush=True)
    for name, f in facts.items():
        print(f"    {name:40s} {f}", flush=True)

"""bitorch's (and bijax's) mean row kernel A/B on the H100 (same bits): int32 row index, evict-first loads instead of .cg.
Each variant is bitorch/reduce.py with its text replaced, written to scratch/_reduce_<n>.py (ops renamed probe<n>::).
python scratch/mean_variants.py tokens"""
import importlib, os, statistics, sys
import jax, torch
import bitorch, bijax
from bench.tune import _sets, _torch_ms, _jax_ms
from bijax._kernel_helpers import past_l1_load

bijax_reduce = importlib.import_module("bijax.reduce")

EDITS = {"i32": [(".to(tl.int64)", "")], "ef": [('cache_modifier=".cg"', 'eviction_policy="evict_first"')]}
EDITS["i32 ef"] = EDITS["i32"] + EDITS["ef"]
src = open("bitorch/reduce.py").read()
variants = {}
for n, (name, edits) in enumerate(EDITS.items()):
    s = src.replace("bitorch::", f"probe{n}::")
    for a, b in edits:
        assert a in s, a
        s = s.replace(a, b)
    with open(f"scratch/_reduce_{n}.py", "w") as f:
        f.write(s)
    variants[name] = importlib.import_module(f"scratch._reduce_{n}").mean

for m in (int(t) for t in sys.argv[1].split(",")):
    sets, jsets = _sets(lambda: (torch.randn(m, 8192, dtype=torch.bfloat16, device="cuda"),), m * 8192 * 2)
    peer = torch.compile(lambda x: torch.mean(x, -1))
    jfn = jax.jit(lambda x: bijax.mean(x, -1))
    lines = {"compile": (peer, None), "bitorch": (lambda x: bitorch.mean(x, -1), None),
             **{k: (lambda x, f=f: f(x, -1), None) for k, f in variants.items()}}
    same = all(torch.equal(f(sets[0][0], -1), bitorch.mean(sets[0][0], -1)) for f in variants.values())
    t = {}
    for _ in range(5):
        for k, (f, _) in lines.items():
            t.setdefault(k, []).append(_torch_ms(f, sets))
        t.setdefault("bijax", []).append(_jax_ms(jfn, jsets))
        bijax_reduce.past_l1_load = lambda: dict(eviction_policy="evict_first")
        jax.clear_caches()
        t.setdefault("bijax ef", []).append(_jax_ms(jax.jit(lambda x: bijax.mean(x, -1)), jsets))
        bijax_reduce.past_l1_load = past_l1_load
        jax.clear_caches()
    print(f"mean_variants tokens={m:5d}: " + "  ".join(f"{k} {statistics.median(v)*1e3:.3f}" for k, v in t.items())
          + f" us  bits equal: {same}", flush=True)

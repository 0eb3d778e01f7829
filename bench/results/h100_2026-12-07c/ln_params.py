"""bijax's layer_norm under XLA's PREFER_SHARED (~23 KB of L1): which of weight and bias to read past L1 (same bits).
Each variant is bijax/layer_norm.py with its text replaced, written to scratch/_ln_<n>.py. python scratch/ln_params.py tokens"""
import importlib, statistics, sys
import jax, torch
import bitorch, bijax
from bench import layer_norm as bench_layer_norm
from bench.tune import _norm_sets, _torch_ms, _jax_ms

LOADC = ("    load = lambda ref:", "    loadc = lambda ref: plgpu.load(ref.at[ocols], mask=omask, other=0, "
         "**past_l1_load()).astype(jnp.float32)  # noqa: E731\n    load = lambda ref:")
EDITS = {"bias cg": [LOADC, ("b = load(b_ref)", "b = loadc(b_ref)")],
         "weight cg": [LOADC, ("w = load(w_ref)", "w = loadc(w_ref)")],
         "both cg": [LOADC, ("b = load(b_ref)", "b = loadc(b_ref)"), ("w = load(w_ref)", "w = loadc(w_ref)")],
         "params L1 no hint": [("param = spec.PARAM_EVICTION or None", "param = None")]}
src = open("bijax/layer_norm.py").read()
variants = {}
for n, (name, edits) in enumerate(EDITS.items()):
    s = src
    for a, b in edits:
        assert a in s, a
        s = s.replace(a, b)
    with open(f"scratch/_ln_{n}.py", "w") as f:
        f.write(s)
    variants[name] = importlib.import_module(f"scratch._ln_{n}").layer_norm

for m in (int(t) for t in sys.argv[1].split(",")):
    sets, jsets = _norm_sets(m, 8192, 2)
    peer = torch.compile(lambda x, r, w, b: torch.nn.functional.layer_norm(x, (8192,), w, b))
    jlines = {"xla": jax.jit(lambda x, r, w, b: bench_layer_norm.jnp_style(x, w, b)),
              "bijax": jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b)),
              **{k: jax.jit(lambda x, r, w, b, f=f: f(x, w, b)) for k, f in variants.items()}}
    ref = jlines["bijax"](*jsets[0])
    same = all(bool((jlines[k](*jsets[0]) == ref).all()) for k in variants)
    t = {}
    for _ in range(5):
        t.setdefault("compile", []).append(_torch_ms(peer, sets))
        t.setdefault("bitorch", []).append(_torch_ms(lambda x, r, w, b: bitorch.layer_norm(x, w, b), sets))
        for k, f in jlines.items():
            t.setdefault(k, []).append(_jax_ms(f, jsets))
    print(f"ln_params tokens={m:5d}: " + "  ".join(f"{k} {statistics.median(v)*1e3:.3f}" for k, v in t.items())
          + f" us  bits equal: {same}", flush=True)

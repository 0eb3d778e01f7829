"""Which config Inductor's mean (bf16, hidden 8192) runs, and its time beside bitorch/bijax's, per token count."""
import gc, os, sys, statistics
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import jax, torch
from torch._inductor.utils import run_and_get_code
from torch._inductor.runtime.triton_heuristics import CachingAutotuner
import bitorch, bijax
from bench.tune import _sets, _torch_ms, _jax_ms

out = sys.argv[1]
for m in (int(t) for t in sys.argv[2].split(",")):
    torch._dynamo.reset()
    peer = torch.compile(lambda x: torch.mean(x, -1))
    x = torch.randn(m, 8192, dtype=torch.bfloat16, device="cuda")
    _, codes = run_and_get_code(peer, x)
    with open(f"{out}/inductor_mean_{m}.py", "w") as f:
        f.write("\n\n".join(codes))
    tuners = []
    for o in gc.get_objects():
        try:
            if isinstance(o, CachingAutotuner) and o.launchers:
                tuners.append(o)
        except ReferenceError:
            pass
    for o in tuners:
        if True:
            for L in o.launchers:
                print(f"tokens={m} kernel={o.fn.__name__} config={L.config} n_regs={getattr(L, 'n_regs', None)} "
                      f"shared={getattr(L, 'shared', None)}", flush=True)
            print(f"tokens={m} candidates={[str(c) for c in o.configs]}", flush=True)
    sets, jsets = _sets(lambda: (torch.randn(m, 8192, dtype=torch.bfloat16, device="cuda"),), m * 8192 * 2)
    t = {k: [] for k in ("compile", "bitorch", "bijax")}
    jfn = jax.jit(lambda x: bijax.mean(x, -1))
    for _ in range(5):
        t["compile"].append(_torch_ms(peer, sets))
        t["bitorch"].append(_torch_ms(lambda x: bitorch.mean(x, -1), sets))
        t["bijax"].append(_jax_ms(jfn, jsets))
    print(f"tokens={m} " + " ".join(f"{k} {statistics.median(v)*1e3:.3f}" for k, v in t.items()) + " us", flush=True)

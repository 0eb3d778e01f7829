"""H100 probe, not committed as a tool: layer_norm's split rows with the slice's second load issued before the sums
(working tree) against after them (HEAD, scratch/old_*_layer_norm.py), both frameworks, XLA beside; bits compared."""
import os, statistics, sys
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax, torch
import bijax, bitorch
import old_bitorch_layer_norm as old_t, old_bijax_layer_norm as old_j
from bench import timing, layer_norm as bln

H = 8192
bf = torch.bfloat16


def tms(fn, sets):
    return lambda: timing.device_ms([lambda s=s: fn(*s) for s in sets], timing.torch_sync)


def jms(fn, jsets):
    return lambda: timing.runner_ms(timing.jax_runner(fn, jsets), len(jsets), timing.jax_sync)


for m in (1, 8, 16, 32):
    sets = [(torch.randn(m, H, dtype=bf, device="cuda"), *(torch.randn(H, dtype=bf, device="cuda") for _ in range(2)))
            for _ in range(timing.input_sets_for(4 * m * H * 2))]
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    same = all(torch.equal(bitorch.layer_norm(*s), old_t.layer_norm(*s))
               and torch.equal(torch.from_dlpack(jax.jit(bijax.layer_norm)(*j)), bitorch.layer_norm(*s))
               and torch.equal(torch.from_dlpack(jax.jit(old_j.layer_norm)(*j)), bitorch.layer_norm(*s))
               for s, j in zip(sets[:2], jsets[:2]))
    lines = dict(bitorch_new=tms(bitorch.layer_norm, sets), bitorch_old=tms(old_t.layer_norm, sets),
                 bijax_new=jms(jax.jit(bijax.layer_norm), jsets), bijax_old=jms(jax.jit(old_j.layer_norm), jsets),
                 xla=jms(jax.jit(bln.jnp_style), jsets))
    res = {k: [] for k in lines}
    for _ in range(5):
        for name, fn in lines.items():
            res[name].append(fn())
    print(f"F layer_norm tokens={m:3d} bits equal {same}: "
          + "  ".join(f"{k} {statistics.median(v) * 1e3:.3f}" for k, v in res.items()) + " us", flush=True)

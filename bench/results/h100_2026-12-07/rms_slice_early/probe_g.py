"""H100 probe, not committed as a tool: rms_norm's split rows with the slice's second load issued before the sum
(working tree) against after it (scratch/old_*_rms_norm.py, HEAD's kernels), both frameworks, with residual, XLA
beside; bits compared old against new and across frameworks."""
import os, statistics, sys
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax, torch
import bijax, bitorch
import old_bitorch_rms_norm as old_t, old_bijax_rms_norm as old_j
from bench import timing, rmsnorm as brms

H = 8192
bf = torch.bfloat16


def tms(fn, sets):
    return lambda: timing.device_ms([lambda s=s: fn(*s) for s in sets], timing.torch_sync)


def jms(fn, jsets):
    return lambda: timing.runner_ms(timing.jax_runner(fn, jsets), len(jsets), timing.jax_sync)


def t_call(mod):
    return lambda x, r, w: mod.rms_norm(x, w, residual=r)


def j_call(mod):
    return jax.jit(lambda x, r, w: mod.rms_norm(x, w, residual=r))


def equal(a, b):
    return all(torch.equal(torch.from_dlpack(u) if not isinstance(u, torch.Tensor) else u,
                           torch.from_dlpack(v) if not isinstance(v, torch.Tensor) else v) for u, v in zip(a, b))


for m in (1, 8, 16, 32, 64):
    sets = [(torch.randn(m, H, dtype=bf, device="cuda"), torch.randn(m, H, dtype=bf, device="cuda"),
             torch.randn(H, dtype=bf, device="cuda")) for _ in range(timing.input_sets_for(5 * m * H * 2))]
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    same = all(equal(t_call(bitorch)(*s), t_call(old_t)(*s)) and equal(j_call(bijax)(*j), t_call(bitorch)(*s))
               and equal(j_call(old_j)(*j), t_call(bitorch)(*s)) for s, j in zip(sets[:2], jsets[:2]))
    lines = dict(bitorch_new=tms(t_call(bitorch), sets), bitorch_old=tms(t_call(old_t), sets),
                 bijax_new=jms(j_call(bijax), jsets), bijax_old=jms(j_call(old_j), jsets),
                 xla=jms(jax.jit(brms.jnp_style), jsets))
    res = {k: [] for k in lines}
    for _ in range(5):
        for name, fn in lines.items():
            res[name].append(fn())
    print(f"G rms_norm tokens={m:3d} bits equal {same}: "
          + "  ".join(f"{k} {statistics.median(v) * 1e3:.3f}" for k, v in res.items()) + " us", flush=True)

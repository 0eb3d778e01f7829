"""Same-process A/B of bijax._kernel_helpers.STATIC_WARP_SUMS (on/off) with a bits check.
   python scratch/static_ab.py mean:256,2048 layer_norm:4096 rmsnorm:1024"""
import statistics, sys
import jax, jax.numpy as jnp, torch
from bench import timing
from bijax import _kernel_helpers as kh, reduce as jreduce
from bijax.layer_norm import layer_norm
import bijax

H = 8192
def inputs(op, t):
    r = lambda *s: torch.randn(*s, dtype=torch.bfloat16, device="cuda")
    return {"mean": lambda: (r(t, H),), "layer_norm": lambda: (r(t, H), r(H), r(H)),
            "rmsnorm": lambda: (r(t, H), r(t, H), r(H))}[op]()
def fn(op):
    return {"mean": lambda x: jreduce.mean(x, -1), "layer_norm": lambda x, w, b: layer_norm(x, w, b, 1e-5),
            "rmsnorm": lambda x, r, w: bijax.rms_norm(x, w, 1e-6, residual=r)}[op]
for arg in sys.argv[1:]:
    op, toks = arg.split(":")
    for t in map(int, toks.split(",")):
        nb = sum(a.numel() * a.element_size() for a in inputs(op, 1))  # rough
        sets = [inputs(op, t) for _ in range(timing.input_sets_for(t * H * 2 * 2))]
        jsets = [tuple(jax.dlpack.from_dlpack(a) for a in s) for s in sets]
        times, outs = {True: [], False: []}, {}
        for rnd in range(4):
            for flag in ((True, False) if rnd % 2 == 0 else (False, True)):
                kh.STATIC_WARP_SUMS = flag
                jax.clear_caches()
                f = lambda *a: fn(op)(*a)
                runner = timing.jax_runner(f, jsets)
                times[flag].append(timing.runner_ms(runner, len(jsets), timing.jax_sync) * 1e3)
                outs[flag] = jax.block_until_ready(jax.jit(lambda *a: fn(op)(*a))(*jsets[0]))
        same = all(bool(jnp.array_equal(jax.lax.bitcast_convert_type(a, jnp.uint16 if a.dtype == jnp.bfloat16 else jnp.uint32),
                                        jax.lax.bitcast_convert_type(b, jnp.uint16 if b.dtype == jnp.bfloat16 else jnp.uint32)))
                   for a, b in zip(jax.tree.leaves(outs[True]), jax.tree.leaves(outs[False])))
        print(f"static_ab {op} {t}: on {statistics.median(times[True]):.3f} us {[round(x,3) for x in times[True]]} "
              f"off {statistics.median(times[False]):.3f} us {[round(x,3) for x in times[False]]} bits_equal {same}", flush=True)

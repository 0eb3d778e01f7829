"""Does the L1/shared carveout explain bitorch vs bijax at few rows? bitorch's kernels under carveout default (-1),
100 (max shared, as XLA's PREFER_SHARED) and 0 (max L1); bijax and XLA beside. python scratch/carveout.py tokens"""
import ctypes, statistics, sys
import jax, torch
import importlib
import bitorch, bijax
tln, tred = (importlib.import_module(f'bitorch.{m}') for m in ('layer_norm', 'reduce'))
from bench import layer_norm as bench_layer_norm
from bench.tune import _sets, _norm_sets, _torch_ms, _jax_ms

cuda = ctypes.CDLL("libcuda.so.1")
CARVEOUT = 9  # CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT


def set_carveout(jit_fn, value):
    for k in jit_fn.device_caches[0][0].values():
        k._init_handles()
        rc = cuda.cuFuncSetAttribute(ctypes.c_void_p(k.function), CARVEOUT, ctypes.c_int(value))
        assert rc == 0, rc


for m in (int(t) for t in sys.argv[1].split(",")):
    sets, jsets = _norm_sets(m, 8192, 2)
    msets, mjsets = _sets(lambda: (torch.randn(m, 8192, dtype=torch.bfloat16, device="cuda"),), m * 8192 * 2)
    ln = lambda x, r, w, b: bitorch.layer_norm(x, w, b)
    mean = lambda x: bitorch.mean(x, -1)
    peer = torch.compile(lambda x: torch.mean(x, -1))
    ln(*sets[0]); mean(*msets[0]); peer(*msets[0])
    fixed = {"xla ln": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bench_layer_norm.jnp_style(x, w, b)), jsets),
             "bijax ln": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b)), jsets),
             "compile mean": lambda: _torch_ms(peer, msets),
             "bijax mean": lambda: _jax_ms(jax.jit(lambda x: bijax.mean(x, -1)), mjsets)}
    t = {}
    for _ in range(5):
        for k, f in fixed.items():
            t.setdefault(k, []).append(f())
        for c in (-1, 100, 0):
            set_carveout(tln.layer_norm_kernel, c); set_carveout(tred.reduce_rows_kernel, c)
            t.setdefault(f"bitorch ln c{c}", []).append(_torch_ms(ln, sets))
            t.setdefault(f"bitorch mean c{c}", []).append(_torch_ms(mean, msets))
    print(f"carveout tokens={m:5d}: " + "  ".join(f"{k} {statistics.median(v)*1e3:.3f}" for k, v in t.items()) + " us",
          flush=True)

"""bitorch layer_norm at few tokens (split rows): loads pinned before the sums (bispec.layer_norm.triton_pin_loads)
or not, each under the default L1/shared carveout and under XLA's launch preference (cuFuncSetCacheConfig
PREFER_SHARED and a 100 % shared carveout); XLA and bijax beside. Medians of 5 rounds of each line's mean time.
Ran on the tree of c2ffd53, the only commit with the pin (reverted after: GIT.txt).
    python pin_carveout.py 1,8,32"""
import ctypes
import importlib
import statistics
import sys

import jax

import bijax
import bitorch
from bench import layer_norm as bench_layer_norm
from bench.tune import _jax_ms, _norm_sets, _torch_ms
from bispec import layer_norm as spec

tln = importlib.import_module("bitorch.layer_norm")
cuda = ctypes.CDLL("libcuda.so.1")
shipped = spec.triton_pin_loads


def launch_pref(shared: bool):
    """XLA's preference (shared) or the driver's default on every compiled variant of bitorch's kernel."""
    for k in tln.layer_norm_kernel.device_caches[0][0].values():
        k._init_handles()
        f = ctypes.c_void_p(k.function)
        assert cuda.cuFuncSetCacheConfig(f, 1 if shared else 0) == 0
        assert cuda.cuFuncSetAttribute(f, 9, ctypes.c_int(100 if shared else -1)) == 0  # PREFERRED_SHARED_MEMORY_CARVEOUT


def ln(x, r, w, b):
    return bitorch.layer_norm(x, w, b)


for m in (int(t) for t in sys.argv[1].split(",")):
    sets, jsets = _norm_sets(m, 8192, 2)
    for pin in (True, False):  # both variants compiled before any preference is set
        spec.triton_pin_loads = (lambda s: s > 1) if pin else (lambda s: False)
        ln(*sets[0])
    times = {}
    for _ in range(5):
        for name, f in {"xla": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bench_layer_norm.jnp_style(x, w, b)), jsets),
                        "bijax": lambda: _jax_ms(jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b)), jsets)}.items():
            times.setdefault(name, []).append(f())
        for shared in (False, True):
            launch_pref(shared)
            for pin in (True, False):
                spec.triton_pin_loads = (lambda s: s > 1) if pin else (lambda s: False)
                times.setdefault(f"bitorch pin={pin} xla_pref={shared}", []).append(_torch_ms(ln, sets))
    launch_pref(False)
    spec.triton_pin_loads = shipped
    print(f"pin_carveout tokens={m:5d}: " + "  ".join(f"{k} {statistics.median(v) * 1e3:.3f}" for k, v in times.items())
          + " us", flush=True)

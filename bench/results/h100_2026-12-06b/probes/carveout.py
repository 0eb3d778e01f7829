"""Probe: bitorch norm kernels' L1/shared carveout and rms volatile loads (H100). Not committed."""
import ctypes, os, statistics, sys
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import jax, torch
import bijax, bitorch
from bench import timing, rmsnorm as brms, layer_norm as bln
from bispec import rms_norm as rms_spec, layer_norm as ln_spec
import importlib
trms, tln = (importlib.import_module(f'bitorch.{m}') for m in ('rms_norm', 'layer_norm'))

cuda = ctypes.CDLL("libcuda.so.1")
H = 8192
MODES = {"default": None, "prefer_shared": ("cache", 1), "carve100": ("carve", 100), "carve0": ("carve", 0),
         "prefer_none": ("cache", 0)}


def compiled(kernel):
    out = []
    for caches in kernel.device_caches.values():
        for k in caches[0].values():
            k._init_handles()
            out.append(k)
    return out


def set_mode(mode):
    for kernel in (trms.rms_norm_kernel, tln.layer_norm_kernel):
        for k in compiled(kernel):
            if mode is None:
                cuda.cuFuncSetCacheConfig(ctypes.c_void_p(k.function), 0)
                r = cuda.cuFuncSetAttribute(ctypes.c_void_p(k.function), 9, -1)
            elif mode[0] == "cache":
                r = cuda.cuFuncSetCacheConfig(ctypes.c_void_p(k.function), mode[1])
            else:
                r = cuda.cuFuncSetAttribute(ctypes.c_void_p(k.function), 9, mode[1])
            assert r == 0, r


def draw(m):
    return (*(torch.randn(m, H, dtype=torch.bfloat16, device="cuda") for _ in range(2)),
            *(torch.randn(H, dtype=torch.bfloat16, device="cuda") for _ in range(2)))


ops = {"rmsnorm": (lambda x, r, w, b: bitorch.rms_norm(x, w, residual=r), jax.jit(lambda x, r, w, b: bijax.rms_norm(x, w, residual=r)),
                   torch.compile(lambda x, r, w, b: brms.hf_style(x, r, w))),
       "layer_norm": (lambda x, r, w, b: bitorch.layer_norm(x, w, b), jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b)),
                      torch.compile(lambda x, r, w, b: bln.eager(x, w, b)))}
plan = [("rmsnorm", m) for m in (8, 32, 256, 1024, 2048, 4096)] + [("layer_norm", m) for m in (8, 32, 1024, 4096)]
for op, m in plan:
    tfn, jfn, cfn = ops[op]
    sets = [draw(m) for _ in range(timing.input_sets_for(4 * m * H * 2))]
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    variants = dict(MODES)
    if op == "rmsnorm" and m >= 256:
        variants["volatile"] = "vol"
    res = {k: [] for k in [*variants, "bijax", "compile"]}
    for _ in range(3):
        for name, mode in variants.items():
            rms_spec.PROBE_VOLATILE_FROM = 0 if mode == "vol" else 1 << 30
            tfn(*sets[0]); torch.cuda.synchronize()
            set_mode(None if mode == "vol" else mode)
            res[name].append(timing.device_ms([lambda s=s: tfn(*s) for s in sets], timing.torch_sync, reps=200))
        rms_spec.PROBE_VOLATILE_FROM = 1 << 30
        set_mode(None)
        res["bijax"].append(timing.runner_ms(timing.jax_runner(jfn, jsets), len(jsets), timing.jax_sync, reps=200))
        res["compile"].append(timing.device_ms([lambda s=s: cfn(*s) for s in sets], timing.torch_sync, reps=200))
    print(f"probe {op:10s} tokens={m:5d} " + "  ".join(f"{k} {statistics.median(v) * 1e3:7.3f}" for k, v in res.items()),
          flush=True)

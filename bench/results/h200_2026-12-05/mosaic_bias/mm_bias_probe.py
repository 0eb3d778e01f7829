"""Probe: bijax linear + bias on the Mosaic kernel vs the Triton lowering vs bitorch vs cuBLAS (bits and times)."""
import jax
import numpy as np
import torch
import torch.nn.functional as F

import bijax
import bitorch
from bench import timing
from bispec import matmul as spec

CASES = [("qkv", 256), ("qkv", 1024), ("qkv", 4096), ("qkv", 1000), ("o", 256), ("down", 512), ("gate_up", 2048)]


def main():
    for name, m in CASES:
        k, n = spec.LLAMA3_8B[name]
        make = lambda: (torch.randn(m, k, dtype=torch.bfloat16, device="cuda"),
                        torch.randn(n, k, dtype=torch.bfloat16, device="cuda") * k ** -0.5,
                        torch.randn(n, dtype=torch.bfloat16, device="cuda"))
        sets = [make() for _ in range(timing.input_sets_for(spec.bytes_moved(m, n, k, 2)))]
        jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
        x, w, b = sets[0]
        ref = bitorch.linear(x, w, b)
        fn = jax.jit(bijax.linear)
        mos = np.asarray(fn(*jsets[0]).astype(jax.numpy.float32))
        eq_m = np.array_equal(mos, ref.float().cpu().numpy())
        t_cub = timing.device_ms([lambda s=s: F.linear(*s) for s in sets], timing.torch_sync)
        t_bt = timing.device_ms([lambda s=s: bitorch.linear(*s) for s in sets], timing.torch_sync)
        t_mos = timing.runner_ms(timing.jax_runner(bijax.linear, jsets), len(jsets), timing.jax_sync)
        saved = spec.MOSAIC_SWAPS
        spec.MOSAIC_SWAPS = {}
        jax.clear_caches()
        tri = np.asarray(jax.jit(bijax.linear)(*jsets[0]).astype(jax.numpy.float32))
        t_tri = timing.runner_ms(timing.jax_runner(bijax.linear, jsets), len(jsets), timing.jax_sync)
        spec.MOSAIC_SWAPS = saved
        jax.clear_caches()
        print(f"{name:8} M={m:5d} bias: cublas {t_cub*1e3:8.1f} us bitorch {t_bt*1e3:8.1f} mosaic {t_mos*1e3:8.1f} "
              f"triton-lowering {t_tri*1e3:8.1f} | mosaic/bitorch {t_mos/t_bt:5.2f} cublas/bitorch {t_cub/t_bt:5.2f} "
              f"| bits mosaic==bitorch {eq_m} triton==bitorch {np.array_equal(tri, ref.float().cpu().numpy())}",
              flush=True)


main()

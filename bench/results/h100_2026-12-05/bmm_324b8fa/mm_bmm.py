"""Probe: bijax.bmm on the Mosaic kernel vs the Triton lowering vs bitorch.bmm vs torch.bmm (H100, bf16)."""
import jax, jax.numpy as jnp, numpy as np, torch
import bijax, bitorch
from bispec import matmul as spec
from bench import timing

CASES = [(8, 1024, 4096, 4096), (4, 4096, 4096, 4096), (32, 1024, 128, 1024), (32, 1024, 1024, 128), (16, 200, 4096, 4096)]
saved = dict(spec.MOSAIC_SWAPS)
for (bt, m, k, n) in CASES:
    sets = 4
    ta = [torch.randn(bt, m, k, device="cuda", dtype=torch.bfloat16) for _ in range(sets)]
    tb = [torch.randn(bt, k, n, device="cuda", dtype=torch.bfloat16) for _ in range(sets)]
    ja = [jnp.asarray(x.float().cpu().numpy()).astype(jnp.bfloat16) for x in ta]
    jb = [jnp.asarray(x.float().cpu().numpy()).astype(jnp.bfloat16) for x in tb]
    row = {}
    row["torch"] = timing.device_ms([lambda a=a, b=b: torch.bmm(a, b) for a, b in zip(ta, tb)], timing.torch_sync)
    row["bitorch"] = timing.device_ms([lambda a=a, b=b: bitorch.bmm(a, b) for a, b in zip(ta, tb)], timing.torch_sync)
    spec.MOSAIC_SWAPS.clear(); spec.MOSAIC_SWAPS.update(saved)
    row["mosaic"] = timing.runner_ms(timing.jax_runner(bijax.bmm, list(zip(ja, jb))), sets, timing.jax_sync)
    out_m = np.asarray(jax.jit(bijax.bmm)(ja[0], jb[0]).astype(jnp.float32))
    spec.MOSAIC_SWAPS.clear()
    row["lowering"] = timing.runner_ms(timing.jax_runner(lambda a, b: bijax.bmm(a, b), list(zip(ja, jb))), sets, timing.jax_sync)
    out_l = np.asarray(jax.jit(lambda a, b: bijax.bmm(a, b))(ja[0], jb[0]).astype(jnp.float32))
    spec.MOSAIC_SWAPS.update(saved)
    out_t = bitorch.bmm(ta[0], tb[0]).float().cpu().numpy()
    flops = 2 * bt * m * n * k
    print(f"bmm {bt}x{m}x{k}x{n}: " + " ".join(f"{k_}={v*1e3:.1f}us({flops/v/1e9:.0f}TF)" for k_, v in row.items())
          + f" mosaic==bitorch {np.array_equal(out_m, out_t)} lowering==bitorch {np.array_equal(out_l, out_t)}", flush=True)

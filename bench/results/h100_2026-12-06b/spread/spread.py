"""Probe: spread of one kernel's time between independently built runners (graphs / jits) vs within one. Not committed."""
import os, statistics, sys
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import jax, torch
import bijax, bitorch
from bench import timing, rmsnorm as brms, sweep

H = 8192
for m in (int(a) for a in sys.argv[1:]):
    sets = [(*(torch.randn(m, H, dtype=torch.bfloat16, device="cuda") for _ in range(2)), torch.randn(H, dtype=torch.bfloat16, device="cuda"))
            for _ in range(timing.input_sets_for(4 * m * H * 2))]
    jsets = [tuple(jax.dlpack.from_dlpack(t) for t in s) for s in sets]
    peers = sweep.compile_peers(brms.hf_style, sets[0])
    dyn = peers["torch_compile_dynamic"]()
    lines = {"bitorch": lambda x, r, w: bitorch.rms_norm(x, w, residual=r), "compile_dyn": dyn}
    for name, fn in lines.items():
        runners = [timing.torch_runner([lambda s=s: fn(*s) for s in sets]) for _ in range(4)]
        grid = [[timing.runner_ms(r, len(sets), timing.torch_sync, reps=300) * 1e3 for r in runners] for _ in range(3)]
        print(f"spread tokens={m:5d} {name:12s} " + " | ".join(" ".join(f"{grid[k][i]:.3f}" for k in range(3)) for i in range(4)), flush=True)
    jrunners = [timing.jax_runner(jax.jit(lambda x, r, w: bijax.rms_norm(x, w, residual=r)), jsets) for _ in range(4)]
    grid = [[timing.runner_ms(r, len(jsets), timing.jax_sync, reps=300) * 1e3 for r in jrunners] for _ in range(3)]
    print(f"spread tokens={m:5d} {'bijax':12s} " + " | ".join(" ".join(f"{grid[k][i]:.3f}" for k in range(3)) for i in range(4)), flush=True)

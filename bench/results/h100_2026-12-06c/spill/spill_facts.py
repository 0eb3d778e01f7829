"""Probe: launch facts (shared memory, registers) of bijax's norms with the warps' sums through shared or global
memory, from the profiler's CUPTI trace. Not committed as a tool: its log is kept beside the tune log."""
import json, os, tempfile
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
import jax, jax.numpy as jnp, torch
import bijax
from bispec import rms_norm as spec

H, M = 8192, 1024
x, r, w, b = (jnp.asarray(torch.randn(*s).numpy(), jnp.bfloat16) for s in ((M, H), (M, H), (H,), (H,)))
for tag, thr in (("shared", 1 << 30), ("global", 0)):
    spec.PALLAS_WARP_SUMS_VIA_GLOBAL_FROM_ROWS = thr
    fns = [jax.jit(lambda x, r, w, b: bijax.rms_norm(x, w, residual=r)), jax.jit(lambda x, r, w, b: bijax.layer_norm(x, w, b))]
    for fn in fns:
        jax.block_until_ready(fn(x, r, w, b))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for fn in fns:
            jax.block_until_ready(fn(x, r, w, b))
    path = tempfile.mktemp(suffix=".json")
    prof.export_chrome_trace(path)
    for ev in json.load(open(path))["traceEvents"]:
        if ev.get("cat") == "kernel":
            a = ev.get("args", {})
            print(f"spill facts [{tag}] {ev['name'][:30]:30s} dur {ev.get('dur')} us",
                  {k: a.get(k) for k in ("registers per thread", "shared memory", "grid", "block", "blocks per SM")}, flush=True)
